// @ts-check
/**
 * The "Chat settings" dialog: system prompt, temperature and max tokens of the conversation on
 * screen. An existing conversation saves them on the server (POST …/edit/); a new chat keeps them
 * here, starting from the user's default system prompt and the admin's defaults, until its first
 * message creates it. Either way they travel as the `send` frame's options.
 */
import { postJson } from "./http.js";
import { isDevice } from "./devicestore.js";

/** @typedef {{system_prompt: string, temperature: number | null, max_tokens: number | null}} Settings */

export class ChatSettings {
  /**
   * @param {HTMLDialogElement} dialog
   * @param {{system_prompt: string, temperature: number | null, max_tokens: number | null}} defaults
   * @param {(id: string, settings: Settings) => Promise<unknown>} keepOnDevice  a device-only chat's settings stay in this browser
   */
  constructor(dialog, defaults, keepOnDevice) {
    this.dialog = dialog;
    this.keepOnDevice = keepOnDevice;
    this.defaults = defaults;
    this.form = /** @type {HTMLFormElement} */ (dialog.querySelector("form"));
    this.system = /** @type {HTMLTextAreaElement} */ (dialog.querySelector("#cs-system"));
    this.temperature = /** @type {HTMLInputElement} */ (dialog.querySelector("#cs-temperature"));
    this.maxTokens = /** @type {HTMLInputElement} */ (dialog.querySelector("#cs-max-tokens"));
    this.error = /** @type {HTMLElement} */ (dialog.querySelector("#chat-settings-error"));
    this.scope = /** @type {HTMLElement} */ (dialog.querySelector("#chat-settings-scope"));
    /** @type {string | null} */
    this.conversation = null;
    /** @type {Settings} */
    this.values = { ...defaults };
    /** The user saved the dialog for the new chat (not just the defaults). */
    this.edited = false;
    this.form.addEventListener("submit", (e) => {
      const submitter = /** @type {SubmitEvent} */ (e).submitter;
      if (submitter instanceof HTMLButtonElement && submitter.value === "save") {
        e.preventDefault();
        this.save();
      }
    });
  }

  /**
   * Follow the conversation on screen; null is a new chat, which starts from the defaults.
   * @param {string | null} conversation @param {Partial<Settings> | null | undefined} saved
   */
  show(conversation, saved) {
    this.conversation = conversation;
    this.values = conversation
      ? { system_prompt: saved?.system_prompt ?? "", temperature: saved?.temperature ?? null,
          max_tokens: saved?.max_tokens ?? null }
      : { ...this.defaults };
    this.edited = false;
  }

  open() {
    this.system.value = this.values.system_prompt;
    this.temperature.value = this.values.temperature === null ? "" : String(this.values.temperature);
    this.maxTokens.value = this.values.max_tokens === null ? "" : String(this.values.max_tokens);
    this.scope.textContent = this.conversation
      ? "For this conversation."
      : "For the new chat; the system prompt is set when its first message is sent.";
    this.error.textContent = "";
    this.dialog.showModal();
  }

  async save() {
    if (!this.form.reportValidity()) return;
    const values = {
      system_prompt: this.system.value,
      temperature: this.temperature.value === "" ? null : Number(this.temperature.value),
      max_tokens: this.maxTokens.value === "" ? null : Number(this.maxTokens.value),
    };
    if (this.conversation && isDevice(this.conversation)) {
      this.values = values;
      await this.keepOnDevice(this.conversation, values).catch(() => {});
    } else if (this.conversation) {
      try {
        const saved = await postJson(`/api/conversations/${this.conversation}/edit/`, values);
        this.values = saved.settings;
      } catch (error) {
        this.error.textContent = error instanceof Error ? error.message : String(error);
        return;
      }
    } else {
      this.values = values;
      this.edited = true;
    }
    this.dialog.close("save");
  }

  /** The send frame's options; only what is set, so the server's defaults apply to the rest. */
  options() {
    /** @type {{system?: string, temperature?: number, max_tokens?: number}} */
    const options = {};
    if (!this.conversation && this.values.system_prompt) options.system = this.values.system_prompt;
    if (this.values.temperature !== null) options.temperature = this.values.temperature;
    if (this.values.max_tokens !== null) options.max_tokens = this.values.max_tokens;
    return options;
  }

  /**
   * A new chat was just created: keep the settings the user chose for it on the server too.
   * Untouched admin defaults are not copied, so a later change of default still reaches it.
   * @param {string} id
   */
  async adopt(id) {
    const { temperature, max_tokens } = this.values;
    this.conversation = id;
    if (isDevice(id)) {
      if (this.edited) await this.keepOnDevice(id, this.values).catch(() => {});
    } else if (!this.edited) {
      this.values = { ...this.values, temperature: null, max_tokens: null };
    } else if (temperature !== null || max_tokens !== null) {
      try {
        await postJson(`/api/conversations/${id}/edit/`, { temperature, max_tokens });
      } catch { /* they still went with the first message; the dialog shows what is saved next time */ }
    }
  }
}
