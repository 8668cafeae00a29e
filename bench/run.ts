/**
 * `deno task bench`: Switchboard against its peers, side by side.
 *
 * Starts each server itself (pinned to core 0 with `taskset` where present), drives it
 * with bench/loadgen.ts as a separate process (pinned to core 1), alternates the order of
 * the servers across rounds, and prints Markdown tables of medians and min–max with the
 * ratio to the seed (Node + ws) and to deno-bare. JSON goes to bench/results/.
 *
 * Flags: --quick (one short round, < 60 s, for CI), --rounds N,
 * --workloads broadcast,direct,connections,churn, --servers switchboard,seed,deno-bare,bun.
 * Exit code 1 only when something broke (a server did not start, the load generator
 * crashed, no deliveries): the figures themselves are never asserted.
 * @module
 */

import type {
  ChurnResult,
  ConnectionsResult,
  LoadParams,
  LoadResult,
  ThroughputResult,
} from "./loadgen.ts";
import { median, minMax } from "./stats.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const BENCH = `${ROOT}/bench`;
const PEERS = `${BENCH}/peers`;
const decoder = new TextDecoder();

/** The servers the bench knows. */
export type ServerName = "switchboard" | "seed" | "deno-bare" | "bun";
type Dialect = "seed" | "v1";
type Workload = "broadcast" | "direct" | "connections" | "churn";

const ALL_SERVERS: ServerName[] = ["switchboard", "seed", "deno-bare", "bun"];
const ALL_WORKLOADS: Workload[] = ["broadcast", "direct", "connections", "churn"];

/** Flags Switchboard gets beyond its defaults, so that no limit throttles the load. */
export const SWITCHBOARD_RAISED_FLAGS: readonly string[] = [
  "--rate",
  "1000000",
  "--burst",
  "1000000",
  "--max-connections",
  "20000",
  "--slow-consumer-bytes",
  "67108864",
  "--log-level",
  "warn",
];

/** Parsed command line of the runner. */
export interface RunFlags {
  quick: boolean;
  rounds: number;
  workloads: Workload[];
  servers: ServerName[];
}

/** Parses the runner's flags. */
export function parseFlags(args: string[]): RunFlags {
  const f: RunFlags = { quick: false, rounds: 3, workloads: ALL_WORKLOADS, servers: ALL_SERVERS };
  let roundsGiven = false;
  for (let i = 0; i < args.length; i++) {
    const [name, inline] = args[i].split("=", 2);
    const value = () => inline ?? args[++i] ?? "";
    switch (name) {
      case "--quick":
        f.quick = true;
        break;
      case "--rounds":
        f.rounds = Math.max(1, Math.floor(Number(value())));
        roundsGiven = true;
        if (!Number.isFinite(f.rounds)) throw new Error("--rounds needs a number");
        break;
      case "--workloads":
        f.workloads = listOf(value(), ALL_WORKLOADS, "workload");
        break;
      case "--servers":
        f.servers = listOf(value(), ALL_SERVERS, "server");
        break;
      case "--help":
      case "-h":
        console.log(
          "deno task bench [--quick] [--rounds N] [--workloads broadcast,direct,connections,churn]" +
            " [--servers switchboard,seed,deno-bare,bun]",
        );
        Deno.exit(0);
        break;
      default:
        throw new Error(`unknown flag ${args[i]}`);
    }
  }
  if (f.quick && !roundsGiven) f.rounds = 1;
  return f;
}

// ---------------------------------------------------------------------------------------
// Processes.

const log = (msg: string): void => console.error(`bench: ${msg}`);

async function commandWorks(cmd: string, args: string[], cwd = ROOT): Promise<string | null> {
  try {
    const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" })
      .output();
    return out.success ? decoder.decode(out.stdout).trim() : null;
  } catch {
    return null;
  }
}

/** How processes are pinned: `taskset -c N` when it exists, else nothing. */
let taskset = false;

/** Wraps a command so it runs with the hard fd limit as soft limit, pinned to `core`. */
function wrap(core: number, argv: string[]): string[] {
  // exec keeps the pid, so the pid we get is the server's own (for /proc sampling).
  const pin = taskset ? ["taskset", "-c", String(core)] : [];
  return ["sh", "-c", 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"', "sh", ...pin, ...argv];
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A running server process. */
interface Running {
  name: ServerName;
  port: number;
  pid: number;
  child: Deno.ChildProcess;
  tail: string[];
  exited: boolean;
}

const running = new Set<Running>();
/** Load generators in flight, killed with the servers on any exit path. */
const loadgens = new Set<Deno.ChildProcess>();

/** A comma-separated flag value, each item one of `allowed`. */
function listOf<T extends string>(value: string, allowed: readonly T[], what: string): T[] {
  const items = value.split(",").filter(Boolean);
  for (const item of items) {
    if (!allowed.includes(item as T)) throw new Error(`unknown ${what} ${item}`);
  }
  return items as T[];
}

/** `deno task start`'s command from deno.json, without its leading `deno`. */
async function startTask(): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}/deno.json`));
  const words = String(config.tasks.start).split(/\s+/);
  if (words[0] !== "deno") throw new Error(`unexpected start task: ${config.tasks.start}`);
  return words.slice(1);
}

function drain(stream: ReadableStream<Uint8Array>, tail: string[]): void {
  (async () => {
    try {
      // The cast settles a clash between Deno's and Node's stream types when both are loaded.
      const decoder = new TextDecoderStream() as unknown as TransformStream<Uint8Array, string>;
      for await (const chunk of stream.pipeThrough(decoder)) {
        for (const line of chunk.split("\n")) {
          if (!line) continue;
          tail.push(line);
          if (tail.length > 30) tail.shift();
        }
      }
    } catch { /* the process went away */ }
  })();
}

interface ServerSpec {
  name: ServerName;
  dialects: Dialect[];
  argv(port: number): string[];
}

/** Starts `argv` in the repository root with stdout and stderr piped. */
function spawnPiped(argv: string[]): Deno.ChildProcess {
  return new Deno.Command(argv[0], {
    args: argv.slice(1),
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function startServer(spec: ServerSpec): Promise<Running> {
  const port = freePort();
  const argv = wrap(0, spec.argv(port));
  const child = spawnPiped(argv);
  const r: Running = { name: spec.name, port, pid: child.pid, child, tail: [], exited: false };
  running.add(r);
  drain(child.stdout, r.tail);
  drain(child.stderr, r.tail);
  child.status.then(() => r.exited = true);
  const deadline = performance.now() + 20000;
  while (performance.now() < deadline) {
    if (r.exited) break;
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      await res.body?.cancel();
      if (res.ok) return r;
    } catch { /* not listening yet */ }
    await new Promise((res) => setTimeout(res, 50));
  }
  await stopServer(r);
  throw new Error(`${spec.name} did not become ready on port ${port}:\n  ${r.tail.join("\n  ")}`);
}

async function stopServer(r: Running): Promise<void> {
  if (!r.exited) {
    try {
      r.child.kill("SIGTERM");
    } catch { /* gone */ }
    const t = setTimeout(() => {
      try {
        r.child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 3000);
    await r.child.status;
    clearTimeout(t);
  }
  running.delete(r);
}

function killAll(): void {
  for (const c of loadgens) {
    try {
      c.kill("SIGKILL");
    } catch { /* gone */ }
  }
  for (const r of running) {
    try {
      r.child.kill("SIGKILL");
    } catch { /* gone */ }
  }
}

/** Runs the load generator (pinned to core 1) and returns its JSON result. */
async function runLoadgen(params: Partial<LoadParams>, budgetMs: number): Promise<LoadResult> {
  const args: string[] = [];
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined) continue;
    args.push(`--${k.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())}`);
    args.push(Array.isArray(v) ? v.join(",") : String(v));
  }
  const argv = wrap(1, [
    Deno.execPath(),
    "run",
    "--allow-net=127.0.0.1",
    "--allow-run=cat",
    `${BENCH}/loadgen.ts`,
    ...args,
  ]);
  const child = spawnPiped(argv);
  loadgens.add(child);
  const tail: string[] = [];
  drain(child.stderr, tail);
  const kill = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, budgetMs + 15000);
  try {
    const out = await new Response(child.stdout).text();
    const status = await child.status;
    if (!status.success) {
      throw new Error(`load generator failed (${status.code}):\n  ${tail.join("\n  ")}`);
    }
    return JSON.parse(out.trim().split("\n").pop() ?? "") as LoadResult;
  } finally {
    clearTimeout(kill);
    loadgens.delete(child);
  }
}

// ---------------------------------------------------------------------------------------
// What is measured.

/** One measured case: a workload with fixed parameters. */
interface Case {
  id: string;
  workload: Workload;
  title: string;
  params: Partial<LoadParams>;
  /** Whether Switchboard runs it in both dialects (else seed dialect only). */
  bothDialects: boolean;
}

/** One row of a table: a server in one dialect. */
interface Subject {
  server: ServerName;
  dialect: Dialect;
  label: string;
}

interface Record_ {
  round: number;
  caseId: string;
  server: ServerName;
  dialect: Dialect;
  label: string;
  result?: LoadResult;
  error?: string;
}

function subjectsFor(c: Case, servers: ServerSpec[]): Subject[] {
  const out: Subject[] = [];
  for (const s of servers) {
    const dialects = s.name === "switchboard" && c.bothDialects ? s.dialects : ["seed" as Dialect];
    for (const d of dialects) {
      const label = s.name === "switchboard"
        ? `switchboard ${d === "v1" ? "v1" : "seed-relay"}`
        : s.name;
      out.push({ server: s.name, dialect: d, label });
    }
  }
  return out;
}

function throughputCases(quick: boolean, workloads: Workload[]): Case[] {
  const t = quick ? { warmupMs: 300, durationMs: 1000 } : { warmupMs: 700, durationMs: 2500 };
  const cases: Case[] = [];
  if (workloads.includes("broadcast")) {
    const shapes = quick ? [[50, 64]] : [[50, 64], [50, 1024], [200, 64], [200, 1024]];
    for (const [clients, size] of shapes) {
      cases.push({
        id: `broadcast-max-c${clients}-${size}`,
        workload: "broadcast",
        title: `broadcast max, C=${clients}, ${size === 1024 ? "1 KiB" : `${size} B`}`,
        // 64 messages in flight keep every server busy despite loopback wake-up latency.
        params: { workload: "broadcast", mode: "max", clients, size, window: 64, ...t },
        bothDialects: true,
      });
    }
  }
  if (workloads.includes("direct")) {
    cases.push({
      id: "direct-max-c100-64",
      workload: "direct",
      title: "direct max, C=100, 64 B",
      params: { workload: "direct", mode: "max", clients: 100, size: 64, window: 4000, ...t },
      bothDialects: true,
    });
  }
  return cases;
}

function rateCase(quick: boolean, rate: number): Case {
  const t = quick ? { warmupMs: 300, durationMs: 1000 } : { warmupMs: 700, durationMs: 3000 };
  return {
    id: "broadcast-rate-c200-64",
    workload: "broadcast",
    title: `broadcast fixed rate, C=200, 64 B, ${rate.toFixed(0)} msg/s`,
    params: { workload: "broadcast", mode: "rate", clients: 200, size: 64, rate, ...t },
    bothDialects: true,
  };
}

function connectionsCase(quick: boolean): Case {
  return {
    id: "connections",
    workload: "connections",
    title: "idle connections",
    params: quick
      ? { workload: "connections", steps: [1000], closeWaitMs: 1000, concurrency: 64 }
      : { workload: "connections", steps: [1000, 5000, 10000], closeWaitMs: 5000, concurrency: 64 },
    bothDialects: true,
  };
}

function churnCase(quick: boolean): Case {
  return {
    id: "churn",
    workload: "churn",
    title: quick ? "churn, 1 cycle × 1,000" : "churn, 4 cycles × 5,000",
    params: quick
      ? { workload: "churn", cycles: 1, perCycle: 1000, concurrency: 32 }
      : { workload: "churn", cycles: 4, perCycle: 5000, concurrency: 32 },
    bothDialects: true,
  };
}

function budgetOf(c: Case): number {
  const p = c.params;
  if (c.workload === "connections") return 30000 + (p.steps?.length ?? 1) * 62000;
  if (c.workload === "churn") return 30000 + (p.cycles ?? 1) * 130000;
  return 40000 + (p.warmupMs ?? 0) + (p.durationMs ?? 0);
}

// ---------------------------------------------------------------------------------------
// Reporting.

const fmtInt = (n: number): string =>
  Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "–";
const fmt1 = (n: number): string => Number.isFinite(n) ? n.toFixed(n >= 100 ? 0 : 1) : "–";
const fmt2 = (n: number): string => Number.isFinite(n) ? n.toFixed(2) : "–";
const fmtMs = (us: number): string => Number.isFinite(us) ? (us / 1000).toFixed(2) : "–";
const ratio = (a: number, b: number): string =>
  Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : "–";

function table(head: string[], rows: string[][]): string {
  const lines = [`| ${head.join(" | ")} |`, `| ${head.map(() => "---").join(" | ")} |`];
  for (const r of rows) lines.push(`| ${r.join(" | ")} |`);
  return lines.join("\n");
}

/** Values of one metric for one case and subject across rounds. */
function values<T extends LoadResult>(
  records: Record_[],
  caseId: string,
  label: string,
  pick: (r: T) => number,
): number[] {
  return records
    .filter((r) => r.caseId === caseId && r.label === label && r.result)
    .map((r) => pick(r.result as T));
}

function medOf<T extends LoadResult>(
  records: Record_[],
  caseId: string,
  label: string,
  pick: (r: T) => number,
): number {
  return median(values(records, caseId, label, pick));
}

function rangeOf(xs: number[], f: (n: number) => string): string {
  const [lo, hi] = minMax(xs);
  return Number.isFinite(lo) ? `${f(lo)}–${f(hi)}` : "–";
}

function throughputTable(records: Record_[], c: Case, subjects: Subject[]): string {
  const dps = (r: ThroughputResult) => r.deliveriesPerSec;
  const cpu = (r: ThroughputResult) => r.serverCpuPerDeliveryUs;
  const seedMed = medOf(records, c.id, "seed", dps);
  const bareMed = medOf(records, c.id, "deno-bare", dps);
  const seedCpu = medOf(records, c.id, "seed", cpu);
  const bareCpu = medOf(records, c.id, "deno-bare", cpu);
  const rows = subjects.map((s) => {
    const xs = values(records, c.id, s.label, dps);
    const m = median(xs);
    const srvUs = medOf(records, c.id, s.label, cpu);
    const lgUs = medOf(records, c.id, s.label, (r: ThroughputResult) => r.loadgenCpuPerDeliveryUs);
    const srvUtil = medOf(records, c.id, s.label, (r: ThroughputResult) => r.serverCpuUtil);
    const lgUtil = medOf(records, c.id, s.label, (r: ThroughputResult) => r.loadgenCpuUtil);
    const p99 = medOf(records, c.id, s.label, (r: ThroughputResult) => r.latencyUs.p99);
    const errs = records.filter((r) => r.caseId === c.id && r.label === s.label && r.error).length;
    return [
      s.label,
      fmtInt(m) + (errs ? ` (${errs} failed)` : ""),
      rangeOf(xs, fmtInt),
      ratio(m, seedMed),
      ratio(m, bareMed),
      fmt2(srvUs),
      ratio(seedCpu, srvUs),
      ratio(bareCpu, srvUs),
      `${fmtInt(srvUtil * 100)} %`,
      fmt2(lgUs),
      `${fmtInt(lgUtil * 100)} %`,
      fmtMs(p99),
    ];
  });
  return `### ${c.title}\n\n` + table(
    [
      "server",
      "deliveries/s (median)",
      "min–max",
      "× seed",
      "× deno-bare",
      "server CPU µs/delivery",
      "× seed by CPU",
      "× deno-bare by CPU",
      "server CPU",
      "loadgen CPU µs/delivery",
      "loadgen CPU",
      "p99 ms (window full)",
    ],
    rows,
  );
}

function latencyTable(records: Record_[], c: Case, subjects: Subject[]): string {
  const p99 = (r: ThroughputResult) => r.latencyUs.p99;
  const seedP99 = medOf(records, c.id, "seed", p99);
  const bareP99 = medOf(records, c.id, "deno-bare", p99);
  const rows = subjects.map((s) => {
    const get = (f: (r: ThroughputResult) => number) => medOf(records, c.id, s.label, f);
    const p99s = values(records, c.id, s.label, p99);
    return [
      s.label,
      fmtInt(get((r) => r.deliveriesPerSec)),
      fmtMs(get((r) => r.latencyUs.p50)),
      fmtMs(get((r) => r.latencyUs.p90)),
      fmtMs(median(p99s)),
      rangeOf(p99s, fmtMs),
      fmtMs(get((r) => r.latencyUs.max)),
      ratio(median(p99s), seedP99),
      ratio(median(p99s), bareP99),
    ];
  });
  return `### ${c.title}\n\n` + table(
    [
      "server",
      "deliveries/s",
      "p50 ms",
      "p90 ms",
      "p99 ms (median)",
      "p99 min–max",
      "max ms",
      "p99 ÷ seed",
      "p99 ÷ deno-bare",
    ],
    rows,
  );
}

function connectionsTable(records: Record_[], c: Case, subjects: Subject[]): string {
  const steps = (c.params.steps ?? []) as number[];
  const rows: string[][] = [];
  for (const s of subjects) {
    for (let k = 0; k < steps.length; k++) {
      const per = values(
        records,
        c.id,
        s.label,
        (r: ConnectionsResult) => r.steps[k]?.rssPerConnKiB ?? NaN,
      );
      const bare = medOf(
        records,
        c.id,
        "deno-bare",
        (r: ConnectionsResult) => r.steps[k]?.rssPerConnKiB ?? NaN,
      );
      const seed = medOf(
        records,
        c.id,
        "seed",
        (r: ConnectionsResult) => r.steps[k]?.rssPerConnKiB ?? NaN,
      );
      const acc = medOf(
        records,
        c.id,
        s.label,
        (r: ConnectionsResult) => r.steps[k]?.acceptMs ?? NaN,
      );
      const m = median(per);
      const last = k === steps.length - 1;
      const after = medOf(records, c.id, s.label, (r: ConnectionsResult) => r.rssAfterCloseKiB);
      const hz = values(
        records,
        c.id,
        s.label,
        (r: ConnectionsResult) => r.healthzAfterClose?.connections ?? NaN,
      );
      rows.push([
        s.label,
        fmtInt(steps[k]),
        fmt1(m),
        rangeOf(per, fmt1),
        Number.isFinite(m - seed) ? `${(m - seed) >= 0 ? "+" : ""}${fmt1(m - seed)}` : "–",
        Number.isFinite(m - bare) ? `${(m - bare) >= 0 ? "+" : ""}${fmt1(m - bare)}` : "–",
        fmtInt(acc),
        last ? fmt1(after / 1024) : "",
        last ? (hz.length ? hz.join("/") : "–") : "",
      ]);
    }
  }
  return `### Idle connections\n\n` + table(
    [
      "server",
      "connections",
      "RSS/conn KiB (median)",
      "min–max",
      "− seed KiB",
      "− deno-bare KiB",
      "time to accept ms",
      "RSS 5 s after closing all, MiB",
      "/healthz connections after",
    ],
    rows,
  );
}

function churnTable(records: Record_[], c: Case, subjects: Subject[]): string {
  const cps = (r: ChurnResult) => median(r.cycles.map((x) => x.connectsPerSec));
  const seedMed = medOf(records, c.id, "seed", cps);
  const bareMed = medOf(records, c.id, "deno-bare", cps);
  const rows = subjects.map((s) => {
    const xs = values(records, c.id, s.label, cps);
    const rs = records.filter((r) => r.caseId === c.id && r.label === s.label && r.result)
      .map((r) => r.result as ChurnResult);
    const zero = rs.every((r) =>
      r.cycles.every((x) => x.healthz?.connections === 0 && x.healthz?.users === 0)
    );
    const failed = rs.reduce((n, r) => n + r.cycles.reduce((m, x) => m + x.failed, 0), 0);
    const rssCycles = rs.map((r) => r.cycles.map((x) => (x.rssKiB / 1024).toFixed(0)).join("→"));
    const growth = rs.map((r) => {
      const n = r.cycles.length;
      return n >= 4 ? r.cycles[3].rssKiB / r.cycles[1].rssKiB - 1 : NaN;
    });
    return [
      s.label,
      fmtInt(median(xs)),
      rangeOf(xs, fmtInt),
      ratio(median(xs), seedMed),
      ratio(median(xs), bareMed),
      rs.length ? (zero ? "0 ✓" : "not 0 ✗") : "–",
      String(failed),
      rssCycles.join("; ") || "–",
      Number.isFinite(median(growth)) ? `${(median(growth) * 100).toFixed(1)} %` : "–",
    ];
  });
  return `### ${c.title}\n\n` + table(
    [
      "server",
      "connects/s (median)",
      "min–max",
      "× seed",
      "× deno-bare",
      "/healthz after each cycle",
      "failed",
      "RSS after each cycle, MiB (per round)",
      "RSS cycle 4 vs 2",
    ],
    rows,
  );
}

// ---------------------------------------------------------------------------------------
// Main.

async function findBun(): Promise<string | null> {
  const candidates = [
    Deno.env.get("BUN"),
    "bun",
    `${PEERS}/node_modules/bun/bin/bun.exe`,
    `${PEERS}/node_modules/@oven/bun-linux-x64/bin/bun`,
    `${PEERS}/node_modules/@oven/bun-linux-x64-baseline/bin/bun`,
  ];
  for (const c of candidates) {
    if (c && await commandWorks(c, ["--version"])) return c;
  }
  return null;
}

async function ensurePeerModules(): Promise<boolean> {
  try {
    await Deno.stat(`${PEERS}/node_modules/ws/package.json`);
    return true;
  } catch { /* not installed yet */ }
  log("installing bench/peers (npm ci)…");
  const out = await new Deno.Command("npm", {
    args: ["ci", "--prefix", PEERS, "--no-audit", "--no-fund"],
    cwd: ROOT,
    stdout: "inherit",
    stderr: "inherit",
  }).output().catch(() => null);
  return out?.success ?? false;
}

async function main(): Promise<number> {
  const flags = parseFlags(Deno.args);
  const started = performance.now();
  const notes: string[] = [];
  let broken = false;

  taskset = (await commandWorks("taskset", ["-c", "0", "true"])) !== null;
  if (!taskset) notes.push("`taskset` not available: server and load generator are NOT pinned.");

  const specs: ServerSpec[] = [];
  for (const name of flags.servers) {
    if (name === "switchboard") {
      try {
        await Deno.stat(`${ROOT}/main.ts`);
        // Exactly what `deno task start` runs (runtime flags and permissions), plus the port.
        const start = await startTask();
        specs.push({
          name,
          dialects: ["seed", "v1"],
          argv: (port) => [
            Deno.execPath(),
            ...start,
            "--port",
            String(port),
            "--hostname",
            "127.0.0.1",
            ...SWITCHBOARD_RAISED_FLAGS,
          ],
        });
      } catch {
        notes.push("**switchboard skipped**: main.ts not found.");
      }
    } else if (name === "deno-bare") {
      specs.push({
        name,
        dialects: ["seed"],
        argv: (port) => [
          Deno.execPath(),
          "run",
          "--allow-net",
          "--allow-env",
          `${PEERS}/deno_bare.ts`,
          String(port),
        ],
      });
    } else if (name === "seed") {
      if (!(await commandWorks("node", ["--version"]))) {
        notes.push("**seed skipped**: `node` not found.");
      } else if (!(await ensurePeerModules())) {
        notes.push("**seed skipped**: `npm ci --prefix bench/peers` failed (no `ws`).");
      } else {
        specs.push({
          name,
          dialects: ["seed"],
          argv: (port) => ["node", `${PEERS}/seed.mjs`, String(port)],
        });
      }
    } else if (name === "bun") {
      await ensurePeerModules();
      const bun = await findBun();
      if (!bun) {
        notes.push("**bun skipped**: no runnable Bun binary (npm package `bun` not installed).");
      } else {
        specs.push({
          name,
          dialects: ["seed"],
          argv: (port) => [bun, `${PEERS}/bun_pubsub.js`, String(port)],
        });
      }
    }
  }
  for (const n of notes) log(n.replaceAll("*", ""));
  if (specs.length === 0) {
    log("no server to run");
    return 1;
  }

  const versions: Record<string, string> = {
    deno: Deno.version.deno,
    node: (await commandWorks("node", ["--version"])) ?? "–",
    bun: specs.some((s) => s.name === "bun")
      ? (await findBun().then((b) => b && commandWorks(b, ["--version"]))) ?? "–"
      : "–",
  };
  try {
    versions.ws =
      JSON.parse(await Deno.readTextFile(`${PEERS}/node_modules/ws/package.json`)).version;
  } catch { /* not installed */ }
  const cpuModel =
    (await commandWorks("sh", ["-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"])) ?? "?";
  const cores = navigator.hardwareConcurrency;

  const records: Record_[] = [];
  const runCase = async (c: Case, round: number, order: ServerSpec[]) => {
    for (const spec of order) {
      const subs = subjectsFor(c, [spec]);
      let server: Running | undefined;
      try {
        for (const s of subs) {
          // A fresh server for each measurement of memory; throughput cases share one
          // process per server and case (both dialects), started fresh for each case.
          if (!server || c.workload === "connections" || c.workload === "churn") {
            if (server) await stopServer(server);
            server = await startServer(spec);
          }
          const rec: Record_ = {
            round,
            caseId: c.id,
            server: s.server,
            dialect: s.dialect,
            label: s.label,
          };
          records.push(rec);
          const t0 = performance.now();
          try {
            const result = await runLoadgen(
              { ...c.params, dialect: s.dialect, port: server.port, serverPid: server.pid },
              budgetOf(c),
            );
            rec.result = result;
            log(
              `[round ${round}] ${c.title} · ${s.label}: ${summarize(result)} (${
                ((performance.now() - t0) / 1000).toFixed(1)
              } s)`,
            );
            const problem = brokenResult(result);
            if (problem) {
              rec.error = problem;
              broken = true;
              log(`  BROKEN: ${problem}`);
            }
          } catch (e) {
            rec.error = (e as Error).message;
            broken = true;
            log(`[round ${round}] ${c.title} · ${s.label}: FAILED: ${rec.error}`);
          }
          if (server.exited) {
            broken = true;
            rec.error ??= "server exited";
            log(`  server ${spec.name} exited:\n  ${server.tail.join("\n  ")}`);
            server = undefined;
          }
        }
      } catch (e) {
        broken = true;
        records.push({
          round,
          caseId: c.id,
          server: spec.name,
          dialect: "seed",
          label: spec.name,
          error: (e as Error).message,
        });
        log(`[round ${round}] ${c.title} · ${spec.name}: FAILED: ${(e as Error).message}`);
      } finally {
        if (server) await stopServer(server);
      }
    }
  };
  const orderFor = (round: number) => {
    // A B C D, then B C D A, …: no server always goes first or last.
    const k = (round - 1) % specs.length;
    return [...specs.slice(k), ...specs.slice(0, k)];
  };

  const tCases = throughputCases(flags.quick, flags.workloads);
  const cases: Case[] = [...tCases];
  for (let round = 1; round <= flags.rounds; round++) {
    for (const c of tCases) await runCase(c, round, orderFor(round));
  }

  // Fixed rate at half the seed's max broadcast rate (C=200, 64 B), measured above.
  if (flags.workloads.includes("broadcast") && !flags.quick) {
    const maxId = "broadcast-max-c200-64";
    let base = medOf(records, maxId, "seed", (r: ThroughputResult) => r.deliveriesPerSec);
    let basis = "seed";
    if (!Number.isFinite(base)) {
      const all = specs.flatMap((s) => subjectsFor(tCases[0], [s]))
        .map((s) => medOf(records, maxId, s.label, (r: ThroughputResult) => r.deliveriesPerSec))
        .filter(Number.isFinite);
      base = all.length ? Math.min(...all) : 20000 * 199;
      basis = "the slowest server (no seed figure)";
    }
    const rate = Math.max(1, (base / 2) / 199);
    notes.push(
      `Fixed-rate broadcast sends ${
        rate.toFixed(0)
      } messages/s: half of ${basis}'s median max (C=200, 64 B).`,
    );
    const rc = rateCase(flags.quick, rate);
    cases.push(rc);
    for (let round = 1; round <= flags.rounds; round++) await runCase(rc, round, orderFor(round));
  }
  if (flags.workloads.includes("connections")) {
    const cc = connectionsCase(flags.quick);
    cases.push(cc);
    for (let round = 1; round <= flags.rounds; round++) await runCase(cc, round, orderFor(round));
  }
  if (flags.workloads.includes("churn")) {
    const ch = churnCase(flags.quick);
    cases.push(ch);
    for (let round = 1; round <= flags.rounds; round++) await runCase(ch, round, orderFor(round));
  }

  // Report.
  const out: string[] = [];
  out.push(
    `## Switchboard bench${flags.quick ? " (--quick: one short round, figures not asserted)" : ""}`,
  );
  out.push("");
  out.push(
    `${flags.rounds} round(s), servers in rotating order; median and min–max across rounds. ` +
      `Machine: ${cores} cores, ${cpuModel.trim()}. ` +
      (taskset
        ? "Server pinned to core 0 and load generator to core 1 (`taskset`)."
        : "No pinning (`taskset` missing)."),
  );
  out.push(
    `Versions: Deno ${versions.deno}, Node ${versions.node}, ws ${
      versions.ws ?? "–"
    }, Bun ${versions.bun}. ` +
      `Switchboard flags raised: \`${SWITCHBOARD_RAISED_FLAGS.join(" ")}\`. ` +
      "Load generator: raw WebSocket client on `Deno.connect` (bench/wsclient.ts).",
  );
  for (const n of notes) out.push(`\n> ${n}`);
  for (const c of cases) {
    const subs = subjectsFor(c, specs);
    out.push("");
    if (c.params.mode === "rate") out.push(latencyTable(records, c, subs));
    else if (c.workload === "connections") out.push(connectionsTable(records, c, subs));
    else if (c.workload === "churn") out.push(churnTable(records, c, subs));
    else out.push(throughputTable(records, c, subs));
  }
  const targets = targetLines(records, flags);
  if (targets.length) {
    out.push("\n### Targets (issue 4)\n");
    out.push(...targets.map((t) => `- ${t}`));
  }
  const elapsed = (performance.now() - started) / 1000;
  out.push(`\nTotal time ${elapsed.toFixed(0)} s.`);
  console.log(out.join("\n"));

  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const file = `${BENCH}/results/${stamp}${flags.quick ? "-quick" : ""}.json`;
  try {
    await Deno.mkdir(`${BENCH}/results`, { recursive: true });
    await Deno.writeTextFile(
      file,
      JSON.stringify(
        {
          date: new Date().toISOString(),
          flags,
          versions,
          cpuModel: cpuModel.trim(),
          cores,
          taskset,
          notes,
          records,
        },
        null,
        1,
      ),
    );
    log(`results written to ${file.slice(ROOT.length + 1)}`);
  } catch (e) {
    log(`could not write ${file}: ${(e as Error).message}`);
  }
  return broken ? 1 : 0;
}

function summarize(r: LoadResult): string {
  if (r.kind === "throughput") {
    const l = r.latencyUs;
    return `${fmtInt(r.deliveriesPerSec)} deliveries/s, p50 ${fmtMs(l.p50)} p99 ${
      fmtMs(l.p99)
    } ms, ` +
      `server ${fmt2(r.serverCpuPerDeliveryUs)} µs/delivery (${
        fmtInt(r.serverCpuUtil * 100)
      } %), ` +
      `loadgen ${fmt2(r.loadgenCpuPerDeliveryUs)} µs/delivery (${
        fmtInt(r.loadgenCpuUtil * 100)
      } %)`;
  }
  if (r.kind === "connections") {
    return r.steps.map((s) =>
      `${s.connections}: ${fmt1(s.rssPerConnKiB)} KiB/conn in ${fmtInt(s.acceptMs)} ms`
    )
      .join(", ") +
      `; after close ${
        fmt1(r.rssAfterCloseKiB / 1024)
      } MiB, healthz ${r.healthzAfterClose?.connections}`;
  }
  return r.cycles.map((c) => `${fmtInt(c.connectsPerSec)}/s→${c.healthz?.connections ?? "?"}`).join(
    " ",
  );
}

/** Why a result means the bench (not the server's speed) is broken, or null. */
function brokenResult(r: LoadResult): string | null {
  if (r.kind === "throughput") {
    if (r.deliveries === 0) return "zero deliveries";
    const errors = Object.keys(r.control).filter((k) => k.startsWith("error:"));
    if (errors.length) {
      return `server errors: ${errors.map((k) => `${k}×${r.control[k]}`).join(", ")}`;
    }
    return null;
  }
  if (r.kind === "connections") {
    const total = r.steps.at(-1)?.connections ?? 0;
    const wanted = r.params.steps.at(-1) ?? 0;
    if (total < wanted * 0.99) {
      return `only ${total} of ${wanted} connections opened (${r.failed} failed)`;
    }
    return null;
  }
  const failed = r.cycles.reduce((n, c) => n + c.failed, 0);
  if (failed > r.params.perCycle * r.params.cycles * 0.01) {
    return `${failed} churn connections failed`;
  }
  return null;
}

function targetLines(records: Record_[], flags: RunFlags): string[] {
  const lines: string[] = [];
  const dps = (id: string, label: string) =>
    medOf(records, id, label, (r: ThroughputResult) => r.deliveriesPerSec);
  const verdict = (ok: boolean | null) => ok === null ? "n/a" : ok ? "**met**" : "**missed**";
  // Deliveries per CPU-second: steadier than deliveries/s on a machine whose loopback
  // stalls now and then (see bench/README.md).
  const eff = (id: string, label: string) =>
    1 / medOf(records, id, label, (r: ThroughputResult) => r.serverCpuPerDeliveryUs);
  const both = (id: string, a: string, b: string, k: number) => {
    const t = dps(id, a) / dps(id, b);
    const e = eff(id, a) / eff(id, b);
    const v = Number.isFinite(t) ? t >= k : null;
    return `${Number.isFinite(t) ? t.toFixed(2) : "–"}× by deliveries/s — ${verdict(v)}; ` +
      `${Number.isFinite(e) ? e.toFixed(2) : "–"}× by server CPU per delivery — ` +
      verdict(Number.isFinite(e) ? e >= k : null);
  };
  const has = (id: string) => records.some((r) => r.caseId === id && r.result);
  for (const C of [50, 200]) {
    const id = `broadcast-max-c${C}-64`;
    if (!has(id)) continue;
    lines.push(
      `v1 group broadcast C=${C} 64 B ≥ 10× seed relay: ${both(id, "switchboard v1", "seed", 10)}`,
    );
  }
  if (has("broadcast-max-c50-64")) {
    lines.push(
      `seed-relay broadcast C=50 ≥ 0.9× deno-bare: ${
        both("broadcast-max-c50-64", "switchboard seed-relay", "deno-bare", 0.9)
      }`,
    );
  }
  if (has("direct-max-c100-64")) {
    lines.push(
      `direct v1 ≥ 2.5× seed: ${both("direct-max-c100-64", "switchboard v1", "seed", 2.5)}`,
    );
  }
  if (has("broadcast-rate-c200-64")) {
    const p = (label: string) =>
      medOf(records, "broadcast-rate-c200-64", label, (r: ThroughputResult) => r.latencyUs.p99);
    const b = p("seed");
    for (const label of ["switchboard v1", "switchboard seed-relay"]) {
      const a = p(label);
      const ok = Number.isFinite(a) && Number.isFinite(b) ? a <= b : null;
      lines.push(
        `fixed-rate C=200 p99 ≤ seed's p99 (${label}): ${fmtMs(a)} vs ${fmtMs(b)} ms — ${
          verdict(ok)
        }`,
      );
    }
  }
  if (has("connections") && !flags.quick) {
    const per = (label: string) =>
      medOf(
        records,
        "connections",
        label,
        (r: ConnectionsResult) => r.steps.at(-1)?.rssPerConnKiB ?? NaN,
      );
    const b = per("deno-bare");
    for (const label of ["switchboard seed-relay", "switchboard v1"]) {
      const a = per(label);
      const ok = Number.isFinite(a) && Number.isFinite(b) ? a <= b + 2 : null;
      lines.push(
        `10k idle RSS/conn ≤ deno-bare + 2 KiB (${label}): ${fmt1(a)} vs ${fmt1(b)} KiB — ${
          verdict(ok)
        }`,
      );
    }
  }
  if (has("churn") && !flags.quick) {
    for (const label of ["switchboard v1", "switchboard seed-relay"]) {
      const rs = records.filter((r) => r.caseId === "churn" && r.label === label && r.result)
        .map((r) => r.result as ChurnResult);
      if (!rs.length) continue;
      const zero = rs.every((r) =>
        r.cycles.every((c) => c.healthz?.connections === 0 && c.healthz?.users === 0)
      );
      const growth = rs.map((r) =>
        r.cycles.length >= 4 ? Math.abs(r.cycles[3].rssKiB / r.cycles[1].rssKiB - 1) : NaN
      );
      const g = Math.max(...growth);
      lines.push(
        `churn 4 × 5k (${label}): healthz 0 after each cycle — ${
          verdict(zero)
        }; RSS cycle 4 within 10 % of cycle 2 (worst round ${(g * 100).toFixed(1)} %) — ${
          verdict(Number.isFinite(g) ? g <= 0.1 : null)
        }`,
      );
    }
  }
  return lines;
}

if (import.meta.main) {
  const onSignal = () => {
    killAll();
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  let code = 1;
  try {
    code = await main();
  } catch (e) {
    console.error(`bench: ${(e as Error).stack ?? e}`);
  } finally {
    killAll();
  }
  Deno.exit(code);
}
