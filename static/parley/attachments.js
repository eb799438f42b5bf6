// @ts-check
/**
 * Files with messages: the composer's tray (attach by button, drag and drop or paste, each file
 * uploaded at once and shown as a thumbnail or a chip) and the files of a sent message.
 *
 * The tray says what cannot work before anything is uploaded: an image for a model that cannot
 * see, a file over the size limit, a file an in-browser chat kept on this device cannot read.
 * The server checks all of it again (chat/attachments/); this only spares the user a round trip.
 * A document's text reaches an in-browser model in the same words the server gives a provider
 * (`documentText`, as providers/content.py writes it).
 */
import { HttpError } from "./http.js";

/** @typedef {import("./events.js").Attachment} Attachment */

const UPLOAD_URL = "/api/attachments/";
export const IMAGE_TYPES = ["image/png", "image/jpeg", "image/webp", "image/gif"];
const IMAGE_NAME = /\.(png|jpe?g|webp|gif)$/i;
const ACCEPT = "image/png,image/jpeg,image/webp,image/gif,application/pdf,text/*,.md,.markdown,.csv,.tsv,.json,"
  + ".jsonl,.xml,.yaml,.yml,.py,.js,.ts,.tsx,.jsx,.java,.c,.h,.cpp,.cs,.go,.rs,.rb,.php,.sh,.sql,.toml,.ini,.log";

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag @param {string} [className] @param {string} [text]
 */
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** @param {number} n */
export function size(n) {
  return n < 1e6 ? `${Math.max(1, Math.round(n / 1e3))} kB` : `${(n / 1e6).toFixed(1)} MB`;
}

/** A document as a model reads it (the same words as providers/content.py document_text). @param {string} name @param {string} text */
export function documentText(name, text) {
  const safe = name.replace(/[\x00-\x1f"<>]/g, "_") || "document";
  return `<document name="${safe}">\n${text}\n</document>`;
}

/** @param {{name: string, type?: string}} file */
export const isImage = (file) => IMAGE_TYPES.includes(file.type ?? "") || IMAGE_NAME.test(file.name);
/** "Pick a model that can (A, B or C)", or say none can. @param {string[]} names */
function pickOne(names) {
  if (!names.length) return "None of your models can; ask an administrator for one that takes images";
  const shown = names.length > 3 ? [...names.slice(0, 3), `${names.length - 3} more`] : names;
  const list = shown.length > 1 ? `${shown.slice(0, -1).join(", ")} or ${shown.at(-1)}` : shown[0];
  return `Pick a model that can (${list})`;
}

/** @param {string} id */
const url = (id) => `/api/attachments/${encodeURIComponent(id)}/`;

/**
 * The files of a message: images as thumbnails that open full size, documents as chips that
 * download (both served to their owner only). Files kept in this browser have no link.
 * @param {Attachment[]} list @returns {HTMLElement}
 */
export function filesView(list) {
  const box = el("div", "message-files");
  for (const file of list) {
    const local = file.id.startsWith("local-");
    if (file.kind === "image" && !file.missing && !local) {
      const link = el("a", "file-thumb");
      link.href = url(file.id);
      link.target = "_blank";
      link.rel = "noopener";
      link.title = `${file.name}: open full size`;
      const img = el("img");
      img.src = url(file.id);
      img.alt = file.name;
      img.loading = "lazy";
      if (file.width && file.height) { img.width = file.width; img.height = file.height; }
      link.append(img);
      box.append(link);
      continue;
    }
    const label = `${file.name}${file.size ? ` · ${size(file.size)}` : ""}${file.missing ? " (not included in the import)" : ""}`;
    if (file.missing || local) {
      box.append(el("span", "file-chip", label));
      continue;
    }
    const chip = el("a", "file-chip", label);
    chip.href = url(file.id);
    chip.setAttribute("download", file.name);
    box.append(chip);
  }
  return box;
}

/** Document texts by attachment id, fetched once (for in-browser models). @type {Map<string, Promise<string>>} */
const texts = new Map();

/** @param {string} id @returns {Promise<string>} */
export function documentTextOf(id) {
  let found = texts.get(id);
  if (!found) {
    found = fetch(`${url(id)}text/`, { credentials: "same-origin", redirect: "error" })
      .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`${r.status}`))))
      .then((data) => String(data.text ?? ""));
    found.catch(() => texts.delete(id));
    texts.set(id, found);
  }
  return found;
}

/**
 * The texts of every document in `messages`, for an in-browser model (kept ones carry theirs).
 * @param {{attachments?: Attachment[]}[]} messages @returns {Promise<Map<string, string>>}
 */
export async function textsFor(messages) {
  const out = new Map();
  const wanted = messages.flatMap((m) => m.attachments ?? []).filter((a) => a.kind === "document" && !a.missing);
  await Promise.all(wanted.map(async (a) => {
    out.set(a.id, a.text ?? await documentTextOf(a.id).catch(() => ""));
  }));
  return out;
}

/** Django's CSRF token, as http.js reads it. */
function csrfToken() {
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  if (input instanceof HTMLInputElement && input.value) return input.value;
  return /(?:^|;\s*)csrftoken=([^;]+)/.exec(document.cookie)?.[1] ?? "";
}

/** @param {File} file @returns {Promise<Attachment>} */
async function upload(file) {
  const form = new FormData();
  form.append("file", file, file.name || "pasted.png");
  const response = await fetch(UPLOAD_URL, {
    method: "POST", credentials: "same-origin", body: form, redirect: "error",
    headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
  });
  const data = (response.headers.get("Content-Type") ?? "").includes("json") ? await response.json() : null;
  if (!response.ok) throw new HttpError(response.status, data?.error ?? `The upload failed (${response.status}).`);
  return data.attachment;
}

/**
 * What the tray must know of the model and the chat at the moment a file is added.
 * @typedef {object} Context
 * @property {string} model  its name, for the notes
 * @property {boolean} vision  it takes images
 * @property {boolean} local  it runs in this browser (no engine here sees images)
 * @property {boolean} deviceOnly  the chat is kept on this device: nothing may be uploaded
 * @property {string[]} seeing  names of the server models that take images, for the notes
 */

/**
 * @typedef {object} Item
 * @property {string} key
 * @property {string} name
 * @property {boolean} image
 * @property {"uploading" | "ready" | "failed"} state
 * @property {Attachment} [attachment]
 * @property {HTMLElement} node
 */

export class Tray {
  /**
   * @param {HTMLFormElement} composer
   * @param {HTMLTextAreaElement} prompt
   * @param {() => Context} context
   * @param {{attachment_bytes?: number, attachments_per_message?: number}} limits
   * @param {() => void} changed  called when Send may have become possible or impossible
   */
  constructor(composer, prompt, context, limits, changed) {
    this.context = context;
    this.limits = limits;
    this.changed = changed;
    /** @type {Item[]} */
    this.items = [];
    this.input = /** @type {HTMLInputElement} */ (el("input"));
    this.input.type = "file";
    this.input.multiple = true;
    this.input.accept = ACCEPT;
    this.input.hidden = true;
    this.input.id = "attach-input";
    this.button = el("button", "button attach", "Attach");
    this.button.type = "button";
    this.button.id = "attach";
    this.button.setAttribute("aria-label", "Attach files");
    this.button.title = "Attach images or documents (or drop them here, or paste a screenshot)";
    this.list = el("ul", "tray");
    this.list.id = "tray";
    this.list.setAttribute("aria-label", "Attached files");
    this.list.hidden = true;
    this.note = el("p", "tray-note");
    this.note.id = "tray-note";
    this.note.setAttribute("role", "status");
    this.note.hidden = true;
    prompt.before(this.list);
    prompt.after(this.note);
    composer.querySelector(".composer-bar")?.prepend(this.button, this.input);
    this.button.addEventListener("click", () => this.input.click());
    this.input.addEventListener("change", () => {
      this.add([...(this.input.files ?? [])]);
      this.input.value = "";
    });
    prompt.addEventListener("paste", (e) => {
      const files = [...(e.clipboardData?.files ?? [])];
      if (files.length) { e.preventDefault(); this.add(files); }
    });
    composer.addEventListener("dragover", (e) => {
      if (![...(e.dataTransfer?.types ?? [])].includes("Files")) return;
      e.preventDefault();
      composer.classList.add("dropping");
    });
    composer.addEventListener("dragleave", () => composer.classList.remove("dropping"));
    composer.addEventListener("drop", (e) => {
      composer.classList.remove("dropping");
      const files = [...(e.dataTransfer?.files ?? [])];
      if (!files.length) return;
      e.preventDefault();
      this.add(files);
    });
  }

  /** @param {string} text */
  say(text) {
    this.note.textContent = text;
    this.note.hidden = !text;
  }

  /** Why one more file cannot be attached here, before anything is sent; "" if it can. @param {File} file */
  refusal(file) {
    const ctx = this.context();
    const most = this.limits.attachments_per_message ?? 10;
    if (this.items.length >= most) return `At most ${most} files go with one message.`;
    const cap = this.limits.attachment_bytes;
    if (cap && file.size > cap) return `${file.name} is ${size(file.size)}; files may be at most ${size(cap)}.`;
    if (isImage(file)) {
      if (ctx.local) return `${ctx.model} runs in your browser and cannot see images. Pick a server model that takes images to attach ${file.name}.`;
      if (!ctx.vision) return `${ctx.model} cannot take images. ${pickOne(ctx.seeing)} to attach ${file.name}.`;
    }
    if (ctx.deviceOnly && (isImage(file) || /\.pdf$/i.test(file.name) || file.type === "application/pdf")) {
      return `This chat is kept on this device only, so ${file.name} cannot go to the server to be read. Attach text files, or use a chat saved to your account.`;
    }
    return "";
  }

  /** @param {File[]} files */
  add(files) {
    for (const file of files) {
      const why = this.refusal(file);
      if (why) { this.say(why); continue; }
      this.say("");
      const item = this.item(file);
      this.items.push(item);
      this.list.append(item.node);
      if (this.context().deviceOnly) this.readHere(file, item);
      else this.send(file, item);
    }
    this.draw();
  }

  /** @param {File} file @returns {Item} */
  item(file) {
    const node = el("li", "tray-item");
    const item = { key: crypto.randomUUID(), name: file.name || "pasted.png", image: isImage(file),
      state: /** @type {const} */ ("uploading"), node };
    node.dataset.state = "uploading";
    node.append(el("span", "tray-name", `${item.name} · ${size(file.size)}`));
    const remove = el("button", "tray-remove", "×");
    remove.type = "button";
    remove.setAttribute("aria-label", `Remove ${item.name}`);
    remove.addEventListener("click", () => this.remove(item));
    node.append(remove);
    return item;
  }

  /** @param {File} file @param {Item} item */
  async send(file, item) {
    try {
      const attachment = await upload(file);
      if (!this.items.includes(item)) return; // removed while uploading: nobody will send it
      item.attachment = attachment;
      item.state = "ready";
      if (attachment.kind === "image") {
        const img = el("img", "tray-thumb");
        img.src = url(attachment.id);
        img.alt = attachment.name;
        item.node.prepend(img);
      }
    } catch (error) {
      item.state = "failed";
      this.say(error instanceof Error ? error.message : String(error));
    }
    this.draw();
  }

  /** A chat kept on this device: a text file is read here and never uploaded. @param {File} file @param {Item} item */
  async readHere(file, item) {
    try {
      const text = new TextDecoder("utf-8", { fatal: true }).decode(await file.arrayBuffer());
      if (text.includes("\0")) throw new Error("binary");
      item.attachment = { id: `local-${item.key}`, name: item.name, kind: "document", media_type: file.type || "text/plain",
        size: file.size, text };
      item.state = "ready";
    } catch {
      item.state = "failed";
      this.say(`${item.name} is not a text file, and this chat (kept on this device) can only read text files.`);
    }
    this.draw();
  }

  /** @param {Item} item */
  remove(item) {
    this.items = this.items.filter((i) => i !== item);
    item.node.remove();
    const id = item.attachment?.id;
    if (id && !id.startsWith("local-")) {
      fetch(`${url(id)}delete/`, { method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrfToken() } })
        .catch(() => { /* an unsent upload is swept after a day anyway */ });
    }
    this.say("");
    this.draw();
  }

  draw() {
    for (const item of this.items) item.node.dataset.state = item.state;
    this.list.hidden = this.items.length === 0;
    this.changed();
  }

  /** Model or chat changed: what is attached may no longer fit it. */
  refresh() {
    const ctx = this.context();
    const images = this.items.filter((i) => i.image).map((i) => i.name);
    if (images.length && (ctx.local || !ctx.vision)) {
      this.say(`${ctx.model} cannot take images: remove ${images.join(", ")}, or ${pickOne(ctx.seeing).toLowerCase()}.`);
    } else if (this.note.textContent?.includes("cannot take images")) this.say("");
    this.changed();
  }

  /** Why Send must wait or cannot go, in words; "" when it may. */
  blocker() {
    if (this.items.some((i) => i.state === "uploading")) return "Wait for the files to finish uploading.";
    if (this.items.some((i) => i.state === "failed")) return "Remove the files that could not be attached.";
    const ctx = this.context();
    if (this.items.some((i) => i.image) && (ctx.local || !ctx.vision)) return `${ctx.model} cannot take images.`;
    return "";
  }

  /** @returns {Attachment[]} */
  attachments() {
    return this.items.flatMap((i) => (i.attachment ? [i.attachment] : []));
  }

  /** A refused send gives its files back (already uploaded: they are shown again, not re-sent). @param {Attachment[]} list */
  restore(list) {
    for (const attachment of list) {
      const node = el("li", "tray-item");
      const item = { key: crypto.randomUUID(), name: attachment.name, image: attachment.kind === "image",
        state: /** @type {const} */ ("ready"), attachment, node };
      node.append(el("span", "tray-name", `${attachment.name}${attachment.size ? ` · ${size(attachment.size)}` : ""}`));
      const remove = el("button", "tray-remove", "×");
      remove.type = "button";
      remove.setAttribute("aria-label", `Remove ${attachment.name}`);
      remove.addEventListener("click", () => this.remove(item));
      node.append(remove);
      this.items.push(item);
      this.list.append(node);
    }
    this.draw();
  }

  get empty() {
    return this.items.length === 0;
  }

  /** Sent: the files now belong to the message. */
  clear() {
    this.items = [];
    this.list.replaceChildren();
    this.say("");
    this.draw();
  }
}
