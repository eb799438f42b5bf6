// @ts-check
/**
 * The "Use from code" panel: how to call the picked model from a script through Parley's
 * OpenAI-compatible API. The snippets come from the server (chat/api/snippets.py), filled in
 * with this server's address and the model's API id; they read the user's token from the
 * PARLEY_API_TOKEN environment variable, so nothing secret is ever on the page.
 */
import { getJson } from "./http.js";

/** @typedef {{id: string, label: string, language: string, code: string}} Snippet */
/** @typedef {{model: string, base_url: string, token_variable: string, snippets: Snippet[]}} Panel */

export class CodePanel {
  /** @param {HTMLDialogElement} dialog */
  constructor(dialog) {
    this.dialog = dialog;
    this.body = /** @type {HTMLElement} */ (dialog.querySelector("#code-panel-body"));
    this.title = /** @type {HTMLElement} */ (dialog.querySelector("#code-panel-model"));
    /** @type {Map<string, Panel>} */
    this.loaded = new Map();
  }

  /**
   * Open for a server model (its page id and name); an in-browser model has no API.
   * @param {string | undefined} modelId @param {string} name
   */
  async open(modelId, name) {
    this.title.textContent = name;
    this.body.replaceChildren(paragraph("Loading…"));
    this.dialog.showModal();
    if (!modelId) {
      this.body.replaceChildren(paragraph("This model runs in your browser: scripts cannot reach it through Parley's API."));
      return;
    }
    try {
      let panel = this.loaded.get(modelId);
      if (!panel) {
        panel = /** @type {Panel} */ (await getJson(`/api/models/${encodeURIComponent(modelId)}/code/`));
        this.loaded.set(modelId, panel);
      }
      this.render(panel);
    } catch {
      this.body.replaceChildren(paragraph("The snippets could not be loaded. Try again."));
    }
  }

  /** @param {Panel} panel */
  render(panel) {
    const intro = paragraph("");
    intro.append("Model id ", code(panel.model), " at ", code(panel.base_url),
      ". Make a token on your ", link("/settings/#api-tokens", "settings page"), " and put it in the ",
      code(panel.token_variable), " environment variable: never in the code itself.");
    const sections = panel.snippets.map((snippet) => {
      const section = document.createElement("section");
      section.className = "code-snippet";
      section.dataset.snippet = snippet.id;
      const heading = document.createElement("h3");
      heading.textContent = snippet.label;
      const pre = document.createElement("pre");
      const block = document.createElement("code");
      block.className = `language-${snippet.language}`;
      block.textContent = snippet.code; // text, never HTML
      pre.append(block);
      const copy = document.createElement("button");
      copy.type = "button";
      copy.className = "button";
      copy.textContent = "Copy";
      copy.setAttribute("aria-label", `Copy the ${snippet.label} snippet`);
      copy.addEventListener("click", async () => {
        try {
          await navigator.clipboard.writeText(snippet.code);
          copy.textContent = "Copied";
        } catch {
          copy.textContent = "Select and copy";
        }
      });
      section.append(heading, copy, pre);
      return section;
    });
    this.body.replaceChildren(intro, ...sections);
  }
}

/** @param {string} text */
function paragraph(text) {
  const p = document.createElement("p");
  p.textContent = text;
  return p;
}

/** @param {string} text */
function code(text) {
  const c = document.createElement("code");
  c.textContent = text;
  return c;
}

/** @param {string} href @param {string} text */
function link(href, text) {
  const a = document.createElement("a");
  a.href = href;
  a.textContent = text;
  return a;
}
