/**
 * Server options, their defaults, and the command line: every option is a
 * flag with an environment-variable fallback, validated before anything
 * listens.
 *
 * @module
 */

import { parseArgs as untypedParseArgs } from "@std/cli/parse-args";

/** How much the server logs. */
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error", "silent"];

/** Everything a server can be configured with. */
export interface ServerOptions {
  /** TCP port; 0 picks a free one. */
  port: number;
  hostname: string;
  /** The group every connection is in; `null` turns it off. */
  defaultGroup: string | null;
  /** Extra browser origins allowed to connect (besides the request's own host); may hold `*` or `null`. */
  allowedOrigins: string[];
  /** Largest incoming message, after fragments are reassembled; larger closes 1009. */
  maxMessageBytes: number;
  /** Frames per second per connection, sustained. */
  rate: number;
  /** Frames per connection accepted in a burst. */
  burst: number;
  /** Seconds of continuous rate-limit abuse before a close 1008. */
  abuseSeconds: number;
  /** Groups per connection, the default group not counted. */
  maxGroups: number;
  /** Open connections per server; more are answered 503. */
  maxConnections: number;
  /** Unsent bytes allowed to queue for one reader before it is closed 1013. */
  slowConsumerBytes: number;
  /** Seconds of silence before a ping, and as long again before a close; 0 turns it off. */
  idleTimeout: number;
  /** Least milliseconds between two presence diffs of one group (at most 100); a lone change goes at once. */
  presenceWindowMs: number;
  /** Directory of the browser client. */
  staticDir: string;
  logLevel: LogLevel;
}

/** Defaults of every option (the contract's limits). */
export const DEFAULT_OPTIONS: Readonly<ServerOptions> = {
  port: 8080,
  hostname: "0.0.0.0",
  defaultGroup: "lobby",
  allowedOrigins: [],
  maxMessageBytes: 64 * 1024,
  rate: 50,
  burst: 100,
  abuseSeconds: 10,
  maxGroups: 100,
  maxConnections: 10_000,
  slowConsumerBytes: 1024 * 1024,
  idleTimeout: 30,
  presenceWindowMs: 100,
  staticDir: new URL("../static", import.meta.url).pathname,
  logLevel: "info",
};

/** A bad flag or environment value; `message` names it. */
export class ConfigError extends Error {}

/** What the command line asks for. */
export type CommandLine =
  | { kind: "serve"; options: ServerOptions }
  | { kind: "help" }
  | { kind: "version" };

interface NumberFlag {
  flag: string;
  env: string;
  key: keyof ServerOptions;
  min: number;
  max: number;
  integer: boolean;
  help: string;
}

const NUMBER_FLAGS: readonly NumberFlag[] = [
  {
    key: "port",
    flag: "port",
    env: "PORT",
    min: 0,
    max: 65535,
    integer: true,
    help: "TCP port (0 picks a free one)",
  },
  {
    key: "maxMessageBytes",
    flag: "max-message-bytes",
    env: "MAX_MESSAGE_BYTES",
    min: 1,
    max: 64 * 1024 * 1024 - 1,
    integer: true,
    help: "largest incoming message in bytes; larger closes 1009",
  },
  {
    key: "rate",
    flag: "rate",
    env: "RATE",
    min: 0.001,
    max: 1e9,
    integer: false,
    help: "frames per second per connection",
  },
  {
    key: "burst",
    flag: "burst",
    env: "BURST",
    min: 1,
    max: 1e9,
    integer: true,
    help: "frames per connection in a burst",
  },
  {
    key: "abuseSeconds",
    flag: "abuse-seconds",
    env: "ABUSE_SECONDS",
    min: 0,
    max: 86400,
    integer: false,
    help: "seconds of continuous rate limiting before close 1008",
  },
  {
    key: "maxGroups",
    flag: "max-groups",
    env: "MAX_GROUPS",
    min: 0,
    max: 1e6,
    integer: true,
    help: "groups per connection, the default group not counted",
  },
  {
    key: "maxConnections",
    flag: "max-connections",
    env: "MAX_CONNECTIONS",
    min: 1,
    max: 1e7,
    integer: true,
    help: "open connections; more are answered 503",
  },
  {
    key: "slowConsumerBytes",
    flag: "slow-consumer-bytes",
    env: "SLOW_CONSUMER_BYTES",
    min: 1024,
    max: 2 ** 30,
    integer: true,
    help: "unsent bytes queued for one reader before close 1013",
  },
  {
    key: "idleTimeout",
    flag: "idle-timeout",
    env: "IDLE_TIMEOUT",
    min: 0,
    max: 3600,
    integer: true,
    help: "seconds of silence before a ping (as long again, then close); 0 = off",
  },
  {
    key: "presenceWindowMs",
    flag: "presence-window",
    env: "PRESENCE_WINDOW_MS",
    min: 0,
    max: 100,
    integer: true,
    help: "least milliseconds between two presence diffs of one group",
  },
];

const STRING_FLAGS = [
  "hostname",
  "default-group",
  "allowed-origin",
  "static-dir",
  "log-level",
  ...NUMBER_FLAGS.map((f) => f.flag),
];

interface ParsedArgs {
  _: unknown[];
  help?: boolean;
  version?: boolean;
  "allowed-origin"?: string[];
  [flag: string]: unknown;
}

/**
 * Reads options from flags, then environment variables, then defaults.
 * Throws {@linkcode ConfigError} naming the first bad flag or variable.
 */
export function parseCommandLine(
  args: string[],
  env: (name: string) => string | undefined,
): CommandLine {
  const parsed = parseFlags(args);
  if (parsed.help) return { kind: "help" };
  if (parsed.version) return { kind: "version" };
  if (parsed._.length > 0) throw new ConfigError(`unexpected argument: ${parsed._[0]}`);

  const options: ServerOptions = { ...DEFAULT_OPTIONS, allowedOrigins: [] };
  const text = (flag: string, variable: string): string | undefined => {
    const value = parsed[flag];
    if (Array.isArray(value)) throw new ConfigError(`--${flag}: given more than once`);
    return typeof value === "string" ? value : env(variable);
  };

  for (const spec of NUMBER_FLAGS) {
    const raw = text(spec.flag, spec.env);
    if (raw !== undefined) {
      (options[spec.key] as number) = parseNumber(spec, raw, parsed[spec.flag] !== undefined);
    }
  }
  options.hostname = text("hostname", "HOST") ?? options.hostname;
  const defaultGroup = text("default-group", "DEFAULT_GROUP");
  if (defaultGroup !== undefined) options.defaultGroup = defaultGroup === "" ? null : defaultGroup;
  options.staticDir = text("static-dir", "STATIC_DIR") ?? options.staticDir;
  const logLevel = text("log-level", "LOG_LEVEL");
  if (logLevel !== undefined) {
    if (!LOG_LEVELS.includes(logLevel as LogLevel)) {
      const name = parsed["log-level"] !== undefined ? "--log-level" : "LOG_LEVEL";
      throw new ConfigError(
        `${name}: must be one of ${LOG_LEVELS.join(", ")}, got "${logLevel}"`,
      );
    }
    options.logLevel = logLevel as LogLevel;
  }
  // parseArgs gives a collected flag that was not given as [], never undefined.
  const flagOrigins = parsed["allowed-origin"] ?? [];
  const origins = flagOrigins.length > 0 ? flagOrigins : env("ALLOWED_ORIGINS")?.split(",") ?? [];
  options.allowedOrigins = origins.map((origin) => origin.trim()).filter((o) => o !== "");
  return { kind: "serve", options };
}

function parseFlags(args: string[]): ParsedArgs {
  const parse = untypedParseArgs as (args: string[], options: unknown) => ParsedArgs;
  return parse(joinEmptyValues(args), {
    string: STRING_FLAGS,
    boolean: ["help", "version"],
    collect: ["allowed-origin"],
    alias: { h: "help", V: "version" },
    // Called with the flag's key for a flag, with the argument alone for a positional one.
    unknown: (arg: string, key?: string) => {
      throw new ConfigError(
        key === undefined ? `unexpected argument: "${arg}"` : `unknown flag: ${arg} (see --help)`,
      );
    },
  });
}

// parseArgs does not take an empty next argument as a flag's value (`--default-group ""`
// would leave "" behind as a stray argument), so such a pair is passed as `--flag=`.
function joinEmptyValues(args: string[]): string[] {
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") return [...joined, ...args.slice(i)];
    if (args[i + 1] === "" && arg.startsWith("--") && STRING_FLAGS.includes(arg.slice(2))) {
      joined.push(`${arg}=`);
      i++;
    } else {
      joined.push(arg);
    }
  }
  return joined;
}

function parseNumber(spec: NumberFlag, raw: string, fromFlag: boolean): number {
  const name = fromFlag ? `--${spec.flag}` : spec.env;
  const value = Number(raw);
  const kind = spec.integer ? "an integer" : "a number";
  if (
    raw.trim() === "" || !Number.isFinite(value) || (spec.integer && !Number.isInteger(value)) ||
    value < spec.min || value > spec.max
  ) {
    throw new ConfigError(`${name}: must be ${kind} from ${spec.min} to ${spec.max}, got "${raw}"`);
  }
  return value;
}

/** The `--help` text. */
export function helpText(): string {
  const [port, ...limits] = NUMBER_FLAGS.map((
    f,
  ) => [`--${f.flag}`, f.env, `${f.help} (${DEFAULT_OPTIONS[f.key] as number})`]);
  const rows = [
    port,
    ["--hostname", "HOST", `interface to listen on (${DEFAULT_OPTIONS.hostname})`],
    ["--default-group", "DEFAULT_GROUP", `group every connection is in; "" = none (lobby)`],
    [
      "--allowed-origin",
      "ALLOWED_ORIGINS",
      "extra browser origin allowed (repeatable; env comma-separated; may be * or null)",
    ],
    ...limits,
    ["--static-dir", "STATIC_DIR", "directory of the browser client (static/)"],
    ["--log-level", "LOG_LEVEL", `${LOG_LEVELS.join("|")} (info)`],
    ["--help, -h", "", "show this help"],
    ["--version, -V", "", "print the version"],
  ];
  const width = Math.max(...rows.map(([flag]) => flag.length));
  const envWidth = Math.max(...rows.map(([, env]) => env.length));
  return [
    "Switchboard: a real-time WebSocket messaging server.",
    "",
    "Usage: deno task start [flags]",
    "",
    ...rows.map(([flag, env, help]) => `  ${flag.padEnd(width)}  ${env.padEnd(envWidth)}  ${help}`),
  ].join("\n");
}
