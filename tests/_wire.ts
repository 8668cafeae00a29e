/**
 * Raw-TCP helpers for the wire tests (limits, HTTP, cleanup, fuzz): a hand-made
 * upgrade that reports the status line instead of throwing, a raw HTTP request
 * for paths `fetch` would normalise, a reader of unmasked server frames, and a
 * parser for `/metrics`.
 *
 * @module
 */

import type { SwitchboardServer } from "../src/server.ts";
import type { TestClient } from "./_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** How long a raw read may take before the helper gives up (to fail, not to hang). */
const RAW_WAIT_MS = 5000;

/** An HTTP response read off a raw socket. */
export interface RawResponse {
  /** `HTTP/1.1 404 Not Found` */
  statusLine: string;
  status: number;
  /** Header names lower-cased. */
  headers: Map<string, string>;
  /** Whatever followed the head before the server closed or the read stopped. */
  body: Uint8Array;
}

/**
 * Reads from `conn` until `done(bytes)` holds or EOF; fails after a few
 * seconds. `initial` holds bytes already read (e.g. after a handshake's head).
 */
export async function readUntil(
  conn: Deno.Conn,
  done: (bytes: Uint8Array) => boolean,
  what = "data",
  initial: Uint8Array = new Uint8Array(0),
): Promise<{ bytes: Uint8Array; eof: boolean }> {
  const chunks: Uint8Array[] = [initial];
  let length = initial.length;
  const all = () => concat(chunks, length);
  const deadline = Date.now() + RAW_WAIT_MS;
  const buffer = new Uint8Array(64 * 1024);
  while (!done(all())) {
    const n = await readWithDeadline(conn, buffer, deadline - Date.now(), what);
    if (n === null) return { bytes: all(), eof: true };
    chunks.push(buffer.slice(0, n));
    length += n;
  }
  return { bytes: all(), eof: false };
}

// A read races a timer so that a silent peer makes the test fail instead of hang.
async function readWithDeadline(
  conn: Deno.Conn,
  buffer: Uint8Array,
  ms: number,
  what: string,
): Promise<number | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), Math.max(ms, 0));
  });
  const read = conn.read(buffer);
  try {
    const result = await Promise.race([read, deadline]);
    if (result !== "timeout") return result;
    // Closing the conn settles the pending read (with an error, ignored here).
    closeQuietly(conn);
    await read.catch(() => null);
    throw new Error(`timed out reading ${what}`);
  } finally {
    clearTimeout(timer);
  }
}

/** Closes a connection that may already be closed. */
export function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed (e.g. by a timed-out read).
  }
}

function concat(chunks: Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

function headEnd(bytes: Uint8Array): number {
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) {
      return i;
    }
  }
  return -1;
}

function parseHead(bytes: Uint8Array): RawResponse {
  const end = headEnd(bytes);
  const [statusLine, ...lines] = decoder.decode(bytes.subarray(0, end)).split("\r\n");
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(":");
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return {
    statusLine,
    status: Number(statusLine.split(" ")[1]),
    headers,
    body: bytes.slice(end + 4),
  };
}

/**
 * Sends one HTTP/1.1 request exactly as written (the path is not normalised)
 * and reads the whole response; the connection is closed afterwards.
 */
export async function rawRequest(
  server: SwitchboardServer,
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<RawResponse> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  try {
    const lines = [
      `${method} ${path} HTTP/1.1`,
      `Host: 127.0.0.1:${server.addr.port}`,
      "Connection: close",
      ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
      "",
      "",
    ];
    await conn.write(encoder.encode(lines.join("\r\n")));
    const { bytes } = await readUntil(conn, () => false, `the response to ${method} ${path}`);
    return parseHead(bytes);
  } finally {
    closeQuietly(conn);
  }
}

/** Options of a {@linkcode rawHandshake}. */
export interface HandshakeOptions {
  path?: string;
  /** `Origin` header, if any. */
  origin?: string;
  /** `Sec-WebSocket-Protocol` header, if any. */
  protocol?: string;
  /** Overrides the `Host` header. */
  host?: string;
}

/**
 * A WebSocket upgrade on a raw socket. Returns the response head and the open
 * connection (the caller closes it), whatever the status.
 */
export async function rawHandshake(
  server: SwitchboardServer,
  options: HandshakeOptions = {},
): Promise<{ response: RawResponse; conn: Deno.TcpConn }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  try {
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    const lines = [
      `GET ${options.path ?? "/ws"} HTTP/1.1`,
      `Host: ${options.host ?? `127.0.0.1:${server.addr.port}`}`,
      "Upgrade: websocket",
      "Connection: Upgrade",
      `Sec-WebSocket-Key: ${key}`,
      "Sec-WebSocket-Version: 13",
      ...(options.origin === undefined ? [] : [`Origin: ${options.origin}`]),
      ...(options.protocol === undefined ? [] : [`Sec-WebSocket-Protocol: ${options.protocol}`]),
      "",
      "",
    ];
    await conn.write(encoder.encode(lines.join("\r\n")));
    const { bytes } = await readUntil(conn, (b) => headEnd(b) >= 0, "the handshake response");
    return { response: parseHead(bytes), conn };
  } catch (error) {
    closeQuietly(conn);
    throw error;
  }
}

/** The status line of an upgrade attempt; the connection is closed at once. */
export async function handshakeStatus(
  server: SwitchboardServer,
  options: HandshakeOptions = {},
): Promise<string> {
  const { response, conn } = await rawHandshake(server, options);
  closeQuietly(conn);
  return response.statusLine;
}

/** One frame as the server sent it (server frames are unmasked). */
export interface ServerFrame {
  opcode: number;
  payload: Uint8Array;
}

/** Splits bytes into complete server frames; a trailing partial frame is left out. */
export function parseServerFrames(bytes: Uint8Array): ServerFrame[] {
  const frames: ServerFrame[] = [];
  let at = 0;
  while (at + 2 <= bytes.length) {
    const opcode = bytes[at] & 0x0f;
    let length = bytes[at + 1] & 0x7f;
    let header = 2;
    if (length === 126) {
      if (at + 4 > bytes.length) break;
      length = (bytes[at + 2] << 8) | bytes[at + 3];
      header = 4;
    } else if (length === 127) {
      if (at + 10 > bytes.length) break;
      length = Number(new DataView(bytes.buffer, bytes.byteOffset + at + 2, 8).getBigUint64(0));
      header = 10;
    }
    if (at + header + length > bytes.length) break;
    frames.push({ opcode, payload: bytes.slice(at + header, at + header + length) });
    at += header + length;
  }
  return frames;
}

/** The close code in a close frame's payload (1005 when it carries none). */
export function closeCode(frame: ServerFrame): number {
  return frame.payload.length >= 2 ? (frame.payload[0] << 8) | frame.payload[1] : 1005;
}

/**
 * A masked client frame with any opcode and payload (FIN set unless `fin`
 * is false), for raw connections.
 */
export function clientFrame(opcode: number, payload: Uint8Array, fin = true): Uint8Array {
  const mask = crypto.getRandomValues(new Uint8Array(4));
  const header: number[] = [(fin ? 0x80 : 0) | opcode];
  if (payload.length < 126) header.push(0x80 | payload.length);
  else if (payload.length < 65536) {
    header.push(0x80 | 126, payload.length >> 8, payload.length & 0xff);
  } else {
    header.push(0x80 | 127, 0, 0, 0, 0);
    header.push((payload.length >>> 24) & 0xff, (payload.length >> 16) & 0xff);
    header.push((payload.length >> 8) & 0xff, payload.length & 0xff);
  }
  const frame = new Uint8Array(header.length + 4 + payload.length);
  frame.set(header);
  frame.set(mask, header.length);
  for (let i = 0; i < payload.length; i++) frame[header.length + 4 + i] = payload[i] ^ mask[i % 4];
  return frame;
}

/** `/metrics` as a map from sample name (with labels) to value. */
export async function metrics(server: SwitchboardServer): Promise<Map<string, number>> {
  const response = await fetch(`${server.url}/metrics`);
  return parseMetrics(await response.text());
}

/** Parses Prometheus text exposition samples; comment lines are skipped. */
export function parseMetrics(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    samples.set(line.slice(0, space), Number(line.slice(space + 1)));
  }
  return samples;
}

/** Resolves after `ms` milliseconds (only for pacing, never for pass/fail). */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves with `promise`, or rejects after `ms` (the timer is always cleared). */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Asserts that two long lists of frames are equal without printing them
 * whole: the message names the first difference.
 */
export function assertSameFrames(
  actual: readonly unknown[],
  expected: readonly unknown[],
  what: string,
) {
  const show = (value: unknown) => {
    const text = typeof value === "string" ? JSON.stringify(value) : String(value);
    return text.length > 80 ? `${text.slice(0, 77)}...` : text;
  };
  const length = Math.min(actual.length, expected.length);
  for (let i = 0; i < length; i++) {
    const same = actual[i] instanceof Uint8Array && expected[i] instanceof Uint8Array
      ? equalBytes(actual[i] as Uint8Array, expected[i] as Uint8Array)
      : actual[i] === expected[i];
    if (!same) {
      throw new Error(`${what}: frame ${i} is ${show(actual[i])}, expected ${show(expected[i])}`);
    }
  }
  if (actual.length !== expected.length) {
    throw new Error(`${what}: ${actual.length} frames, expected ${expected.length}`);
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/**
 * Waits until `condition` holds for a client that must stay open meanwhile;
 * if the server closes it first, fails at once naming the close code.
 */
export async function untilWhileOpen(
  client: TestClient,
  condition: () => boolean,
  what: string,
): Promise<void> {
  await client.until(() => condition() || client.socket.readyState === WebSocket.CLOSED, what);
  if (condition()) return;
  const event = await client.closed;
  throw new Error(`the connection was closed ${event.code} "${event.reason}" before ${what}`);
}
