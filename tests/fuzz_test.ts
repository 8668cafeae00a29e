/**
 * Deterministic fuzzing over real sockets: thousands of random, malformed and
 * hostile frames from a v1 and a seed client at once, judged against the
 * contract (answers by id, relays verbatim, no forged or extra frames), then
 * proof that the server still works and forgets everyone.
 */
import { assert, assertEquals } from "@std/assert";
import {
  eventually,
  healthz,
  rawUpgrade,
  type ServerMessage,
  TestClient,
  withServer,
} from "./_helpers.ts";
import { clientFrame, closeQuietly, delay, untilWhileOpen } from "./_wire.ts";
import type { SwitchboardServer } from "../src/server.ts";

const SEED = 0x5b0a7d;
const FRAMES_PER_CLIENT = 2000;
const MAX_BYTES = 65536;
const V1_USER = "fuzz-v1";
const SEED_USER = "fuzz-seed";

const COMMANDS = ["online", "join", "leave", "message", "members", "ping"];
// The contract's codes, written out here rather than imported, so the test checks src against them.
const ERROR_CODES = [
  "invalid_message",
  "invalid_name",
  "not_identified",
  "already_identified",
  "unauthorized",
  "forbidden",
  "not_member",
  "user_offline",
  "too_many_groups",
  "rate_limited",
];
const encoder = new TextEncoder();

/** mulberry32: a small seeded PRNG, so every run throws the same frames. */
class Random {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
}

// ---------------------------------------------------------------------------
// The contract's rules, as a client reads them

const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** A command id the contract accepts: a string of at most 64 characters (code points), or an integer. */
const isValidId = (id: unknown) =>
  (typeof id === "string" && [...id].length <= 64) || Number.isSafeInteger(id);

/** 1–64 code points, no control characters or whitespace. */
const isValidName = (name: string) => {
  const points = [...name];
  return points.length >= 1 && points.length <= 64 &&
    points.every((c) => !/[\p{Cc}\p{White_Space}]/u.test(c));
};

/** The object a text frame holds, if it is a JSON object. */
function objectOf(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return isPlainObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** A frame that is one of the commands (whatever its fields), or undefined. */
function commandOf(text: string): Record<string, unknown> | undefined {
  const object = objectOf(text);
  return object !== undefined && typeof object.type === "string" && COMMANDS.includes(object.type)
    ? object
    : undefined;
}

/**
 * The error codes a command's shape alone calls for (empty when its shape is
 * fine). Several codes when several fields are wrong: any of them will do.
 */
function shapeErrors(command: Record<string, unknown>): Set<string> {
  const codes = new Set<string>();
  if (command.id !== undefined && !isValidId(command.id)) codes.add("invalid_message");
  const name = (field: string) => {
    const value = command[field];
    if (typeof value !== "string") codes.add("invalid_message");
    else if (!isValidName(value)) codes.add("invalid_name");
  };
  switch (command.type) {
    case "online":
      name("from");
      if (command.token !== undefined && typeof command.token !== "string") {
        codes.add("invalid_message");
      }
      break;
    case "join":
      name("group");
      if (
        command.since !== undefined &&
        !(Number.isSafeInteger(command.since) && (command.since as number) >= 0)
      ) codes.add("invalid_message");
      break;
    case "leave":
    case "members":
      name("group");
      break;
    case "message": {
      const hasGroup = command.group !== undefined;
      const hasTo = command.to !== undefined;
      if (hasGroup === hasTo) codes.add("invalid_message");
      else name(hasGroup ? "group" : "to");
      if (!("data" in command)) codes.add("invalid_message");
      break;
    }
  }
  return codes;
}

/** A text frame that the contract relays to one user: a JSON object with a string `to`, not a command. */
const directRelayOf = (text: string) => {
  const object = objectOf(text);
  return object !== undefined && commandOf(text) === undefined && typeof object.to === "string"
    ? object
    : undefined;
};

// ---------------------------------------------------------------------------
// Generators

const VALID_GROUPS = ["room", "g-1", "日本語", "😀x", "a".repeat(64), "😀".repeat(64), "lobby"];
const INVALID_NAMES = [
  "",
  "a b",
  "tab\there",
  "x".repeat(65),
  "😀".repeat(65),
  "\u0000",
  "new\nline",
  "nb\u00a0sp",
  "ls\u2028",
  "\u007f",
];
const USERS = [V1_USER, SEED_USER, "nobody", "ghost", "ümlaut", "a".repeat(64)];
const ODD_TYPES = [
  "relay",
  "ack",
  "error",
  "presence",
  "welcome",
  "pong",
  "",
  "PING",
  " ping",
  "join ",
  "chat",
  "__proto__",
  "constructor",
  "toString",
];
const ODD_VALUES: unknown[] = [
  null,
  true,
  false,
  0,
  -0,
  1.5,
  -1,
  1e308,
  2 ** 53 + 2,
  "",
  [],
  {},
  ["room"],
  { group: "room" },
];

function randomText(random: Random, max: number): string {
  const length = random.int(max + 1);
  let text = "";
  for (let i = 0; i < length; i++) {
    const kind = random.int(10);
    if (kind < 5) text += String.fromCharCode(0x20 + random.int(95));
    else if (kind < 7) text += String.fromCharCode(0x80 + random.int(0x700));
    else if (kind < 8) text += String.fromCodePoint(0x1f300 + random.int(0x300));
    else if (kind < 9) text += String.fromCharCode(random.int(0x20));
    else text += String.fromCharCode(0xd7ff + random.int(0x2801)); // surrogates included
  }
  return text;
}

function randomJson(random: Random, depth = 0): unknown {
  const kind = random.int(depth > 3 ? 6 : 9);
  switch (kind) {
    case 0:
      return null;
    case 1:
      return random.chance(0.5);
    case 2:
      return random.pick([0, -0, 1, -1, 1.5, 1e21, -1e-7, 2 ** 53, Number.MAX_VALUE]);
    case 3:
      return randomText(random, 20);
    case 4:
      return random.pick(ODD_VALUES);
    case 5:
      return random.int(1e9);
    case 6:
    case 7:
      return Array.from({ length: random.int(5) }, () => randomJson(random, depth + 1));
    default: {
      const object: Record<string, unknown> = {};
      for (let i = random.int(5); i > 0; i--) {
        const key = random.pick([
          "__proto__",
          "constructor",
          "type",
          "id",
          "to",
          "from",
          "data",
          "a",
          randomText(random, 6),
        ]);
        Object.defineProperty(object, key, {
          value: randomJson(random, depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return object;
    }
  }
}

class IdSource {
  #next = 0;
  constructor(readonly prefix: string) {}
  /** Mostly fresh valid ids (strings and integers), sometimes none, sometimes odd ones. */
  id(random: Random): unknown {
    const roll = random.int(10);
    if (roll < 4) return `${this.prefix}${++this.#next}`;
    if (roll < 6) return (++this.#next) * (random.chance(0.2) ? -1 : 1);
    if (roll < 8) return undefined;
    return random.pick([
      1.5,
      1e21,
      2 ** 53,
      0,
      "",
      "x".repeat(64),
      "x".repeat(65),
      "😀".repeat(16),
      "😀".repeat(64),
      "😀".repeat(65),
      null,
      {},
      [],
      true,
      "a b\n",
    ]);
  }
}

function randomName(random: Random, pool: readonly string[]): unknown {
  const roll = random.int(10);
  if (roll < 7) return random.pick(pool);
  if (roll < 9) return random.pick(INVALID_NAMES);
  return random.pick(ODD_VALUES);
}

/** A command-like object: a command type with plausible, missing or mistyped fields. */
function randomCommand(random: Random, ids: IdSource): Record<string, unknown> {
  const type = random.chance(0.85)
    ? random.pick(COMMANDS)
    : random.chance(0.7)
    ? random.pick(ODD_TYPES)
    : random.pick(ODD_VALUES);
  const command: Record<string, unknown> = { type };
  const id = ids.id(random);
  if (id !== undefined) command.id = id;
  const maybe = (field: string, value: () => unknown, p = 0.9) => {
    if (random.chance(p)) command[field] = value();
  };
  switch (type) {
    case "online":
      maybe("from", () => randomName(random, USERS));
      maybe("token", () => random.chance(0.5) ? "t0k3n" : random.pick(ODD_VALUES), 0.1);
      break;
    case "join":
      maybe("group", () => randomName(random, VALID_GROUPS));
      maybe("since", () => random.pick([0, 5, -1, 1.5, "3", null]), 0.1);
      break;
    case "leave":
    case "members":
      maybe("group", () => randomName(random, VALID_GROUPS));
      break;
    case "message":
      if (random.chance(0.5)) maybe("group", () => randomName(random, VALID_GROUPS));
      else maybe("to", () => randomName(random, USERS));
      maybe("group", () => randomName(random, VALID_GROUPS), 0.05);
      maybe("data", () => randomJson(random), 0.92);
      break;
    default:
      maybe("to", () => randomName(random, USERS), 0.3);
      maybe("data", () => randomJson(random), 0.5);
  }
  if (random.chance(0.1)) {
    Object.defineProperty(command, "__proto__", {
      value: { group: "room", from: "admin", polluted: true },
      enumerable: true,
      configurable: true,
      writable: true,
    });
  }
  if (random.chance(0.05)) command.extra = randomJson(random);
  return command;
}

function randomBytes(random: Random, max: number): Uint8Array {
  const bytes = new Uint8Array(random.int(max + 1));
  for (let i = 0; i < bytes.length; i++) bytes[i] = random.int(256);
  // Often invalid UTF-8 on purpose: lone continuation bytes, overlongs, surrogates.
  if (bytes.length > 4 && random.chance(0.5)) bytes.set([0xc0, 0x80, 0xed, 0xa0], 0);
  return bytes;
}

/** Text or JSON of `bytes` UTF-8 bytes at most, close to it. */
function nearLimit(random: Random, ids: IdSource): string {
  const target = MAX_BYTES - random.int(64);
  if (random.chance(0.5)) {
    const base = JSON.stringify({
      type: "message",
      group: "lobby",
      id: ids.id(random) ?? 0,
      data: "",
    });
    const object = JSON.parse(base);
    object.data = "é".repeat(Math.floor((target - encoder.encode(base).length) / 2));
    return JSON.stringify(object);
  }
  return "ü".repeat(Math.floor(target / 2));
}

/** One frame as sent, in the form the server receives it. */
type Frame = string | Uint8Array;

function randomFrame(random: Random, ids: IdSource, to: string): Frame {
  const roll = random.int(100);
  if (roll < 45) {
    const text = JSON.stringify(randomCommand(random, ids));
    return random.chance(0.05) ? ` \n\t${text}\r\n` : text;
  }
  if (roll < 55) return JSON.stringify(randomJson(random));
  if (roll < 63) return randomText(random, 40);
  if (roll < 70) return randomBytes(random, 64);
  if (roll < 78) {
    // A direct relay, often claiming to be someone else.
    const object: Record<string, unknown> = { to: random.chance(0.7) ? to : random.pick(USERS) };
    if (random.chance(0.6)) object.from = random.pick(["admin", to, "", 5]);
    if (random.chance(0.5)) object.type = random.pick(ODD_TYPES);
    if (random.chance(0.3)) object.id = ids.id(random);
    object.data = randomJson(random);
    if (random.chance(0.2)) {
      Object.defineProperty(object, "__proto__", {
        value: { polluted: true },
        enumerable: true,
        configurable: true,
        writable: true,
      });
    }
    return JSON.stringify(object);
  }
  if (roll < 84) {
    return random.pick([
      "{",
      "}",
      "{]",
      '{"type":"join"',
      '{"type":"join","group":"room",}',
      '{"type":"ping","id":NaN}',
      '{"type":"ping","id":1e400}',
      '{"type":"ping","id":9007199254740993}',
      '{"type":"online","from":"a","from":"b"}',
      '{"type":"join","group":"room"}{"type":"ping"}',
      "[1,2",
      "null",
      "\uFEFF{}",
      '{"type":"message","group":"lobby","data":"\\ud800"}',
      "\u0000",
    ]);
  }
  if (roll < 88) {
    const depth = 500 + random.int(10000);
    return `{"type":"message","group":"lobby","data":${"[".repeat(depth)}${"]".repeat(depth)}}`;
  }
  if (roll < 90) return random.chance(0.5) ? "" : new Uint8Array(0);
  if (roll < 91) {
    return random.chance(0.7) ? nearLimit(random, ids) : randomBytes(random, MAX_BYTES);
  }
  return JSON.stringify({
    type: random.pick(COMMANDS),
    id: ids.id(random),
    group: random.pick(VALID_GROUPS),
    data: randomJson(random),
  });
}

/** What the server receives for a text frame: lone surrogates become U+FFFD on the wire. */
const onTheWire = (frame: Frame): Frame => typeof frame === "string" ? frame.toWellFormed() : frame;

function fail(message: string): never {
  throw new Error(message);
}

const keyOf = (id: unknown) => JSON.stringify(id);
const bytesKey = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16)).join(",");

// ---------------------------------------------------------------------------

async function settle(server: SwitchboardServer, connections: number, users: number) {
  await eventually(async () => {
    const health = await healthz(server);
    return health.connections === connections && health.users === users;
  }, `${connections} connections and ${users} users`);
}

Deno.test("thousands of random and malformed frames from both dialects get contract answers, and the server keeps working", async () => {
  const prototypeKeys = Object.getOwnPropertyNames(Object.prototype).sort();
  await withServer({ rate: 1e6, burst: 1e6 }, async (server) => {
    const random = new Random(SEED);
    const v1 = await TestClient.v1(server);
    const seed = await TestClient.seed(server);
    await v1.online(V1_USER);
    seed.send({ type: "online", from: SEED_USER });
    await settle(server, 2, 2);
    const setUp = v1.messages.length; // the welcome and the online's ack

    const v1Ids = new IdSource("v");
    const seedIds = new IdSource("s");
    const v1Sent: Frame[] = [];
    const seedSent: Frame[] = [];
    const sendBoth = (fromV1: Frame, fromSeed: Frame) => {
      v1Sent.push(fromV1);
      seedSent.push(fromSeed);
      v1.send(fromV1);
      seed.send(fromSeed);
    };
    for (let i = 0; i < FRAMES_PER_CLIENT; i++) {
      const fromV1 = onTheWire(randomFrame(random, v1Ids, SEED_USER));
      sendBoth(fromV1, onTheWire(randomFrame(random, seedIds, V1_USER)));
      if (i % 200 === 199) await delay(0); // let the sockets breathe
    }
    // Fences: answers come in order, so once these are back every answer is.
    sendBoth('{"type":"ping","id":"v1-fence"}', '{"type":"join","group":"","id":"seed-fence"}');
    await untilWhileOpen(v1, () => v1.messages.some((m) => m.id === "v1-fence"), "v1's fence");
    let scanned = 0;
    let fenced = false;
    await untilWhileOpen(seed, () => {
      // Scans each frame once: the seed receives thousands.
      for (; scanned < seed.frames.length && !fenced; scanned++) {
        const frame = seed.frames[scanned];
        fenced = typeof frame === "string" && frame.includes("seed-fence") &&
          objectOf(frame)?.id === "seed-fence";
      }
      return fenced;
    }, "the seed's fence");
    // And once each side has the other's last relay, every relay has arrived.
    sendBoth("v1-done", "seed-done");
    await untilWhileOpen(seed, () => seed.frames.includes("v1-done"), "v1-done at the seed");
    await untilWhileOpen(
      v1,
      () => v1.messages.some((m) => m.type === "relay" && m.data === "seed-done"),
      "seed-done at v1",
    );
    assertEquals(v1.socket.readyState, WebSocket.OPEN, "the v1 fuzzer is still connected");
    assertEquals(seed.socket.readyState, WebSocket.OPEN, "the seed fuzzer is still connected");

    // --- v1: every command with a valid id got exactly one answer with that id.
    const expected = new Map<string, number>();
    const shapeOf = new Map<string, Set<string>[]>();
    let commandsWithId = 0;
    for (const frame of v1Sent) {
      if (typeof frame !== "string") continue;
      const command = commandOf(frame);
      if (command === undefined || command.id === undefined || !isValidId(command.id)) continue;
      commandsWithId++;
      const key = keyOf(command.id);
      expected.set(key, (expected.get(key) ?? 0) + 1);
      shapeOf.set(key, [...(shapeOf.get(key) ?? []), shapeErrors(command)]);
    }
    assert(commandsWithId > 500, `${commandsWithId} commands with ids is a meaningful sample`);
    const answered = new Map<string, ServerMessage[]>();
    for (const message of v1.messages.slice(setUp)) {
      if (message.id === undefined) continue;
      assert(
        ["ack", "error", "pong"].includes(message.type),
        `only ack, error and pong carry ids: ${JSON.stringify(message).slice(0, 200)}`,
      );
      const key = keyOf(message.id);
      answered.set(key, [...(answered.get(key) ?? []), message]);
    }
    for (const [key, count] of expected) {
      const answers = answered.get(key) ?? [];
      assertEquals(answers.length, count, `answers to the command(s) with id ${key}`);
      // With one command per id, the answer must suit the command's shape.
      if (count !== 1) continue;
      const [answer] = answers;
      const codes = shapeOf.get(key)![0];
      if (codes.size > 0) {
        assertEquals(answer.type, "error", `a malformed command (id ${key}) is refused`);
        assert(codes.has(answer.code), `id ${key}: ${answer.code} is one of ${[...codes]}`);
      } else {
        assert(
          answer.type !== "error" ||
            [
              "not_member",
              "user_offline",
              "too_many_groups",
              "already_identified",
              "invalid_message",
            ]
              .includes(answer.code),
          `id ${key}: a well-formed command failed with ${answer.code}`,
        );
      }
    }
    for (const key of answered.keys()) {
      assert(expected.has(key), `an answer to id ${key} nobody asked`);
    }

    // --- v1: every server message is of a known kind, with known codes and trusted relays.
    const seedTexts = new Set(seedSent.filter((f): f is string => typeof f === "string"));
    const seedBinaries = new Set(
      seedSent.filter((f) => typeof f !== "string").map((f) => bytesKey(f as Uint8Array)),
    );
    for (const message of v1.messages) {
      const what = JSON.stringify(message).slice(0, 200);
      assert(
        ["welcome", "message", "relay", "presence", "ack", "pong", "error"].includes(message.type),
        `v1 got an unknown server message: ${what}`,
      );
      if (message.type === "error") assert(ERROR_CODES.includes(message.code), what);
      if (message.type === "relay") {
        assertEquals(message.from, SEED_USER, what);
        assert(seedTexts.has(message.data), `a relay of a text the seed never sent: ${what}`);
      }
      if (message.type === "message") assertEquals(message.from, SEED_USER, what);
    }
    for (const frame of v1.frames) {
      if (typeof frame !== "string") {
        assert(seedBinaries.has(bytesKey(frame)), "an unknown binary frame");
      }
    }

    // --- seed: only relays from v1 (verbatim, or stamped with v1's user), messages and its own errors.
    const v1Verbatim = new Set(
      v1Sent.filter((f): f is string => typeof f === "string" && directRelayOf(f) === undefined),
    );
    const v1Binaries = new Set(
      v1Sent.filter((f) => typeof f !== "string").map((f) => bytesKey(f as Uint8Array)),
    );
    const seedIdsSent = new Map<string, number>();
    const seedMalformed = new Map<string, Set<string>>();
    for (const frame of seedSent) {
      const command = typeof frame === "string" ? commandOf(frame) : undefined;
      if (command?.id === undefined || !isValidId(command.id)) continue;
      const key = keyOf(command.id);
      seedIdsSent.set(key, (seedIdsSent.get(key) ?? 0) + 1);
      const codes = shapeErrors(command);
      if (codes.size > 0) seedMalformed.set(key, codes);
    }
    const seedErrors = new Map<string, ServerMessage[]>();
    for (const frame of seed.frames) {
      if (typeof frame !== "string") {
        assert(v1Binaries.has(bytesKey(frame)), "the seed got a binary frame v1 never sent");
        continue;
      }
      if (v1Verbatim.has(frame)) continue;
      const what = frame.slice(0, 200);
      const object: ServerMessage = objectOf(frame) ??
        fail(`the seed got text v1 never sent: ${what}`);
      if (
        object.type === "error" &&
        Object.keys(object).every((k) => ["type", "code", "message", "id"].includes(k))
      ) {
        assert(ERROR_CODES.includes(object.code as string), what);
        assert(!["ack", "pong"].includes(object.type as string));
        if (object.id !== undefined) {
          const key = keyOf(object.id);
          assert(seedIdsSent.has(key), `an error for id ${key} the seed never used`);
          seedErrors.set(key, [...(seedErrors.get(key) ?? []), object]);
        }
        continue;
      }
      // A direct relay or a message from the v1 client: its `from` is v1's real user.
      assertEquals(object.from, V1_USER, `a frame at the seed that does not name v1: ${what}`);
    }
    for (const [key, errors] of seedErrors) {
      assert(errors.length <= seedIdsSent.get(key)!, `more errors than commands with id ${key}`);
    }
    let checkedSeedErrors = 0;
    for (const [key, codes] of seedMalformed) {
      if (seedIdsSent.get(key) !== 1) continue;
      const errors = seedErrors.get(key) ?? [];
      assertEquals(errors.length, 1, `the seed's malformed command with id ${key} got one error`);
      assert(codes.has(errors[0].code), `id ${key}: ${errors[0].code} is one of ${[...codes]}`);
      checkedSeedErrors++;
    }
    assert(checkedSeedErrors > 50, `${checkedSeedErrors} malformed seed commands checked`);

    // Nothing leaked into JavaScript's shared prototypes.
    assertEquals(Object.getOwnPropertyNames(Object.prototype).sort(), prototypeKeys);
    assertEquals(({} as Record<string, unknown>).polluted, undefined);

    // --- the server still works for newcomers.
    const alice = await TestClient.v1(server);
    const bob = await TestClient.seed(server);
    await alice.online("alice");
    bob.send({ type: "online", from: "bob" });
    await settle(server, 4, 4);
    const sent = await alice.request({ type: "message", to: "bob", data: { hello: "bob" } });
    assertEquals(sent.delivered, 1);
    await bob.until(
      () =>
        bob.frames.length > 0 &&
        bob.frames.some((f) => typeof f === "string" && f.includes('"hello"')),
      "alice's message",
    );
    const received = bob.frames.map((f) => typeof f === "string" ? objectOf(f) : undefined).find((
      o,
    ) => o?.type === "message");
    assertEquals([received?.from, received?.to, received?.data], ["alice", "bob", {
      hello: "bob",
    }]);
    bob.send("hi alice");
    await alice.next((m) => m.type === "relay" && m.data === "hi alice" && m.from === "bob");

    await Promise.all([v1, seed, alice, bob].map((client) => client.close()));
    await settle(server, 0, 0);
    assertEquals(await healthz(server), { status: "ok", connections: 0, users: 0, groups: 1 });
  });
});

Deno.test("broken WebSocket framing on raw sockets harms only those sockets", async () => {
  await withServer({}, async (server) => {
    const bystander = await TestClient.v1(server);
    const random = new Random(SEED + 1);
    const text = (bytes: number[]) => new Uint8Array(bytes);
    const cases: Uint8Array[] = [
      text([0x81, 0x05, 0x68, 0x65, 0x6c, 0x6c, 0x6f]), // unmasked client frame
      clientFrame(0x3, encoder.encode("reserved opcode")),
      clientFrame(0xb, encoder.encode("reserved control")),
      clientFrame(0x1, text([0xc0, 0x80, 0xff, 0xfe])), // invalid UTF-8 in text
      clientFrame(0x9, new Uint8Array(200)), // control frame over 125 bytes
      clientFrame(0x9, encoder.encode("x"), false), // fragmented control frame
      clientFrame(0x0, encoder.encode("orphan continuation")),
      (() => {
        const frame = clientFrame(0x1, encoder.encode("rsv"));
        frame[0] |= 0x70; // RSV bits without an extension
        return frame;
      })(),
      text([0x82, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]), // 2^62-byte length claim
      clientFrame(0x8, text([0x03])), // close with a 1-byte payload
      clientFrame(0x8, text([0x03, 0xe7])), // close code 999
      randomBytes(random, 512),
      text([0x16, 0x03, 0x01, 0x02, 0x00]), // a TLS hello on a WebSocket
    ];
    const conns: Deno.TcpConn[] = [];
    try {
      for (const bytes of cases) {
        const conn = await rawUpgrade(server);
        conns.push(conn);
        await conn.write(bytes).catch(() => {});
      }
      // Good frames on a raw socket still work alongside.
      const good = await rawUpgrade(server);
      conns.push(good);
      await good.write(clientFrame(0x1, encoder.encode("still here")));
      await bystander.next((m) => m.type === "relay" && m.data === "still here");
      bystander.send({ type: "ping", id: "alive" });
      await bystander.next((m) => m.id === "alive");
    } finally {
      conns.forEach(closeQuietly);
    }
    await settle(server, 1, 0);
    bystander.send({ type: "ping", id: "after" });
    await bystander.next((m) => m.id === "after");
    await bystander.close();
    await settle(server, 0, 0);
  });
});
