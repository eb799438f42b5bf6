// @ts-check
/**
 * Messages on screen. Events mutate a message's data and mark it dirty; at most once per
 * animation frame the dirty messages, and only they, are drawn. A streaming answer is drawn in
 * two parts: the text up to its last blank line outside a code fence is finished markdown, parsed
 * once and kept; only the tail after it is re-parsed each frame, so a long answer costs no more
 * per frame than a short one. When a short answer ends it is parsed once in full, since a few
 * constructs (loose lists, indented continuations) read differently across a split; a long one
 * keeps its chunks and only the tail is parsed again, because a full parse of a 4,000-token
 * answer is a 150 ms+ frame (bench/browser_render.py).
 */
import { markdownToHtml } from "./markdown.js";
import { filesView } from "./attachments.js";

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
  // Answered from the response cache: no call to the provider, no cost.
  const cached = m.cached && m.status !== "streaming" ? "From the cache" : "";
  return [m.model, status, cached].filter(Boolean).join(" · ");
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

/** The messages drawn in full when a conversation opens; older ones are drawn when scrolled near. */
const EAGER_MESSAGES = 20;
/** Answers longer than this keep their streamed chunks when they end (see the module docstring). */
const FULL_REPARSE_CHARS = 6_000;
const COPIED_FOR_MS = 2_000;
/** @type {WeakMap<Element, MessageView>} */
const viewOf = new WeakMap();

/**
 * A labelled button. Actions are found by `data-action` through one listener on the list.
 * @param {string} action @param {string} text @param {string} [label]
 */
function button(action, text, label) {
  const b = el("button", `message-action ${action}`, text);
  b.type = "button";
  b.dataset.action = action;
  if (label) b.setAttribute("aria-label", label);
  return b;
}

/** @param {number} n */
const count = (n) => n.toLocaleString("en");

/**
 * The figures behind "Details": tokens in/out, time to first token, tokens per second.
 * Speed is measured here, from the first delta to the end, so it is absent for answers that
 * were not watched streaming (loaded from history).
 * @param {Message} m @param {number | null} streamMs
 */
export function statsText(m, streamMs) {
  const parts = [];
  if (m.model) parts.push(`Model: ${m.model}`);
  const usage = m.usage ?? {};
  if (usage.input_tokens != null) parts.push(`${count(usage.input_tokens)} tokens in`);
  if (usage.output_tokens != null) parts.push(`${count(usage.output_tokens)} tokens out`);
  if (m.ttft_ms != null) parts.push(`first token after ${count(m.ttft_ms)} ms`);
  if (usage.output_tokens && streamMs && streamMs > 0) {
    parts.push(`${(usage.output_tokens / (streamMs / 1000)).toFixed(1)} tokens/s`);
  }
  return parts.join(" · ");
}

/**
 * Code blocks of finished markdown get a label and a Copy button. The button is ours, added
 * after sanitising (DOMPurify forbids buttons in model output).
 * @param {HTMLElement} root
 */
function decorateCode(root) {
  for (const pre of root.querySelectorAll("pre")) {
    if (pre.parentElement?.classList.contains("code-block")) continue;
    const wrapper = el("div", "code-block");
    const bar = el("div", "code-bar");
    const language = /\blanguage-(\S+)/.exec(pre.firstElementChild?.className ?? "")?.[1] ?? "";
    bar.append(el("span", "code-language", language), button("copy-code", "Copy", `Copy ${language || "code"}`));
    pre.replaceWith(wrapper);
    wrapper.append(bar, pre);
  }
}

/**
 * Clipboard writes need a secure context; a self-hosted instance on plain http falls back to
 * the old selection-based copy.
 * @param {string} text
 */
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const area = el("textarea", "visually-hidden");
  area.value = text;
  document.body.append(area);
  area.select();
  document.execCommand("copy");
  area.remove();
}

export class MessageView {
  /** @param {Message} message */
  constructor(message) {
    this.data = { reasoning: "", ...message };
    this.el = el("article", "message");
    viewOf.set(this.el, this);
    const who = message.role === "user" ? "You" : "Assistant";
    this.el.append(el("h2", "visually-hidden", who));
    this.thinking = el("details", "thinking");
    this.thinking.append(el("summary", "", "Thinking"));
    this.thinkingText = document.createTextNode("");
    this.thinking.append(el("div", "thinking-body"));
    this.thinking.lastElementChild?.append(this.thinkingText);
    this.thinking.hidden = true;
    this.body = el("div", "message-body");
    /** Thumbnails and chips of a user message's files (drawn when they change). @type {HTMLElement | null} */
    this.files = null;
    this.drawnFiles = "";
    this.meta = el("p", "message-meta");
    this.actions = el("div", "message-actions");
    this.stats = el("details", "message-stats");
    this.stats.append(el("summary", "", "Details"), el("p", "stats-text"));
    this.stats.hidden = true;
    this.el.append(this.thinking, this.body, this.meta, this.actions, this.stats);
    /** Characters of content already parsed into finished chunks. */
    this.doneChars = 0;
    /** @type {HTMLElement | null} */
    this.tail = null;
    this.drawnFinal = false;
    /** Position among its siblings (other answers to the same question, other edits). */
    this.siblings = { index: 0, count: 1 };
    /** @type {number | null} performance.now() of the first text, and of the end */
    this.firstTextAt = null;
    /** @type {number | null} */
    this.endedAt = null;
    this.drawnKey = "";
    /** @type {HTMLFormElement | null} */
    this.editor = null;
    this.drawCheap();
  }

  /** @param {Element} node @returns {MessageView | undefined} */
  static of(node) {
    const article = node.closest(".message");
    return article ? viewOf.get(article) : undefined;
  }

  /** @param {AnswerEvent} event */
  apply(event) {
    const d = this.data;
    if (event.type === "delta") {
      if (this.firstTextAt === null && event.text) this.firstTextAt = performance.now();
      if (event.replace) {
        // The whole text from a resume: keep the parsed chunks only if they are still its start.
        if (!event.text.startsWith(d.content.slice(0, this.doneChars))) { this.doneChars = 0; this.tail = null; }
        if (!(event.reasoning ?? "").startsWith(this.thinkingText.data)) this.thinkingText.data = "";
        d.content = event.text;
        d.reasoning = event.reasoning ?? "";
      } else {
        d.content += event.text;
        d.reasoning += event.reasoning;
      }
    } else {
      this.endedAt = performance.now();
      Object.assign(d, { status: event.status, reason: event.reason, usage: event.usage,
        error: event.error, cached: Boolean(event.cached) });
      if (event.ttft_ms !== undefined) d.ttft_ms = event.ttft_ms;
    }
  }

  /** Replace the data wholesale (a user message once acked, a failed send). @param {Partial<Message>} patch */
  update(patch) {
    Object.assign(this.data, patch);
    this.drawnFinal = false;
    if (patch.status === "streaming") this.firstTextAt = this.endedAt = null;
  }

  /** A finished answer not yet parsed: its plain text stands in until it is drawn. */
  get pending() {
    return this.data.role === "assistant" && this.data.status !== "streaming" && !this.drawnFinal;
  }

  /** @param {number} index @param {number} count */
  setSiblings(index, count) {
    if (index === this.siblings.index && count === this.siblings.count) return;
    this.siblings = { index, count };
    this.drawControls();
  }

  /** Everything but the markdown: cheap enough for 500 messages at once. */
  drawCheap() {
    const d = this.data;
    this.el.dataset.role = d.role;
    this.el.dataset.status = d.status;
    this.el.dataset.id = d.id;
    this.meta.textContent = metaText(d);
    this.drawControls();
    this.drawReasoning();
    if (d.role === "user") {
      this.body.textContent = d.content;
      this.drawFiles();
    } else if (this.pending && !this.body.firstChild) this.body.textContent = d.content;
  }

  draw() {
    this.drawCheap();
    const d = this.data;
    if (d.role === "user") return;
    if (d.status === "streaming") this.drawStreaming();
    else if (!this.drawnFinal) {
      if (this.tail && d.content.length > FULL_REPARSE_CHARS) {
        this.tail.innerHTML = markdownToHtml(d.content.slice(this.doneChars), { highlight: true });
        decorateCode(this.tail);
      } else {
        this.body.innerHTML = markdownToHtml(d.content, { highlight: true });
        decorateCode(this.body);
      }
      this.drawnFinal = true;
      this.tail = null;
      this.doneChars = 0;
    }
  }

  drawFiles() {
    const list = this.data.attachments ?? [];
    const key = list.map((a) => a.id).join(",");
    if (key === this.drawnFiles) return;
    this.drawnFiles = key;
    this.files?.remove();
    this.files = list.length ? filesView(list) : null;
    if (this.files) this.body.before(this.files);
  }

  /** The buttons under a message and its Details; rebuilt only when what they depend on changes. */
  drawControls() {
    const d = this.data;
    const key = [d.id, d.status, d.reason, this.siblings.index, this.siblings.count,
      d.usage?.output_tokens, d.ttft_ms, this.endedAt].join("|");
    if (key === this.drawnKey) return;
    this.drawnKey = key;
    const buttons = [];
    if (this.siblings.count > 1) buttons.push(this.pager());
    const saved = d.id !== "" && !d.id.startsWith("local-");
    const finished = d.status !== "streaming" && d.status !== "sending";
    if (finished && d.content) buttons.push(button("copy-message", "Copy", "Copy message"));
    if (d.role === "user" && saved) buttons.push(button("edit", "Edit", "Edit message"));
    if (d.role === "assistant" && saved && finished) {
      const failed = d.status === "error" || d.reason === "error";
      const cut = (d.status === "complete" && d.reason === "length") || (d.status === "incomplete" && d.content !== "");
      if (cut) buttons.push(button("continue", "Continue", "Continue this answer"));
      buttons.push(failed ? button("retry", "Retry", "Retry this answer")
        : button("regenerate", "Regenerate", "Regenerate this answer"));
    }
    this.actions.replaceChildren(...buttons);
    this.actions.hidden = buttons.length === 0;
    const stats = d.role === "assistant" && finished ? statsText(d, this.streamMs()) : "";
    this.stats.hidden = stats === "";
    /** @type {HTMLElement} */ (this.stats.lastElementChild).textContent = stats;
  }

  /** Milliseconds from the first text to the end, if this page watched the answer stream. */
  streamMs() {
    return this.firstTextAt !== null && this.endedAt !== null ? this.endedAt - this.firstTextAt : null;
  }

  /** "‹ 2 / 3 ›": the other answers to the same question, or the other edits of a message. */
  pager() {
    const { index, count } = this.siblings;
    const pager = el("span", "pager");
    pager.setAttribute("role", "group");
    pager.setAttribute("aria-label", "Versions");
    const prev = button("prev", "‹", "Previous version");
    const next = button("next", "›", "Next version");
    prev.disabled = index === 0;
    next.disabled = index === count - 1;
    pager.append(prev, el("span", "pager-position", `${index + 1} / ${count}`), next);
    return pager;
  }

  /**
   * The inline editor of a user message. `send` gets the new text; the old message stays as a
   * sibling, reachable through the pager.
   * @param {(text: string) => void} send
   */
  startEdit(send) {
    if (this.editor) return;
    const form = el("form", "edit-form");
    const id = `edit-${crypto.randomUUID()}`;
    const label = el("label", "visually-hidden", "Edit message");
    label.htmlFor = id;
    const area = el("textarea", "edit-text");
    area.id = id;
    area.value = this.data.content;
    area.rows = Math.min(12, Math.max(2, this.data.content.split("\n").length));
    const save = el("button", "button primary", "Send");
    save.type = "submit";
    const cancel = el("button", "button", "Cancel");
    cancel.type = "button";
    form.append(label, area, el("div", "edit-actions"));
    form.lastElementChild?.append(cancel, save);
    const close = () => {
      form.remove();
      this.editor = null;
      this.body.hidden = this.actions.hidden = false;
    };
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const text = area.value;
      if (!text.trim()) return;
      close();
      send(text);
    });
    cancel.addEventListener("click", () => { close(); /** @type {HTMLElement | null} */ (this.actions.querySelector("button.edit"))?.focus(); });
    area.addEventListener("keydown", (e) => {
      if (e.key === "Escape") { e.stopPropagation(); e.preventDefault(); cancel.click(); }
      if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); form.requestSubmit(); }
    });
    this.body.hidden = this.actions.hidden = true;
    this.body.after(form);
    this.editor = form;
    area.focus();
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
      chunk.innerHTML = markdownToHtml(text.slice(this.doneChars, split), { highlight: true });
      decorateCode(chunk);
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

/**
 * What the message buttons ask of the page (chat.js); copying is handled here.
 * @typedef {object} ActionHandlers
 * @property {(view: MessageView, step: number) => void} page  show the previous/next sibling
 * @property {(view: MessageView, text: string) => void} edit  send an edited user message
 * @property {(view: MessageView) => void} regenerate  also Retry
 * @property {(view: MessageView) => void} continue
 */

/** The #messages list: owns the views on screen and the once-per-frame drawing. */
export class MessageList {
  /** @param {HTMLElement} container @param {Announcer} announcer */
  constructor(container, announcer) {
    this.container = container;
    this.announcer = announcer;
    /** @type {Set<MessageView>} */
    this.dirty = new Set();
    this.frame = 0;
    /** @type {ActionHandlers | null} */
    this.handlers = null;
    // Older messages of a long conversation are parsed only when scrolled near.
    this.observer = new IntersectionObserver((entries) => {
      for (const entry of entries) {
        if (!entry.isIntersecting) continue;
        this.observer.unobserve(entry.target);
        viewOf.get(entry.target)?.draw();
      }
    }, { root: container, rootMargin: "1500px 0px" });
    container.addEventListener("click", (e) => this.clicked(e));
  }

  /**
   * @param {MessageView[]} views
   * @param {{keepScroll?: boolean}} [options]  keepScroll: the same conversation, another branch
   */
  show(views, { keepScroll = false } = {}) {
    this.dirty.clear();
    this.observer.disconnect();
    const top = this.container.scrollTop;
    this.container.replaceChildren(...views.map((v) => v.el));
    views.forEach((view, i) => {
      if (!view.pending || i >= views.length - EAGER_MESSAGES) view.draw();
      else this.observer.observe(view.el);
    });
    this.container.scrollTop = keepScroll ? top : this.container.scrollHeight;
  }

  /** @param {MessageView} view */
  add(view) {
    this.container.append(view.el);
    view.draw();
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

  /** @param {MouseEvent} e */
  clicked(e) {
    const target = e.target instanceof Element ? e.target.closest("button[data-action]") : null;
    const view = target ? MessageView.of(target) : undefined;
    if (!target || !view) return;
    const action = /** @type {HTMLElement} */ (target).dataset.action;
    const h = this.handlers;
    if (action === "copy-code") {
      const code = target.closest(".code-block")?.querySelector("pre")?.textContent ?? "";
      this.copy(/** @type {HTMLButtonElement} */ (target), code);
    } else if (action === "copy-message") this.copy(/** @type {HTMLButtonElement} */ (target), view.data.content);
    else if (action === "prev" || action === "next") h?.page(view, action === "prev" ? -1 : 1);
    else if (action === "edit") view.startEdit((text) => h?.edit(view, text));
    else if (action === "regenerate" || action === "retry") h?.regenerate(view);
    else if (action === "continue") h?.continue(view);
  }

  /** @param {HTMLButtonElement} target @param {string} text */
  async copy(target, text) {
    const label = target.textContent;
    try {
      await copyText(text);
      target.textContent = "Copied";
    } catch {
      target.textContent = "Copy failed";
    }
    this.announcer.say(() => target.textContent ?? "", true);
    setTimeout(() => { target.textContent = label; }, COPIED_FOR_MS);
  }
}
