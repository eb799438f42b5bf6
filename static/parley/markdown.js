// @ts-check
/**
 * The one place model output becomes HTML. Everything else on the page is text nodes.
 * marked parses, DOMPurify sanitises; both are pinned in static/vendor/. Model output is not
 * trusted: raw HTML in it is shown as text, images are not loaded (they would leak the reader's
 * address to any host the model names), and only http, https and mailto links survive.
 * Code blocks that name a language highlight.js knows are highlighted, but only when the caller
 * says the text is finished: a streaming tail is re-parsed every frame and would pay for it again
 * and again. highlight.js escapes the code and emits only <span class="hljs-…">, and its output
 * goes through DOMPurify like everything else.
 */
import { Marked } from "../vendor/marked-18.2.1/marked.esm.js";
import DOMPurify from "../vendor/dompurify-3.4.18/purify.es.mjs";
import hljs from "../vendor/highlight.js-11.12.0/highlight.min.js";

/** @param {string} text */
function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Set around a parse: marked's renderer hooks take no per-call options. */
let highlighting = false;

/** @param {{text: string, lang?: string}} token */
function code({ text, lang }) {
  const language = (lang ?? "").trim().split(/\s+/)[0].toLowerCase();
  const known = language !== "" && hljs.getLanguage(language) !== undefined;
  const body = highlighting && known
    ? hljs.highlight(text, { language, ignoreIllegals: true }).value
    : escapeHtml(text);
  const classes = [known ? "hljs" : "", language ? `language-${escapeHtml(language)}` : ""].join(" ").trim();
  return `<pre><code${classes ? ` class="${classes}"` : ""}>${body}</code></pre>\n`;
}

const marked = new Marked({
  gfm: true,
  renderer: {
    // Models write "<div>" meaning the text "<div>" far more often than they mean markup.
    html: (/** @type {{text: string}} */ { text }) => escapeHtml(text),
    image: (/** @type {{href: string, text: string}} */ { href, text }) =>
      `<a href="${escapeHtml(href)}" class="image-link">Image: ${escapeHtml(text || href)}</a>`,
    code,
  },
});

// A private instance, so these hooks never affect another user of DOMPurify.
const purify = DOMPurify(window);
purify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A" && node.hasAttribute("href")) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer");
  }
});

const PURIFY_CONFIG = {
  ALLOWED_URI_REGEXP: /^(?:https?:|mailto:)/i,
  // img: not loaded (see above). style: blocked by our CSP anyway, and a console error each time.
  FORBID_TAGS: ["img", "style", "form", "input", "button", "textarea", "select", "video", "audio"],
  FORBID_ATTR: ["style", "id"],
  ALLOW_DATA_ATTR: false,
};

/**
 * Markdown to sanitised HTML, safe to assign to innerHTML.
 * @param {string} text
 * @param {{highlight?: boolean}} [options]  highlight code: only for text that will not change
 * @returns {string}
 */
export function markdownToHtml(text, { highlight = false } = {}) {
  highlighting = highlight;
  try {
    const html = /** @type {string} */ (marked.parse(text, { async: false }));
    return purify.sanitize(html, PURIFY_CONFIG);
  } finally {
    highlighting = false;
  }
}
