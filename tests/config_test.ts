/**
 * Unit tests of the command line: defaults, every flag, environment
 * fallbacks, and errors that name the bad flag or variable.
 */

import { assert, assertEquals, AssertionError, assertThrows } from "@std/assert";
import {
  type CommandLine,
  ConfigError,
  DEFAULT_OPTIONS,
  helpText,
  parseCommandLine,
  type ServerOptions,
} from "../src/config.ts";

const noEnv = (_name: string): string | undefined => undefined;

function envOf(values: Record<string, string>): (name: string) => string | undefined {
  return (name) => Object.hasOwn(values, name) ? values[name] : undefined;
}

function serve(args: string[], env = noEnv): ServerOptions {
  const commandLine: CommandLine = parseCommandLine(args, env);
  if (commandLine.kind !== "serve") {
    throw new AssertionError(`expected serve, got ${commandLine.kind}`);
  }
  return commandLine.options;
}

/** Asserts that parsing fails with a ConfigError whose message names `name`. */
function assertRejected(args: string[], name: string, env = noEnv): void {
  const error = assertThrows(() => parseCommandLine(args, env), ConfigError);
  assert(
    (error as ConfigError).message.includes(name),
    `"${(error as ConfigError).message}" should name ${name}`,
  );
}

Deno.test("no flags and no environment give the contract's defaults", () => {
  const options = serve([]);
  assertEquals(options, { ...DEFAULT_OPTIONS, allowedOrigins: [] });
  assertEquals(options.port, 8080);
  assertEquals(options.defaultGroup, "lobby");
  assertEquals(options.maxMessageBytes, 65536);
  assertEquals(options.rate, 50);
  assertEquals(options.burst, 100);
  assertEquals(options.abuseSeconds, 10);
  assertEquals(options.maxGroups, 100);
  assertEquals(options.maxConnections, 10_000);
  assertEquals(options.slowConsumerBytes, 1024 * 1024);
  assertEquals(options.idleTimeout, 30);
  assert(options.presenceWindowMs <= 100);
  assertEquals(options.logLevel, "info");
});

Deno.test("the defaults' origin list is a fresh array per parse", () => {
  const first = serve([]);
  first.allowedOrigins.push("https://mutated.example");
  assertEquals(serve([]).allowedOrigins, []);
  assertEquals(DEFAULT_OPTIONS.allowedOrigins, []);
});

Deno.test("every flag sets its option", () => {
  const options = serve([
    "--port",
    "9000",
    "--hostname",
    "127.0.0.1",
    "--default-group",
    "hall",
    "--allowed-origin",
    "https://chat.example",
    "--max-message-bytes",
    "1024",
    "--rate",
    "2.5",
    "--burst",
    "7",
    "--abuse-seconds",
    "0.5",
    "--max-groups",
    "3",
    "--max-connections",
    "12",
    "--slow-consumer-bytes",
    "4096",
    "--idle-timeout",
    "0",
    "--presence-window",
    "100",
    "--static-dir",
    "/srv/static",
    "--log-level",
    "debug",
  ]);
  assertEquals(options, {
    port: 9000,
    hostname: "127.0.0.1",
    defaultGroup: "hall",
    allowedOrigins: ["https://chat.example"],
    maxMessageBytes: 1024,
    rate: 2.5,
    burst: 7,
    abuseSeconds: 0.5,
    maxGroups: 3,
    maxConnections: 12,
    slowConsumerBytes: 4096,
    idleTimeout: 0,
    presenceWindowMs: 100,
    staticDir: "/srv/static",
    logLevel: "debug",
  });
});

Deno.test("flags may be written --flag=value", () => {
  const options = serve(["--port=0", "--default-group=room", "--log-level=silent"]);
  assertEquals([options.port, options.defaultGroup, options.logLevel], [0, "room", "silent"]);
});

Deno.test("every option falls back to its environment variable", () => {
  const options = serve(
    [],
    envOf({
      PORT: "9001",
      HOST: "::1",
      DEFAULT_GROUP: "hall",
      ALLOWED_ORIGINS: "https://a.example,https://b.example",
      MAX_MESSAGE_BYTES: "2048",
      RATE: "5",
      BURST: "9",
      ABUSE_SECONDS: "4",
      MAX_GROUPS: "8",
      MAX_CONNECTIONS: "99",
      SLOW_CONSUMER_BYTES: "8192",
      IDLE_TIMEOUT: "60",
      PRESENCE_WINDOW_MS: "0",
      STATIC_DIR: "/tmp/static",
      LOG_LEVEL: "warn",
    }),
  );
  assertEquals(options, {
    port: 9001,
    hostname: "::1",
    defaultGroup: "hall",
    allowedOrigins: ["https://a.example", "https://b.example"],
    maxMessageBytes: 2048,
    rate: 5,
    burst: 9,
    abuseSeconds: 4,
    maxGroups: 8,
    maxConnections: 99,
    slowConsumerBytes: 8192,
    idleTimeout: 60,
    presenceWindowMs: 0,
    staticDir: "/tmp/static",
    logLevel: "warn",
  });
});

Deno.test("a flag wins over its environment variable", () => {
  const env = envOf({
    PORT: "1",
    RATE: "1",
    DEFAULT_GROUP: "from-env",
    LOG_LEVEL: "error",
    ALLOWED_ORIGINS: "https://env.example",
  });
  const options = serve(
    [
      "--port",
      "2",
      "--rate",
      "3",
      "--default-group",
      "from-flag",
      "--log-level",
      "warn",
      "--allowed-origin",
      "https://flag.example",
    ],
    env,
  );
  assertEquals(options.port, 2);
  assertEquals(options.rate, 3);
  assertEquals(options.defaultGroup, "from-flag");
  assertEquals(options.logLevel, "warn");
  assertEquals(options.allowedOrigins, ["https://flag.example"]);
});

Deno.test("--allowed-origin is repeatable and may name null or *", () => {
  const options = serve([
    "--allowed-origin",
    "https://a.example",
    "--allowed-origin",
    "null",
    "--allowed-origin=*",
  ]);
  assertEquals(options.allowedOrigins, ["https://a.example", "null", "*"]);
});

Deno.test("ALLOWED_ORIGINS is comma-separated, trimmed, and empty entries are dropped", () => {
  const options = serve([], envOf({ ALLOWED_ORIGINS: " https://a.example , null,,*, " }));
  assertEquals(options.allowedOrigins, ["https://a.example", "null", "*"]);
  assertEquals(serve([], envOf({ ALLOWED_ORIGINS: "" })).allowedOrigins, []);
});

Deno.test('--default-group "" turns the default group off', () => {
  assertEquals(serve(["--default-group", ""]).defaultGroup, null);
  assertEquals(serve(["--default-group="]).defaultGroup, null);
  assertEquals(serve(["--default-group", "", "--port", "1"]).port, 1);
  assertEquals(serve([], envOf({ DEFAULT_GROUP: "" })).defaultGroup, null);
});

Deno.test("bad numbers are refused with a ConfigError naming the flag", () => {
  assertRejected(["--port", "70000"], "--port");
  assertRejected(["--port=-1"], "--port");
  assertRejected(["--port", "80.5"], "--port");
  assertRejected(["--port", ""], "--port");
  assertRejected(["--port"], "--port");
  assertRejected(["--rate", "abc"], "--rate");
  assertRejected(["--rate", "0"], "--rate");
  assertRejected(["--rate", "Infinity"], "--rate");
  assertRejected(["--burst", "1.5"], "--burst");
  assertRejected(["--burst", "0"], "--burst");
  assertRejected(["--max-message-bytes", "0"], "--max-message-bytes");
  assertRejected(["--max-groups=-1"], "--max-groups");
  assertRejected(["--abuse-seconds", "x"], "--abuse-seconds");
  assertRejected(["--max-connections", "0"], "--max-connections");
  assertRejected(["--slow-consumer-bytes", "10"], "--slow-consumer-bytes");
  assertRejected(["--idle-timeout", "1.5"], "--idle-timeout");
  assertRejected(["--presence-window", "101"], "--presence-window");
});

Deno.test("bad environment values are refused with a ConfigError naming the variable", () => {
  assertRejected([], "PORT", envOf({ PORT: "70000" }));
  assertRejected([], "RATE", envOf({ RATE: "abc" }));
  assertRejected([], "BURST", envOf({ BURST: "1.5" }));
  assertRejected([], "PRESENCE_WINDOW_MS", envOf({ PRESENCE_WINDOW_MS: "500" }));
  assertRejected([], "LOG_LEVEL", envOf({ LOG_LEVEL: "loud" }));
  assertRejected([], "PORT", envOf({ PORT: " " }));
  // A good flag hides a bad variable.
  assertEquals(serve(["--port", "5"], envOf({ PORT: "nope" })).port, 5);
});

Deno.test("an unknown log level is refused with a ConfigError naming --log-level", () => {
  assertRejected(["--log-level", "loud"], "--log-level");
  assertRejected(["--log-level", "loud"], "loud");
});

Deno.test("unknown flags and stray arguments are refused with a ConfigError naming them", () => {
  assertRejected(["--colour"], "--colour");
  assertRejected(["--port", "1", "--verbose=yes"], "--verbose");
  assertRejected(["-x"], "-x");
  assertRejected(["serve"], "serve");
  assertRejected(["--port", "1", "--", "extra"], "extra");
});

Deno.test("--help and -h ask for help, --version and -V for the version", () => {
  assertEquals(parseCommandLine(["--help"], noEnv), { kind: "help" });
  assertEquals(parseCommandLine(["-h"], noEnv), { kind: "help" });
  assertEquals(parseCommandLine(["--version"], noEnv), { kind: "version" });
  assertEquals(parseCommandLine(["-V"], noEnv), { kind: "version" });
  // Help wins even when other flags are bad.
  assertEquals(parseCommandLine(["--help", "--port", "70000"], noEnv), { kind: "help" });
});

Deno.test("the help text lists every flag and its environment variable", () => {
  const text = helpText();
  const pairs = [
    ["--port", "PORT"],
    ["--hostname", "HOST"],
    ["--default-group", "DEFAULT_GROUP"],
    ["--allowed-origin", "ALLOWED_ORIGINS"],
    ["--max-message-bytes", "MAX_MESSAGE_BYTES"],
    ["--rate", "RATE"],
    ["--burst", "BURST"],
    ["--abuse-seconds", "ABUSE_SECONDS"],
    ["--max-groups", "MAX_GROUPS"],
    ["--max-connections", "MAX_CONNECTIONS"],
    ["--slow-consumer-bytes", "SLOW_CONSUMER_BYTES"],
    ["--idle-timeout", "IDLE_TIMEOUT"],
    ["--presence-window", "PRESENCE_WINDOW_MS"],
    ["--static-dir", "STATIC_DIR"],
    ["--log-level", "LOG_LEVEL"],
    ["--help", ""],
    ["--version", ""],
  ];
  for (const [flag, env] of pairs) {
    const line = text.split("\n").find((l) => new RegExp(`^\\s*${flag}[ ,]`).test(l));
    if (line === undefined) throw new AssertionError(`help lists ${flag}`);
    assert(line.includes(env), `help names ${env} for ${flag}`);
  }
});
