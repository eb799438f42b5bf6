// @ts-check
/**
 * The chat page's wiring: reads #parley-data, shows a conversation, sends messages and follows
 * their answers, switches conversations without reloading. Answers keep streaming while another
 * conversation is on screen: `live` holds their views, so coming back shows them where they are.
 */
import { Announcer, MessageList, MessageView } from "./render.js";
import { ChatSocket } from "./socket.js";
import { postCommand, postMessage, serverAnswer } from "./server.js";
import { Thread } from "./branches.js";
import { ModelPicker } from "./models.js";
import { Sidebar, conversationUrl } from "./sidebar.js";
import { getJson, postJson } from "./http.js";
import { ChatSettings } from "./chatsettings.js";
import { CodePanel } from "./codepanel.js";
import { wireShortcuts } from "./shortcuts.js";
import { ConnectionNotice } from "./connection.js";
import { BudgetNotice } from "./budget.js";
import { CONTINUE_PROMPT, InBrowser, runAnswer, turnsFrom, withFiles } from "./local.js";
import { Tray, textsFor } from "./attachments.js";
import { isDevice } from "./devicestore.js";

/** @typedef {import("./events.js").PageData} PageData */
/** @typedef {import("./events.js").Message} Message */
/** @typedef {import("./events.js").Conversation} Conversation */

const NEW_CHAT_URL = "/chat/";

/** @template {HTMLElement} T @param {string} id @returns {T} */
const byId = (id) => /** @type {T} */ (document.getElementById(id));

/** @type {PageData} */
const data = JSON.parse(byId("parley-data").textContent ?? "{}");
const prompt = /** @type {HTMLTextAreaElement} */ (byId("prompt"));
const sendButton = /** @type {HTMLButtonElement} */ (byId("send"));
const stopButton = /** @type {HTMLButtonElement} */ (byId("stop"));
const emptyNote = byId("empty");

const socket = new ChatSocket(data.ws_path, data.protocol, data.limits?.frame_chars);
new ConnectionNotice(byId("connection"), socket);
const messages = new MessageList(byId("messages"), new Announcer(byId("announcer")));
new BudgetNotice(byId("budget-notice"), socket, (text) => messages.announcer.say(() => text, true));
const picker = new ModelPicker(/** @type {HTMLSelectElement} */ (byId("model")), data.models);
// Models that run in this browser join the same picker; their engines load only when picked.
const inBrowser = new InBrowser(picker.select, data.browser_models ?? [], byId("composer"));
const noModels = data.models.length === 0 && inBrowser.models.length === 0;
// Files for the next message: what the picked model can take is checked before each upload.
const tray = new Tray(/** @type {HTMLFormElement} */ (byId("composer")), prompt, () => {
  const local = inBrowser.owns(picker.value);
  const model = picker.model;
  return {
    model: local ? inBrowser.model(picker.value).name : (model?.name ?? "This model"),
    vision: Boolean(model?.vision), local, deviceOnly: local ? inBrowser.deviceOnly : isDevice(current?.id),
    seeing: data.models.filter((m) => m.vision).map((m) => m.name),
  };
}, data.limits ?? {}, () => refreshComposer());
const prefs = data.preferences;
const sidebar = new Sidebar(byId("sidebar"), data, {
  open: (id) => open(id, true),
  deleted: (id) => { if (current?.id === id) newChat(true); },
  renamed: (c) => { if (current?.id === c.id) document.title = `${c.title || "Untitled"} · Parley`; },
}, inBrowser.store);
const chatSettings = new ChatSettings(/** @type {HTMLDialogElement} */ (byId("chat-settings")), {
  system_prompt: prefs?.system_prompt ?? "", temperature: prefs?.temperature ?? null,
  max_tokens: prefs?.max_tokens ?? null,
}, (id, settings) => inBrowser.store.update(id, { settings }));

/** @type {Conversation | null} */
let current = null;
let sending = false;
/** Answers being followed, by assistant message id. @type {Map<string, {view: MessageView, conversation: string, stop: AbortController}>} */
const live = new Map();
/** The conversation's messages as a tree; the branch on screen is `thread.path()`. */
let thread = new Thread([], (m) => new MessageView(m));
/** Guards against a slow fetch overwriting a conversation opened after it. */
let opening = 0;

/**
 * @param {Conversation | null} conversation @param {Message[]} list
 * @param {import("./chatsettings.js").Settings | null} [settings]
 */
function show(conversation, list, settings) {
  current = conversation;
  chatSettings.show(conversation?.id ?? null, settings);
  thread = new Thread(list, (m) => live.get(m.id)?.view ?? new MessageView(m));
  messages.show(thread.path());
  for (const view of thread.views.values()) {
    if (view.data.status === "streaming" && !live.has(view.data.id) && conversation) {
      follow(conversation.id, view, view.data.seq ?? 0, true);
    }
  }
  sidebar.setActive(conversation?.id ?? null);
  pickModelFor(conversation);
  inBrowser.follow(conversation);
  tray.refresh();
  document.title = conversation ? `${conversation.title || "Untitled"} · Parley` : "Parley";
  refreshComposer();
}

/**
 * The picker follows the conversation: its in-browser model if it has one, else its server
 * model; a new chat starts with the user's default, else the last choice, else a model that runs
 * on a fresh install (a configured server model, else the bundled in-browser one).
 * @param {Conversation | null} conversation
 */
function pickModelFor(conversation) {
  if (conversation) {
    if (conversation.browser_model && inBrowser.owns(conversation.browser_model)) picker.select.value = conversation.browser_model;
    else picker.choose(conversation.model);
    return;
  }
  if (prefs?.default_model && picker.choose(prefs.default_model)) return;
  const last = picker.remembered();
  if (last && inBrowser.owns(last)) picker.select.value = last;
  else if (!picker.reset() && inBrowser.models.length) picker.select.value = inBrowser.fallback().id;
}

/** @param {string} id @param {boolean} push */
async function open(id, push) {
  const ticket = ++opening;
  closeSidebar();
  if (isDevice(id)) return openOnDevice(id, push, ticket);
  try {
    const page = await getJson(`/api/conversations/${encodeURIComponent(id)}/`);
    if (ticket !== opening) return;
    show(page.conversation, page.messages, page.settings);
    if (push) history.pushState(null, "", conversationUrl(id));
  } catch {
    // Signed out, gone, or offline: let the server's own page say which.
    location.assign(conversationUrl(id));
  }
}

/** A "this device only" chat, from IndexedDB: no request is made. @param {string} id @param {boolean} push @param {number} ticket */
async function openOnDevice(id, push, ticket) {
  const found = await inBrowser.store.get(id).catch(() => null);
  if (ticket !== opening) return;
  if (!found) {
    newChat(push);
    sidebar.notify("That chat is not on this device (it may have been deleted, or kept in another browser).");
    return;
  }
  show(found.conversation, found.messages, found.conversation.settings ?? null);
  if (push) history.pushState(null, "", conversationUrl(id));
}

/** @param {boolean} push */
function newChat(push) {
  opening++;
  closeSidebar();
  show(null, []);
  if (push) history.pushState(null, "", NEW_CHAT_URL);
  prompt.focus();
}

/**
 * Draw an answer's events as they come, from whichever source yields them.
 * @param {string} conversation @param {MessageView} view @param {number} seq @param {boolean} resume
 */
async function follow(conversation, view, seq, resume) {
  const stop = new AbortController();
  const id = view.data.id;
  live.set(id, { view, conversation, stop });
  refreshComposer();
  try {
    const answer = { conversation, message: id, seq, resume };
    for await (const event of serverAnswer(socket, answer, stop.signal)) messages.apply(view, event);
  } finally {
    live.delete(id);
    refreshComposer();
  }
}

function answerOnScreen() {
  return [...live.values()].find((a) => a.conversation === (current?.id ?? ""));
}

/**
 * @param {string} content
 * @param {string | null} [parent]  for Edit: the edited message's parent (absent: after the newest)
 * @param {import("./events.js").Attachment[]} [files]  for Edit: the edited message's files (absent: the tray's)
 */
async function send(content, parent, files) {
  const fromTray = files === undefined;
  const attachments = (files ?? tray.attachments()).filter((a) => !a.missing);
  if ((!content.trim() && !attachments.length) || sending || answerOnScreen() || !picker.value) return;
  const blocker = fromTray ? tray.blocker() : "";
  if (blocker) {
    tray.say(blocker);
    return;
  }
  sending = true;
  const startedIn = current;
  // An edit branches: the page shows the branch up to the edited message's parent, then the edit.
  if (parent !== undefined) messages.show(thread.path(parent), { keepScroll: true });
  const mine = new MessageView({ id: "", role: "user", content, status: "sending", attachments });
  if (fromTray) tray.clear(); // the files now belong to the message on screen; a refusal gives them back
  messages.add(mine);
  refreshComposer();
  const giveBack = () => { if (fromTray && !tray.attachments().length) tray.restore(attachments); };
  if (inBrowser.owns(picker.value)) return sendInBrowser(mine, startedIn, parent, giveBack);
  const limit = data.limits?.message_chars ?? Infinity;
  if (content.length > limit) {
    // Said here, in the server's words: a frame the server cannot take is never sent.
    mine.update({ status: "error", error: { kind: "too_large",
      message: `The message is longer than ${limit.toLocaleString("en")} characters. Shorten it, or attach it as a file.` } });
    messages.changed(mine);
    if (!prompt.value) prompt.value = content;
    giveBack();
    sending = false;
    refreshComposer();
    return;
  }
  if (isDevice(startedIn?.id)) {
    // A device-only chat is answered only in this browser: never let it reach the server.
    mine.update({ status: "error", error: { kind: "refused", message: "This chat is kept on this device only: pick an in-browser model to answer it." } });
    messages.changed(mine);
    if (!prompt.value) prompt.value = content;
    giveBack();
    sending = false;
    refreshComposer();
    return;
  }
  try {
    const request = { conversation: current?.id ?? null, model: picker.value, content,
      options: chatSettings.options(), ...(parent !== undefined && { parent }),
      ...(attachments.length && { attachments: attachments.map((a) => a.id) }) };
    const { conversation, message } = await postMessage(socket, request, (assistant) => {
      const view = new MessageView(assistant);
      if (current?.id === conversation.id) { thread.add(view); messages.add(view); }
      follow(conversation.id, view, assistant.seq ?? 0, false);
    }, () => current?.id === conversation.id && open(conversation.id, false));
    mine.update(message);
    messages.changed(mine);
    sidebar.upsert(conversation);
    if (startedIn === null && current === null) {
      current = conversation;
      chatSettings.adopt(conversation.id);
      sidebar.setActive(conversation.id);
      document.title = `${conversation.title || "Untitled"} · Parley`;
      history.pushState(null, "", conversationUrl(conversation.id));
    }
    if (current?.id === conversation.id) {
      thread.add(mine);
      thread.path(); // the edited message's pager now counts the edit
    }
  } catch (error) {
    const text = error instanceof Error ? error.message : String(error);
    mine.update({ status: "error", error: { kind: "refused", message: text } });
    messages.changed(mine);
    messages.announcer.say(() => text, true); // a refusal (budget, rate) is heard, not only seen
    if (!prompt.value) prompt.value = content; // nothing typed is lost
    giveBack(); // nor anything attached
  } finally {
    sending = false;
    refreshComposer();
  }
}

/**
 * Regenerate (also Retry) or Continue an answer on screen. A regenerated answer is a new
 * sibling and is shown in place of the old one; a continued answer grows in its own bubble.
 * @param {"regenerate" | "continue"} type @param {MessageView} view
 */
async function answerAgain(type, view) {
  if (sending || answerOnScreen() || !current) return;
  sending = true;
  refreshComposer();
  if (inBrowser.owns(picker.value) || isDevice(current.id)) return answerAgainInBrowser(type, view);
  const conversation = current.id;
  const model = inBrowser.owns(picker.value) ? undefined : picker.value || undefined;
  const command = { type, message: view.data.id, ...(type === "regenerate" && model && { model }) };
  try {
    await postCommand(socket, command, (assistant) => {
      if (type === "continue") {
        view.update(assistant);
        messages.changed(view);
        follow(conversation, view, assistant.seq ?? 0, false);
        return;
      }
      const fresh = new MessageView(assistant);
      if (current?.id === conversation) {
        thread.add(fresh);
        messages.show(thread.path(), { keepScroll: true });
      }
      follow(conversation, fresh, assistant.seq ?? 0, false);
    }, () => current?.id === conversation && open(conversation, false));
  } catch (error) {
    const text = error instanceof Error ? error.message : String(error);
    view.meta.append(` · ${text}`);
    messages.announcer.say(() => text, true);
  } finally {
    sending = false;
    refreshComposer();
  }
}

/** The previous or next version of a message, and the newest branch below it. @param {MessageView} view @param {number} step */
function page(view, step) {
  const at = thread.path().indexOf(view);
  if (!thread.page(view, step)) return;
  const path = thread.path();
  messages.show(path, { keepScroll: true });
  // The pager was redrawn: keep the keyboard on it.
  const pager = path[at]?.actions;
  const button = /** @type {HTMLButtonElement | null} */ (pager?.querySelector(step < 0 ? "button.prev" : "button.next"));
  (button && !button.disabled ? button : /** @type {HTMLElement | null} */ (pager?.querySelector("button:not(:disabled)")))?.focus();
}

// --- Answers produced in this page (local.js) ------------------------------------------

/** The stored messages of the branch on screen, up to and including `until` (null: none). @param {string | null} [until] */
function branch(until) {
  return thread.path(until).map((v) => v.data);
}

/** What the chat settings ask of an in-browser model (unset ones keep the engine's defaults). */
function browserOptions() {
  const { temperature, max_tokens } = chatSettings.values;
  return { temperature: temperature ?? undefined, max_tokens: max_tokens ?? undefined };
}

/**
 * Run an in-browser answer into `view` and keep it; the same live bookkeeping as a server answer,
 * so Stop, the composer and switching conversations behave the same.
 * @param {MessageView} view  on screen, streaming
 * @param {import("./engines/index.js").Turn[]} turns
 * @param {Omit<import("./devicestore.js").Exchange, "client_id" | "conversation" | "model" | "model_name" | "answer" | "reason">} kind
 * @param {Conversation | null} startedIn
 */
async function answerHere(view, turns, kind, startedIn) {
  const stop = new AbortController();
  const model = picker.value;
  const deviceOnly = startedIn ? Boolean(startedIn.device) : inBrowser.deviceOnly;
  const key = view.data.id;
  live.set(key, { view, conversation: startedIn?.id ?? "", stop });
  refreshComposer();
  try {
    const result = await runAnswer(inBrowser, { model, turns, options: browserOptions(), view, signal: stop.signal,
      apply: (v, event) => messages.apply(v, event) });
    if (!result.ok) return null;
    return await inBrowser.save({ client_id: crypto.randomUUID(), conversation: startedIn?.id ?? null, model,
      model_name: `${inBrowser.model(model).name} (in your browser)`, answer: view.data.content,
      reason: result.reason, ...kind }, deviceOnly);
  } catch (error) {
    const text = error instanceof Error ? error.message : String(error);
    view.meta.append(` · Not saved: ${text}`);
    messages.announcer.say(() => `The answer could not be saved: ${text}`, true);
    return null;
  } finally {
    live.delete(key);
    refreshComposer();
  }
}

/** A new in-browser conversation was saved: it becomes the one on screen, like a server ack. @param {Conversation} conversation */
function adoptNew(conversation) {
  current = conversation;
  inBrowser.follow(conversation);
  chatSettings.adopt(conversation.id);
  const system = chatSettings.values.system_prompt;
  if (system && !conversation.device) postJson(`/api/conversations/${conversation.id}/edit/`, { system_prompt: system }).catch(() => {});
  sidebar.setActive(conversation.id);
  document.title = `${conversation.title || "Untitled"} · Parley`;
  history.pushState(null, "", conversationUrl(conversation.id));
}

/**
 * Send `mine` to the in-browser model: it reads the stored branch up to `parent` (an Edit's
 * parent, else the last message on screen) and the new question, documents as text.
 * @param {MessageView} mine @param {Conversation | null} startedIn @param {string | null | undefined} parent
 * @param {() => void} giveBack  puts the files back in the tray when nothing was kept
 */
async function sendInBrowser(mine, startedIn, parent, giveBack) {
  const after = parent !== undefined ? parent : (thread.path().at(-1)?.data.id ?? null);
  const history = after === null ? [] : branch(after);
  const texts = await textsFor([...history, mine.data]);
  const turns = [...turnsFrom(history, chatSettings.values.system_prompt, texts),
    { role: /** @type {const} */ ("user"), content: withFiles(mine.data, texts) }];
  const files = mine.data.attachments ?? [];
  const view = new MessageView({ id: `local-${crypto.randomUUID()}`, role: "assistant", content: "",
    status: "streaming", model: `${inBrowser.model(picker.value).name} (in your browser)` });
  mine.update({ status: "complete" });
  messages.changed(mine);
  messages.add(view);
  try {
    const saved = await answerHere(view, turns, { prompt: mine.data.content, parent: after,
      ...(files.length && { attachments: files.map((a) => a.id), files }) }, startedIn);
    if (!saved) { giveBack(); return; }
    const [question, answer] = saved.messages;
    mine.update(question);
    view.update(answer);
    sidebar.upsert(saved.conversation);
    if (startedIn === null && current === null) adoptNew(saved.conversation);
    if (current?.id === saved.conversation.id) {
      thread.add(mine);
      thread.add(view);
      messages.show(thread.path(), { keepScroll: true });
    }
  } finally {
    sending = false;
    refreshComposer();
  }
}

/**
 * Regenerate or Continue an answer with the in-browser model on the picker. A regenerated
 * answer is a new sibling shown in place of the old one; a continued one grows in its bubble.
 * @param {"regenerate" | "continue"} type @param {MessageView} view
 */
async function answerAgainInBrowser(type, view) {
  const startedIn = current;
  try {
    if (!inBrowser.owns(picker.value)) {
      messages.announcer.say(() => "Pick an in-browser model to answer this chat.", true);
      return;
    }
    const question = view.data.parent ?? null;
    if (type === "continue") {
      const turns = [...turnsFrom(branch(view.data.id), chatSettings.values.system_prompt, await textsFor(branch(view.data.id))),
        { role: /** @type {const} */ ("user"), content: CONTINUE_PROMPT }];
      const before = { ...view.data };
      view.update({ status: "streaming" });
      messages.changed(view);
      const saved = await answerHere(view, turns, { continues: view.data.id }, startedIn);
      if (saved) view.update(saved.messages[1]);
      else if (!view.data.content.startsWith(before.content)) view.update(before);
      messages.changed(view);
      return;
    }
    const asked = question === null ? [] : branch(question);
    const turns = turnsFrom(asked, chatSettings.values.system_prompt, await textsFor(asked));
    const fresh = new MessageView({ id: `local-${crypto.randomUUID()}`, parent: question, role: "assistant",
      content: "", status: "streaming", model: `${inBrowser.model(picker.value).name} (in your browser)` });
    messages.show([...thread.path(question), fresh], { keepScroll: true });
    const saved = await answerHere(fresh, turns, { question: question ?? undefined }, startedIn);
    if (!saved) return;
    fresh.update(saved.messages[1]);
    if (current?.id === startedIn?.id) {
      thread.add(fresh);
      messages.show(thread.path(), { keepScroll: true });
    }
  } finally {
    sending = false;
    refreshComposer();
  }
}

function refreshComposer() {
  const answering = Boolean(answerOnScreen());
  stopButton.hidden = !answering;
  sendButton.disabled = sending || answering || noModels || Boolean(tray.blocker());
  emptyNote.hidden = messages.container.childElementCount > 0 || noModels;
}

function submit() {
  const content = prompt.value;
  if ((!content.trim() && tray.empty) || sendButton.disabled) return;
  prompt.value = "";
  send(content);
}

function stop() {
  answerOnScreen()?.stop.abort();
}

const narrow = matchMedia("(max-width: 720px)");

/** The toggle says whether the sidebar shows: collapsed on a desktop, slid over on a phone. */
function syncToggle() {
  const body = document.body.classList;
  const shown = narrow.matches ? body.contains("sidebar-open") : !body.contains("sidebar-collapsed");
  byId("sidebar-toggle").setAttribute("aria-expanded", String(shown));
}

function closeSidebar() {
  const open = document.body.classList.contains("sidebar-open");
  document.body.classList.remove("sidebar-open");
  syncToggle();
  // A hidden sidebar cannot keep the focus: hand it to the message box.
  if (open && narrow.matches && byId("sidebar").contains(document.activeElement)) prompt.focus();
}

/** On a narrow screen the sidebar slides over the chat; on a wide one it collapses to give room. */
function toggleSidebar() {
  const body = document.body.classList;
  if (narrow.matches) {
    if (body.contains("sidebar-open")) return closeSidebar();
    body.add("sidebar-open");
    syncToggle();
    byId("new-chat").focus(); // opened over the chat: focus goes where the user is about to act
    return;
  }
  body.toggle("sidebar-collapsed");
  syncToggle();
  if (body.contains("sidebar-collapsed") && byId("sidebar").contains(document.activeElement)) prompt.focus();
}

/**
 * The model picked for a conversation is its model from now on: a server model is saved as the
 * conversation's model, an in-browser one as its browser model (a device-only chat keeps it here).
 */
function modelChanged() {
  if (!current) return;
  const local = inBrowser.owns(picker.value);
  const browserModel = local ? picker.value : null;
  if (current.device) {
    if (local) inBrowser.store.update(current.id, { browser_model: browserModel }).catch(() => {});
    return;
  }
  if (!local) postJson(`/api/conversations/${current.id}/edit/`, { model: picker.value }).catch(() => {});
  if (local || current.browser_model) {
    current.browser_model = browserModel;
    postJson(`/api/browser-models/conversations/${current.id}/model/`, { model: browserModel }).catch(() => {});
  }
}

function wire() {
  byId("composer").addEventListener("submit", (e) => { e.preventDefault(); submit(); });
  prompt.addEventListener("keydown", (e) => {
    // isComposing: Enter also confirms an IME composition (Japanese, Chinese...), not a send.
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit(); }
  });
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Escape") return;
    if (document.body.classList.contains("sidebar-open")) closeSidebar();
    else if (answerOnScreen()) { e.preventDefault(); stop(); }
  });
  stopButton.addEventListener("click", stop);
  byId("new-chat").addEventListener("click", (e) => {
    if (e.metaKey || e.ctrlKey || e.shiftKey) return;
    e.preventDefault();
    newChat(true);
  });
  messages.handlers = {
    page,
    edit: (view, text) => send(text, view.data.parent ?? null, view.data.attachments ?? []),
    regenerate: (view) => answerAgain("regenerate", view),
    continue: (view) => answerAgain("continue", view),
  };
  byId("sidebar-toggle").addEventListener("click", toggleSidebar);
  narrow.addEventListener("change", syncToggle);
  syncToggle();
  picker.select.addEventListener("change", modelChanged);
  picker.select.addEventListener("change", () => tray.refresh());
  inBrowser.deviceOnlyBox.addEventListener("change", () => tray.refresh());
  byId("chat-settings-open").addEventListener("click", () => chatSettings.open());
  const codePanel = new CodePanel(/** @type {HTMLDialogElement} */ (byId("code-panel")));
  byId("code-panel-open").addEventListener("click", () => {
    const local = inBrowser.owns(picker.value);
    const name = local ? inBrowser.model(picker.value).name : (picker.model?.name ?? "this model");
    codePanel.open(local ? undefined : picker.model?.id, name);
  });
  socket.on("title", (frame) => {
    sidebar.retitle(frame.conversation, frame.title);
    if (current && current.id === frame.conversation) {
      current.title = frame.title;
      document.title = `${frame.title || "Untitled"} · Parley`;
    }
  });
  wireShortcuts({
    help: /** @type {HTMLDialogElement} */ (byId("help")),
    helpButton: byId("help-open"),
    newChat: () => newChat(true),
    search: () => {
      if (byId("sidebar-toggle").getAttribute("aria-expanded") === "false") toggleSidebar();
      sidebar.focusSearch();
    },
    toggleSidebar,
  });
  addEventListener("popstate", () => {
    const id = conversationInUrl();
    if (id) open(id, false);
    else newChat(false);
  });
}

/** The conversation the address names: /chat/<id>/, or /chat/#device-<id> for a device-only one. */
function conversationInUrl() {
  const device = /^#(device-[0-9a-f-]{36})$/.exec(location.hash)?.[1];
  return device ?? /^\/chat\/([0-9a-f-]{36})\/$/.exec(location.pathname)?.[1] ?? null;
}

wire();
show(data.conversation, data.messages, data.settings);
// Device-only chats join the list from IndexedDB; the address may name one (never sent to the server).
inBrowser.store.list().then((kept) => {
  sidebar.addDevice(kept);
  const id = conversationInUrl();
  if (isDevice(id) && !data.conversation) open(/** @type {string} */ (id), false);
}).catch(() => { /* no IndexedDB (private mode): there is nothing kept here */ });
if (noModels) {
  prompt.disabled = true;
  picker.select.disabled = true;
}
