/**
 * Unit tests of the wire protocol: parsing every frame a client can send into
 * a command, a relay or an error, and encoding every frame the server sends.
 * No sockets: `src/protocol.ts` is pure.
 */

import { assert, assertEquals, assertFalse, AssertionError } from "@std/assert";
import {
  type Command,
  describeError,
  encodeAck,
  encodeError,
  encodeMessage,
  encodePong,
  encodePresence,
  encodeRelay,
  encodeStampedRelay,
  encodeWelcome,
  ERROR_CODES,
  type ErrorCode,
  isValidName,
  parseFrame,
  PROTOCOL_NAME,
  type ProtocolError,
  type Relay,
} from "../src/protocol.ts";

// ---------------------------------------------------------------------------
// Helpers: each one fails the test when the frame is not of the expected kind.

function commandOf(text: string): Command {
  const frame = parseFrame(text);
  if (frame.kind !== "command") {
    throw new AssertionError(`expected a command for ${text}, got ${JSON.stringify(frame)}`);
  }
  return frame.command;
}

function errorOf(text: string): ProtocolError {
  const frame = parseFrame(text);
  if (frame.kind !== "error") {
    throw new AssertionError(`expected an error for ${text}, got ${JSON.stringify(frame)}`);
  }
  assert(frame.error.message.length > 0, "an error carries a message for a person");
  return frame.error;
}

function codeOf(text: string): ErrorCode {
  return errorOf(text).code;
}

function relayOf(text: string): Relay {
  const frame = parseFrame(text);
  if (frame.kind !== "relay") {
    throw new AssertionError(`expected a relay for ${text}, got ${JSON.stringify(frame)}`);
  }
  return frame.relay;
}

const json = (value: unknown): string => JSON.stringify(value);

function assertPrototypesClean(): void {
  const probe: Record<string, unknown> = {};
  assertEquals(probe.type, undefined, "Object.prototype.type was polluted");
  assertEquals(probe.to, undefined, "Object.prototype.to was polluted");
  assertEquals(probe.from, undefined, "Object.prototype.from was polluted");
  assertEquals(probe.admin, undefined, "Object.prototype.admin was polluted");
  assertEquals(probe.data, undefined, "Object.prototype.data was polluted");
  assertEquals(Object.keys(Object.prototype), []);
}

// ---------------------------------------------------------------------------
// Commands parsed to typed values.

Deno.test("online parses to an online command, with and without id and token", () => {
  assertEquals(commandOf(`{"type":"online","from":"alice"}`), { type: "online", from: "alice" });
  assertEquals(commandOf(`{"type":"online","from":"alice","id":"a1"}`), {
    type: "online",
    from: "alice",
    id: "a1",
  });
  assertEquals(commandOf(`{"type":"online","from":"alice","id":7,"token":"t0k"}`), {
    type: "online",
    from: "alice",
    id: 7,
    token: "t0k",
  });
});

Deno.test("join parses to a join command, with and without id and since", () => {
  assertEquals(commandOf(`{"type":"join","group":"room"}`), { type: "join", group: "room" });
  assertEquals(commandOf(`{"type":"join","group":"room","id":"j"}`), {
    type: "join",
    group: "room",
    id: "j",
  });
  assertEquals(commandOf(`{"type":"join","group":"room","since":0,"id":3}`), {
    type: "join",
    group: "room",
    since: 0,
    id: 3,
  });
  assertEquals(commandOf(`{"type":"join","group":"room","since":41}`), {
    type: "join",
    group: "room",
    since: 41,
  });
});

Deno.test("leave and members parse to their commands, with and without id", () => {
  assertEquals(commandOf(`{"type":"leave","group":"room"}`), { type: "leave", group: "room" });
  assertEquals(commandOf(`{"type":"leave","group":"room","id":"l1"}`), {
    type: "leave",
    group: "room",
    id: "l1",
  });
  assertEquals(commandOf(`{"type":"members","group":"room"}`), {
    type: "members",
    group: "room",
  });
  assertEquals(commandOf(`{"type":"members","group":"room","id":12}`), {
    type: "members",
    group: "room",
    id: 12,
  });
});

Deno.test("message parses to a group or a direct message carrying any JSON data", () => {
  assertEquals(commandOf(`{"type":"message","group":"room","data":"hi"}`), {
    type: "message",
    group: "room",
    data: "hi",
  });
  assertEquals(commandOf(`{"type":"message","to":"bob","data":{"n":[1,2]},"id":"m"}`), {
    type: "message",
    to: "bob",
    data: { n: [1, 2] },
    id: "m",
  });
  for (const data of [null, 0, false, "", [], {}, [1, "two", { three: 3 }]]) {
    const command = commandOf(json({ type: "message", group: "g", data, id: 1 }));
    assertEquals(command, { type: "message", group: "g", data, id: 1 });
  }
});

Deno.test("ping parses with and without id, ignoring unknown fields", () => {
  assertEquals(commandOf(`{"type":"ping"}`), { type: "ping" });
  assertEquals(commandOf(`{"type":"ping","id":"p"}`), { type: "ping", id: "p" });
  assertEquals(commandOf(`{"type":"ping","id":0,"extra":true}`), { type: "ping", id: 0 });
});

Deno.test("a command may be surrounded by JSON whitespace", () => {
  assertEquals(commandOf(` \n\t\r{"type":"ping"} \n`), { type: "ping" });
});

// ---------------------------------------------------------------------------
// Command ids.

Deno.test("ids: strings up to 64 characters and integers are accepted and echoed", () => {
  const id64 = "x".repeat(64);
  assertEquals(commandOf(json({ type: "ping", id: id64 })), { type: "ping", id: id64 });
  assertEquals(commandOf(json({ type: "ping", id: "" })), { type: "ping", id: "" });
  assertEquals(commandOf(json({ type: "ping", id: -5 })), { type: "ping", id: -5 });
  assertEquals(commandOf(json({ type: "ping", id: Number.MAX_SAFE_INTEGER })), {
    type: "ping",
    id: Number.MAX_SAFE_INTEGER,
  });
});

Deno.test("ids: a 65-character string, a float, an object, an array, a bool or null are invalid_message", () => {
  const badIds = ["x".repeat(65), 1.5, { a: 1 }, [1], true, null];
  for (const type of ["online", "join", "leave", "message", "members", "ping"]) {
    for (const id of badIds) {
      const text = json({ type, id, from: "a", group: "g", data: 1 });
      const error = errorOf(text);
      assertEquals(error.code, "invalid_message", text);
      // An id that is not valid cannot be echoed.
      assertEquals(error.id, undefined, text);
    }
  }
});

Deno.test("a command error carries the command's valid id", () => {
  assertEquals(errorOf(`{"type":"join","id":"j9"}`).id, "j9");
  const error = errorOf(`{"type":"online","from":"a b","id":4}`);
  assertEquals([error.code, error.id], ["invalid_name", 4]);
  assertEquals(errorOf(`{"type":"message","group":"g"}`).id, undefined);
});

// ---------------------------------------------------------------------------
// invalid_message.

Deno.test("missing or non-string name fields are invalid_message", () => {
  const cases = [
    `{"type":"online"}`,
    `{"type":"online","from":5}`,
    `{"type":"online","from":null}`,
    `{"type":"online","from":["alice"]}`,
    `{"type":"online","from":"alice","token":5}`,
    `{"type":"online","from":"alice","token":null}`,
    `{"type":"join"}`,
    `{"type":"join","group":1}`,
    `{"type":"join","group":{"name":"g"}}`,
    `{"type":"leave"}`,
    `{"type":"leave","group":false}`,
    `{"type":"members"}`,
    `{"type":"members","group":[]}`,
    `{"type":"message","group":7,"data":1}`,
    `{"type":"message","to":7,"data":1}`,
    `{"type":"message","to":null,"data":1}`,
  ];
  for (const text of cases) assertEquals(codeOf(text), "invalid_message", text);
});

Deno.test("message with both group and to, with neither, or without data is invalid_message", () => {
  assertEquals(codeOf(`{"type":"message","group":"g","to":"bob","data":1}`), "invalid_message");
  assertEquals(codeOf(`{"type":"message","data":1}`), "invalid_message");
  assertEquals(codeOf(`{"type":"message","group":"g"}`), "invalid_message");
  assertEquals(codeOf(`{"type":"message","to":"bob"}`), "invalid_message");
  // Shape errors win over name errors: both fields present, one of them invalid.
  assertEquals(codeOf(`{"type":"message","group":"a b","to":"bob","data":1}`), "invalid_message");
});

Deno.test("since must be a non-negative safe integer", () => {
  for (const since of [-1, 1.5, "3", null, true, [], {}, 2 ** 53]) {
    const text = json({ type: "join", group: "g", since, id: "s" });
    const error = errorOf(text);
    assertEquals(error.code, "invalid_message", text);
    assertEquals(error.id, "s", text);
  }
  assertEquals(commandOf(json({ type: "join", group: "g", since: 2 ** 53 - 1 })), {
    type: "join",
    group: "g",
    since: 2 ** 53 - 1,
  });
});

// ---------------------------------------------------------------------------
// invalid_name.

const BAD_NAMES: [string, string][] = [
  ["empty", ""],
  ["65 code points", "a".repeat(65)],
  ["65 emoji", "😀".repeat(65)],
  ["space", "a b"],
  ["leading space", " a"],
  ["tab", "a\tb"],
  ["newline", "a\nb"],
  ["trailing newline", "ab\n"],
  ["carriage return", "a\rb"],
  ["U+0000", "a\u0000b"],
  ["U+001F", "\u001f"],
  ["U+007F", "a\u007fb"],
  ["U+0085", "a\u0085b"],
  ["U+009F", "a\u009fb"],
  ["no-break space", "a\u00a0b"],
  ["line separator", "a\u2028b"],
  ["ideographic space", "张\u3000三"],
];

Deno.test("names of 0 or 65 code points, or with whitespace or control characters, are invalid_name", () => {
  for (const [label, name] of BAD_NAMES) {
    assertFalse(isValidName(name), label);
    for (
      const command of [
        { type: "online", from: name },
        { type: "join", group: name },
        { type: "leave", group: name },
        { type: "members", group: name },
        { type: "message", group: name, data: 1 },
        { type: "message", to: name, data: 1 },
      ]
    ) {
      assertEquals(codeOf(json(command)), "invalid_name", `${label}: ${json(command)}`);
    }
  }
});

Deno.test("names of 1 and 64 code points are valid, counted in code points not UTF-16 units", () => {
  const emoji64 = "😀".repeat(64);
  assertEquals(emoji64.length, 128, "the test string is 128 UTF-16 units");
  assertEquals([...emoji64].length, 64);
  const good = [
    "a",
    "a".repeat(64),
    emoji64,
    "张三",
    "x".repeat(63) + "😀",
    "__proto__",
    "é-ü_1.2",
  ];
  for (const name of good) {
    assert(isValidName(name), name);
    assertEquals(commandOf(json({ type: "online", from: name })), { type: "online", from: name });
    assertEquals(commandOf(json({ type: "join", group: name })), { type: "join", group: name });
    assertEquals(commandOf(json({ type: "message", to: name, data: 1 })), {
      type: "message",
      to: name,
      data: 1,
    });
  }
});

// ---------------------------------------------------------------------------
// Relay classification.

Deno.test("plain text, JSON arrays, numbers, strings, null and invalid JSON are broadcast relays", () => {
  const cases = [
    "hello",
    "",
    "   ",
    "[1,2,3]",
    `[{"type":"online","from":"a"}]`,
    "42",
    `"a string"`,
    "null",
    "true",
    `{"type":"online","from":"alice"`, // truncated JSON
    `{"to":"bob"} trailing`,
    `{to:"bob"}`,
  ];
  for (const text of cases) assertEquals(relayOf(text), { kind: "broadcast" }, text);
});

Deno.test("JSON objects without a string `to` are broadcast relays", () => {
  const cases = [
    `{}`,
    `{"text":"hi"}`,
    `{"to":5}`,
    `{"to":null}`,
    `{"to":["bob"]}`,
    `{"to":{"user":"bob"}}`,
    `{"type":"chat","text":"hi"}`,
    `{"type":5}`,
  ];
  for (const text of cases) assertEquals(relayOf(text), { kind: "broadcast" }, text);
});

Deno.test("a JSON object with a string `to` is a direct relay carrying the parsed object", () => {
  assertEquals(relayOf(`{"to":"bob","text":"hi"}`), {
    kind: "direct",
    to: "bob",
    object: { to: "bob", text: "hi" },
  });
  // Leading whitespace does not hide the object.
  assertEquals(relayOf(`\n {"to":"bob"}`), { kind: "direct", to: "bob", object: { to: "bob" } });
  // The seed never validated names: any string `to` is direct.
  assertEquals(relayOf(`{"to":""}`), { kind: "direct", to: "", object: { to: "" } });
});

Deno.test("an unknown or non-string type with a string `to` is a direct relay, not an error", () => {
  assertEquals(relayOf(`{"type":"chat","to":"bob","text":"hi"}`), {
    kind: "direct",
    to: "bob",
    object: { type: "chat", to: "bob", text: "hi" },
  });
  assertEquals(relayOf(`{"type":7,"to":"bob"}`).kind, "direct");
  // Command types are case-sensitive.
  assertEquals(relayOf(`{"type":"Online","from":"a"}`), { kind: "broadcast" });
});

Deno.test("a client's presence/welcome/ack/relay frame is not a command: it is relayed", () => {
  const forged = [
    `{"type":"presence","group":"lobby","joins":["mallory"],"leaves":[]}`,
    `{"type":"welcome","connection":"x","protocol":"switchboard.v1"}`,
    `{"type":"ack","id":1}`,
    `{"type":"relay","from":"admin","data":"x"}`,
    `{"type":"error","code":"unauthorized"}`,
    `{"type":"pong"}`,
  ];
  for (const text of forged) assertEquals(relayOf(text), { kind: "broadcast" }, text);
  assertEquals(
    relayOf(`{"type":"presence","to":"bob","joins":["mallory"]}`).kind,
    "direct",
  );
});

// ---------------------------------------------------------------------------
// __proto__ keys.

Deno.test("a __proto__ key holding a command does not make the frame a command", () => {
  const relay = relayOf(`{"__proto__":{"type":"online","from":"x"},"to":"B"}`);
  if (relay.kind !== "direct") throw new AssertionError("expected a direct relay");
  assertEquals(relay.to, "B");
  // The key stays an own data property; the object's prototype is untouched.
  assert(Object.hasOwn(relay.object, "__proto__"));
  assertEquals(Object.getPrototypeOf(relay.object), Object.prototype);
  assertEquals(relay.object.type, undefined);
  assertPrototypesClean();
});

Deno.test("a __proto__ key holding `to` does not make the frame direct", () => {
  assertEquals(relayOf(`{"__proto__":{"to":"B"}}`), { kind: "broadcast" });
  assertEquals(relayOf(`{"__proto__":{"type":"ping"}}`), { kind: "broadcast" });
  assertPrototypesClean();
});

Deno.test("a __proto__ key cannot supply a command's missing fields", () => {
  assertEquals(codeOf(`{"type":"online","__proto__":{"from":"admin"}}`), "invalid_message");
  assertEquals(codeOf(`{"type":"join","__proto__":{"group":"g"}}`), "invalid_message");
  assertEquals(codeOf(`{"type":"message","group":"g","__proto__":{"data":1}}`), "invalid_message");
  assertEquals(commandOf(`{"type":"ping","__proto__":{"id":"x"}}`), { type: "ping" });
  assertPrototypesClean();
});

Deno.test("__proto__ is a valid group and user name", () => {
  assertEquals(commandOf(`{"type":"join","group":"__proto__","id":1}`), {
    type: "join",
    group: "__proto__",
    id: 1,
  });
  assertEquals(commandOf(`{"type":"online","from":"__proto__"}`), {
    type: "online",
    from: "__proto__",
  });
  assertEquals(commandOf(`{"type":"message","group":"constructor","data":1}`), {
    type: "message",
    group: "constructor",
    data: 1,
  });
  assertEquals(relayOf(`{"to":"__proto__"}`).kind, "direct");
  assertPrototypesClean();
});

Deno.test("message data with a __proto__ key is kept as data and re-encoded as data", () => {
  const command = commandOf(`{"type":"message","group":"g","data":{"__proto__":{"admin":true}}}`);
  if (command.type !== "message") throw new AssertionError("expected a message");
  const data = command.data as Record<string, unknown>;
  assert(Object.hasOwn(data, "__proto__"));
  assertEquals(Object.getPrototypeOf(data), Object.prototype);
  const encoded = encodeMessage("alice", { group: "g" }, data, 1);
  assert(encoded.includes(`"data":{"__proto__":{"admin":true}}`), encoded);
  assertPrototypesClean();
});

// ---------------------------------------------------------------------------
// Encoders.

const TRICKY = 'line1\nline2\r\n\u2028\u2029\ttab "quoted" \\ 😀 张三';

Deno.test("encoders produce one JSON message with no raw newline, even when data has newlines", () => {
  const encoded = [
    encodeWelcome(
      "c1",
      { maxMessageBytes: 65536, rateLimit: 50, rateBurst: 100, maxGroups: 100 },
      TRICKY,
    ),
    encodeAck("a\nb", { members: [TRICKY] }),
    encodeError({ code: "invalid_message", message: TRICKY, id: TRICKY }),
    encodePong(TRICKY),
    encodeMessage(TRICKY, { group: TRICKY }, { text: TRICKY, list: [TRICKY] }, 1, 2),
    encodeRelay(TRICKY, TRICKY),
    encodePresence(TRICKY, [TRICKY], [TRICKY]),
    encodeStampedRelay({ to: "b", text: TRICKY }, TRICKY),
  ];
  for (const text of encoded) {
    assertFalse(text.includes("\n"), text);
    assertFalse(text.includes("\r"), text);
    const value = JSON.parse(text);
    assertEquals(typeof value.type === "string" || typeof value.to === "string", true);
  }
  assertEquals(JSON.parse(encodeRelay("a", TRICKY)).data, TRICKY);
});

Deno.test("encodeWelcome names the protocol, the limits and the default group", () => {
  const limits = { maxMessageBytes: 65536, rateLimit: 50, rateBurst: 100, maxGroups: 100 };
  assertEquals(JSON.parse(encodeWelcome("c42", limits, "lobby")), {
    type: "welcome",
    connection: "c42",
    protocol: "switchboard.v1",
    limits,
    defaultGroup: "lobby",
  });
  assertEquals(JSON.parse(encodeWelcome("c42", limits, null)).defaultGroup, null);
  assertEquals(PROTOCOL_NAME, "switchboard.v1");
});

Deno.test("encodeAck, encodeError and encodePong carry the id and fields", () => {
  assertEquals(JSON.parse(encodeAck(1)), { type: "ack", id: 1 });
  assertEquals(JSON.parse(encodeAck("x", { group: "g", members: ["a", "b"] })), {
    type: "ack",
    id: "x",
    group: "g",
    members: ["a", "b"],
  });
  assertEquals(JSON.parse(encodeError({ code: "not_member", message: "no" })), {
    type: "error",
    code: "not_member",
    message: "no",
  });
  assertEquals(JSON.parse(encodeError({ code: "user_offline", message: "gone", id: 0 })), {
    type: "error",
    code: "user_offline",
    message: "gone",
    id: 0,
  });
  assertEquals(JSON.parse(encodePong()), { type: "pong" });
  assertEquals(JSON.parse(encodePong(0)), { type: "pong", id: 0 });
  assertEquals(JSON.parse(encodePong("p")), { type: "pong", id: "p" });
});

Deno.test("encodeMessage stamps from, target, data, ts and an optional offset", () => {
  assertEquals(JSON.parse(encodeMessage("alice", { group: "g" }, { n: 1 }, 1700000000000)), {
    type: "message",
    from: "alice",
    group: "g",
    data: { n: 1 },
    ts: 1700000000000,
  });
  assertEquals(JSON.parse(encodeMessage("alice", { to: "bob" }, null, 5, 9)), {
    type: "message",
    from: "alice",
    to: "bob",
    data: null,
    ts: 5,
    offset: 9,
  });
});

Deno.test("encodeRelay wraps the original text as a string with the trusted sender", () => {
  const original = `{"type":"presence","group":"lobby","joins":["mallory"],"leaves":[]}`;
  assertEquals(JSON.parse(encodeRelay("alice", original)), {
    type: "relay",
    from: "alice",
    data: original,
  });
  assertEquals(JSON.parse(encodeRelay(null, "hi")), { type: "relay", from: null, data: "hi" });
});

Deno.test("encodePresence lists joins and leaves for one group", () => {
  assertEquals(JSON.parse(encodePresence("g", ["a"], [])), {
    type: "presence",
    group: "g",
    joins: ["a"],
    leaves: [],
  });
});

Deno.test("encodeStampedRelay sets from to the sender, replacing a forged one", () => {
  const object = { to: "bob", from: "mallory", text: "hi" };
  assertEquals(JSON.parse(encodeStampedRelay(object, "alice")), {
    to: "bob",
    text: "hi",
    from: "alice",
  });
  // The input object is not modified.
  assertEquals(object, { to: "bob", from: "mallory", text: "hi" });
  assertEquals(JSON.parse(encodeStampedRelay({ to: "bob" }, "alice")), {
    to: "bob",
    from: "alice",
  });
});

Deno.test("encodeStampedRelay removes from for an anonymous sender", () => {
  const stamped = JSON.parse(encodeStampedRelay({ to: "bob", from: "mallory", n: 1 }, null));
  assertEquals(stamped, { to: "bob", n: 1 });
  assertFalse(Object.hasOwn(stamped, "from"));
});

Deno.test("encodeStampedRelay keeps an own __proto__ key as data and pollutes nothing", () => {
  const relay = relayOf(`{"__proto__":{"admin":true,"from":"root"},"to":"bob","from":"mallory"}`);
  if (relay.kind !== "direct") throw new AssertionError("expected a direct relay");
  const text = encodeStampedRelay(relay.object, "alice");
  assert(text.includes(`"__proto__":{"admin":true,"from":"root"}`), text);
  const parsed = JSON.parse(text);
  assert(Object.hasOwn(parsed, "__proto__"));
  assertEquals(parsed.from, "alice");
  assertEquals(parsed.to, "bob");
  assertEquals(parsed.admin, undefined);
  const anonymous = JSON.parse(encodeStampedRelay(relay.object, null));
  assert(Object.hasOwn(anonymous, "__proto__"));
  assertFalse(Object.hasOwn(anonymous, "from"));
  assertPrototypesClean();
});

Deno.test("every error code has a person-readable description", () => {
  assertEquals(ERROR_CODES.length, 10);
  assertEquals(new Set(ERROR_CODES).size, ERROR_CODES.length);
  for (const code of ERROR_CODES) assert(describeError(code).length > 0, code);
});
