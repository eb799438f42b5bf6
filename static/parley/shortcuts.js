// @ts-check
/**
 * Page-wide keyboard shortcuts, all listed in the help dialog (#help):
 * Ctrl/⌘+Shift+O new chat, Ctrl/⌘+K search, Ctrl/⌘+Shift+S sidebar, ? or Ctrl/⌘+/ this help.
 * Enter, Shift+Enter and Esc belong to the composer and are wired in chat.js.
 * `?` alone only counts outside text fields, where it is a character someone is typing.
 */

/**
 * @param {{help: HTMLDialogElement, helpButton: HTMLElement, newChat: () => void, search: () => void,
 *          toggleSidebar: () => void}} on
 */
export function wireShortcuts(on) {
  const showHelp = () => { if (!on.help.open) on.help.showModal(); };
  on.helpButton.addEventListener("click", showHelp);
  // The dialog returns focus to what opened it by itself (showModal/close), which is what we want.
  document.addEventListener("keydown", (e) => {
    if (e.defaultPrevented || e.isComposing || e.altKey) return;
    const mod = e.ctrlKey || e.metaKey;
    const key = e.key.toLowerCase();
    if (mod && e.shiftKey && key === "o") run(e, on.newChat);
    else if (mod && !e.shiftKey && key === "k") run(e, on.search);
    else if (mod && e.shiftKey && key === "s") run(e, on.toggleSidebar);
    else if (mod && key === "/") run(e, showHelp);
    else if (!mod && e.key === "?" && !typing(e.target)) run(e, showHelp);
  });
}

/** @param {KeyboardEvent} e @param {() => void} action */
function run(e, action) {
  e.preventDefault();
  action();
}

/** @param {EventTarget | null} target */
function typing(target) {
  return target instanceof HTMLElement &&
    (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
}
