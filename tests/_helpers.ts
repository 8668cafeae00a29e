/**
 * Test helpers: an in-process server on port 0 and WebSocket clients that
 * record what they receive (splitting batched v1 frames on "\n").
 *
 * @module
 */

import type { ServerOptions } from "../src/config.ts";
import { startServer, type SwitchboardServer } from "../src/server.ts";
import { clientFrame, closeQuietly, rawHandshake } from "./_wire.ts";

/** Starts a quiet server on a free loopback port, runs `fn`, and always shuts it down. */
export async function withServer(
  options: Partial<ServerOptions>,
  fn: (server: SwitchboardServer) => Promise<void>,
): Promise<void> {
  const server = await startServer({
    port: 0,
    hostname: "127.0.0.1",
    logLevel: "silent",
    ...options,
  });
  try {
    await fn(server);
  } finally {
    // Even a failed test releases every client, so the next test starts clean.
    await Promise.all([...clientsOf(server)].map((client) => client.close()));
    await server.shutdown();
  }
}

const openClients = new WeakMap<SwitchboardServer, Set<TestClient>>();

function clientsOf(server: SwitchboardServer): Set<TestClient> {
  let clients = openClients.get(server);
  if (clients === undefined) openClients.set(server, clients = new Set());
  return clients;
}

/** A server message as a v1 client sees it. */
// deno-lint-ignore no-explicit-any
export type ServerMessage = Record<string, any>;

/** One frame as a seed client sees it. */
export type RawFrame = string | Uint8Array;

const WAIT_MS = 5000;

/**
 * A WebSocket client that records every message. For `switchboard.v1` each
 * text frame is split on "\n" and parsed; seed clients record raw frames.
 */
export class TestClient {
  readonly socket: WebSocket;
  /** Parsed server messages (v1) in arrival order. */
  readonly messages: ServerMessage[] = [];
  /** Raw frames in arrival order (both dialects). */
  readonly frames: RawFrame[] = [];
  readonly closed: Promise<CloseEvent>;
  #waiters = new Set<() => void>();
  #nextId = 0;

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.binaryType = "arraybuffer";
    const { promise, resolve } = Promise.withResolvers<CloseEvent>();
    this.closed = promise;
    socket.onclose = (event) => {
      resolve(event);
      this.#wake();
    };
    socket.onmessage = (event: MessageEvent<string | ArrayBuffer>) => {
      const data = typeof event.data === "string" ? event.data : new Uint8Array(event.data);
      this.frames.push(data);
      if (typeof data === "string" && socket.protocol === "switchboard.v1") {
        for (const line of data.split("\n")) this.messages.push(JSON.parse(line));
      }
      this.#wake();
    };
  }

  /** Opens a v1 client and waits for its `welcome`. */
  static async v1(server: SwitchboardServer, path = "/ws"): Promise<TestClient> {
    const client = await TestClient.#open(server, path, "switchboard.v1");
    await client.next((m) => m.type === "welcome");
    return client;
  }

  /** Opens a seed-dialect client (no subprotocol), on the bare URL as the demo did. */
  static async seed(server: SwitchboardServer, path = "/"): Promise<TestClient> {
    return await TestClient.#open(server, path);
  }

  static async #open(server: SwitchboardServer, path: string, protocol?: string) {
    const url = server.url.replace("http", "ws") + path;
    const socket = protocol ? new WebSocket(url, protocol) : new WebSocket(url);
    const client = new TestClient(socket);
    clientsOf(server).add(client);
    client.closed.then(() => clientsOf(server).delete(client));
    await new Promise<void>((resolve, reject) => {
      socket.onopen = () => resolve();
      socket.onerror = () => reject(new Error(`could not connect to ${url}`));
    });
    return client;
  }

  /** Sends a text frame; objects are JSON-encoded. */
  send(frame: unknown): void {
    this.socket.send(
      typeof frame === "string" || frame instanceof Uint8Array ? frame : JSON.stringify(frame),
    );
  }

  /** Sends a command with a fresh id and resolves with its `ack` or `error`. */
  async request(command: Record<string, unknown>): Promise<ServerMessage> {
    const id = `r${++this.#nextId}`;
    this.send({ ...command, id });
    return await this.next((m) => (m.type === "ack" || m.type === "error") && m.id === id);
  }

  /** Identifies as `user` and expects the ack. */
  async online(user: string): Promise<void> {
    const answer = await this.request({ type: "online", from: user });
    if (answer.type !== "ack") throw new Error(`online failed: ${JSON.stringify(answer)}`);
  }

  /** The first recorded message (v1) matching `match`, waiting for it if needed. */
  async next(match: (message: ServerMessage) => boolean): Promise<ServerMessage> {
    let found: ServerMessage | undefined;
    await this.until(() => (found = this.messages.find(match)) !== undefined);
    return found!;
  }

  /** Waits until `condition` holds, re-checked after every frame; fails after a few seconds. */
  async until(condition: () => boolean, what = "condition"): Promise<void> {
    if (condition()) return;
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const check = () => {
      if (condition()) resolve();
    };
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), WAIT_MS);
    this.#waiters.add(check);
    try {
      await promise;
    } finally {
      clearTimeout(timer);
      this.#waiters.delete(check);
    }
  }

  /** Closes cleanly and waits for the close to complete. */
  async close(): Promise<void> {
    if (this.socket.readyState !== WebSocket.CLOSED) this.socket.close();
    await this.closed;
  }

  #wake(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }
}

/** Polls `probe` until it returns true (server-side state settles after a close). */
export async function eventually(probe: () => boolean | Promise<boolean>, what: string) {
  const deadline = Date.now() + WAIT_MS;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** `/healthz` as JSON. */
export async function healthz(server: SwitchboardServer): Promise<Record<string, unknown>> {
  const response = await fetch(`${server.url}/healthz`);
  return await response.json();
}

/**
 * A WebSocket upgrade done by hand on a raw TCP connection, so that a test
 * can drop it abruptly (close the TCP socket without a close frame).
 */
export async function rawUpgrade(
  server: SwitchboardServer,
  protocol?: string,
): Promise<Deno.TcpConn> {
  const { response, conn } = await rawHandshake(server, { protocol });
  if (response.status !== 101) {
    closeQuietly(conn);
    throw new Error(`upgrade refused: ${response.statusLine}`);
  }
  return conn;
}

/** A masked client text frame, for raw connections. */
export function clientTextFrame(text: string): Uint8Array {
  return clientFrame(0x1, new TextEncoder().encode(text));
}
