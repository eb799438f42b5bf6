// @ts-check
/**
 * The conversation list: pinned on top, then newest first grouped by day (Today, Yesterday,
 * Previous 7 days, Older), paged through GET /api/conversations/?before=. Search asks the server
 * (titles and message text) and shows its results, paged the same way, until the box is cleared.
 * Each row has an options menu: rename inline (Enter saves, Esc cancels), pin, export, delete.
 * Delete is a soft delete with an Undo toast; the server keeps the conversation restorable for
 * PARLEY_DELETE_UNDO_SECONDS.
 *
 * "This device only" chats (devicestore.js) are listed among the others, marked "on this device";
 * their rename, pin, export and delete happen in IndexedDB and never reach the server.
 *
 * Rows are built once per conversation and kept, so re-grouping after a new message or a
 * page of 50 moves existing nodes rather than rebuilding thousands.
 */
import { getJson, postJson } from "./http.js";
import { el } from "./render.js";
import { isDevice } from "./devicestore.js";

/** @typedef {import("./events.js").Conversation} Conversation */

/** A device-only chat's address keeps its id after "#", which browsers never send to a server. */
export const conversationUrl = (/** @type {string} */ id) => (isDevice(id) ? `/chat/#${id}` : `/chat/${id}/`);
const SEARCH_DELAY_MS = 250;
const UNDO_MS = 10_000;
const DAY_MS = 86_400_000;

/**
 * Which date group a time falls in, by the browser's local calendar.
 * @param {string | undefined} iso @param {Date} now
 */
export function dateGroup(iso, now) {
  if (!iso) return "Today";
  const startOfToday = new Date(now.getFullYear(), now.getMonth(), now.getDate()).getTime();
  const t = new Date(iso).getTime();
  if (t >= startOfToday) return "Today";
  if (t >= startOfToday - DAY_MS) return "Yesterday";
  if (t >= startOfToday - 7 * DAY_MS) return "Previous 7 days";
  return "Older";
}

/**
 * @typedef {object} SidebarCallbacks
 * @property {(id: string) => void} open  show a conversation
 * @property {(id: string) => void} deleted  a conversation went away (the page leaves it if open)
 * @property {(c: Conversation) => void} renamed
 */

export class Sidebar {
  /**
   * @param {HTMLElement} root  #sidebar
   * @param {{conversations: Conversation[], pinned?: Conversation[], next: string | null}} first
   * @param {SidebarCallbacks} on
   * @param {import("./devicestore.js").DeviceStore} device  where device-only chats are kept
   */
  constructor(root, first, on, device) {
    this.on = on;
    this.device = device;
    this.list = /** @type {HTMLElement} */ (root.querySelector("#conversations"));
    this.more = /** @type {HTMLButtonElement} */ (root.querySelector("#load-more"));
    this.search = /** @type {HTMLInputElement} */ (root.querySelector("#search"));
    this.status = /** @type {HTMLElement} */ (root.querySelector("#search-status"));
    this.menu = /** @type {HTMLElement} */ (document.getElementById("conversation-menu"));
    this.toast = /** @type {HTMLElement} */ (document.getElementById("toast"));
    /** @type {Map<string, Conversation>} */
    this.items = new Map();
    /** @type {Map<string, HTMLLIElement>} */
    this.rows = new Map();
    this.next = first.next;
    /** Search results, or null when not searching. @type {{query: string, ids: string[], next: string | null} | null} */
    this.results = null;
    /** @type {string | null} */
    this.active = null;
    /** @type {HTMLButtonElement | null} */
    this.menuFor = null;
    this.searchTicket = 0;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.searchTimer = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.toastTimer = undefined;
    for (const c of [...(first.pinned ?? []), ...first.conversations]) this.items.set(c.id, c);
    this.wire();
    this.render();
  }

  wire() {
    this.list.addEventListener("click", (e) => {
      const target = e.target instanceof Element ? e.target : null;
      const options = target?.closest("button.row-menu");
      if (options instanceof HTMLButtonElement) return this.openMenu(options);
      const link = target?.closest("a.conversation");
      if (!(link instanceof HTMLAnchorElement) || !(e instanceof MouseEvent) || e.button !== 0) return;
      if (e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      this.on.open(/** @type {string} */ (link.dataset.id));
    });
    this.more.addEventListener("click", () => this.loadMore());
    this.search.addEventListener("input", () => {
      clearTimeout(this.searchTimer);
      this.searchTimer = setTimeout(() => this.runSearch(), SEARCH_DELAY_MS);
    });
    this.search.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && this.search.value) {
        e.preventDefault();
        e.stopPropagation();
        this.search.value = "";
        this.runSearch();
      }
    });
    this.menu.addEventListener("click", (e) => {
      const item = e.target instanceof Element ? e.target.closest("[data-action]") : null;
      if (!(item instanceof HTMLElement)) return;
      const id = this.menuFor?.dataset.id;
      if (item.dataset.action === "export" && isDevice(id)) {
        e.preventDefault(); // made here from IndexedDB, not fetched
        this.exportDevice(/** @type {string} */ (id), item.dataset.file === "export.json" ? "json" : "md");
      }
      this.act(/** @type {string} */ (item.dataset.action));
    });
    this.menu.addEventListener("keydown", (e) => this.menuKey(e));
    document.addEventListener("pointerdown", (e) => {
      if (!this.menu.hidden && e.target instanceof Node && !this.menu.contains(e.target)
        && e.target !== this.menuFor) this.closeMenu(false);
    });
    this.toast.addEventListener("click", (e) => {
      const undo = e.target instanceof Element ? e.target.closest("button.undo") : null;
      if (undo instanceof HTMLElement) this.restore(/** @type {string} */ (undo.dataset.id));
    });
  }

  // --- The list ------------------------------------------------------------------------

  /** Put a conversation that just got a message (or a new title) in its place. @param {Conversation} c */
  upsert(c) {
    const known = this.items.get(c.id);
    // The ack's `updated` can predate the message it acknowledges; the list shows it as now.
    const updated = new Date().toISOString();
    this.items.set(c.id, { ...known, ...c, updated, pinned: c.pinned ?? known?.pinned ?? false });
    this.rows.get(c.id)?.remove();
    this.rows.delete(c.id);
    this.render();
  }

  /** Device-only chats from IndexedDB join the list. @param {Conversation[]} kept */
  addDevice(kept) {
    for (const c of kept) this.items.set(c.id, { ...c, device: true });
    this.render();
  }

  /** A title changed elsewhere (a generated title, another tab). @param {string} id @param {string} title */
  retitle(id, title) {
    const known = this.items.get(id);
    if (!known) return;
    known.title = title;
    const link = this.rows.get(id)?.querySelector("a.conversation");
    if (link) link.textContent = title || "Untitled";
    const menuButton = this.rows.get(id)?.querySelector("button.row-menu");
    if (menuButton) menuButton.setAttribute("aria-label", `Options for ${title || "Untitled"}`);
  }

  /** @param {string | null} id */
  setActive(id) {
    this.active = id;
    for (const [rowId, row] of this.rows) {
      const link = row.querySelector("a.conversation");
      if (rowId === id) link?.setAttribute("aria-current", "page");
      else link?.removeAttribute("aria-current");
    }
  }

  render() {
    /** @type {Map<string, string[]>} */
    const groups = new Map();
    if (this.results) {
      groups.set(this.results.ids.length ? "Search results" : "No conversations match", this.results.ids);
    } else {
      const now = new Date();
      const sorted = [...this.items.values()].sort((a, b) =>
        Number(Boolean(b.pinned)) - Number(Boolean(a.pinned)) || (b.updated ?? "").localeCompare(a.updated ?? ""));
      for (const c of sorted) {
        const name = c.pinned ? "Pinned" : dateGroup(c.updated, now);
        groups.set(name, [...(groups.get(name) ?? []), c.id]);
      }
    }
    const sections = [];
    for (const [name, ids] of groups) {
      const section = el("section", "group");
      const heading = el("h2", "group-title", name);
      heading.id = `group-${name.toLowerCase().replace(/\W+/g, "-")}`;
      const ul = el("ul", "conversation-list");
      ul.setAttribute("aria-labelledby", heading.id);
      ul.append(...ids.map((id) => this.row(id)));
      section.append(heading, ul);
      sections.push(section);
    }
    this.list.replaceChildren(...sections);
    this.setActive(this.active);
    this.more.hidden = !(this.results ? this.results.next : this.next);
  }

  /** @param {string} id */
  row(id) {
    let li = this.rows.get(id);
    if (li) return li;
    const c = /** @type {Conversation} */ (this.items.get(id));
    li = el("li", "conversation-row");
    const link = el("a", "conversation", c.title || "Untitled");
    link.href = conversationUrl(c.id);
    link.dataset.id = c.id;
    const options = el("button", "row-menu icon-button");
    options.type = "button";
    options.dataset.id = c.id;
    options.setAttribute("aria-haspopup", "menu");
    options.setAttribute("aria-expanded", "false");
    options.setAttribute("aria-label", `Options for ${c.title || "Untitled"}`);
    options.append(el("span", "", "⋯"));
    if (c.device) {
      li.classList.add("on-device");
      const badge = el("span", "device-badge", "on this device");
      badge.title = "Kept in this browser only; never sent to the server.";
      li.append(link, badge, options);
    } else li.append(link, options);
    this.rows.set(id, li);
    return li;
  }

  async loadMore() {
    const next = this.results ? this.results.next : this.next;
    if (!next) return;
    this.more.disabled = true;
    try {
      const query = this.results ? `&q=${encodeURIComponent(this.results.query)}` : "";
      const page = await getJson(`/api/conversations/?before=${encodeURIComponent(next)}${query}`);
      for (const c of page.conversations) this.items.set(c.id, { ...this.items.get(c.id), ...c });
      if (this.results) {
        this.results.ids.push(...page.conversations.map((/** @type {Conversation} */ c) => c.id));
        this.results.next = page.next;
      } else this.next = page.next;
      this.render();
    } finally {
      this.more.disabled = false;
    }
  }

  async runSearch() {
    const query = this.search.value.trim();
    const ticket = ++this.searchTicket;
    if (!query) {
      this.results = null;
      this.status.textContent = "";
      this.render();
      return;
    }
    const page = await getJson(`/api/conversations/?q=${encodeURIComponent(query)}`);
    if (ticket !== this.searchTicket) return; // a later keystroke won
    for (const c of page.conversations) {
      if (!this.items.has(c.id)) this.items.set(c.id, c);
    }
    this.results = { query, ids: page.conversations.map((/** @type {Conversation} */ c) => c.id), next: page.next };
    const n = page.conversations.length;
    this.status.textContent = n === 0 ? "No conversations match." : `${n}${page.next ? "+" : ""} conversations match.`;
    this.render();
  }

  focusSearch() {
    this.search.focus();
    this.search.select();
  }

  // --- The options menu ------------------------------------------------------------------

  /** @param {HTMLButtonElement} button */
  openMenu(button) {
    if (this.menuFor === button && !this.menu.hidden) return this.closeMenu(true);
    this.closeMenu(false);
    const c = this.items.get(/** @type {string} */ (button.dataset.id));
    if (!c) return;
    this.menuFor = button;
    const pin = /** @type {HTMLElement} */ (this.menu.querySelector('[data-action="pin"]'));
    pin.textContent = c.pinned ? "Unpin" : "Pin";
    for (const link of this.menu.querySelectorAll("a[data-action]")) {
      if (link instanceof HTMLAnchorElement) link.href = c.device ? "#" : `/api/conversations/${c.id}/${link.dataset.file}`;
    }
    const box = button.getBoundingClientRect();
    this.menu.style.top = `${Math.min(box.bottom + 4, innerHeight - 220)}px`;
    this.menu.style.left = `${Math.max(8, box.right - 190)}px`;
    this.menu.hidden = false;
    button.setAttribute("aria-expanded", "true");
    this.menuItems()[0]?.focus();
  }

  menuItems() {
    return /** @type {HTMLElement[]} */ ([...this.menu.querySelectorAll("[role=menuitem]")]);
  }

  /** @param {boolean} refocus */
  closeMenu(refocus) {
    if (this.menu.hidden) return;
    this.menu.hidden = true;
    this.menuFor?.setAttribute("aria-expanded", "false");
    if (refocus) this.menuFor?.focus();
  }

  /** @param {KeyboardEvent} e */
  menuKey(e) {
    const items = this.menuItems();
    const at = items.indexOf(/** @type {HTMLElement} */ (document.activeElement));
    const moves = { ArrowDown: at + 1, ArrowUp: at - 1, Home: 0, End: items.length - 1 };
    if (e.key in moves) {
      e.preventDefault();
      const to = moves[/** @type {keyof moves} */ (e.key)];
      items[(to + items.length) % items.length]?.focus();
    } else if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      this.closeMenu(true);
    } else if (e.key === "Tab") this.closeMenu(false);
  }

  /** @param {string} action */
  act(action) {
    const id = this.menuFor?.dataset.id;
    if (!id) return;
    if (action === "export") return this.closeMenu(true); // the link downloads by itself
    this.closeMenu(action !== "rename");
    if (action === "rename") this.startRename(id);
    else if (action === "pin") this.togglePin(id);
    else if (action === "delete") this.remove(id);
  }

  // --- Row actions -----------------------------------------------------------------------

  /** Inline rename: Enter (or leaving the box) saves, Esc cancels. @param {string} id */
  startRename(id) {
    const row = this.rows.get(id);
    const link = row?.querySelector("a.conversation");
    const c = this.items.get(id);
    if (!row || !(link instanceof HTMLElement) || !c) return;
    const input = el("input", "rename");
    input.type = "text";
    input.value = c.title;
    input.maxLength = 200;
    input.setAttribute("aria-label", "New title");
    link.hidden = true;
    row.prepend(input);
    input.focus();
    input.select();
    let finished = false;
    /** @param {boolean} save */
    const finish = async (save) => {
      if (finished) return;
      finished = true;
      const title = input.value.trim();
      input.remove();
      link.hidden = false;
      link.focus();
      if (!save || !title || title === c.title) return;
      this.retitle(id, title);
      try {
        const saved = isDevice(id) ? { conversation: await this.device.update(id, { title }) }
          : await postJson(`/api/conversations/${id}/edit/`, { title });
        this.retitle(id, saved.conversation.title);
        this.on.renamed(saved.conversation);
      } catch (error) {
        this.retitle(id, c.title);
        this.notify(error instanceof Error ? error.message : "Could not rename.");
      }
    };
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !e.isComposing) { e.preventDefault(); finish(true); }
      else if (e.key === "Escape") { e.preventDefault(); e.stopPropagation(); finish(false); }
    });
    input.addEventListener("blur", () => finish(true));
  }

  /** @param {string} id */
  async togglePin(id) {
    const c = this.items.get(id);
    if (!c) return;
    const saved = isDevice(id) ? { conversation: await this.device.update(id, { pinned: !c.pinned }) }
      : await postJson(`/api/conversations/${id}/edit/`, { pinned: !c.pinned });
    c.pinned = saved.conversation.pinned;
    this.render();
    /** @type {HTMLElement | null | undefined} */ (this.rows.get(id)?.querySelector("a.conversation"))?.focus();
    this.notify(c.pinned ? `Pinned “${c.title || "Untitled"}”.` : `Unpinned “${c.title || "Untitled"}”.`);
  }

  /** @param {string} id */
  async remove(id) {
    const c = this.items.get(id);
    if (!c) return;
    if (isDevice(id)) await this.device.remove(id); // gone for good: there is no server copy to restore
    else await postJson(`/api/conversations/${id}/delete/`, {});
    this.items.delete(id);
    this.rows.get(id)?.remove();
    this.rows.delete(id);
    if (this.results) this.results.ids = this.results.ids.filter((x) => x !== id);
    this.render();
    this.on.deleted(id);
    if (isDevice(id)) this.notify(`Deleted “${c.title || "Untitled"}” from this device.`);
    else this.notify(`Deleted “${c.title || "Untitled"}”.`, id);
  }

  /** Download a device-only chat, made from IndexedDB. @param {string} id @param {"md" | "json"} format */
  async exportDevice(id, format) {
    const blob = await this.device.export(id, format);
    if (!blob) return;
    const link = el("a");
    link.href = URL.createObjectURL(blob);
    link.download = `${(this.items.get(id)?.title || "conversation").replace(/[^\w -]+/g, "").trim() || "conversation"}.${format}`;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
  }

  /** @param {string} id */
  async restore(id) {
    const saved = await postJson(`/api/conversations/${id}/restore/`, {});
    this.hideToast();
    this.items.set(id, saved.conversation);
    this.render();
    /** @type {HTMLElement | null | undefined} */ (this.rows.get(id)?.querySelector("a.conversation"))?.focus();
  }

  /**
   * A short message under the list; with an id, it offers Undo for that deletion.
   * @param {string} text @param {string} [undoId]
   */
  notify(text, undoId) {
    const parts = [el("span", "", text)];
    if (undoId) {
      const undo = el("button", "undo button", "Undo");
      undo.type = "button";
      undo.dataset.id = undoId;
      parts.push(undo);
    }
    this.toast.replaceChildren(...parts);
    this.toast.hidden = false;
    clearTimeout(this.toastTimer);
    this.toastTimer = setTimeout(() => this.hideToast(), UNDO_MS);
    if (undoId) /** @type {HTMLElement} */ (this.toast.querySelector("button.undo")).focus();
  }

  hideToast() {
    const hadFocus = this.toast.contains(document.activeElement);
    this.toast.hidden = true;
    this.toast.replaceChildren();
    if (hadFocus) this.search.focus();
  }
}
