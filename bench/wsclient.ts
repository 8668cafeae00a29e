/**
 * A minimal WebSocket client on a raw `Deno.connect` socket, for the load generator.
 *
 * Why not the built-in `WebSocket`: it costs one event, one string decode and one
 * promise turn per message, which makes the load generator the bottleneck long before
 * a batching server is. Here one `read()` returns many frames and the caller scans the
 * payload bytes in place (no copy, no decode). Measured figures are in bench/README.md.
 *
 * Scope: what the bench needs — the opening handshake (optional subprotocol), masked
 * client frames with one random key per connection, unmasked server frames of any
 * length (fragmented messages are reassembled), ping → pong, and the close handshake.
 * No extensions, no TLS.
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What a client does with the payload of each complete server message. */
export interface FrameHandler {
  /** Called once per `read()` before its frames are handled (a place to take the time). */
  onRead?(): void;
  /** A text message: its payload is `buf[start, end)`, valid only during the call. */
  onText(buf: Uint8Array, start: number, end: number): void;
  /** Called once per `read()` after its frames were handled (a cheap place to pump sends). */
  onChunk?(): void;
  /** Called once when the connection is gone. */
  onClose?(): void;
}

/** Options for {@link RawWebSocket.connect}. */
export interface ConnectOptions {
  hostname: string;
  port: number;
  path: string;
  /** Offered in `Sec-WebSocket-Protocol` when set; the server must select it. */
  protocol?: string;
  /** Initial read buffer; it grows for larger frames. Keep it small for idle crowds. */
  bufferSize?: number;
  /** Give up on the handshake after this many milliseconds. */
  timeoutMs?: number;
  /**
   * Awaited before each read when set. A shared timer here makes each read collect every
   * frame that arrived meanwhile: one read per frame costs the reader as much as the
   * server's write of it, so a throughput run would measure the reader instead.
   */
  beforeRead?: () => Promise<void>;
}

const HEADER_END = encoder.encode("\r\n\r\n");

function indexOfSeq(buf: Uint8Array, end: number, seq: Uint8Array): number {
  outer: for (let i = 0; i + seq.length <= end; i++) {
    for (let j = 0; j < seq.length; j++) if (buf[i + j] !== seq[j]) continue outer;
    return i;
  }
  return -1;
}

function randomKey(): string {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return btoa(String.fromCharCode(...b));
}

/** A raw-socket WebSocket client connection. */
export class RawWebSocket {
  /** Set once the socket is closed or failed; sends are then ignored. */
  closed = false;
  /** Total frames and bytes written and read, for sanity checks. */
  framesIn = 0;
  private buf: Uint8Array<ArrayBuffer>;
  private filled = 0;
  private readonly mask = new Uint8Array(4);
  private queue: Uint8Array[] = [];
  private writing = false;
  private fragments: Uint8Array[] | null = null;
  private fragmentOpcode = 0;
  private closeSent = false;
  private handler: FrameHandler | null = null;
  private loopDone: Promise<void> | null = null;
  private beforeRead: (() => Promise<void>) | undefined;

  private constructor(
    private readonly conn: Deno.TcpConn,
    buf: Uint8Array<ArrayBuffer>,
    filled: number,
  ) {
    this.buf = buf;
    this.filled = filled;
    // One random key per connection, computed once: masking is required of clients,
    // and a fixed key keeps the per-send cost to one XOR pass.
    crypto.getRandomValues(this.mask);
  }

  /** Opens a TCP connection and completes the WebSocket handshake. */
  static async connect(opts: ConnectOptions): Promise<RawWebSocket> {
    const conn = await Deno.connect({ hostname: opts.hostname, port: opts.port });
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      conn.setNoDelay(true);
      const lines = [
        `GET ${opts.path} HTTP/1.1`,
        `Host: ${opts.hostname}:${opts.port}`,
        "Upgrade: websocket",
        "Connection: Upgrade",
        `Sec-WebSocket-Key: ${randomKey()}`,
        "Sec-WebSocket-Version: 13",
      ];
      if (opts.protocol) lines.push(`Sec-WebSocket-Protocol: ${opts.protocol}`);
      await writeAll(conn, encoder.encode(lines.join("\r\n") + "\r\n\r\n"));
      let buf = new Uint8Array(Math.max(opts.bufferSize ?? 16384, 1024));
      let filled = 0;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("handshake timeout")), opts.timeoutMs ?? 10000);
      });
      for (;;) {
        if (filled === buf.length) buf = grow(buf, filled, buf.length * 2);
        const n = await Promise.race([conn.read(buf.subarray(filled)), timeout]);
        if (n === null) throw new Error("connection closed during handshake");
        filled += n;
        const end = indexOfSeq(buf, filled, HEADER_END);
        if (end < 0) continue;
        const head = decoder.decode(buf.subarray(0, end));
        const status = head.slice(0, head.indexOf("\r\n"));
        if (!/^HTTP\/1\.1 101/.test(status)) throw new Error(`handshake refused: ${status}`);
        if (
          opts.protocol &&
          !new RegExp(`^sec-websocket-protocol:\\s*${opts.protocol}\\s*$`, "im").test(head)
        ) {
          throw new Error(`server did not select ${opts.protocol}`);
        }
        const rest = filled - (end + 4);
        buf.copyWithin(0, end + 4, filled);
        const ws = new RawWebSocket(conn, buf, rest);
        ws.beforeRead = opts.beforeRead;
        return ws;
      }
    } catch (e) {
      try {
        conn.close();
      } catch { /* already closed */ }
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Starts the read loop; resolves when the connection is gone. */
  start(handler: FrameHandler): Promise<void> {
    this.handler = handler;
    this.loopDone = this.readLoop();
    return this.loopDone;
  }

  /** Sends one text message whose payload is `payload` (masked here). */
  sendText(payload: Uint8Array): void {
    this.sendFrame(0x1, payload);
  }

  /** Sends a string as a text message. */
  sendString(s: string): void {
    this.sendFrame(0x1, encoder.encode(s));
  }

  /** Starts the close handshake and waits (bounded) for the server to end the connection. */
  async close(waitMs = 1000): Promise<void> {
    if (this.closed) return;
    if (!this.closeSent) {
      this.closeSent = true;
      this.sendFrame(0x8, new Uint8Array([0x03, 0xe8])); // 1000 normal closure
    }
    if (this.loopDone) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.loopDone,
        new Promise<void>((r) => timer = setTimeout(r, waitMs)),
      ]);
      clearTimeout(timer);
    }
    this.terminate();
  }

  /** Drops the TCP connection at once. */
  terminate(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.conn.close();
    } catch { /* already closed */ }
  }

  private sendFrame(opcode: number, payload: Uint8Array): void {
    if (this.closed) return;
    const len = payload.length;
    const hdr = len < 126 ? 2 : len < 65536 ? 4 : 10;
    const frame = new Uint8Array(hdr + 4 + len);
    frame[0] = 0x80 | opcode;
    if (hdr === 2) {
      frame[1] = 0x80 | len;
    } else if (hdr === 4) {
      frame[1] = 0x80 | 126;
      frame[2] = len >>> 8;
      frame[3] = len & 0xff;
    } else {
      frame[1] = 0x80 | 127;
      new DataView(frame.buffer).setBigUint64(2, BigInt(len));
    }
    const m = this.mask;
    frame.set(m, hdr);
    const off = hdr + 4;
    for (let i = 0; i < len; i++) frame[off + i] = payload[i] ^ m[i & 3];
    this.queue.push(frame);
    if (!this.writing) {
      // Flush on a microtask: every frame sent in this synchronous run goes out in one
      // write(), since on loopback each write costs the sender the receiver's TCP work too.
      this.writing = true;
      queueMicrotask(() => this.flush());
    }
  }

  private async flush(): Promise<void> {
    try {
      while (this.queue.length > 0 && !this.closed) {
        // Frames queued while a write was pending go out in one write.
        const q = this.queue;
        this.queue = [];
        const chunk = q.length === 1 ? q[0] : concat(q);
        await writeAll(this.conn, chunk);
      }
    } catch {
      this.terminate();
    } finally {
      this.writing = false;
    }
  }

  private async readLoop(): Promise<void> {
    try {
      // Bytes that arrived with the handshake response.
      if (this.filled > 0) this.parse();
      while (!this.closed) {
        if (this.beforeRead) await this.beforeRead();
        if (this.filled === this.buf.length) {
          this.buf = grow(this.buf, this.filled, this.buf.length * 2);
        }
        const n = await this.conn.read(this.buf.subarray(this.filled));
        if (n === null) break;
        this.filled += n;
        this.handler?.onRead?.();
        this.parse();
        this.handler?.onChunk?.();
      }
    } catch {
      // A reset or a local close ends the loop like EOF does.
    } finally {
      this.terminate();
      this.handler?.onClose?.();
    }
  }

  /** Handles every complete frame in the buffer and keeps the partial rest. */
  private parse(): void {
    const buf = this.buf;
    const filled = this.filled;
    let pos = 0;
    while (filled - pos >= 2) {
      const b0 = buf[pos];
      const b1 = buf[pos + 1];
      let len = b1 & 0x7f;
      let hdr = 2;
      if (len === 126) {
        if (filled - pos < 4) break;
        len = (buf[pos + 2] << 8) | buf[pos + 3];
        hdr = 4;
      } else if (len === 127) {
        if (filled - pos < 10) break;
        const hi = (buf[pos + 2] << 24 | buf[pos + 3] << 16 | buf[pos + 4] << 8 | buf[pos + 5]) >>>
          0;
        const lo = (buf[pos + 6] << 24 | buf[pos + 7] << 16 | buf[pos + 8] << 8 | buf[pos + 9]) >>>
          0;
        len = hi * 2 ** 32 + lo;
        hdr = 10;
      }
      const masked = (b1 & 0x80) !== 0;
      if (masked) hdr += 4;
      if (filled - pos < hdr + len) {
        // Incomplete: make sure the whole frame will fit, then wait for more bytes.
        if (hdr + len > buf.length) {
          buf.copyWithin(0, pos, filled);
          this.filled = filled - pos;
          this.buf = grow(buf, this.filled, Math.max(buf.length * 2, hdr + len));
          return;
        }
        break;
      }
      const start = pos + hdr;
      const end = start + len;
      if (masked) {
        // Servers must not mask; tolerate it anyway.
        const k = buf.subarray(start - 4, start).slice();
        for (let i = start; i < end; i++) buf[i] ^= k[(i - start) & 3];
      }
      this.framesIn++;
      this.onFrame(b0 & 0x80, b0 & 0x0f, start, end);
      pos = end;
      if (this.closed) return;
    }
    if (pos > 0) {
      buf.copyWithin(0, pos, filled);
      this.filled = filled - pos;
    }
  }

  private onFrame(fin: number, opcode: number, start: number, end: number): void {
    const buf = this.buf;
    switch (opcode) {
      case 0x1:
      case 0x2:
        if (fin) {
          if (opcode === 0x1) this.handler?.onText(buf, start, end);
        } else {
          this.fragments = [buf.slice(start, end)];
          this.fragmentOpcode = opcode;
        }
        return;
      case 0x0: {
        if (!this.fragments) return;
        this.fragments.push(buf.slice(start, end));
        if (fin) {
          const whole = concat(this.fragments);
          this.fragments = null;
          if (this.fragmentOpcode === 0x1) this.handler?.onText(whole, 0, whole.length);
        }
        return;
      }
      case 0x8:
        // Echo the close (once) and let the server end the TCP connection.
        if (!this.closeSent) {
          this.closeSent = true;
          this.sendFrame(0x8, buf.slice(start, Math.min(end, start + 2)));
        }
        return;
      case 0x9:
        this.sendFrame(0xa, buf.slice(start, end));
        return;
      default:
        return;
    }
  }
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

function grow(buf: Uint8Array, used: number, size: number): Uint8Array<ArrayBuffer> {
  const next = new Uint8Array(size);
  next.set(buf.subarray(0, used));
  return next;
}

function concat(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
