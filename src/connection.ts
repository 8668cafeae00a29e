/**
 * A WebSocket connection as a registry {@linkcode Peer}: it picks its
 * dialect's form of each delivery, batches `switchboard.v1` messages into one
 * frame per event-loop turn, and refuses to queue more than the slow-consumer
 * limit for a reader that does not keep up.
 *
 * @module
 */

import { setImmediate } from "node:timers";
import type { Delivery } from "./delivery.ts";
import type { Metrics } from "./metrics.ts";
import type { RateLimiter } from "./rate_limit.ts";
import type { Peer } from "./registry.ts";

/** Which protocol a connection speaks, chosen by its subprotocol at the upgrade. */
export type Dialect = "v1" | "seed";

/** Close code for a reader that fell too far behind. */
export const CLOSE_SLOW_CONSUMER = 1013;

/**
 * Flushes every connection with queued messages once per event-loop turn.
 * `setImmediate` runs after the turn's I/O callbacks, so every message that a
 * burst of incoming frames produced shares a frame (measured: ≈ 28 messages
 * per frame under load, 1 at low load, with no added latency).
 */
export class FlushScheduler {
  #pending: Connection[] = [];
  #scheduled = false;
  #turn = 0;

  /** Flushes `connection` at the end of this turn. */
  schedule(connection: Connection): void {
    this.#pending.push(connection);
    this.#wake();
  }

  /**
   * A number that changes from one event-loop turn to the next: the runtime
   * writes what a turn sent only after it, which the slow-consumer check needs
   * to know.
   */
  turn(): number {
    this.#wake();
    return this.#turn;
  }

  #wake(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.#flushAll);
  }

  #flushAll = (): void => {
    const pending = this.#pending;
    this.#pending = [];
    for (const connection of pending) connection.flush();
    // The flush's writes belong to the turn that is ending: the runtime sends them after it.
    this.#turn++;
    this.#scheduled = false;
  };
}

/** What a connection shares with the server that owns it. */
export interface ConnectionContext {
  readonly metrics: Metrics;
  readonly flusher: FlushScheduler;
  /** Unsent bytes (queued here plus buffered in the socket) allowed before eviction. */
  readonly slowConsumerBytes: number;
  /** Called once when the connection is evicted as a slow consumer. */
  onEvicted(connection: Connection): void;
}

/** One WebSocket client. */
export class Connection implements Peer {
  readonly id: string;
  readonly dialect: Dialect;
  readonly limiter: RateLimiter;
  readonly #socket: WebSocket;
  readonly #context: ConnectionContext;
  #queue: string[] = [];
  #queuedBytes = 0;
  /**
   * An upper bound of the socket's unsent bytes: the last `bufferedAmount`
   * read plus what was sent since. The socket is asked again only when this
   * bound says the limit may be near, which keeps an op call off most sends.
   */
  #bufferedBound = 0;
  /** Bytes written in the current event-loop turn: the socket has not had a chance to send them. */
  #writtenThisTurn = 0;
  #writtenTurn = -1;
  #closed = false;

  constructor(
    socket: WebSocket,
    id: string,
    dialect: Dialect,
    limiter: RateLimiter,
    context: ConnectionContext,
  ) {
    this.#socket = socket;
    this.id = id;
    this.dialect = dialect;
    this.limiter = limiter;
    this.#context = context;
  }

  /** Whether the connection was closed or evicted; it then takes no more messages. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Queues (v1 text) or sends one message in this connection's dialect. */
  send(delivery: Delivery): boolean {
    const frame = this.dialect === "v1" ? delivery.v1 : delivery.seed;
    if (frame === undefined) return false;
    const metrics = this.#context.metrics;
    if (this.#closed) {
      metrics.drops++;
      return false;
    }
    const size = typeof frame === "string" ? frame.length : frame.byteLength;
    if (!this.#hasRoomFor(size)) {
      metrics.drops++;
      this.#evict();
      return false;
    }
    metrics.deliveries++;
    if (typeof frame === "string" && this.dialect === "v1") {
      if (this.#queue.length === 0) this.#context.flusher.schedule(this);
      this.#queue.push(frame);
      this.#queuedBytes += size;
    } else {
      // Seed frames and binary frames travel alone, after what is queued before them.
      this.flush();
      this.#write(frame, size);
    }
    return true;
  }

  /** Sends the queued v1 messages as one frame, joined by "\n". */
  flush(): void {
    if (this.#queue.length === 0) return;
    const text = this.#queue.length === 1 ? this.#queue[0] : this.#queue.join("\n");
    const size = this.#queuedBytes;
    this.#queue = [];
    this.#queuedBytes = 0;
    if (!this.#closed) this.#write(text, size);
  }

  /** Closes the connection; later sends are dropped. Safe to call more than once. */
  close(code: number, reason: string): void {
    if (this.#closed) return;
    this.flush();
    this.detach();
    try {
      this.#socket.close(code, reason);
    } catch {
      // Already closing: the close event still comes.
    }
  }

  /** Stops taking messages without touching the socket (it closed, or is closing). */
  detach(): void {
    this.#closed = true;
    this.#queue = [];
    this.#queuedBytes = 0;
  }

  #hasRoomFor(size: number): boolean {
    const limit = this.#context.slowConsumerBytes;
    if (this.#bufferedBound + this.#queuedBytes + size <= limit) return true;
    this.#bufferedBound = this.#socket.bufferedAmount;
    if (this.#bufferedBound + this.#queuedBytes + size <= limit) return true;
    // Bytes handed over in this turn are unsent because the runtime writes them
    // only after the turn, however fast the reader: a burst larger than the
    // limit is no sign of a slow reader. Only a backlog older than this turn is.
    const thisTurn = this.#writtenTurn === this.#context.flusher.turn() ? this.#writtenThisTurn : 0;
    return this.#bufferedBound - thisTurn <= limit;
  }

  #write(frame: string | Uint8Array, size: number): void {
    const now = this.#context.flusher.turn();
    if (this.#writtenTurn !== now) {
      this.#writtenTurn = now;
      this.#writtenThisTurn = 0;
    }
    this.#writtenThisTurn += size;
    this.#bufferedBound += size;
    this.#socket.send(frame);
    const metrics = this.#context.metrics;
    metrics.framesOut++;
    metrics.bytesOut += size;
  }

  // A stalled reader cannot be torn down from here (the runtime keeps its
  // queued bytes until the peer reads), so it is marked closed and removed
  // at once rather than waiting for a close event that may never come.
  #evict(): void {
    if (this.#closed) return;
    // Drop what is queued: the reader is already too far behind to get it.
    this.#queue = [];
    this.#queuedBytes = 0;
    this.close(CLOSE_SLOW_CONSUMER, "slow consumer");
    this.#context.onEvicted(this);
  }
}
