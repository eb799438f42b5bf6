// @ts-check
/**
 * The tab's one WebSocket (protocol v1). It carries every conversation, so switching
 * conversations never reconnects. It hides reconnection from the rest of the page: frames sent
 * while offline wait for the next `hello`, a `send` the server never acked is re-sent with the
 * same client_id (the server dedupes), and answers still streaming are resumed from the last
 * `seq` seen, so a dropped connection costs a pause, not an answer.
 */

/** @typedef {{type: string, [key: string]: any}} Frame */
/** @typedef {"connecting" | "online" | "offline" | "signed-out" | "outdated" | "too-many"} SocketStatus */

const PING_EVERY_MS = 25_000;
// A pong slower than this means the socket is dead even if the browser has not noticed.
const PONG_TIMEOUT_MS = 10_000;
const MAX_BACKOFF_MS = 15_000;
const NOT_SIGNED_IN = 4401;
// The session this socket was opened with ended or changed: reconnecting at once finds out
// which (a new password keeps the tab signed in; a logout makes the handshake say 4401).
const SESSION_CHANGED = 4001;
// This user has too many tabs open (PARLEY_USER_MAX_SOCKETS): try again now and then.
const TOO_MANY_SOCKETS = 4429;
const TOO_MANY_RETRY_MS = 15_000;

export class ChatSocket {
  /**
   * @param {string} path  page_data.ws_path
   * @param {number} protocol  the protocol version this page speaks
   * @param {number} [maxFrameChars]  page_data.limits.frame_chars: larger frames are never sent
   */
  constructor(path, protocol, maxFrameChars = Infinity) {
    this.maxFrameChars = maxFrameChars;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    this.url = `${scheme}//${location.host}${path}`;
    this.protocol = protocol;
    /** @type {WebSocket | null} */
    this.ws = null;
    this.ready = false;
    this.attempts = 0;
    /** @type {SocketStatus} */
    this.status = "connecting";
    /** @type {Map<string, Set<(frame: Frame) => void>>} */
    this.handlers = new Map();
    /** @type {Set<(status: SocketStatus) => void>} */
    this.statusHandlers = new Set();
    /** `send` frames by client_id until their ack (or error) arrives. @type {Map<string, Frame>} */
    this.unacked = new Map();
    /** Other frames sent while offline. @type {Frame[]} */
    this.outbox = [];
    /** Answers the page shows as streaming: message id -> last seq seen. @type {Map<string, number>} */
    this.streaming = new Map();
    /** @type {ReturnType<typeof setInterval> | undefined} */
    this.pinger = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.pongDeadline = undefined;
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    this.retry = undefined;
    addEventListener("online", () => this.retryNow());
    this.connect();
  }

  /**
   * Subscribe to server frames of one `type` ("*" for all). Returns the unsubscribe function.
   * @param {string} type
   * @param {(frame: Frame) => void} handler
   */
  on(type, handler) {
    let set = this.handlers.get(type);
    if (!set) this.handlers.set(type, (set = new Set()));
    set.add(handler);
    return () => set.delete(handler);
  }

  /** @param {(status: SocketStatus) => void} handler */
  onStatus(handler) {
    this.statusHandlers.add(handler);
    handler(this.status);
    return () => this.statusHandlers.delete(handler);
  }

  /**
   * Send a frame now, or as soon as the socket is back.
   * @param {Frame} frame
   */
  send(frame) {
    if (JSON.stringify(frame).length > this.maxFrameChars) {
      // Refused here, not sent: a frame the server cannot take would be re-sent after
      // every reconnect, for ever. The page hears it as the server's own too_large error.
      const refusal = { type: "error", code: "too_large", client_id: frame.client_id,
        message: "This message is too long to send." };
      queueMicrotask(() => this.receive(JSON.stringify(refusal)));
      return;
    }
    if (frame.type === "send") this.unacked.set(frame.client_id, frame);
    if (this.ready && this.ws) this.ws.send(JSON.stringify(frame));
    // Not queued: a `send` waits in `unacked`, a resume is re-sent for every tracked answer on
    // `hello` anyway, and a ping is only meaningful on the socket it was sent on.
    else if (!["send", "resume", "ping"].includes(frame.type)) this.outbox.push(frame);
  }

  /**
   * Resume this answer from `seq` after every reconnect until its `end` arrives.
   * @param {string} messageId
   * @param {number} seq
   */
  track(messageId, seq) {
    this.streaming.set(messageId, Math.max(seq, this.streaming.get(messageId) ?? -1));
  }

  /** @param {string} messageId */
  untrack(messageId) {
    this.streaming.delete(messageId);
  }

  connect() {
    this.setStatus("connecting");
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.addEventListener("message", (e) => this.receive(e.data));
    ws.addEventListener("close", (e) => this.closed(ws, e.code));
  }

  /** @param {string} data */
  receive(data) {
    /** @type {Frame} */
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    clearTimeout(this.pongDeadline);
    this.bookkeep(frame);
    for (const key of [frame.type, "*"]) {
      for (const handler of this.handlers.get(key) ?? []) handler(frame);
    }
  }

  /**
   * The socket's own reading of frames, before the page sees them.
   * @param {Frame} frame
   */
  bookkeep(frame) {
    if (frame.type === "hello") this.greeted(frame);
    else if ((frame.type === "ack" || frame.type === "error") && frame.client_id) {
      this.unacked.delete(frame.client_id);
    } else if (frame.type === "delta" && this.streaming.has(frame.message)) {
      this.track(frame.message, frame.seq);
    } else if (frame.type === "end") this.untrack(frame.message);
  }

  /** @param {Frame} hello */
  greeted(hello) {
    if (hello.protocol !== this.protocol) {
      // The server speaks another version: this page is stale. Reloading fixes it; guessing does not.
      this.setStatus("outdated");
      this.ws?.close(1000);
      return;
    }
    this.ready = true;
    this.attempts = 0;
    this.setStatus("online");
    const ws = /** @type {WebSocket} */ (this.ws);
    for (const frame of this.unacked.values()) ws.send(JSON.stringify(frame));
    for (const [message, seq] of this.streaming) {
      ws.send(JSON.stringify({ type: "resume", message, after_seq: seq }));
    }
    for (const frame of this.outbox.splice(0)) ws.send(JSON.stringify(frame));
    clearInterval(this.pinger);
    this.pinger = setInterval(() => this.ping(), PING_EVERY_MS);
  }

  ping() {
    if (!this.ready || !this.ws) return;
    this.ws.send(JSON.stringify({ type: "ping" }));
    const ws = this.ws;
    this.pongDeadline = setTimeout(() => ws.close(4000), PONG_TIMEOUT_MS);
  }

  /**
   * @param {WebSocket} ws
   * @param {number} code
   */
  closed(ws, code) {
    if (ws !== this.ws) return;
    this.ready = false;
    this.ws = null;
    clearInterval(this.pinger);
    clearTimeout(this.pongDeadline);
    if (this.status === "outdated") return;
    if (code === NOT_SIGNED_IN) {
      this.setStatus("signed-out");
      return;
    }
    if (code === SESSION_CHANGED) {
      this.connect();
      return;
    }
    if (code === TOO_MANY_SOCKETS) {
      this.setStatus("too-many");
      this.retry = setTimeout(() => this.connect(), TOO_MANY_RETRY_MS);
      return;
    }
    this.setStatus("offline");
    // Exponential back-off with jitter, so a restarted server is not hit by every tab at once.
    const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.attempts) * (0.5 + Math.random() / 2);
    this.attempts += 1;
    this.retry = setTimeout(() => this.connect(), delay);
  }

  retryNow() {
    if (this.ws || this.status === "signed-out" || this.status === "outdated") return;
    clearTimeout(this.retry);
    this.connect();
  }

  /** @param {SocketStatus} status */
  setStatus(status) {
    this.status = status;
    for (const handler of this.statusHandlers) handler(status);
  }
}
