// @ts-check
/**
 * The one place model output becomes HTML. Everything else on the page is text nodes.
 * marked parses, DOMPurify sanitises; both are pinned in static/vendor/. Model output is not
 * trusted: raw HTML in it is shown as text, images are not loaded (they would leak the reader's
 * address to any host the model names), and only http, https and mailto links survive.
 */
import { Marked } from "../vendor/marked-18.2.1/marked.esm.js";
import DOMPurify from "../vendor/dompurify-3.4.18/purify.es.mjs";

/** @param {string} text */
function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const marked = new Marked({
  gfm: true,
  renderer: {
    // Models write "<div>" meaning the text "<div>" far more often than they mean markup.
    html: (/** @type {{text: string}} */ { text }) => escapeHtml(text),
    image: (/** @type {{href: string, text: string}} */ { href, text }) =>
      `<a href="${escapeHtml(href)}" class="image-link">Image: ${escapeHtml(text || href)}</a>`,
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
 * @returns {string}
 */
export function markdownToHtml(text) {
  const html = /** @type {string} */ (marked.parse(text, { async: false }));
  return purify.sanitize(html, PURIFY_CONFIG);
}
