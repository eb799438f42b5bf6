// @ts-check
/**
 * "This device only" chats: conversations and messages kept in this browser's IndexedDB, in the
 * same shapes the server sends (so branches.js and render.js show them like any other), and
 * never sent anywhere. Saving an exchange follows the server's rules (chat/browser_threads.py):
 * a send adds a question after `parent` and its answer, a regenerate adds a sibling answer, a
 * continue grows the answer in place.
 */

/** @typedef {import("./events.js").Message} Message */
/** @typedef {import("./events.js").Conversation} Conversation */
/**
 * What local.js asks to keep (the same fields it posts to the server).
 * @typedef {object} Exchange
 * @property {string} client_id
 * @property {string | null} conversation
 * @property {string} model  "browser:<uuid>"
 * @property {string} model_name  shown under the answer
 * @property {string} answer
 * @property {string | null} reason
 * @property {string} [prompt]  a send
 * @property {string | null} [parent]
 * @property {string} [question]  a regenerate
 * @property {string} [continues]  a continue
 * @property {string[]} [attachments]  a send's uploaded files (posted to the server)
 * @property {import("./events.js").Attachment[]} [files]  a send's files as kept here (with their text)
 */

const DB_NAME = "parley-local";
const VERSION = 2;
/** Device-only conversation ids start with this, so no page ever asks the server about them. */
export const DEVICE_PREFIX = "device-";
const TITLE_CHARS = 60;

/** @param {IDBRequest | IDBTransaction} request @returns {Promise<any>} */
function done(request) {
  return new Promise((resolve, reject) => {
    if (request instanceof IDBTransaction) {
      request.oncomplete = () => resolve(undefined);
      request.onerror = request.onabort = () => reject(request.error);
    } else {
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    }
  });
}

/** @param {string | null | undefined} id */
export const isDevice = (id) => Boolean(id?.startsWith(DEVICE_PREFIX));

/** @param {string | null} status @param {string} text */
function ending(status, text) {
  if (status === "stopped") return { status: "incomplete", reason: "stopped" };
  if (status === "error") return { status: text ? "incomplete" : "error", reason: "error" };
  return { status: "complete", reason: status === "length" ? "length" : "stop" };
}

export class DeviceStore {
  /** @returns {Promise<IDBDatabase>} */
  open() {
    return new Promise((resolve, reject) => {
      const request = indexedDB.open(DB_NAME, VERSION);
      request.onupgradeneeded = (event) => {
        const db = request.result;
        if (!db.objectStoreNames.contains("conversations")) db.createObjectStore("conversations", { keyPath: "id" });
        if (!db.objectStoreNames.contains("messages")) {
          db.createObjectStore("messages", { keyPath: "id" }).createIndex("conversation", "conversation");
        }
        // Version 1 kept loose exchanges; each becomes a conversation of its own.
        if (event.oldVersion === 1 && db.objectStoreNames.contains("exchanges")) {
          const tx = /** @type {IDBTransaction} */ (request.transaction);
          const old = tx.objectStore("exchanges").getAll();
          old.onsuccess = () => {
            for (const row of old.result) this.write(tx, { ...row, conversation: null, model_name: row.model });
            db.deleteObjectStore("exchanges");
          };
        }
      };
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
  }

  /**
   * @template T
   * @param {"readonly" | "readwrite"} mode @param {(tx: IDBTransaction) => T} work
   * @returns {Promise<Awaited<T>>}
   */
  async run(mode, work) {
    const db = await this.open();
    try {
      const tx = db.transaction(["conversations", "messages"], mode);
      const result = await work(tx);
      await done(tx);
      return result;
    } finally {
      db.close();
    }
  }

  /** Every device-only conversation, newest first. @returns {Promise<Conversation[]>} */
  async list() {
    const rows = await this.run("readonly", (tx) => done(tx.objectStore("conversations").getAll()));
    return rows.sort((/** @type {Conversation} */ a, /** @type {Conversation} */ b) =>
      (b.updated ?? "").localeCompare(a.updated ?? ""));
  }

  /** @param {string} id @returns {Promise<{conversation: Conversation, messages: Message[]} | null>} */
  async get(id) {
    return this.run("readonly", async (tx) => {
      const conversation = await done(tx.objectStore("conversations").get(id));
      if (!conversation) return null;
      const messages = await done(tx.objectStore("messages").index("conversation").getAll(id));
      messages.sort((/** @type {Message} */ a, /** @type {Message} */ b) => (a.created ?? "").localeCompare(b.created ?? ""));
      return { conversation, messages };
    });
  }

  /**
   * Keep one exchange; answers like the server's POST (conversation + [question, answer]).
   * @param {Exchange} exchange
   * @returns {Promise<{conversation: Conversation, messages: Message[]}>}
   */
  async save(exchange) {
    return this.run("readwrite", (tx) => this.write(tx, exchange));
  }

  /**
   * @param {IDBTransaction} tx @param {Exchange} ex
   * @returns {Promise<{conversation: Conversation, messages: Message[]}>}
   */
  async write(tx, ex) {
    const conversations = tx.objectStore("conversations");
    const messages = tx.objectStore("messages");
    const now = new Date().toISOString();
    /** @type {Conversation} */
    const conversation = (ex.conversation && await done(conversations.get(ex.conversation))) || {
      id: DEVICE_PREFIX + ex.client_id,
      title: (ex.prompt || (ex.files ?? []).map((f) => f.name).join(", ")).split(/\s+/).join(" ").trim().slice(0, TITLE_CHARS),
      device: true, pinned: false, created: now,
    };
    Object.assign(conversation, { browser_model: ex.model, updated: now });
    const end = ending(ex.reason, ex.answer);
    /** @type {Message} */
    let question;
    /** @type {any} */
    let answer;
    if (ex.continues) {
      answer = { ...(await done(messages.get(ex.continues))), content: ex.answer, ...end };
      question = await done(messages.get(answer.parent));
    } else {
      question = ex.question ? await done(messages.get(ex.question)) : {
        id: crypto.randomUUID(), conversation: conversation.id, parent: ex.parent ?? null, role: "user",
        content: ex.prompt ?? "", status: "complete", created: now, attachments: ex.files ?? [],
      };
      answer = { id: crypto.randomUUID(), conversation: conversation.id, parent: question.id, role: "assistant",
        content: ex.answer, model: ex.model_name, created: new Date(Date.now() + 1).toISOString(), ...end };
    }
    conversations.put(conversation);
    messages.put(question);
    messages.put(answer);
    return { conversation, messages: [question, answer] };
  }

  /** @param {string} id @param {Partial<Conversation>} patch @returns {Promise<Conversation | null>} */
  async update(id, patch) {
    return this.run("readwrite", async (tx) => {
      const store = tx.objectStore("conversations");
      const conversation = await done(store.get(id));
      if (!conversation) return null;
      Object.assign(conversation, patch);
      store.put(conversation);
      return conversation;
    });
  }

  /** Delete a conversation and its messages from this browser. @param {string} id */
  async remove(id) {
    await this.run("readwrite", async (tx) => {
      const messages = tx.objectStore("messages");
      for (const key of await done(messages.index("conversation").getAllKeys(id))) messages.delete(key);
      tx.objectStore("conversations").delete(id);
    });
  }

  /**
   * The conversation as a file, in the shapes the server's export uses (Markdown or JSON).
   * @param {string} id @param {"md" | "json"} format @returns {Promise<Blob | null>}
   */
  async export(id, format) {
    const found = await this.get(id);
    if (!found) return null;
    const { conversation, messages } = found;
    if (format === "json") {
      const data = { format: "parley-conversation", version: 1, conversation, messages };
      return new Blob([JSON.stringify(data, null, 2)], { type: "application/json" });
    }
    const lines = [`# ${conversation.title || "Untitled"}`, ""];
    for (const m of messages) lines.push(`## ${m.role === "user" ? "You" : m.model || "Assistant"}`, "", m.content, "");
    return new Blob([lines.join("\n")], { type: "text/markdown" });
  }
}
