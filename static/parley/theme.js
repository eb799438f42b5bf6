// @ts-check
/**
 * Light, dark, or whatever the system prefers. The server renders a signed-in user's choice as
 * <html data-theme>, so the first paint is right; this module keeps localStorage in step (the
 * sign-in page, which has no user yet, reads it) and runs the header's switch, which cycles
 * system → light → dark and saves the choice to the user's preferences.
 */
import { postJson } from "./http.js";

const STORAGE_KEY = "parley.theme";
const ORDER = ["system", "light", "dark"];
const LABELS = { system: "Theme: follow the system", light: "Theme: light", dark: "Theme: dark" };

const root = document.documentElement;

/** @returns {string | null} */
function stored() {
  try { return localStorage.getItem(STORAGE_KEY); } catch { return null; }
}

/** @param {string} theme */
export function applyTheme(theme) {
  if (!ORDER.includes(theme)) theme = "system";
  root.dataset.theme = theme;
  try { localStorage.setItem(STORAGE_KEY, theme); } catch { /* private mode: this page only */ }
  const button = document.getElementById("theme-toggle");
  if (button) {
    const label = LABELS[/** @type {keyof LABELS} */ (theme)];
    button.title = label;
    const text = button.querySelector(".visually-hidden");
    if (text) text.textContent = label;
  }
}

applyTheme(root.dataset.theme ?? stored() ?? "system");

document.getElementById("theme-toggle")?.addEventListener("click", async (e) => {
  const button = /** @type {HTMLElement} */ (e.currentTarget);
  const next = ORDER[(ORDER.indexOf(root.dataset.theme ?? "system") + 1) % ORDER.length];
  applyTheme(next);
  const url = button.dataset.saveUrl;
  if (url) {
    try { await postJson(url, { theme: next }); } catch { /* kept locally; saved next time */ }
  }
});
