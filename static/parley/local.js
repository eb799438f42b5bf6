// @ts-check
/**
 * In-browser models on the chat page: their entries in the model picker, the consent prompt and
 * storage check before a first download, the progress bar while weights load, running one
 * answer, and keeping it (posted to the user's account, or kept in IndexedDB when the chat is
 * "this device only"). Engine code is imported only once a user picks one of these models.
 *
 * What the model reads is the stored text of the branch on screen (`turnsFrom`), never the
 * rendered page, so Regenerate, Edit and Continue see exactly what the server would send.
 */
import { el } from "./render.js";
import { DeviceStore } from "./devicestore.js";
import { postJson } from "./http.js";
import { documentText } from "./attachments.js";

/** @typedef {import("./engines/index.js").BrowserModel} BrowserModel */
/** @typedef {import("./engines/index.js").LoadedModel} LoadedModel */
/** @typedef {import("./engines/index.js").Turn} Turn */
/** @typedef {import("./engines/index.js").Options} Options */
/** @typedef {import("./render.js").MessageView} MessageView */
/** @typedef {import("./events.js").Message} Message */
/** @typedef {import("./events.js").Conversation} Conversation */
/** @typedef {import("./devicestore.js").Exchange} Exchange */

const GROUP_LABEL = "In your browser";
const CONSENT_KEY = "parley.local.consent.";
const SAVE_URL = "/api/browser-models/exchanges/";
/** The same words the server adds for Continue (chat/services.py CONTINUE_PROMPT). */
export const CONTINUE_PROMPT = "Continue your previous answer exactly where it stopped. Do not repeat any of it.";

/** @param {number} bytes */
export function megabytes(bytes) {
  return `${Math.round(bytes / 1e6)} MB`;
}

/**
 * A message's text as an in-browser model reads it: its documents first (the words the server
 * gives a provider), then what was typed. No engine here sees images, so they are named instead.
 * @param {Message} m @param {Map<string, string>} texts  document texts by attachment id
 */
export function withFiles(m, texts) {
  const parts = (m.attachments ?? []).map((a) => (a.kind === "document"
    ? documentText(a.name, texts.get(a.id) ?? a.text ?? "")
    : `[An image, ${a.name}, was attached here; this model cannot see images.]`));
  return [...parts, m.content].filter(Boolean).join("\n\n");
}

/**
 * What the model sees: the system prompt, then every stored message of the branch that has
 * text or files, as the server builds it (chat/history.py `turns`): errors and unfinished ones are left out.
 * @param {Message[]} branch  first message first
 * @param {string} [system]
 * @param {Map<string, string>} [texts]  the branch's document texts (attachments.js textsFor)
 * @returns {Turn[]}
 */
export function turnsFrom(branch, system = "", texts = new Map()) {
  /** @type {Turn[]} */
  const turns = system ? [{ role: "system", content: system }] : [];
  for (const m of branch) {
    if ((m.role === "user" || m.role === "assistant") && (m.content || m.attachments?.length) && m.status !== "error"
      && m.status !== "streaming" && m.status !== "sending") turns.push({ role: m.role, content: withFiles(m, texts) });
  }
  return turns;
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
    /** What the status line says about a model once loaded. @type {Map<string, string>} */
    this.notes = new Map();
    /** A preloaded model's warm-up, which an answer waits for (one generation at a time). @type {Map<string, Promise<void>>} */
    this.warming = new Map();
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
    /** @type {Conversation | null} the conversation on screen, for the device-only toggle */
    this.conversation = null;
    select.addEventListener("change", () => this.refresh());
    this.refresh();
  }

  /** @param {string | null | undefined} id */
  owns(id) {
    return this.models.some((m) => m.id === id);
  }

  /** @param {string} id @returns {BrowserModel} */
  model(id) {
    const model = this.models.find((m) => m.id === id);
    if (!model) throw new Error(`unknown in-browser model ${id}`);
    return model;
  }

  /** The model a fresh install can run: the one Parley serves itself (SmolLM2), else any. */
  fallback() {
    return this.models.find((m) => m.bundled) ?? this.models.find((m) => m.engine === "wllama") ?? this.models[0];
  }

  /**
   * Follow the conversation on screen: a saved chat cannot move between the server and this
   * device, so the toggle shows where it lives and is locked; a new chat may choose.
   * @param {Conversation | null} conversation
   */
  follow(conversation) {
    this.conversation = conversation;
    this.deviceOnlyBox.disabled = conversation !== null;
    if (conversation) this.deviceOnlyBox.checked = Boolean(conversation.device);
    this.refresh();
  }

  get deviceOnly() {
    return this.conversation ? Boolean(this.conversation.device) : this.owns(this.select.value) && this.deviceOnlyBox.checked;
  }

  async refresh() {
    const local = this.owns(this.select.value);
    this.deviceOnlyLabel.hidden = !local && !this.conversation?.device;
    if (!local) return this.say(this.conversation?.device ? "This chat is kept on this device only: pick an in-browser model to go on." : "");
    const model = this.model(this.select.value);
    const { availability } = await import("./engines/index.js");
    const verdict = await availability(model);
    if (this.select.value !== model.id) return;
    if (!verdict.ok) {
      const fallback = this.models.find((m) => m.engine === "wllama");
      const hint = fallback ? `pick “${fallback.name}” (runs on any CPU) or a server model` : "pick a server model";
      this.say(`${model.name} is unavailable here: ${verdict.reason}. Nothing was downloaded. Try a browser with WebGPU, or ${hint}.`, null, "unavailable");
    } else if (this.notes.has(model.id)) {
      this.say(/** @type {string} */ (this.notes.get(model.id)));
    } else if (this.consented(model)) {
      // Already downloaded once (the user agreed): load it while they type, so the first answer
      // waits only for the model to read the question, not for WebAssembly and weights to load.
      this.ready(model).then((m) => {
        this.warming.set(model.id, (m.warm?.() ?? Promise.resolve()).catch(() => {}));
      }, () => { /* the status line says why; sending will say it again */ });
    } else {
      const where = model.internet ? `downloads from ${new URL(model.url, location.href).host}` : "downloads from this Parley server";
      this.say(`${model.name} runs in your browser (${megabytes(model.size)}, ${where}, ${model.licence || "see licence"}).`);
    }
  }

  /** The user agreed to this model's download before (in this browser). @param {BrowserModel} model */
  consented(model) {
    try {
      return Boolean(localStorage.getItem(CONSENT_KEY + model.id));
    } catch {
      return false;
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
    if (this.consented(model)) return true; // (private mode: asked every time)
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
      if (!verdict.ok) throw new Error(`${model.name} is unavailable here: ${verdict.reason}`);
      if (!(await this.consent(model))) throw new Error("Download cancelled.");
      const started = performance.now();
      this.say(`Loading ${model.name}…`, 0);
      loading = load(model, {
        onProgress: (loaded, total) => this.say(`Loading ${model.name}: ${megabytes(loaded)} of ${megabytes(total)}`, total ? loaded / total : 0),
      });
      this.loaded.set(model.id, loading);
      loading.then((m) => {
        const on = m.device ? `on ${m.device === "webgpu" ? "WebGPU" : "WebAssembly"}, ` : "";
        const note = `${model.name} is ready in your browser (${on}${m.threads} thread${m.threads > 1 ? "s" : ""}, loaded in ${((performance.now() - started) / 1000).toFixed(1)} s).`;
        this.notes.set(model.id, note);
        if (this.select.value === model.id) this.say(note);
      }, (error) => {
          this.loaded.delete(model.id);
          const text = error instanceof Error ? error.message : String(error);
          this.say(text.startsWith(model.name) ? text : `${model.name} could not be loaded: ${text}`, null, "unavailable");
        });
    }
    return loading;
  }

  /**
   * Keep a finished exchange: on this device only, or in the user's account.
   * @param {Exchange} exchange
   * @param {boolean} deviceOnly  decided when the answer started (the screen may have moved on)
   * @returns {Promise<{conversation: Conversation, messages: Message[]}>}
   */
  async save(exchange, deviceOnly) {
    if (deviceOnly) return this.store.save(exchange);
    const { model_name, files, ...posted } = exchange; // the server names the answer and knows the files
    return postJson(SAVE_URL, posted);
  }
}

/**
 * Run one answer into `view` (already on screen, status streaming; for Continue it holds the
 * text so far). Resolves with how it ended; the view has the text.
 * @param {InBrowser} local
 * @param {{model: string, turns: Turn[], options: Options, view: MessageView,
 *   apply: (view: MessageView, event: import("./events.js").AnswerEvent) => void, signal: AbortSignal}} job
 * @returns {Promise<{ok: boolean, reason: string | null}>}  ok: there is something to keep
 */
export async function runAnswer(local, job) {
  const model = local.model(job.model);
  const { SAMPLING } = await import("./engines/index.js");
  const options = { ...SAMPLING, ...Object.fromEntries(Object.entries(job.options).filter(([, v]) => v != null)) };
  try {
    const loaded = await local.ready(model);
    await local.warming.get(model.id);
    /** @type {string | null} */
    let reason = null;
    let failed = false;
    for await (const event of loaded.generate(job.turns, options, job.signal)) {
      job.apply(job.view, event);
      if (event.type === "end") {
        reason = event.reason;
        failed = event.status === "error";
      }
    }
    return { ok: !failed, reason };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    job.apply(job.view, { type: "end", status: job.view.data.content ? "incomplete" : "error", reason: "error",
      usage: null, error: { kind: "unavailable", message } });
    return { ok: false, reason: "error" };
  }
}
