// @ts-check
/**
 * The conversation list: newest first, the open one marked with aria-current, "Load more" paging
 * through GET /api/conversations/?before=. Opening a conversation is the page's business, so
 * clicks are handed to `onOpen`; a modified click (new tab) is left to the browser.
 */
import { getJson } from "./http.js";

/** @typedef {import("./events.js").Conversation} Conversation */

export const conversationUrl = (/** @type {string} */ id) => `/chat/${id}/`;

export class Sidebar {
  /**
   * @param {HTMLUListElement} list  #conversations
   * @param {HTMLButtonElement} more  #load-more
   * @param {string | null} next  page_data.next
   * @param {(id: string) => void} onOpen
   */
  constructor(list, more, next, onOpen) {
    this.list = list;
    this.more = more;
    this.next = next;
    /** @type {string | null} */
    this.active = null;
    list.addEventListener("click", (e) => {
      const link = e.target instanceof Element ? e.target.closest("a.conversation") : null;
      if (!(link instanceof HTMLAnchorElement) || e.button !== 0) return;
      if (e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
      e.preventDefault();
      onOpen(/** @type {string} */ (link.dataset.id));
    });
    more.addEventListener("click", () => this.loadMore());
    this.showMore();
  }

  /** @param {Conversation[]} conversations */
  append(conversations) {
    for (const c of conversations) {
      if (!this.find(c.id)) this.list.append(this.item(c));
    }
  }

  /** Put a conversation that just got a message at the top. @param {Conversation} c */
  upsert(c) {
    const existing = this.find(c.id);
    const li = existing?.parentElement ?? this.item(c);
    const link = /** @type {HTMLAnchorElement} */ (li.firstElementChild);
    link.textContent = c.title || "Untitled";
    this.list.prepend(li);
    this.setActive(this.active);
  }

  /** @param {string | null} id */
  setActive(id) {
    this.active = id;
    for (const link of this.list.querySelectorAll("a.conversation")) {
      if (link instanceof HTMLElement && link.dataset.id === id) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  }

  async loadMore() {
    if (!this.next) return;
    this.more.disabled = true;
    try {
      const page = await getJson(`/api/conversations/?before=${encodeURIComponent(this.next)}`);
      this.append(page.conversations);
      this.next = page.next;
      this.setActive(this.active);
    } finally {
      this.more.disabled = false;
      this.showMore();
    }
  }

  showMore() {
    this.more.hidden = !this.next;
  }

  /** @param {string} id */
  find(id) {
    return [...this.list.querySelectorAll("a.conversation")].find(
      (a) => a instanceof HTMLElement && a.dataset.id === id);
  }

  /** @param {Conversation} c */
  item(c) {
    const li = document.createElement("li");
    const link = document.createElement("a");
    link.className = "conversation";
    link.href = conversationUrl(c.id);
    link.dataset.id = c.id;
    link.textContent = c.title || "Untitled";
    li.append(link);
    return li;
  }
}
