/**
 * Switchboard load generator: drives real WebSocket connections against one server on
 * 127.0.0.1 and prints one JSON result on stdout. The runner (bench/run.ts) spawns it as
 * its own process, pinned to the core the server does not use.
 *
 * Workloads (`--workload`):
 * - `broadcast`: C clients in the default group; each message goes to the C − 1 others.
 *   `--mode max` keeps a bounded window of messages in flight and reports deliveries/s;
 *   `--mode rate` sends `--rate` messages/s in all and reports latency percentiles.
 * - `direct`: C identified clients, each message to one random other client.
 * - `connections`: idle crowds of `--steps` sizes; RSS per connection, time to accept,
 *   and RSS after closing them all.
 * - `churn`: `--cycles` × `--per-cycle` connect / identify / (v1: join) / close.
 *
 * Dialects (`--dialect`): `seed` (no subprotocol, relayed frames) or `v1`
 * (`switchboard.v1`: `message` commands, deliveries split on "\n").
 *
 * Every payload carries `~<send µs>.<sender>.<seq>~` and is padded with `x` to
 * `--size` bytes; the receiver finds the marker with a byte search, no JSON parse.
 * @module
 */

import process from "node:process";
import { Histogram, type LatencySummary } from "./stats.ts";
import { sampleProcess } from "./proc.ts";
import { RawWebSocket } from "./wsclient.ts";

/** Load generator parameters (command-line flags of the same name, kebab-cased). */
export interface LoadParams {
  workload: "broadcast" | "direct" | "connections" | "churn";
  mode: "max" | "rate";
  dialect: "seed" | "v1";
  client: "raw" | "native";
  hostname: string;
  port: number;
  path: string;
  serverPid: number;
  clients: number;
  size: number;
  window: number;
  burst: number;
  rate: number;
  warmupMs: number;
  durationMs: number;
  steps: number[];
  cycles: number;
  perCycle: number;
  concurrency: number;
  closeWaitMs: number;
  /** Max mode: read each socket at most once per this many ms (0: read at once). */
  readEveryMs: number;
  group: string;
}

/** What a throughput run (broadcast or direct) reports. */
export interface ThroughputResult {
  kind: "throughput";
  params: LoadParams;
  windowMs: number;
  sent: number;
  deliveries: number;
  deliveriesPerSec: number;
  sendsPerSec: number;
  latencyUs: LatencySummary;
  loadgenCpuUs: number;
  loadgenCpuPerDeliveryUs: number;
  loadgenCpuUtil: number;
  serverCpuUs: number;
  serverCpuPerDeliveryUs: number;
  serverCpuUtil: number;
  serverRssKiB: number;
  lost: number;
  stalls: number;
  /** Deliveries in each 100 ms of the measurement window: shows stalls and warm-up. */
  timeline: number[];
  control: Record<string, number>;
}

/** One step of the idle-connections workload. */
export interface ConnectionStep {
  connections: number;
  acceptMs: number;
  acceptsPerSec: number;
  rssKiB: number;
  rssPerConnKiB: number;
  healthzConnections: number;
}

/** What the connections workload reports. */
export interface ConnectionsResult {
  kind: "connections";
  params: LoadParams;
  baselineRssKiB: number;
  steps: ConnectionStep[];
  failed: number;
  rssAfterCloseKiB: number;
  healthzAfterClose: Healthz | null;
}

/** One cycle of the churn workload. */
export interface ChurnCycle {
  connects: number;
  failed: number;
  ms: number;
  connectsPerSec: number;
  drainMs: number;
  healthz: Healthz | null;
  rssKiB: number;
}

/** What the churn workload reports. */
export interface ChurnResult {
  kind: "churn";
  params: LoadParams;
  baselineRssKiB: number;
  cycles: ChurnCycle[];
}

/** Any load generator result. */
export type LoadResult = ThroughputResult | ConnectionsResult | ChurnResult;

/** The server's /healthz answer. */
export interface Healthz {
  status: string;
  connections: number;
  users: number;
  groups: number;
}

const DEFAULTS: LoadParams = {
  workload: "broadcast",
  mode: "max",
  dialect: "seed",
  client: "raw",
  hostname: "127.0.0.1",
  port: 8080,
  path: "/ws",
  serverPid: 0,
  clients: 50,
  size: 64,
  window: 16,
  burst: 1,
  rate: 100,
  warmupMs: 1000,
  durationMs: 3000,
  steps: [1000],
  cycles: 1,
  perCycle: 1000,
  concurrency: 64,
  closeWaitMs: 5000,
  readEveryMs: 0,
  group: "lobby",
};

/** Parses `--flag value` pairs into parameters (unknown flags are an error). */
export function parseParams(args: string[]): LoadParams {
  const p: LoadParams = { ...DEFAULTS, steps: [...DEFAULTS.steps] };
  const rec = p as unknown as Record<string, unknown>;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith("--")) throw new Error(`unexpected argument ${a}`);
    const key = a.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    if (!(key in DEFAULTS)) throw new Error(`unknown flag ${a}`);
    const raw = args[++i];
    if (raw === undefined) throw new Error(`flag ${a} needs a value`);
    const def = (DEFAULTS as unknown as Record<string, unknown>)[key];
    if (Array.isArray(def)) rec[key] = raw.split(",").map(Number);
    else if (typeof def === "number") rec[key] = Number(raw);
    else rec[key] = raw;
  }
  // Only loopback: the bench never sends traffic anywhere else.
  if (!/^(127\.\d+\.\d+\.\d+|localhost|::1)$/.test(p.hostname)) {
    throw new Error(`refusing non-loopback host ${p.hostname}`);
  }
  return p;
}

// ---------------------------------------------------------------------------------------
// Connections: one interface over the raw client and Deno's built-in WebSocket.

const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface Client {
  readonly index: number;
  sendString(s: string): void;
  close(waitMs?: number): Promise<void>;
  terminate(): void;
  isClosed(): boolean;
}

/** Per-connection events the workloads react to. */
interface Sink {
  /** A delivery carrying a marker: `sendUs` is the sender's timestamp. */
  delivery(sendUs: number, nowUs: number): void;
  /** A server message without a marker (welcome, presence, ack, error, …). */
  control(client: number, msg: Record<string, unknown> | null, raw: string): void;
  /** Called once per socket read, after its frames (pump more sends here). */
  chunk(): void;
}

function parseMarkerBytes(buf: Uint8Array, m: number): number {
  let ts = 0;
  for (let j = m + 1;; j++) {
    const c = buf[j];
    if (c < 48 || c > 57) return ts;
    ts = ts * 10 + (c - 48);
  }
}

const PRESENCE_PREFIX = encoder.encode('{"type":"presence"');
const PRESENCE: Record<string, unknown> = { type: "presence" };

function startsWith(buf: Uint8Array, at: number, end: number, prefix: Uint8Array): boolean {
  if (end - at < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (buf[at + i] !== prefix[i]) return false;
  return true;
}

function controlLine(sink: Sink, index: number, raw: string): void {
  let msg: Record<string, unknown> | null = null;
  try {
    const v = JSON.parse(raw);
    if (v !== null && typeof v === "object") msg = v as Record<string, unknown>;
  } catch { /* not JSON: a relayed plain frame without marker */ }
  sink.control(index, msg, raw);
}

/** One timer for all sockets: each waiting read resumes on the same tick. */
function sharedTick(ms: number): () => Promise<void> {
  let next: Promise<void> | null = null;
  return () =>
    next ??= new Promise<void>((resolve) =>
      setTimeout(() => {
        next = null;
        resolve();
      }, ms)
    );
}

let readGate: (() => Promise<void>) | undefined;

async function openRaw(
  p: LoadParams,
  index: number,
  sink: Sink,
  bufferSize: number,
): Promise<Client> {
  const ws = await RawWebSocket.connect({
    hostname: p.hostname,
    port: p.port,
    path: p.path,
    protocol: p.dialect === "v1" ? "switchboard.v1" : undefined,
    bufferSize,
    beforeRead: readGate,
  });
  let now = 0;
  const v1 = p.dialect === "v1";
  ws.start({
    onRead() {
      now = performance.now() * 1000;
    },
    onText(buf, start, end) {
      // One view per frame: native (vectorised) searches that never run past the frame into
      // the stale bytes of the read buffer, at one allocation per frame, not per message.
      const frame = buf.subarray(start, end);
      if (!v1) {
        // Seed dialect: one message per frame, the marker somewhere inside.
        const m = frame.indexOf(0x7e);
        if (m >= 0) sink.delivery(parseMarkerBytes(frame, m), now);
        else controlLine(sink, index, decoder.decode(frame));
        return;
      }
      // v1: one or more JSON messages separated by "\n".
      const n = frame.length;
      let ls = 0;
      while (ls < n) {
        let le = frame.indexOf(0x0a, ls);
        if (le < 0) le = n;
        const m = frame.indexOf(0x7e, ls);
        if (m >= 0 && m < le) sink.delivery(parseMarkerBytes(frame, m), now);
        // Presence storms (10k identified clients) must not cost a JSON parse each.
        else if (startsWith(frame, ls, le, PRESENCE_PREFIX)) sink.control(index, PRESENCE, "");
        else controlLine(sink, index, decoder.decode(frame.subarray(ls, le)));
        ls = le + 1;
      }
    },
    onChunk() {
      sink.chunk();
    },
  });
  return {
    index,
    sendString: (s) => ws.sendText(encoder.encode(s)),
    close: (w) => ws.close(w),
    terminate: () => ws.terminate(),
    isClosed: () => ws.closed,
  };
}

function openNative(p: LoadParams, index: number, sink: Sink): Promise<Client> {
  const url = `ws://${p.hostname}:${p.port}${p.path}`;
  const ws = p.dialect === "v1" ? new WebSocket(url, "switchboard.v1") : new WebSocket(url);
  const v1 = p.dialect === "v1";
  let done: () => void = () => {};
  const closedP = new Promise<void>((r) => done = r);
  ws.onmessage = (e: MessageEvent) => {
    if (typeof e.data !== "string") return;
    const now = performance.now() * 1000;
    const lines: string[] = v1 ? e.data.split("\n") : [e.data];
    for (const line of lines) {
      const m = line.indexOf("~");
      if (m >= 0) sink.delivery(parseInt(line.slice(m + 1, m + 20), 10), now);
      else controlLine(sink, index, line);
    }
    sink.chunk();
  };
  ws.onclose = () => done();
  return new Promise((resolve, reject) => {
    ws.onopen = () =>
      resolve({
        index,
        sendString: (s) => {
          if (ws.readyState === WebSocket.OPEN) ws.send(s);
        },
        close: async (w = 1000) => {
          ws.close(1000);
          let t: ReturnType<typeof setTimeout> | undefined;
          await Promise.race([closedP, new Promise<void>((r) => t = setTimeout(r, w))]);
          clearTimeout(t);
        },
        terminate: () => ws.close(),
        isClosed: () => ws.readyState >= WebSocket.CLOSING,
      });
    ws.onerror = () => reject(new Error("websocket error"));
  });
}

function open(p: LoadParams, index: number, sink: Sink, bufferSize: number): Promise<Client> {
  return p.client === "native" ? openNative(p, index, sink) : openRaw(p, index, sink, bufferSize);
}

/** Runs `fn(i)` for i in [0, n) with at most `limit` in flight; returns the failures. */
async function pool(
  n: number,
  limit: number,
  deadline: number,
  fn: (i: number) => Promise<void>,
): Promise<number> {
  let next = 0;
  let failed = 0;
  const worker = async () => {
    while (next < n && performance.now() < deadline) {
      const i = next++;
      try {
        await fn(i);
      } catch (e) {
        failed++;
        if (failed <= 3) console.error(`loadgen: connection ${i}: ${(e as Error).message}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker));
  return failed + Math.max(0, n - next);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Waits until `cond()` or the timeout; returns whether it held. */
async function waitFor(cond: () => boolean, timeoutMs: number, stepMs = 5): Promise<boolean> {
  const end = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > end) return false;
    await sleep(stepMs);
  }
  return true;
}

async function healthz(p: LoadParams): Promise<Healthz | null> {
  try {
    const res = await fetch(`http://${p.hostname}:${p.port}/healthz`);
    if (!res.ok) {
      await res.body?.cancel();
      return null;
    }
    return await res.json() as Healthz;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------
// Throughput: broadcast and direct.

const PAD = "x".repeat(1 << 17);

function payload(sendUs: number, sender: number, seq: number, size: number): string {
  const marker = `~${sendUs}.${sender}.${seq}~`;
  return size > marker.length ? marker + PAD.slice(0, size - marker.length) : marker;
}

function frameFor(p: LoadParams, sender: number, target: number, seq: number): string {
  const data = payload(Math.round(performance.now() * 1000), sender, seq, p.size);
  if (p.workload === "direct") {
    return p.dialect === "v1"
      ? `{"type":"message","to":"u${target}","data":"${data}"}`
      : `{"to":"u${target}","data":"${data}"}`;
  }
  return p.dialect === "v1" ? `{"type":"message","group":"${p.group}","data":"${data}"}` : data;
}

async function runThroughput(p: LoadParams): Promise<ThroughputResult> {
  const C = p.clients;
  if (C < 2) throw new Error("--clients must be at least 2");
  const fanout = p.workload === "direct" ? 1 : C - 1;
  const hist = new Histogram();
  const control: Record<string, number> = {};
  const welcomed = new Uint8Array(C);
  let received = 0;
  let expected = 0;
  let sent = 0;
  let lost = 0;
  let stalls = 0;
  let lastDelivery = performance.now();
  let sending = false;
  let rr = 0;
  const clients: Client[] = [];

  // Each sender's turn sends `burst` messages, which leave in one write (see wsclient).
  const burst = Math.max(1, Math.floor(p.burst));
  let inTurn = 0;
  const sendOne = () => {
    const s = rr;
    if (++inTurn >= burst) {
      inTurn = 0;
      rr = rr + 1 === C ? 0 : rr + 1;
    }
    let t = s;
    if (fanout === 1) {
      t = Math.floor(Math.random() * (C - 1));
      if (t >= s) t++;
    }
    clients[s].sendString(frameFor(p, s, t, sent));
    sent++;
    expected += fanout;
  };
  const limit = Math.max(1, p.window) * fanout;
  const pump = () => {
    if (!sending || p.mode !== "max") return;
    // Bounded per call so one read never turns into an unbounded send loop.
    for (let budget = 4 * C; budget > 0 && expected - received < limit; budget--) sendOne();
  };
  const sink: Sink = {
    delivery(sendUs, nowUs) {
      received++;
      hist.record(nowUs - sendUs);
    },
    control(i, msg, raw) {
      const type = typeof msg?.type === "string" ? msg.type : raw.length ? "other" : "empty";
      const key = type === "error" ? `error:${String(msg?.code)}` : type;
      control[key] = (control[key] ?? 0) + 1;
      if (type === "welcome") welcomed[i] = 1;
    },
    chunk() {
      lastDelivery = performance.now();
      pump();
    },
  };

  try {
    const failed = await pool(C, p.concurrency, performance.now() + 30000, async (i) => {
      clients[i] = await open(p, i, sink, 65536);
    });
    if (failed > 0) throw new Error(`${failed} of ${C} connections failed`);
    if (p.dialect === "v1") {
      if (!await waitFor(() => welcomed.every((w) => w === 1), 10000)) {
        throw new Error("not every v1 connection got a welcome");
      }
    }
    for (let i = 0; i < C; i++) clients[i].sendString(`{"type":"online","from":"u${i}"}`);
    // Let presence storms (v1) and registrations settle before any message.
    await sleep(p.dialect === "v1" ? 300 : 100);

    sending = true;
    let ticker: ReturnType<typeof setInterval> | undefined;
    let rateStart = performance.now();
    let rateSent = 0;
    let timelineFrom = -1;
    let lastSlot = 0;
    const timeline: number[] = [];
    const tick = () => {
      const now = performance.now();
      if (timelineFrom >= 0) {
        const slot = Math.floor((now - timelineFrom) / 100);
        if (slot > lastSlot && timeline.length < 600) {
          timeline.push(received);
          lastSlot = slot;
        }
      }
      if (p.mode === "rate") {
        const due = Math.floor((p.rate * (now - rateStart)) / 1000);
        // A late timer sends what is due, but never more than 1,000 at once.
        for (let n = Math.min(due - rateSent, 1000); n > 0; n--) {
          sendOne();
          rateSent++;
        }
      } else {
        // A window that stops moving means lost messages: count them and go on.
        if (expected > received && now - lastDelivery > 1000) {
          lost += expected - received;
          expected = received;
          stalls++;
          lastDelivery = now;
        }
        pump();
      }
    };
    // Rate mode needs a fine clock; max mode only pumps and watches for stalls.
    ticker = setInterval(tick, p.mode === "rate" ? 1 : 20);
    try {
      pump();
      await sleep(p.warmupMs);
      // The measurement window.
      hist.reset();
      rateStart = performance.now();
      rateSent = 0;
      const srv0 = (await sampleProcess(p.serverPid)).cpuUs;
      const t0 = performance.now();
      const r0 = received;
      const s0 = sent;
      const cpu0 = process.cpuUsage();
      timelineFrom = t0;
      lastSlot = 0;
      timeline.push(r0);
      await sleep(p.durationMs);
      timelineFrom = -1;
      // Our own CPU is read before the sampling child runs, so its cost stays outside.
      const cpu1 = process.cpuUsage(cpu0);
      const t1 = performance.now();
      const r1 = received;
      const s1 = sent;
      const { cpuUs: srv1, rssKiB: rss } = await sampleProcess(p.serverPid);
      const latency = hist.summary();
      sending = false;
      clearInterval(ticker);
      ticker = undefined;
      // Drain what is in flight (bounded) so the close is clean.
      await waitFor(() => received >= expected, 2000);
      lost += Math.max(0, expected - received);

      const windowMs = t1 - t0;
      const deliveries = r1 - r0;
      const lgCpu = cpu1.user + cpu1.system;
      const srvCpu = srv1 - srv0;
      return {
        kind: "throughput",
        params: p,
        windowMs,
        sent: s1 - s0,
        deliveries,
        deliveriesPerSec: deliveries / (windowMs / 1000),
        sendsPerSec: (s1 - s0) / (windowMs / 1000),
        latencyUs: latency,
        loadgenCpuUs: lgCpu,
        loadgenCpuPerDeliveryUs: deliveries ? lgCpu / deliveries : NaN,
        loadgenCpuUtil: lgCpu / (windowMs * 1000),
        serverCpuUs: srvCpu,
        serverCpuPerDeliveryUs: deliveries ? srvCpu / deliveries : NaN,
        serverCpuUtil: srvCpu / (windowMs * 1000),
        serverRssKiB: rss,
        lost,
        stalls,
        timeline: timeline.slice(1).map((v, i) => v - timeline[i]),
        control,
      };
    } finally {
      if (ticker !== undefined) clearInterval(ticker);
    }
  } finally {
    sending = false;
    await Promise.all(clients.filter(Boolean).map((c) => c.close(1000)));
  }
}

// ---------------------------------------------------------------------------------------
// Idle connections.

async function runConnections(p: LoadParams): Promise<ConnectionsResult> {
  const clients: Client[] = [];
  const welcomed = new Set<number>();
  const sink: Sink = {
    delivery() {},
    control(i, msg) {
      if (msg?.type === "welcome") welcomed.add(i);
    },
    chunk() {},
  };
  const steps: ConnectionStep[] = [];
  let failed = 0;
  await sleep(300);
  const baseline = (await sampleProcess(p.serverPid)).rssKiB;
  try {
    for (const target of p.steps) {
      const from = clients.length;
      const t0 = performance.now();
      failed += await pool(target - from, p.concurrency, t0 + 60000, async (k) => {
        const i = from + k;
        // Idle sockets get a small read buffer: 10k × 64 KiB would swamp the load generator.
        const c = await open(p, i, sink, 2048);
        clients.push(c);
        if (p.dialect === "v1") {
          await waitFor(() => welcomed.has(i), 10000, 2);
          c.sendString(`{"type":"online","from":"u${i}"}`);
        }
      });
      const acceptMs = performance.now() - t0;
      await sleep(1000);
      const h = await healthz(p);
      const rss = (await sampleProcess(p.serverPid)).rssKiB;
      const n = clients.length;
      steps.push({
        connections: n,
        acceptMs,
        acceptsPerSec: (n - from) / (acceptMs / 1000),
        rssKiB: rss,
        rssPerConnKiB: n ? (rss - baseline) / n : NaN,
        healthzConnections: h?.connections ?? -1,
      });
      console.error(
        `loadgen: ${n} idle: accept ${acceptMs.toFixed(0)} ms, rss ${(rss / 1024).toFixed(1)} MiB`,
      );
    }
  } finally {
    await Promise.all(clients.map((c) => c.close(2000)));
  }
  await sleep(p.closeWaitMs);
  return {
    kind: "connections",
    params: p,
    baselineRssKiB: baseline,
    steps,
    failed,
    rssAfterCloseKiB: (await sampleProcess(p.serverPid)).rssKiB,
    healthzAfterClose: await healthz(p),
  };
}

// ---------------------------------------------------------------------------------------
// Churn: connect / identify / join / close.

async function runChurn(p: LoadParams): Promise<ChurnResult> {
  const cycles: ChurnCycle[] = [];
  await sleep(300);
  const baseline = (await sampleProcess(p.serverPid)).rssKiB;
  // Per-connection waiters for welcome and acks, keyed by connection index.
  const waiters = new Map<number, (msg: Record<string, unknown>) => void>();
  const sink: Sink = {
    delivery() {},
    control(i, msg) {
      if (!msg) return;
      if (msg.type === "welcome" || msg.type === "ack" || msg.type === "error") {
        waiters.get(i)?.(msg);
      }
    },
    chunk() {},
  };
  const expect = (i: number, type: string, timeoutMs: number) =>
    new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        waiters.delete(i);
        reject(new Error(`no ${type} within ${timeoutMs} ms`));
      }, timeoutMs);
      waiters.set(i, (msg) => {
        clearTimeout(t);
        waiters.delete(i);
        if (msg.type === type) resolve();
        else reject(new Error(`got ${JSON.stringify(msg)} instead of ${type}`));
      });
    });
  let serial = 0;
  for (let cycle = 0; cycle < p.cycles; cycle++) {
    const t0 = performance.now();
    const failed = await pool(p.perCycle, p.concurrency, t0 + 120000, async () => {
      const i = serial++;
      const v1 = p.dialect === "v1";
      // The waiter must exist before the first byte can arrive.
      const welcome = v1 ? expect(i, "welcome", 10000) : Promise.resolve();
      let c: Client | undefined;
      try {
        c = await open(p, i, sink, 2048);
        await welcome;
        c.sendString(`{"type":"online","from":"c${i}"}`);
        if (v1) {
          const ack = expect(i, "ack", 10000);
          c.sendString(`{"type":"join","group":"g${i % 16}","id":1}`);
          await ack;
        }
      } finally {
        welcome.catch(() => {});
        waiters.delete(i);
        await c?.close(1000);
      }
    });
    const ms = performance.now() - t0;
    // Cleanup must reach 0 connections and 0 users; bounded wait.
    let h: Healthz | null = null;
    const d0 = performance.now();
    for (let k = 0; k < 100; k++) {
      h = await healthz(p);
      if (h && h.connections === 0 && h.users === 0) break;
      await sleep(50);
    }
    const drainMs = performance.now() - d0;
    const rss = (await sampleProcess(p.serverPid)).rssKiB;
    cycles.push({
      connects: p.perCycle - failed,
      failed,
      ms,
      connectsPerSec: (p.perCycle - failed) / (ms / 1000),
      drainMs,
      healthz: h,
      rssKiB: rss,
    });
    console.error(
      `loadgen: churn cycle ${cycle + 1}: ${((p.perCycle - failed) / (ms / 1000)).toFixed(0)}/s, ` +
        `healthz ${JSON.stringify(h)}, rss ${(rss / 1024).toFixed(1)} MiB`,
    );
  }
  return { kind: "churn", params: p, baselineRssKiB: baseline, cycles };
}

/** Runs the workload the parameters name. */
export function runLoad(p: LoadParams): Promise<LoadResult> {
  switch (p.workload) {
    case "broadcast":
    case "direct":
      return runThroughput(p);
    case "connections":
      return runConnections(p);
    case "churn":
      return runChurn(p);
    default:
      throw new Error(`unknown workload ${p.workload}`);
  }
}

if (import.meta.main) {
  // A hard stop: whatever happens, the load generator never outlives its budget.
  const p = parseParams(Deno.args);
  if (p.readEveryMs > 0 && p.mode === "max") readGate = sharedTick(p.readEveryMs);
  const budgetMs = 30000 + p.warmupMs + p.durationMs + p.closeWaitMs +
    (p.workload === "churn" ? p.cycles * 130000 : 0) +
    (p.workload === "connections" ? p.steps.length * 62000 : 0);
  const guard = setTimeout(() => {
    console.error(`loadgen: over its ${budgetMs} ms budget, exiting`);
    Deno.exit(3);
  }, budgetMs);
  try {
    const result = await runLoad(p);
    console.log(JSON.stringify(result));
  } catch (e) {
    console.error(`loadgen: ${(e as Error).stack ?? e}`);
    Deno.exitCode = 1;
  } finally {
    clearTimeout(guard);
  }
}
