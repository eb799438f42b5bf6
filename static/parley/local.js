// @ts-check
/**
 * In-browser models on the chat page: their entries in the model picker, the consent prompt and
 * storage check before a first download, the progress bar while weights load, and what happens
 * to a finished answer (posted to the user's account, or kept in IndexedDB when the chat is
 * "this device only"). Engine code is imported only once a user picks one of these models.
 */
import { MessageView, el } from "./render.js";

/** @typedef {import("./engines/index.js").BrowserModel} BrowserModel */
/** @typedef {import("./engines/index.js").LoadedModel} LoadedModel */
/** @typedef {import("./engines/index.js").Turn} Turn */
/** @typedef {import("./render.js").MessageList} MessageList */
/** @typedef {import("./events.js").Conversation} Conversation */

const GROUP_LABEL = "In your browser";
const CONSENT_KEY = "parley.local.consent.";
const SAVE_URL = "/api/browser-models/exchanges/";
const DB_NAME = "parley-local";

/** @param {number} bytes */
export function megabytes(bytes) {
  return `${Math.round(bytes / 1e6)} MB`;
}

/** @param {string} name */
function cookie(name) {
  return document.cookie.split("; ").find((c) => c.startsWith(`${name}=`))?.slice(name.length + 1) ?? "";
}

/**
 * What the model should see: every message on the page with text, in order. Answers are read
 * back from their rendered text, which for these small models is close enough to the markdown.
 * @param {HTMLElement} container
 * @returns {Turn[]}
 */
export function turnsOnPage(container) {
  /** @type {Turn[]} */
  const turns = [];
  for (const node of container.querySelectorAll(".message")) {
    const role = /** @type {HTMLElement} */ (node).dataset.role;
    const status = /** @type {HTMLElement} */ (node).dataset.status;
    // The message's own text (its data), not the rendered page: that has code labels and buttons.
    const text = MessageView.of(node)?.data.content?.trim();
    if ((role === "user" || role === "assistant") && status !== "error" && text) turns.push({ role, content: text });
  }
  return turns;
}

/** Chats kept on this device only: one IndexedDB store, nothing sent anywhere. */
export class DeviceStore {
  /** @returns {Promise<IDBDatabase>} */
  open() {
    return new Promise((resolve, reject) => {
      const request = indexedDB.open(DB_NAME, 1);
      request.onupgradeneeded = () => request.result.createObjectStore("exchanges", { keyPath: "client_id" });
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }

  /** @param {object} exchange */
  async put(exchange) {
    const db = await this.open();
    await new Promise((resolve, reject) => {
      const tx = db.transaction("exchanges", "readwrite");
      tx.objectStore("exchanges").put({ ...exchange, saved: new Date().toISOString() });
      tx.oncomplete = () => resolve(undefined);
      tx.onerror = () => reject(tx.error);
    });
    db.close();
  }

  /** @returns {Promise<any[]>} */
  async all() {
    const db = await this.open();
    const rows = await new Promise((resolve, reject) => {
      const request = db.transaction("exchanges").objectStore("exchanges").getAll();
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    db.close();
    return rows;
  }
}

export class InBrowser {
  /**
   * @param {HTMLSelectElement} select  the model picker, already filled with server models
   * @param {BrowserModel[]} models
   * @param {HTMLElement} composer  where the status line and the device-only toggle go
   */
  constructor(select, models, composer) {
    this.models = models;
    this.select = select;
    /** @type {Map<string, Promise<LoadedModel>>} */
    this.loaded = new Map();
    this.store = new DeviceStore();
    const link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = new URL("./local.css", import.meta.url).href;
    document.head.append(link);
    if (models.length) {
      const group = document.createElement("optgroup");
      group.label = GROUP_LABEL;
      for (const m of models) group.append(new Option(m.name, m.id));
      select.append(group);
    }
    this.status = el("div", "local-status");
    this.status.id = "local-status";
    this.status.setAttribute("role", "status");
    this.status.hidden = true;
    this.statusText = el("span", "local-status-text");
    this.progress = /** @type {HTMLProgressElement} */ (el("progress", "local-progress"));
    this.progress.max = 1;
    this.status.append(this.statusText, this.progress);
    const label = el("label", "local-device-only");
    this.deviceOnlyBox = /** @type {HTMLInputElement} */ (el("input"));
    this.deviceOnlyBox.type = "checkbox";
    this.deviceOnlyBox.id = "device-only";
    label.append(this.deviceOnlyBox, " This device only");
    label.title = "Keep this chat in this browser (IndexedDB); nothing of it is sent to the server.";
    this.deviceOnlyLabel = label;
    composer.prepend(this.status);
    composer.querySelector(".composer-actions")?.before(label);
    select.addEventListener("change", () => this.refresh());
    this.refresh();
  }

  /** @param {string} id */
  owns(id) {
    return this.models.some((m) => m.id === id);
  }

  /** @param {string} id @returns {BrowserModel} */
  model(id) {
    const model = this.models.find((m) => m.id === id);
    if (!model) throw new Error(`unknown in-browser model ${id}`);
    return model;
  }

  get deviceOnly() {
    return this.owns(this.select.value) && this.deviceOnlyBox.checked;
  }

  async refresh() {
    const local = this.owns(this.select.value);
    this.deviceOnlyLabel.hidden = !local;
    if (!local) return this.say("");
    const model = this.model(this.select.value);
    const { availability } = await import("./engines/index.js");
    const verdict = await availability(model);
    if (this.select.value !== model.id) return;
    if (!verdict.ok) {
      const fallback = this.models.find((m) => m.engine === "wllama");
      const hint = fallback ? `pick “${fallback.name}” (runs on any CPU) or a server model` : "pick a server model";
      this.say(`${model.name} is unavailable: ${verdict.reason}. Try again with a GPU-enabled browser, or ${hint}.`, null, "unavailable");
    } else {
      const where = model.internet ? "downloads from the internet" : "downloads from this Parley server";
      this.say(`${model.name} runs in your browser (${megabytes(model.size)}, ${where}, ${model.licence || "see licence"}).`);
    }
  }

  /** @param {string} text @param {number | null} [fraction] @param {string} [state] */
  say(text, fraction = null, state = "") {
    this.status.hidden = !text;
    this.status.dataset.state = state;
    this.statusText.textContent = text;
    this.progress.hidden = fraction === null;
    if (fraction !== null) this.progress.value = fraction;
  }

  /**
   * Ask once per model before downloading it, after checking it fits the storage quota.
   * @param {BrowserModel} model @returns {Promise<boolean>}
   */
  async consent(model) {
    try {
      if (localStorage.getItem(CONSENT_KEY + model.id)) return true;
    } catch { /* private mode: ask every time */ }
    const estimate = await navigator.storage?.estimate?.().catch(() => null);
    const free = estimate?.quota !== undefined ? estimate.quota - (estimate.usage ?? 0) : null;
    if (free !== null && free < model.size) {
      this.say(`${model.name} needs ${megabytes(model.size)} but this browser only allows ${megabytes(free)} more. Free some space or use a server model.`, null, "unavailable");
      return false;
    }
    const dialog = /** @type {HTMLDialogElement} */ (el("dialog", "local-consent"));
    dialog.id = "local-consent";
    const source = model.internet ? `from the internet (${new URL(model.url, location.href).host})` : "from this Parley server";
    dialog.append(
      el("h2", "", `Download ${model.name}?`),
      el("p", "", `It runs entirely in your browser. The first use downloads ${megabytes(model.size)} ${source} and keeps it in this browser's storage; later visits load it from there.`),
      el("p", "", `Licence: ${model.licence || "see the model's page"}.`),
    );
    const accept = el("button", "button primary", "Download and run");
    accept.id = "local-consent-accept";
    const cancel = el("button", "button", "Cancel");
    const row = el("p", "local-consent-actions");
    row.append(cancel, accept);
    dialog.append(row);
    document.body.append(dialog);
    dialog.showModal();
    const ok = await new Promise((resolve) => {
      accept.addEventListener("click", () => resolve(true));
      cancel.addEventListener("click", () => resolve(false));
      dialog.addEventListener("cancel", () => resolve(false));
    });
    dialog.close();
    dialog.remove();
    if (!ok) return false;
    try {
      localStorage.setItem(CONSENT_KEY + model.id, "1");
    } catch { /* see above */ }
    await navigator.storage?.persist?.().catch(() => false); // ask the browser not to evict it
    return true;
  }

  /** The loaded model, loading (and asking consent) the first time. @param {BrowserModel} model */
  async ready(model) {
    let loading = this.loaded.get(model.id);
    if (!loading) {
      const { availability, load } = await import("./engines/index.js");
      const verdict = await availability(model);
      if (!verdict.ok) throw new Error(`${model.name} is unavailable: ${verdict.reason}`);
      if (!(await this.consent(model))) throw new Error("Download cancelled.");
      const started = performance.now();
      this.say(`Loading ${model.name}…`, 0);
      loading = load(model, {
        onProgress: (loaded, total) => this.say(`Loading ${model.name}: ${megabytes(loaded)} of ${megabytes(total)}`, total ? loaded / total : 0),
      });
      this.loaded.set(model.id, loading);
      loading.then((m) => this.say(`${model.name} is ready in your browser (${m.threads} thread${m.threads > 1 ? "s" : ""}, loaded in ${((performance.now() - started) / 1000).toFixed(1)} s).`),
        () => this.loaded.delete(model.id));
    }
    return loading;
  }

  /**
   * Keep a finished exchange: on this device only, or in the user's account.
   * @param {{client_id: string, conversation: string | null, model: string, prompt: string, answer: string, reason: string | null}} exchange
   * @returns {Promise<{conversation: Conversation, messages: any[]} | null>}  null when kept on the device
   */
  async save(exchange) {
    if (this.deviceOnly) {
      await this.store.put(exchange);
      return null;
    }
    const response = await fetch(SAVE_URL, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": decodeURIComponent(cookie("csrftoken")) },
      body: JSON.stringify(exchange),
    });
    if (!response.ok) throw new Error(`Saving the answer failed (${response.status}).`);
    return response.json();
  }
}

/**
 * Answer `content` with an in-browser model and keep the result. Everything chat.js owns is
 * reached through `page`, so this module never needs chat.js's internals.
 * @param {InBrowser} local
 * @param {object} page
 * @param {MessageList} page.messages
 * @param {MessageView} page.mine  the user's message, already on screen
 * @param {string | null} page.conversation
 * @param {string} page.model
 * @param {(view: MessageView, stop: AbortController) => () => void} page.track  returns untrack
 * @param {(conversation: Conversation) => void} page.saved
 */
export async function answerInBrowser(local, page) {
  const model = local.model(page.model);
  const turns = turnsOnPage(page.messages.container);
  const view = new MessageView({ id: `local-${crypto.randomUUID()}`, role: "assistant", content: "",
    status: "streaming", model: `${model.name} (in your browser)` });
  page.messages.add(view);
  const stop = new AbortController();
  const untrack = page.track(view, stop);
  const clientId = crypto.randomUUID();
  try {
    const loaded = await local.ready(model);
    page.mine.update({ status: "complete" });
    page.messages.changed(page.mine);
    for await (const event of loaded.generate(turns, { temperature: 0 }, stop.signal)) {
      page.messages.apply(view, event);
    }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    page.mine.update({ status: "complete" });
    page.messages.changed(page.mine);
    page.messages.apply(view, { type: "end", status: "error", reason: "error", usage: null,
      error: { kind: "unavailable", message } });
    return;
  } finally {
    untrack();
  }
  const saved = await local.save({ client_id: clientId, conversation: page.conversation, model: model.id,
    prompt: page.mine.data.content, answer: view.data.content, reason: view.data.reason ?? null });
  if (saved) page.saved(saved.conversation);
}
