// The switchboard.v1 connection: one WebSocket at a time, identified as one user, re-opened
// with back-off after every drop. It speaks the wire protocol (docs: shared PROTOCOL.md) and
// knows nothing about the page; app.js gives it callbacks and renders what it reports.

export const SUBPROTOCOL = "switchboard.v1";

const PING_EVERY_MS = 25_000;
const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 30_000;
const DEFAULT_MAX_MESSAGE_BYTES = 65_536;

/**
 * Back-off with full jitter: a uniform delay over the whole window, so that the thousands of
 * pages dropped by one server restart do not all come back in the same instant.
 */
export function backoffDelay(attempt, random = Math.random) {
  return Math.floor(random() * Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt));
}

/** A server text frame holds one or more JSON messages separated by "\n" (batching). */
export function parseFrame(text) {
  const messages = [];
  for (const part of text.split("\n")) {
    if (part === "") continue;
    try {
      messages.push(JSON.parse(part));
    } catch {
      // One garbled part must not hide the messages batched after it.
    }
  }
  return messages;
}

export function socketUrl(page = location) {
  return `${page.protocol === "https:" ? "wss" : "ws"}://${page.host}/ws`;
}

/** A command that failed: the server's `error` frame, or "disconnected" when the socket went. */
export class CommandError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/**
 * States reported to `onStatus(state, secondsLeft)`: "connecting", "online" (identified),
 * "reconnecting" (waiting secondsLeft before the next try) and "offline" (not trying).
 */
export class Connection {
  #url;
  #handlers;
  #identity = null;
  #ws = null;
  #state = "offline";
  #secondsLeft = 0;
  #pending = new Map();
  #nextId = 0;
  #attempt = 0;
  #retryTimer;
  #countdownTimer;
  #pingTimer;
  #maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES;

  /** handlers: onStatus(state, secondsLeft), onReady(ack), onRejected(error), onMessage(msg) */
  constructor(url, handlers) {
    this.#url = url;
    this.#handlers = handlers;
  }

  get state() {
    return this.#state;
  }

  /** Connects as identity.user (with identity.token if any) and stays connected until stop(). */
  start(identity) {
    this.stop();
    this.#identity = identity;
    this.#attempt = 0;
    this.#open();
  }

  stop() {
    this.#identity = null;
    this.#clearTimers();
    this.#discardSocket();
    this.#setState("offline");
  }

  /** Skips what is left of the back-off wait. */
  retryNow() {
    if (this.#state !== "reconnecting") return;
    this.#clearTimers();
    this.#open();
  }

  /** Sends a command with a fresh id: resolves with its ack, rejects with a CommandError. */
  request(command) {
    if (this.#ws?.readyState !== WebSocket.OPEN) {
      return Promise.reject(new CommandError("disconnected", "Not connected."));
    }
    const id = String(++this.#nextId);
    const text = JSON.stringify({ ...command, id });
    // The server closes the socket (1009) on an oversized frame; refusing it here keeps the
    // outbox from re-sending it after every reconnect.
    if (new TextEncoder().encode(text).length > this.#maxMessageBytes) {
      return Promise.reject(new CommandError("too_large", "Message too large."));
    }
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#ws.send(text);
    });
  }

  #open() {
    this.#setState("connecting");
    const ws = new WebSocket(this.#url, SUBPROTOCOL);
    this.#ws = ws;
    // Events of a socket that was since replaced or discarded are stale: ignore them.
    ws.onopen = () => ws === this.#ws && this.#identify();
    ws.onmessage = (event) => ws === this.#ws && this.#receive(event.data);
    ws.onclose = () => ws === this.#ws && this.#dropped();
  }

  async #identify() {
    const { user, token } = this.#identity;
    try {
      const ack = await this.request({ type: "online", from: user, ...(token ? { token } : {}) });
      this.#attempt = 0;
      this.#setState("online");
      this.#pingTimer = setInterval(() => this.#ws?.send('{"type":"ping"}'), PING_EVERY_MS);
      this.#handlers.onReady(ack);
    } catch (error) {
      if (error.code === "disconnected") return; // #dropped has scheduled the next try
      this.stop();
      this.#handlers.onRejected(error);
    }
  }

  #receive(data) {
    // Binary frames are relayed from seed clients and carry nothing this page can show.
    if (typeof data !== "string") return;
    for (const message of parseFrame(data)) this.#dispatch(message);
  }

  #dispatch(message) {
    const waiting = this.#pending.get(message.id);
    if (waiting && (message.type === "ack" || message.type === "error")) {
      this.#pending.delete(message.id);
      if (message.type === "ack") waiting.resolve(message);
      else waiting.reject(new CommandError(message.code, message.message));
      return;
    }
    if (message.type === "welcome") {
      this.#maxMessageBytes = message.limits?.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    }
    this.#handlers.onMessage(message);
  }

  #dropped() {
    this.#discardSocket();
    if (!this.#identity) return;
    const delay = backoffDelay(this.#attempt++);
    const retryAt = Date.now() + delay;
    this.#retryTimer = setTimeout(() => this.#open(), delay);
    const tick = () => {
      const seconds = Math.max(1, Math.ceil((retryAt - Date.now()) / 1000));
      this.#setState("reconnecting", seconds);
    };
    tick();
    this.#countdownTimer = setInterval(tick, 250);
  }

  /** Forgets the socket; commands still waiting for an answer fail as "disconnected". */
  #discardSocket() {
    clearInterval(this.#pingTimer);
    const ws = this.#ws;
    this.#ws = null;
    if (ws && ws.readyState !== WebSocket.CLOSED) ws.close(1000);
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    for (const { reject } of pending) reject(new CommandError("disconnected", "Connection lost."));
  }

  #clearTimers() {
    clearTimeout(this.#retryTimer);
    clearInterval(this.#countdownTimer);
  }

  #setState(state, secondsLeft = 0) {
    if (state !== "reconnecting") clearInterval(this.#countdownTimer);
    if (state === this.#state && secondsLeft === this.#secondsLeft) return;
    this.#state = state;
    this.#secondsLeft = secondsLeft;
    this.#handlers.onStatus(state, secondsLeft);
  }
}
