// @ts-check
/**
 * A conversation is a tree: Regenerate adds an answer beside the earlier ones, Edit adds a
 * question beside the edited one. Every message names its `parent`, so the page rebuilds the
 * tree from the flat list the server sends and shows one branch: at each fork the choice the
 * reader made, else the newest child. Views are made once per message and kept, so paging
 * back and forth never re-parses markdown.
 */
import { MessageView } from "./render.js";

/** @typedef {import("./events.js").Message} Message */

/** The key of a first message's "parent". */
const ROOT = "";

export class Thread {
  /**
   * @param {Message[]} messages  oldest first, as the server lists them
   * @param {(m: Message) => MessageView} make  a view for a message (reusing live ones)
   */
  constructor(messages, make) {
    /** @type {Map<string, MessageView>} */
    this.views = new Map();
    /** Children of each message (ROOT for first messages), oldest first. @type {Map<string, string[]>} */
    this.children = new Map();
    /** The child chosen at each fork; absent means the newest. @type {Map<string, string>} */
    this.chosen = new Map();
    for (const m of messages) this.add(make(m));
    // Open on the branch of the newest message, wherever its forks were.
    const newest = messages.length ? this.views.get(messages[messages.length - 1].id) : undefined;
    for (let v = newest; v; v = this.views.get(v.data.parent ?? ROOT)) {
      this.chosen.set(v.data.parent ?? ROOT, v.data.id);
    }
  }

  /**
   * Put a saved message in the tree and choose it: a new answer or edit is what the reader
   * wants to see.
   * @param {MessageView} view
   */
  add(view) {
    const { id, parent } = view.data;
    if (!id || this.views.has(id)) return;
    this.views.set(id, view);
    const key = parent ?? ROOT;
    const siblings = this.children.get(key) ?? [];
    siblings.push(id);
    this.children.set(key, siblings);
    this.chosen.set(key, id);
  }

  /** @param {string} key */
  pick(key) {
    const siblings = this.children.get(key);
    if (!siblings?.length) return null;
    const chosen = this.chosen.get(key);
    return chosen && siblings.includes(chosen) ? chosen : siblings[siblings.length - 1];
  }

  /**
   * The branch on screen, first message first; each view learns its place among its siblings.
   * @param {string | null} [until]  stop after this message (Edit shows the branch up to its parent)
   */
  path(until) {
    /** @type {MessageView[]} */
    const views = [];
    if (until === null) return views;
    let key = ROOT;
    for (let id = this.pick(key); id; id = this.pick(key)) {
      const view = /** @type {MessageView} */ (this.views.get(id));
      const siblings = /** @type {string[]} */ (this.children.get(key));
      view.setSiblings(siblings.indexOf(id), siblings.length);
      views.push(view);
      if (id === until) break;
      key = id;
    }
    return views;
  }

  /**
   * Show the previous (-1) or next (+1) sibling of `view`, and the newest branch below it.
   * @param {MessageView} view @param {number} step
   */
  page(view, step) {
    const key = view.data.parent ?? ROOT;
    const siblings = this.children.get(key) ?? [];
    const index = siblings.indexOf(view.data.id) + step;
    if (index < 0 || index >= siblings.length) return false;
    this.chosen.set(key, siblings[index]);
    return true;
  }
}
