// @ts-check
/**
 * Messages on screen. Events mutate a message's data and mark it dirty; at most once per
 * animation frame the dirty messages, and only they, are drawn. A streaming answer is drawn in
 * two parts: the text up to its last blank line outside a code fence is finished markdown, parsed
 * once and kept; only the tail after it is re-parsed each frame, so a long answer costs no more
 * per frame than a short one. When the answer ends it is parsed once in full, since a few
 * constructs (loose lists, indented continuations) read differently across a split.
 */
import { markdownToHtml } from "./markdown.js";

/** @typedef {import("./events.js").Message} Message */
/** @typedef {import("./events.js").AnswerEvent} AnswerEvent */

const BOTTOM_SLACK_PX = 48;
const ANNOUNCE_EVERY_MS = 8_000;

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string} [className]
 * @param {string} [text]
 */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * The status line under a message, in plain words.
 * @param {Message} m
 */
export function metaText(m) {
  const ref = m.error?.ref ? ` (ref ${m.error.ref})` : "";
  const failure = `${m.error?.message || "Something went wrong."}${ref}`;
  /** @type {string} */
  let status;
  if (m.status === "streaming") status = "Answering…";
  else if (m.status === "error") status = failure;
  else if (m.reason === "stopped") status = "Stopped";
  else if (m.reason === "length") status = "Cut off at the length limit";
  else if (m.reason === "content_filter") status = "Ended by the provider's content filter";
  else if (m.reason === "server_restart") status = "Interrupted: the server restarted";
  else if (m.reason === "error") status = failure;
  else status = "";
  return [m.model, status].filter(Boolean).join(" · ");
}

/**
 * Index just past the last blank line outside a code fence, scanning `text` from `from` (which
 * must itself be outside a fence). Only complete lines count: the last line may still be growing.
 * @param {string} text
 * @param {number} from
 */
export function finishedPrefixEnd(text, from) {
  let split = from;
  /** @type {string | null} */
  let fence = null;
  let start = from;
  for (let end = text.indexOf("\n", start); end !== -1; end = text.indexOf("\n", start)) {
    const line = text.slice(start, end);
    start = end + 1;
    const marker = /^ {0,3}(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence === null && marker) fence = marker;
    else if (fence !== null && marker && marker[0] === fence[0] && marker.length >= fence.length
      && line.trim() === marker) fence = null;
    else if (fence === null && line.trim() === "") split = start;
  }
  return split;
}

export class MessageView {
  /** @param {Message} message */
  constructor(message) {
    this.data = { reasoning: "", ...message };
    this.el = el("article", "message");
    const who = message.role === "user" ? "You" : "Assistant";
    this.el.append(el("h2", "visually-hidden", who));
    this.thinking = el("details", "thinking");
    this.thinking.append(el("summary", "", "Thinking"));
    this.thinkingText = document.createTextNode("");
    this.thinking.append(el("div", "thinking-body"));
    this.thinking.lastElementChild?.append(this.thinkingText);
    this.thinking.hidden = true;
    this.body = el("div", "message-body");
    this.meta = el("p", "message-meta");
    this.el.append(this.thinking, this.body, this.meta);
    /** Characters of content already parsed into finished chunks. */
    this.doneChars = 0;
    /** @type {HTMLElement | null} */
    this.tail = null;
    this.drawnFinal = false;
    this.draw();
  }

  /** @param {AnswerEvent} event */
  apply(event) {
    const d = this.data;
    if (event.type === "delta") {
      d.content += event.text;
      d.reasoning += event.reasoning;
    } else {
      Object.assign(d, { status: event.status, reason: event.reason, usage: event.usage,
        error: event.error });
    }
  }

  /** Replace the data wholesale (a user message once acked, a failed send). @param {Partial<Message>} patch */
  update(patch) {
    Object.assign(this.data, patch);
    this.drawnFinal = false;
  }

  draw() {
    const d = this.data;
    this.el.dataset.role = d.role;
    this.el.dataset.status = d.status;
    this.el.dataset.id = d.id;
    this.meta.textContent = metaText(d);
    if (d.role === "assistant" && d.status === "complete" && d.reason === "length") {
      this.meta.append(" ", el("button", "continue", "Continue"));
    }
    this.drawReasoning();
    if (d.role === "user") this.body.textContent = d.content;
    else if (d.status === "streaming") this.drawStreaming();
    else if (!this.drawnFinal) {
      this.body.innerHTML = markdownToHtml(d.content);
      this.drawnFinal = true;
      this.tail = null;
      this.doneChars = 0;
    }
  }

  drawReasoning() {
    const reasoning = this.data.reasoning ?? "";
    if (reasoning.length > this.thinkingText.length) {
      this.thinkingText.appendData(reasoning.slice(this.thinkingText.length));
    }
    this.thinking.hidden = reasoning === "";
  }

  drawStreaming() {
    const text = this.data.content;
    if (!this.tail) {
      this.body.replaceChildren();
      this.tail = el("div", "chunk");
      this.body.append(this.tail);
    }
    const split = finishedPrefixEnd(text, this.doneChars);
    if (split > this.doneChars) {
      const chunk = el("div", "chunk");
      chunk.innerHTML = markdownToHtml(text.slice(this.doneChars, split));
      this.tail.before(chunk);
      this.doneChars = split;
    }
    this.tail.innerHTML = markdownToHtml(text.slice(split));
  }
}

/** A polite live region that speaks at most every few seconds, except for final news. */
export class Announcer {
  /** @param {HTMLElement} region */
  constructor(region) {
    this.region = region;
    this.last = 0;
  }

  /**
   * @param {() => string} text  called only when something will be said
   * @param {boolean} [final]
   */
  say(text, final = false) {
    const now = performance.now();
    if (!final && now - this.last < ANNOUNCE_EVERY_MS) return;
    this.last = now;
    this.region.textContent = text();
  }
}

/** The #messages list: owns the views on screen and the once-per-frame drawing. */
export class MessageList {
  /** @param {HTMLElement} container @param {Announcer} announcer */
  constructor(container, announcer) {
    this.container = container;
    this.announcer = announcer;
    /** @type {Set<MessageView>} */
    this.dirty = new Set();
    this.frame = 0;
  }

  /** @param {MessageView[]} views */
  show(views) {
    this.dirty.clear();
    this.container.replaceChildren(...views.map((v) => v.el));
    this.container.scrollTop = this.container.scrollHeight;
  }

  /** @param {MessageView} view */
  add(view) {
    this.container.append(view.el);
    this.container.scrollTop = this.container.scrollHeight;
  }

  /** @param {MessageView} view @param {AnswerEvent} event */
  apply(view, event) {
    view.apply(event);
    this.changed(view);
    const d = view.data;
    if (event.type === "delta") {
      this.announcer.say(() => `Answering, ${d.content.split(/\s+/).length} words so far.`);
    } else this.announcer.say(() => metaText({ ...d, model: "" }) || "Answer complete.", true);
  }

  /** @param {MessageView} view */
  changed(view) {
    this.dirty.add(view);
    this.frame ||= requestAnimationFrame(() => this.draw());
  }

  draw() {
    this.frame = 0;
    const c = this.container;
    const atBottom = c.scrollHeight - c.scrollTop - c.clientHeight < BOTTOM_SLACK_PX;
    for (const view of this.dirty) view.draw();
    this.dirty.clear();
    // Follow the answer only if the reader was already following it.
    if (atBottom) c.scrollTop = c.scrollHeight;
  }
}
