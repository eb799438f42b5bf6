// @ts-check
/**
 * The model <select>: page_data.models grouped by provider, remembering the user's last choice
 * in localStorage so a new chat starts with the model they used last.
 */

/** @typedef {import("./events.js").Model} Model */

const STORAGE_KEY = "parley.model";

/** localStorage throws in some private modes; a forgotten choice is no reason to break the page. */
function remembered() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

export class ModelPicker {
  /** @param {HTMLSelectElement} select @param {Model[]} models */
  constructor(select, models) {
    this.select = select;
    this.models = models;
    /** @type {Map<string, HTMLOptGroupElement>} */
    const groups = new Map();
    for (const model of models) {
      let group = groups.get(model.provider);
      if (!group) {
        group = document.createElement("optgroup");
        group.label = model.provider;
        groups.set(model.provider, group);
      }
      const option = new Option(model.name, model.id);
      // Which models see images: the composer names them when an image meets one that does not.
      if (model.vision) { option.dataset.vision = "true"; option.title = "Takes images"; }
      group.append(option);
    }
    select.replaceChildren(...groups.values());
    select.addEventListener("change", () => {
      try {
        localStorage.setItem(STORAGE_KEY, select.value);
      } catch { /* see remembered() */ }
    });
    this.reset();
  }

  /** For a new chat: the last choice, else the configured default, else the first; false if none. */
  reset() {
    const fallback = this.models.find((m) => m.default) ?? this.models[0];
    return this.choose(remembered()) || Boolean(fallback && this.choose(fallback.id));
  }

  /** The user's last choice (a server or an in-browser model id), if any. */
  remembered() {
    return remembered();
  }

  /**
   * Select a model by id or display name (conversations may name either); false if unknown.
   * @param {string | null | undefined} idOrName
   */
  choose(idOrName) {
    const model = this.models.find((m) => m.id === idOrName) ??
      this.models.find((m) => m.name === idOrName);
    if (model) this.select.value = model.id;
    return Boolean(model);
  }

  get value() {
    return this.select.value;
  }

  /** The picked server model (undefined for an in-browser one). */
  get model() {
    return this.models.find((m) => m.id === this.select.value);
  }
}
