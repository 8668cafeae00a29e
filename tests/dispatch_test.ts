/**
 * Unit tests of the dispatcher with a real registry and fake clients that
 * record what they would receive in their dialect: acks, errors, relays in
 * both dialects, size and rate limits. Time is injected; no sockets.
 */

import { assert, assertEquals, assertFalse } from "@std/assert";
import type { Dialect } from "../src/connection.ts";
import type { Delivery } from "../src/delivery.ts";
import {
  type Client,
  CLOSE_POLICY,
  CLOSE_TOO_BIG,
  Dispatcher,
  isOverLimit,
} from "../src/dispatch.ts";
import { Metrics } from "../src/metrics.ts";
import { RateLimiter, type RateLimitOptions } from "../src/rate_limit.ts";
import { Registry, type RegistryOptions } from "../src/registry.ts";

type Frame = string | Uint8Array;

/** A client that records the frames its dialect receives and its closes. */
class FakeClient implements Client {
  readonly frames: Frame[] = [];
  readonly closes: { code: number; reason: string }[] = [];
  readonly limiter: RateLimiter;

  constructor(
    readonly id: string,
    readonly dialect: Dialect,
    limits: RateLimitOptions,
    now: number,
  ) {
    this.limiter = new RateLimiter(limits, now);
  }

  send(delivery: Delivery): boolean {
    const frame = this.dialect === "v1" ? delivery.v1 : delivery.seed;
    if (frame === undefined) return false;
    this.frames.push(frame);
    return true;
  }

  close(code: number, reason: string): void {
    this.closes.push({ code, reason });
  }

  /** Every frame parsed as one server message (v1 frames are never batched here). */
  messages(): Record<string, unknown>[] {
    return this.frames.map((frame) => {
      assertEquals(typeof frame, "string", "server messages are text");
      return JSON.parse(frame as string);
    });
  }

  /** The single message received since the last clear, parsed. */
  only(): Record<string, unknown> {
    const messages = this.messages();
    assertEquals(messages.length, 1, `expected one message, got ${JSON.stringify(messages)}`);
    return messages[0];
  }

  clear(): void {
    this.frames.length = 0;
  }
}

interface Setup {
  registry: Registry;
  metrics: Metrics;
  dispatcher: Dispatcher;
  /** The injected clock, in ms since the epoch. */
  clock: { now: number };
  connect(dialect: Dialect, user?: string): FakeClient;
  /** Dispatches one frame from `client`. */
  send(client: FakeClient, data: string | ArrayBuffer | Record<string, unknown>): void;
  /** Flushes presence and forgets every frame received so far. */
  settle(): void;
}

const T0 = 1_700_000_000_000;
const GENEROUS: RateLimitOptions = { rate: 1e6, burst: 1e6, abuseSeconds: 10 };

function setup(
  options: {
    registry?: Partial<RegistryOptions>;
    maxMessageBytes?: number;
    limits?: RateLimitOptions;
  } = {},
): Setup {
  const clock = { now: T0 };
  const registry = new Registry({ defaultGroup: "lobby", maxGroups: 100, ...options.registry });
  const metrics = new Metrics();
  const dispatcher = new Dispatcher(registry, metrics, {
    maxMessageBytes: options.maxMessageBytes ?? 64 * 1024,
    now: () => clock.now,
  });
  const clients: FakeClient[] = [];
  let next = 0;
  const self: Setup = {
    registry,
    metrics,
    dispatcher,
    clock,
    connect(dialect, user) {
      const client = new FakeClient(`c${next++}`, dialect, options.limits ?? GENEROUS, clock.now);
      registry.add(client);
      clients.push(client);
      if (user !== undefined) {
        self.send(client, { type: "online", from: user });
        assertEquals(registry.userOf(client), user);
      }
      client.clear();
      return client;
    },
    send(client, data) {
      const frame = typeof data === "string" || data instanceof ArrayBuffer
        ? data
        : JSON.stringify(data);
      dispatcher.receive(client, frame);
    },
    settle() {
      registry.flushPresence();
      for (const client of clients) client.clear();
    },
  };
  return self;
}

const bytes = (text: string): ArrayBuffer => new TextEncoder().encode(text).buffer as ArrayBuffer;

function errorFrame(code: string, id?: string | number): Record<string, unknown> {
  return id === undefined ? { type: "error", code } : { type: "error", code, id };
}

/** A received error without its person-readable message, which must not be empty. */
function withoutMessage(message: Record<string, unknown>): Record<string, unknown> {
  assert(typeof message.message === "string" && message.message.length > 0, "error has a message");
  const { message: _, ...rest } = message;
  return rest;
}

// ---------------------------------------------------------------------------
// Acks (switchboard.v1).

Deno.test("v1: online is acked with the user", () => {
  const { connect, send } = setup();
  const alice = connect("v1");
  send(alice, { type: "online", from: "alice", id: 1 });
  assertEquals(alice.only(), { type: "ack", id: 1, user: "alice" });
});

Deno.test("v1: a command without id succeeds silently", () => {
  const { connect, send, registry } = setup();
  const alice = connect("v1");
  send(alice, { type: "online", from: "alice" });
  send(alice, { type: "join", group: "room" });
  assertEquals(alice.frames, []);
  assert(registry.isMember(alice, "room"));
});

Deno.test("v1: join is acked with the group and its sorted members, the joiner included", () => {
  const { connect, send } = setup();
  connect("v1", "zoe");
  const zoe = connect("v1", "zoe");
  send(zoe, { type: "join", group: "room" });
  const bob = connect("seed", "bob");
  send(bob, { type: "join", group: "room" });
  const alice = connect("v1", "alice");
  send(alice, { type: "join", group: "room", id: "j1" });
  assertEquals(alice.only(), {
    type: "ack",
    id: "j1",
    group: "room",
    members: ["alice", "bob", "zoe"],
  });
});

Deno.test("v1: leave and members are acked with their fields", () => {
  const { connect, send, registry } = setup();
  const alice = connect("v1", "alice");
  const bob = connect("v1", "bob");
  send(bob, { type: "join", group: "room" });
  send(alice, { type: "join", group: "room" });
  send(alice, { type: "members", group: "room", id: 2 });
  assertEquals(alice.only(), { type: "ack", id: 2, group: "room", members: ["alice", "bob"] });
  alice.clear();
  send(alice, { type: "leave", group: "room", id: 3 });
  assertEquals(alice.only(), { type: "ack", id: 3, group: "room" });
  assertFalse(registry.isMember(alice, "room"));
  assertEquals(registry.members("room"), ["bob"]);
});

Deno.test("v1: a group message reaches every other member and is acked with delivered", () => {
  const s = setup();
  const aliceTab1 = s.connect("v1", "alice");
  const aliceTab2 = s.connect("v1", "alice");
  const bob = s.connect("seed", "bob");
  const outsider = s.connect("v1", "carol");
  for (const c of [aliceTab1, aliceTab2, bob]) s.send(c, { type: "join", group: "room" });
  s.settle();
  s.clock.now = T0 + 1234;
  s.send(aliceTab1, { type: "message", group: "room", data: { text: "hi" }, id: "m1" });
  assertEquals(aliceTab1.only(), { type: "ack", id: "m1", delivered: 2 });
  const expected = {
    type: "message",
    from: "alice",
    group: "room",
    data: { text: "hi" },
    ts: T0 + 1234,
  };
  assertEquals(aliceTab2.only(), expected, "the sender's other tab gets it");
  assertEquals(bob.only(), expected, "a seed member gets message frames too");
  assertEquals(outsider.frames, []);
});

Deno.test("v1: a direct message reaches every connection of the user; to oneself, only the other tabs", () => {
  const s = setup();
  const alice = s.connect("v1", "alice");
  const aliceTab2 = s.connect("v1", "alice");
  const bobTab1 = s.connect("v1", "bob");
  const bobTab2 = s.connect("seed", "bob");
  s.settle();
  s.send(alice, { type: "message", to: "bob", data: [1, 2], id: 9 });
  assertEquals(alice.only(), { type: "ack", id: 9, delivered: 2 });
  const expected = { type: "message", from: "alice", to: "bob", data: [1, 2], ts: T0 };
  assertEquals(bobTab1.only(), expected);
  assertEquals(bobTab2.only(), expected);
  assertEquals(aliceTab2.frames, []);
  alice.clear();
  s.send(alice, { type: "message", to: "alice", data: "note to self", id: 10 });
  assertEquals(alice.only(), { type: "ack", id: 10, delivered: 1 });
  assertEquals(aliceTab2.only(), {
    type: "message",
    from: "alice",
    to: "alice",
    data: "note to self",
    ts: T0,
  });
});

Deno.test("v1: ping is answered with pong, with the id when given; before online too", () => {
  const { connect, send } = setup();
  const anonymous = connect("v1");
  send(anonymous, { type: "ping" });
  send(anonymous, { type: "ping", id: "p" });
  assertEquals(anonymous.messages(), [{ type: "pong" }, { type: "pong", id: "p" }]);
});

// ---------------------------------------------------------------------------
// Seed dialect.

Deno.test("seed: successful commands get no ack and ping gets no pong", () => {
  const { connect, send, registry } = setup();
  const seed = connect("seed");
  send(seed, { type: "online", from: "sam", id: 1 });
  send(seed, { type: "join", group: "room", id: 2 });
  send(seed, { type: "members", group: "room", id: 3 });
  send(seed, { type: "ping", id: 4 });
  send(seed, { type: "leave", group: "room", id: 5 });
  assertEquals(seed.frames, []);
  assertEquals(registry.userOf(seed), "sam");
  assertFalse(registry.isMember(seed, "room"));
});

Deno.test("seed: failed commands are answered with error frames carrying the id", () => {
  const { connect, send } = setup();
  const seed = connect("seed");
  send(seed, { type: "join", group: "room", id: 7 });
  assertEquals(withoutMessage(seed.only()), errorFrame("not_identified", 7));
  seed.clear();
  send(seed, { type: "online", from: "a b" });
  assertEquals(withoutMessage(seed.only()), errorFrame("invalid_name"));
});

// ---------------------------------------------------------------------------
// Errors.

Deno.test("before online, a malformed command is invalid_message and a well-formed one not_identified", () => {
  const s = setup();
  for (const dialect of ["v1", "seed"] as const) {
    const client = s.connect(dialect);
    const cases: [Record<string, unknown>, string][] = [
      [{ type: "join", id: 1 }, "invalid_message"],
      [{ type: "join", group: 5, id: 1 }, "invalid_message"],
      [{ type: "join", group: "a b", id: 1 }, "invalid_name"],
      [{ type: "join", group: "room", id: 1 }, "not_identified"],
      [{ type: "leave", group: "room", id: 1 }, "not_identified"],
      [{ type: "members", group: "room", id: 1 }, "not_identified"],
      [{ type: "message", group: "room", id: 1 }, "invalid_message"],
      [{ type: "message", group: "room", to: "x", data: 1, id: 1 }, "invalid_message"],
      [{ type: "message", group: "room", data: 1, id: 1 }, "not_identified"],
      [{ type: "message", to: "bob", data: 1, id: 1 }, "not_identified"],
    ];
    for (const [command, code] of cases) {
      client.clear();
      s.send(client, command);
      assertEquals(withoutMessage(client.only()), errorFrame(code, 1), JSON.stringify(command));
    }
  }
  assertEquals(s.metrics.errors.get("not_identified"), 10);
  assertEquals(s.metrics.errors.get("invalid_message"), 8);
  assertEquals(s.metrics.errors.get("invalid_name"), 2);
});

Deno.test("an invalid id is refused with an error that carries no id", () => {
  const { connect, send } = setup();
  const alice = connect("v1", "alice");
  send(alice, { type: "ping", id: 1.5 });
  assertEquals(withoutMessage(alice.only()), errorFrame("invalid_message"));
});

Deno.test("online as another user is already_identified and changes nothing", () => {
  const { connect, send, registry } = setup();
  const alice = connect("v1", "alice");
  send(alice, { type: "online", from: "alice", id: 1 });
  assertEquals(alice.only(), { type: "ack", id: 1, user: "alice" }, "the same user again is fine");
  alice.clear();
  send(alice, { type: "online", from: "mallory", id: 2 });
  assertEquals(withoutMessage(alice.only()), errorFrame("already_identified", 2));
  assertEquals(registry.userOf(alice), "alice");
  assertFalse(registry.isOnline("mallory"));
});

Deno.test("a message to a user with no connection is user_offline and delivers nothing", () => {
  const { connect, send } = setup();
  const alice = connect("v1", "alice");
  const bob = connect("v1", "bob");
  send(alice, { type: "message", to: "nobody", data: 1, id: "x" });
  assertEquals(withoutMessage(alice.only()), errorFrame("user_offline", "x"));
  assertEquals(bob.frames, []);
});

Deno.test("message, members and leave on a group one is not in are not_member", () => {
  const s = setup();
  const alice = s.connect("v1", "alice");
  const bob = s.connect("v1", "bob");
  s.send(bob, { type: "join", group: "room" });
  s.settle();
  for (
    const command of [
      { type: "message", group: "room", data: "sneaky", id: 1 },
      { type: "members", group: "room", id: 1 },
      { type: "leave", group: "room", id: 1 },
      { type: "message", group: "nowhere", data: 1, id: 1 },
    ]
  ) {
    alice.clear();
    s.send(alice, command);
    assertEquals(
      withoutMessage(alice.only()),
      errorFrame("not_member", 1),
      JSON.stringify(command),
    );
  }
  assertEquals(bob.frames, [], "nothing reached the group");
  assertEquals(s.registry.members("room"), ["bob"]);
});

Deno.test("leaving the default group is refused with invalid_message; the connection stays in it", () => {
  const { connect, send, registry } = setup();
  const alice = connect("v1", "alice");
  send(alice, { type: "leave", group: "lobby", id: "l" });
  assertEquals(withoutMessage(alice.only()), errorFrame("invalid_message", "l"));
  assert(registry.isMember(alice, "lobby"));
  assertEquals(registry.members("lobby"), ["alice"]);
});

Deno.test("too_many_groups refuses the join and changes nothing", () => {
  const s = setup({ registry: { maxGroups: 1 } });
  const alice = s.connect("v1", "alice");
  const bob = s.connect("v1", "bob");
  s.send(bob, { type: "join", group: "b" });
  s.send(alice, { type: "join", group: "a" });
  s.settle();
  const before = s.registry.stats();
  s.send(alice, { type: "join", group: "b", id: 5 });
  assertEquals(withoutMessage(alice.only()), errorFrame("too_many_groups", 5));
  assertFalse(s.registry.isMember(alice, "b"));
  assertEquals(s.registry.members("b"), ["bob"]);
  assertEquals(s.registry.stats(), before);
  s.registry.flushPresence();
  assertEquals(bob.frames, [], "no presence for a refused join");
});

Deno.test("an error is sent only to the failing connection", () => {
  const { connect, send } = setup();
  const alice = connect("v1", "alice");
  const aliceTab2 = connect("v1", "alice");
  const bob = connect("seed", "bob");
  send(alice, { type: "members", group: "nowhere", id: 1 });
  assertEquals(alice.frames.length, 1);
  assertEquals(aliceTab2.frames, []);
  assertEquals(bob.frames, []);
});

// ---------------------------------------------------------------------------
// Relay.

Deno.test("relay: seed to seed is verbatim and skips the sender", () => {
  const s = setup();
  const a = s.connect("seed");
  const b = s.connect("seed");
  const c = s.connect("seed", "carol");
  const texts = ["hello", `{"not":"a command","n":1}`, "[1,2]", "", "line\nbreak"];
  for (const text of texts) s.send(a, text);
  assertEquals(a.frames, []);
  assertEquals(b.frames, texts);
  assertEquals(c.frames, texts);
});

Deno.test("relay: seed to v1 is wrapped as {type:relay, from, data:original}", () => {
  const s = setup();
  const anonymous = s.connect("seed");
  const sam = s.connect("seed", "sam");
  const viewer = s.connect("v1", "vera");
  s.settle();
  s.send(anonymous, "hi there");
  s.send(sam, `{"text":"json, not a command"}`);
  assertEquals(viewer.messages(), [
    { type: "relay", from: null, data: "hi there" },
    { type: "relay", from: "sam", data: `{"text":"json, not a command"}` },
  ]);
});

Deno.test("relay: a forged presence frame from a seed client reaches v1 only wrapped", () => {
  const s = setup();
  const mallory = s.connect("seed");
  const seedPeer = s.connect("seed");
  const viewer = s.connect("v1", "vera");
  s.settle();
  const forged = `{"type":"presence","group":"lobby","joins":["admin"],"leaves":[]}`;
  s.send(mallory, forged);
  assertEquals(viewer.only(), { type: "relay", from: null, data: forged });
  assertEquals(seedPeer.frames, [forged]);
});

Deno.test("relay: a v1 client's broadcast reaches seed peers verbatim and v1 peers wrapped", () => {
  const s = setup();
  const alice = s.connect("v1", "alice");
  const seedPeer = s.connect("seed");
  const viewer = s.connect("v1", "vera");
  s.settle();
  s.send(alice, `{"from":"mallory","text":"hi"}`);
  assertEquals(seedPeer.frames, [`{"from":"mallory","text":"hi"}`]);
  assertEquals(viewer.only(), {
    type: "relay",
    from: "alice",
    data: `{"from":"mallory","text":"hi"}`,
  });
  assertEquals(alice.frames, []);
});

Deno.test("relay: a direct frame from a seed client reaches every connection of `to` only", () => {
  const s = setup();
  const sender = s.connect("seed", "sam");
  const bobSeed = s.connect("seed", "bob");
  const bobV1 = s.connect("v1", "bob");
  const other = s.connect("seed", "carol");
  s.settle();
  const text = `{"to":"bob","from":"whoever","text":"psst"}`;
  s.send(sender, text);
  assertEquals(bobSeed.frames, [text], "seed to seed stays verbatim, even a forged from");
  assertEquals(bobV1.only(), { type: "relay", from: "sam", data: text });
  assertEquals(other.frames, []);
  assertEquals(sender.frames, []);
});

Deno.test("relay: a v1 direct frame reaches a seed recipient with from stamped to the sender's user", () => {
  const s = setup();
  const alice = s.connect("v1", "alice");
  const aliceTab2 = s.connect("seed", "alice");
  const bobSeed = s.connect("seed", "bob");
  const bobV1 = s.connect("v1", "bob");
  s.settle();
  const text = `{"to":"bob","from":"mallory","text":"hi"}`;
  s.send(alice, text);
  assertEquals(bobSeed.frames.length, 1);
  assertEquals(JSON.parse(bobSeed.frames[0] as string), { to: "bob", text: "hi", from: "alice" });
  assertEquals(bobV1.only(), { type: "relay", from: "alice", data: text });
  assertEquals(alice.frames, [], "no ack, no error");
  assertEquals(aliceTab2.frames, []);
});

Deno.test("relay: a v1 direct frame from an anonymous sender reaches seed recipients without from", () => {
  const s = setup();
  const anonymous = s.connect("v1");
  const bobSeed = s.connect("seed", "bob");
  s.settle();
  s.send(anonymous, `{"to":"bob","from":"admin","text":"hi"}`);
  assertEquals(bobSeed.frames.length, 1);
  const received = JSON.parse(bobSeed.frames[0] as string);
  assertEquals(received, { to: "bob", text: "hi" });
  assertFalse(Object.hasOwn(received, "from"));
});

Deno.test("relay: a direct frame to a user's own other tabs never returns to the sender", () => {
  const s = setup();
  const tab1 = s.connect("seed", "alice");
  const tab2 = s.connect("seed", "alice");
  s.settle();
  s.send(tab1, `{"to":"alice","n":1}`);
  assertEquals(tab1.frames, []);
  assertEquals(tab2.frames, [`{"to":"alice","n":1}`]);
});

Deno.test("relay: a direct frame to nobody is user_offline for v1 and a silent drop for seed", () => {
  const s = setup();
  const v1 = s.connect("v1", "alice");
  const seed = s.connect("seed", "sam");
  const bystander = s.connect("seed");
  s.settle();
  s.send(v1, `{"to":"ghost","text":"anyone?"}`);
  assertEquals(withoutMessage(v1.only()), errorFrame("user_offline"));
  const dropsBefore = s.metrics.drops;
  s.send(seed, `{"to":"ghost","text":"anyone?"}`);
  assertEquals(seed.frames, []);
  assertEquals(s.metrics.drops, dropsBefore + 1);
  assertEquals(bystander.frames, [], "a direct frame is never broadcast instead");
});

Deno.test("relay: binary frames reach both dialects as the same bytes", () => {
  const s = setup();
  const sender = s.connect("v1", "alice");
  const seed = s.connect("seed");
  const viewer = s.connect("v1", "vera");
  s.settle();
  const payload = new Uint8Array([0, 1, 2, 250, 255, 10, 123]);
  s.send(sender, payload.slice().buffer);
  for (const client of [seed, viewer]) {
    assertEquals(client.frames.length, 1);
    const frame = client.frames[0];
    assert(frame instanceof Uint8Array, `${client.dialect} gets a binary frame`);
    assertEquals([...frame], [...payload]);
  }
  assertEquals(sender.frames, []);
});

Deno.test("relay: binary that looks like a command is relayed, not executed", () => {
  const s = setup();
  const sender = s.connect("seed");
  const seed = s.connect("seed");
  s.send(sender, bytes(`{"type":"online","from":"x"}`));
  assertEquals(s.registry.userOf(sender), undefined);
  assertEquals(seed.frames.length, 1);
  assert(seed.frames[0] instanceof Uint8Array);
});

Deno.test("relay: with no default group, a broadcast (text or binary) is answered not_member", () => {
  const s = setup({ registry: { defaultGroup: null } });
  const seed = s.connect("seed", "sam");
  const v1 = s.connect("v1", "vera");
  s.send(seed, "hello?");
  assertEquals(withoutMessage(seed.only()), errorFrame("not_member"));
  s.send(v1, bytes("bin"));
  assertEquals(withoutMessage(v1.only()), errorFrame("not_member"));
  // A direct relay still works.
  seed.clear();
  s.send(v1, `{"to":"sam","n":1}`);
  assertEquals(JSON.parse(seed.frames[0] as string), { to: "sam", n: 1, from: "vera" });
});

// ---------------------------------------------------------------------------
// Size limit.

Deno.test("size: 65,536 bytes are accepted, 65,537 close 1009 (text and binary)", () => {
  const s = setup();
  const sender = s.connect("seed");
  const receiver = s.connect("seed");
  s.send(sender, "a".repeat(65_536));
  s.send(sender, new Uint8Array(65_536).buffer);
  assertEquals(receiver.frames.length, 2);
  assertEquals(sender.closes, []);
  s.send(sender, "a".repeat(65_537));
  assertEquals(sender.closes, [{ code: CLOSE_TOO_BIG, reason: "message too big" }]);
  const v1 = s.connect("v1");
  s.send(v1, new Uint8Array(65_537).buffer);
  assertEquals(v1.closes.map((c) => c.code), [1009]);
  assertEquals(receiver.frames.length, 2, "nothing over the limit was relayed");
});

Deno.test("size: text is measured in UTF-8 bytes, not UTF-16 units", () => {
  const s = setup();
  const sender = s.connect("seed");
  const receiver = s.connect("seed");
  const accepted = "你".repeat(21_845); // 65,535 bytes
  assertEquals(new TextEncoder().encode(accepted).length, 65_535);
  s.send(sender, accepted);
  assertEquals(sender.closes, []);
  assertEquals(receiver.frames, [accepted]);
  const tooBig = "你".repeat(21_846); // 65,538 bytes in 21,846 UTF-16 units
  assertEquals(new TextEncoder().encode(tooBig).length, 65_538);
  s.send(sender, tooBig);
  assertEquals(sender.closes.map((c) => c.code), [1009]);
  assertEquals(receiver.frames.length, 1);
});

Deno.test("size: a command over the limit closes 1009 and is not executed", () => {
  const s = setup({ maxMessageBytes: 100 });
  const alice = s.connect("v1");
  const command = JSON.stringify({ type: "online", from: "alice", id: 1, pad: "x".repeat(100) });
  s.send(alice, command);
  assertEquals(alice.closes.map((c) => c.code), [CLOSE_TOO_BIG]);
  assertEquals(alice.frames, []);
  assertEquals(s.registry.userOf(alice), undefined);
});

Deno.test("isOverLimit counts UTF-8 bytes, including 4-byte characters and lone surrogates", () => {
  const cases: [string, number][] = [
    ["a".repeat(10), 10],
    ["é".repeat(5), 10],
    ["你".repeat(4), 12],
    ["😀".repeat(3), 12],
    ["\ud800", 3], // a lone surrogate becomes U+FFFD, 3 bytes
    ["\udc00x", 4],
  ];
  for (const [text, size] of cases) {
    assertEquals(new TextEncoder().encode(text).length, size, "the case itself");
    assertFalse(isOverLimit(text, size), `${JSON.stringify(text)} fits in ${size}`);
    assert(isOverLimit(text, size - 1), `${JSON.stringify(text)} does not fit in ${size - 1}`);
  }
  assertEquals(isOverLimit("😀".repeat(16_384), 65_536), false);
  assertEquals(isOverLimit("😀".repeat(16_384) + "a", 65_536), true);
  assertEquals(isOverLimit(new ArrayBuffer(10), 10), false);
  assertEquals(isOverLimit(new ArrayBuffer(11), 10), true);
});

// ---------------------------------------------------------------------------
// Rate limit.

Deno.test("rate limit: frames over the burst get rate_limited and are dropped", () => {
  const s = setup({ limits: { rate: 1, burst: 3, abuseSeconds: 5 } });
  for (const dialect of ["v1", "seed"] as const) {
    const sender = s.connect(dialect);
    const receiver = s.connect("seed");
    s.settle();
    for (let i = 0; i < 3; i++) s.send(sender, `frame ${i}`);
    s.send(sender, "frame 3");
    s.send(sender, { type: "ping", id: 1 });
    assertEquals(receiver.frames, ["frame 0", "frame 1", "frame 2"]);
    // A dropped command is still answered with its id, so no request waits forever.
    assertEquals(sender.messages().map(withoutMessage), [
      errorFrame("rate_limited"),
      errorFrame("rate_limited", 1),
    ]);
    assertEquals(sender.closes, []);
    s.registry.remove(sender);
    s.registry.remove(receiver);
  }
});

Deno.test("rate limit: continuous abuse closes 1008 after abuseSeconds, not before", () => {
  const s = setup({ limits: { rate: 1, burst: 1, abuseSeconds: 3 } });
  const sender = s.connect("v1");
  const receiver = s.connect("seed");
  s.send(sender, "first"); // accepted: the burst
  // Four frames a second (exact in binary fractions): one accepted per second, the rest dropped.
  let closedAt: number | undefined;
  for (let t = 250; t <= 5000 && closedAt === undefined; t += 250) {
    s.clock.now = T0 + t;
    s.send(sender, `at ${t}`);
    if (sender.closes.length > 0) closedAt = t;
  }
  assertEquals(closedAt, 250 + 3000, "3 s after the first dropped frame");
  assertEquals(sender.closes, [{ code: CLOSE_POLICY, reason: "rate limit exceeded" }]);
  assertEquals(receiver.frames, ["first", "at 1000", "at 2000", "at 3000"]);
  const errors = sender.messages();
  assert(errors.length > 0);
  for (const error of errors) assertEquals(withoutMessage(error), errorFrame("rate_limited"));
  assertEquals(s.metrics.errors.get("rate_limited"), errors.length);
});

Deno.test("rate limit: a client that pauses a second is forgiven and not closed", () => {
  const s = setup({ limits: { rate: 1, burst: 1, abuseSeconds: 2 } });
  const sender = s.connect("seed");
  // Bursts of abuse 1.5 s long, each followed by a pause of more than a second, for 20 s.
  for (let start = 0; start < 20_000; start += 3000) {
    for (let t = start; t <= start + 1500; t += 250) {
      s.clock.now = T0 + t;
      s.send(sender, "spam");
    }
  }
  assertEquals(sender.closes, []);
});

Deno.test("metrics count frames in and errors by code", () => {
  const s = setup();
  const alice = s.connect("v1");
  const framesBefore = s.metrics.framesIn;
  s.send(alice, { type: "join", group: "room" });
  s.send(alice, "hello");
  s.send(alice, bytes("xyz"));
  assertEquals(s.metrics.framesIn, framesBefore + 3);
  assertEquals(s.metrics.errors.get("not_identified"), 1);
});
