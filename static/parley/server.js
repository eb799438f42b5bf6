// @ts-check
/**
 * The Parley server as a message source. `postMessage` saves the user's message and learns which
 * assistant message will answer it; `serverAnswer` then yields that answer as AnswerEvents, the
 * same events an in-browser engine yields, so the page consumes both the same way.
 */

/** @typedef {import("./events.js").AnswerEvent} AnswerEvent */
/** @typedef {import("./events.js").Conversation} Conversation */
/** @typedef {import("./events.js").Message} Message */
/** @typedef {import("./socket.js").ChatSocket} ChatSocket */
/** @typedef {import("./socket.js").Frame} Frame */

// After `stop` the server ends the answer within a second; past this we stop waiting for it.
const STOP_GRACE_MS = 5_000;
// A re-sent `send` whose answer already finished gets an ack but no `start`.
const START_TIMEOUT_MS = 20_000;

/** A frame the server refused (busy, too_large, model_unavailable...). */
export class RefusedError extends Error {
  /** @param {Frame} frame */
  constructor(frame) {
    super(frame.message || "The server refused the message.");
    this.code = String(frame.code);
  }
}

/**
 * Post a user message. Resolves once with the ack, and calls `onStart` when (if) the answer begins.
 * @param {ChatSocket} socket
 * @param {{conversation: string | null, model: string, content: string, parent?: string | null}} request
 * @param {(assistant: Message) => void} onStart
 * @param {() => void} onNoStart  the server acked but never started an answer
 * @returns {Promise<{conversation: Conversation, message: Message}>}
 */
export function postMessage(socket, request, onStart, onNoStart) {
  return postCommand(socket, { type: "send", ...request }, onStart, onNoStart);
}

/**
 * Send a command that starts an answer (`send`, `regenerate`, `continue`): all three are acked
 * with the conversation and the question, then the answer's `start` follows.
 * @param {ChatSocket} socket
 * @param {{type: string, [key: string]: unknown}} command  without client_id
 * @param {(assistant: Message) => void} onStart
 * @param {() => void} onNoStart
 * @returns {Promise<{conversation: Conversation, message: Message}>}
 */
export function postCommand(socket, command, onStart, onNoStart) {
  const clientId = crypto.randomUUID();
  return new Promise((resolve, reject) => {
    // The server acks before it starts the answer, and `start` names the conversation, not the
    // client_id: so the ack tells us which `start` is ours.
    /** @type {string | null} */
    let conversation = null;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let timer;
    const done = () => {
      offAck(); offError(); offStart(); clearTimeout(timer);
    };
    const offAck = socket.on("ack", (frame) => {
      // A re-sent `send` is acked again; the first ack is the one that counts.
      if (frame.client_id !== clientId || conversation !== null) return;
      conversation = frame.conversation.id;
      resolve({ conversation: frame.conversation, message: frame.message });
      timer = setTimeout(() => { done(); onNoStart(); }, START_TIMEOUT_MS);
    });
    const offStart = socket.on("start", (frame) => {
      if (conversation === null || frame.conversation !== conversation) return;
      done();
      onStart(frame.message);
    });
    const offError = socket.on("error", (frame) => {
      if (frame.client_id !== clientId) return;
      done();
      reject(new RefusedError(frame));
    });
    socket.send({ ...command, client_id: clientId });
  });
}

/**
 * The answer `message` of `conversation`, as events, from `seq` on. Aborting `signal` asks the
 * server to stop; the server's own `end` (status incomplete, reason stopped) still comes through.
 * @param {ChatSocket} socket
 * @param {{conversation: string, message: string, seq: number, resume?: boolean}} answer
 * @param {AbortSignal} signal
 * @returns {AsyncGenerator<AnswerEvent>}
 */
export async function* serverAnswer(socket, answer, signal) {
  /** @type {AnswerEvent[]} */
  const queue = [];
  /** @type {(() => void) | null} */
  let wake = null;
  /** @param {AnswerEvent} event */
  const push = (event) => { queue.push(event); wake?.(); };
  let seq = answer.seq;
  let awaitingResume = Boolean(answer.resume);
  const offDelta = socket.on("delta", (f) => {
    if (f.message !== answer.message) return;
    if (f.replace) {
      // A resume reply: the whole text up to f.seq, authoritative over whatever arrived before
      // it — even at a lower seq: after a server restart the saved text wins over frames this
      // tab saw that were never saved.
      if (f.seq < seq && !awaitingResume) return;
      seq = f.seq;
      awaitingResume = false;
      push({ type: "delta", text: f.text ?? "", reasoning: f.reasoning ?? "", replace: true });
      return;
    }
    if (f.seq <= seq) return; // already have it
    if (f.seq > seq + 1) {
      // A gap (live frames overtook a reload or reconnect): the resume reply will cover it.
      if (!awaitingResume) socket.send({ type: "resume", message: answer.message, after_seq: seq });
      awaitingResume = true;
      return;
    }
    seq = f.seq;
    push({ type: "delta", text: f.text ?? "", reasoning: f.reasoning ?? "" });
  });
  // After a reconnect the socket resumes every tracked answer; its reply is authoritative.
  const offHello = socket.on("hello", () => { awaitingResume = true; });
  const offEnd = socket.on("end", (f) => {
    if (f.message !== answer.message) return;
    push({ type: "end", status: f.status, reason: f.reason ?? null, usage: f.usage ?? null,
      error: f.error ?? null, ttft_ms: f.ttft_ms ?? null, cached: Boolean(f.cached) });
  });
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let grace;
  const stop = () => {
    socket.send({ type: "stop", conversation: answer.conversation });
    grace = setTimeout(() => push({ type: "end", status: "incomplete", reason: "stopped",
      usage: null, error: null }), STOP_GRACE_MS);
  };
  if (signal.aborted) stop();
  else signal.addEventListener("abort", stop, { once: true });
  // Everything above runs on the first next(), before any await, so no frame can slip past.
  socket.track(answer.message, seq);
  if (answer.resume) {
    socket.send({ type: "resume", message: answer.message, after_seq: seq });
  }
  try {
    while (true) {
      const event = queue.shift();
      if (!event) {
        await new Promise((resolve) => { wake = () => resolve(undefined); });
        wake = null;
        continue;
      }
      yield event;
      if (event.type === "end") return;
    }
  } finally {
    offDelta(); offEnd(); offHello(); clearTimeout(grace);
    signal.removeEventListener("abort", stop);
    socket.untrack(answer.message);
  }
}
