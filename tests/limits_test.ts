import { assert, assertEquals, assertMatch, assertRejects } from "@std/assert";
import {
  eventually,
  healthz,
  rawUpgrade,
  type ServerMessage,
  TestClient,
  withServer,
} from "./_helpers.ts";
import {
  assertSameFrames,
  clientFrame,
  closeCode,
  closeQuietly,
  delay,
  handshakeStatus,
  metrics,
  parseServerFrames,
  rawHandshake,
  readUntil,
  untilWhileOpen,
  within,
} from "./_wire.ts";

const encoder = new TextEncoder();
const utf8Length = (text: string) => encoder.encode(text).length;
const isError = (code: string) => (m: ServerMessage) => m.type === "error" && m.code === code;

/** Sends a ping with `id` and resolves with the pong (or error) that carries it. */
async function ping(client: TestClient, id: string): Promise<ServerMessage> {
  client.send({ type: "ping", id });
  return await client.next((m) => m.id === id);
}

/** Waits for the server to count `n` connections. */
async function connectionsAre(server: Parameters<typeof healthz>[0], n: number) {
  await eventually(async () => (await healthz(server)).connections === n, `${n} connections`);
}

/** A `message` command to the default group whose JSON is exactly `bytes` UTF-8 bytes long. */
function messageOfSize(bytes: number, id: string): string {
  const base = JSON.stringify({ type: "message", group: "lobby", id, data: "" });
  return JSON.stringify({
    type: "message",
    group: "lobby",
    id,
    data: "m".repeat(bytes - base.length),
  });
}

// ---------------------------------------------------------------------------
// Message size

Deno.test("a 65,536-byte message is accepted and a 65,537-byte one closes the connection 1009", async () => {
  await withServer({}, async (server) => {
    const sender = await TestClient.v1(server);
    const reader = await TestClient.seed(server);
    await sender.online("big");
    assertEquals(sender.messages[0].limits.maxMessageBytes, 65536);

    // A command of exactly the limit is executed.
    const command = messageOfSize(65536, "exact");
    assertEquals(utf8Length(command), 65536);
    sender.send(command);
    const ack = await sender.next((m) => m.id === "exact");
    assertEquals([ack.type, ack.delivered], ["ack", 1]);
    await reader.until(() => reader.frames.length === 1, "the big message");
    assertEquals(JSON.parse(reader.frames[0] as string).data, JSON.parse(command).data);

    // A relayed text frame of exactly the limit arrives verbatim, and the sender stays open.
    const relay = "r".repeat(65536);
    sender.send(relay);
    await reader.until(() => reader.frames.length === 2, "the big relay");
    assertSameFrames(reader.frames.slice(1), [relay], "the relay");
    assertEquals((await ping(sender, "still-open")).type, "pong");

    // One byte more: closed 1009, and the frame reaches nobody.
    sender.send("r".repeat(65537));
    const closed = await sender.closed;
    assertEquals(closed.code, 1009);
    reader.send("fence");
    await connectionsAre(server, 1);
    assertEquals(reader.frames.length, 2);
    await reader.close();
  });
});

Deno.test("a pong answers a ping with its id after a message of exactly the limit", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.v1(server);
    client.send("x".repeat(65536));
    client.send({ type: "ping", id: "after" });
    const pong = await client.next((m) => m.id === "after");
    assertEquals(pong, { type: "pong", id: "after" });
    await client.close();
  });
});

Deno.test("the size limit counts UTF-8 bytes, not characters", async () => {
  await withServer({}, async (server) => {
    const reader = await TestClient.seed(server);
    const sender = await TestClient.seed(server);
    // 2-, 3- and 4-byte characters filling exactly 65,536 bytes are accepted…
    const fits = ["é".repeat(32768), "€".repeat(21845) + "a", "😀".repeat(16384)];
    for (const text of fits) {
      assertEquals(utf8Length(text), 65536);
      sender.send(text);
    }
    await reader.until(() => reader.frames.length === 3, "three full-size frames");
    assertSameFrames(reader.frames, fits, "full-size frames");

    // …and one byte more closes, though the text is far shorter in characters.
    for (
      const text of ["é".repeat(32768) + "a", "€".repeat(21845) + "ab", "😀".repeat(16384) + "a"]
    ) {
      assertEquals(utf8Length(text), 65537);
      const client = await TestClient.seed(server);
      client.send(text);
      assertEquals((await client.closed).code, 1009, `${text.length} UTF-16 units`);
    }
    assertEquals(reader.frames.length, 3);
    await Promise.all([reader.close(), sender.close()]);
  });
});

Deno.test("a binary frame over the limit closes 1009; one at the limit is relayed", async () => {
  await withServer({}, async (server) => {
    const reader = await TestClient.v1(server);
    const sender = await TestClient.seed(server);
    const exact = new Uint8Array(65536).fill(7);
    sender.send(exact);
    await reader.until(() => reader.frames.length === 2, "the binary frame");
    assertSameFrames(reader.frames.slice(1), [exact], "the binary relay");

    sender.send(new Uint8Array(65537));
    assertEquals((await sender.closed).code, 1009);
    await connectionsAre(server, 1);
    assertEquals(reader.frames.length, 2);
    await reader.close();
  });
});

Deno.test("a fragmented message is measured after reassembly, against a configured limit", async () => {
  await withServer({ maxMessageBytes: 1000 }, async (server) => {
    const reader = await TestClient.seed(server);
    const conn = await rawUpgrade(server);
    try {
      await connectionsAre(server, 2);
      const part = encoder.encode("f".repeat(400));
      // 400 + 400 + 200 = 1000 bytes: accepted and relayed as one message.
      await conn.write(clientFrame(0x1, part, false));
      await conn.write(clientFrame(0x0, part, false));
      await conn.write(clientFrame(0x0, part.subarray(0, 200), true));
      await reader.until(() => reader.frames.length === 1, "the reassembled message");
      assertEquals(reader.frames[0], "f".repeat(1000));

      // 400 + 400 + 201 bytes, no fragment over the limit: closed 1009.
      await conn.write(clientFrame(0x1, part, false));
      await conn.write(clientFrame(0x0, part, false));
      await conn.write(clientFrame(0x0, part.subarray(0, 201), true));
      const { bytes } = await readUntil(
        conn,
        (b) => parseServerFrames(b).some((f) => f.opcode === 0x8),
        "a close frame",
      );
      const close = parseServerFrames(bytes).find((f) => f.opcode === 0x8)!;
      assertEquals(closeCode(close), 1009);
      assertEquals(reader.frames.length, 1);
    } finally {
      closeQuietly(conn);
    }
    await connectionsAre(server, 1);
    await reader.close();
  });
});

// ---------------------------------------------------------------------------
// Rate

Deno.test("frames past the burst are answered rate_limited (with the command's id) and reach nobody", async () => {
  // A refill of one frame per 1000 s: nothing refills while the test runs.
  await withServer({ rate: 0.001, burst: 5, abuseSeconds: 60 }, async (server) => {
    const sender = await TestClient.v1(server);
    const reader = await TestClient.v1(server);
    const witness = await TestClient.seed(server);
    for (let i = 0; i < 5; i++) sender.send(`ok ${i}`);
    for (let i = 5; i < 9; i++) sender.send(`dropped ${i}`);
    sender.send({ type: "ping", id: "limited-ping" });
    sender.send({ type: "online", from: "late", id: 42 });
    await sender.until(
      () => sender.messages.filter(isError("rate_limited")).length === 6,
      "six rate_limited errors",
    );
    const errors = sender.messages.filter(isError("rate_limited"));
    assertEquals(errors.map((e) => e.id), [
      undefined,
      undefined,
      undefined,
      undefined,
      "limited-ping",
      42,
    ]);
    assert(errors.every((e) => typeof e.message === "string" && e.message.length > 0));

    // The dropped online changed nothing: the user does not exist.
    assertEquals((await healthz(server)).users, 0);
    // A fence from another client: everything the sender got through is in front of it.
    witness.send("fence");
    await reader.next((m) => m.type === "relay" && m.data === "fence");
    const relayed = reader.messages.filter((m) => m.type === "relay").map((m) => m.data);
    assertEquals(relayed, ["ok 0", "ok 1", "ok 2", "ok 3", "ok 4", "fence"]);
    assertEquals(witness.frames, ["ok 0", "ok 1", "ok 2", "ok 3", "ok 4"]);
    assertEquals(sender.socket.readyState, WebSocket.OPEN);
    await Promise.all([sender.close(), reader.close(), witness.close()]);
  });
});

Deno.test("a rate-limited connection is forgiven once its bucket refills", async () => {
  await withServer({ rate: 20, burst: 2, abuseSeconds: 60 }, async (server) => {
    const client = await TestClient.v1(server);
    for (let i = 0; i < 4; i++) client.send({ type: "ping", id: i });
    await client.until(
      () => client.messages.filter((m) => m.id !== undefined).length === 4,
      "four answers",
    );
    const answers = client.messages.filter((m) => m.id !== undefined).map((m) => m.type);
    assertEquals(answers.slice(0, 2), ["pong", "pong"]);
    assert(answers.includes("error"), `some pings past the burst are refused: ${answers}`);
    // 200 ms at 20 frames/s refills the bucket of two.
    await delay(200);
    client.send({ type: "ping", id: "again" });
    assertEquals((await client.next((m) => m.id === "again")).type, "pong");
    await client.close();
  });
});

Deno.test("continued rate-limit abuse closes the connection 1008; others are unaffected", async () => {
  await withServer({ rate: 5, burst: 5, abuseSeconds: 0.5 }, async (server) => {
    const abuser = await TestClient.seed(server);
    const bystander = await TestClient.v1(server);
    let sent = 0;
    const spam = () => {
      if (abuser.socket.readyState === WebSocket.OPEN) abuser.send(`spam ${sent++}`);
    };
    // Past the burst at once, then ten a second (twice the rate) until the server hangs up.
    // Paced, because Deno ends the TCP connection right after its close frame: a frame
    // arriving after that makes the kernel reset the connection, and the client may lose
    // the close frame (and its code) with it.
    for (let i = 0; i < 8; i++) spam();
    const timer = setInterval(spam, 100);
    try {
      const closed = await within(abuser.closed, 8000, "the abuser's close");
      assertEquals(closed.code, 1008);
    } finally {
      clearInterval(timer);
    }
    // The frames that were dropped were answered rate_limited, and at most burst + refill relayed.
    const relayed = bystander.messages.filter((m) => m.type === "relay").length;
    assert(relayed < sent, `${relayed} of ${sent} frames relayed`);
    assert(
      abuser.frames.some((f) => typeof f === "string" && f.includes('"rate_limited"')),
      "the abuser was told before being closed",
    );
    assertEquals((await ping(bystander, "bystander")).type, "pong");
    await connectionsAre(server, 1);
    const counted = await metrics(server);
    assertEquals(counted.get('switchboard_closes_total{reason="policy_violation"}'), 1);
    await bystander.close();
  });
});

// ---------------------------------------------------------------------------
// Groups

Deno.test("a join past maxGroups is too_many_groups and changes nothing; the default group is not counted", async () => {
  await withServer({ maxGroups: 2 }, async (server) => {
    const owner = await TestClient.v1(server);
    const joiner = await TestClient.v1(server);
    await owner.online("owner");
    await joiner.online("joiner");
    await owner.request({ type: "join", group: "third" });

    // Two joins besides the default group are fine.
    assertEquals((await joiner.request({ type: "join", group: "one" })).type, "ack");
    assertEquals((await joiner.request({ type: "join", group: "two" })).type, "ack");
    const refused = await joiner.request({ type: "join", group: "third" });
    assertEquals([refused.type, refused.code], ["error", "too_many_groups"]);
    // Joining a group one is in (or the default group) is not a new group.
    assertEquals((await joiner.request({ type: "join", group: "one" })).type, "ack");
    assertEquals((await joiner.request({ type: "join", group: "lobby" })).type, "ack");

    // Nothing changed in "third": members, presence and delivery all say so.
    assertEquals((await owner.request({ type: "members", group: "third" })).members, ["owner"]);
    const asked = await joiner.request({ type: "members", group: "third" });
    assertEquals(asked.code, "not_member");
    const sent = await owner.request({ type: "message", group: "third", data: "anyone?" });
    assertEquals(sent.delivered, 0);
    const stray = await joiner.request({ type: "message", group: "third", data: "x" });
    assertEquals(stray.code, "not_member");
    assert(
      !owner.messages.some((m) => m.type === "presence" && m.group === "third"),
      "no presence for a refused join",
    );
    assertEquals((await healthz(server)).groups, 4); // lobby, one, two, third

    // Leaving one makes room.
    await joiner.request({ type: "leave", group: "two" });
    assertEquals((await joiner.request({ type: "join", group: "third" })).type, "ack");
    await owner.next((m) => m.type === "presence" && m.group === "third");
    await Promise.all([owner.close(), joiner.close()]);
  });
});

// ---------------------------------------------------------------------------
// Connections

Deno.test("an upgrade past maxConnections is answered 503, and a freed slot is reused", async () => {
  await withServer({ maxConnections: 2 }, async (server) => {
    const a = await TestClient.v1(server);
    const b = await TestClient.seed(server);
    assertMatch(await handshakeStatus(server), /^HTTP\/1\.1 503 /);
    assertMatch(await handshakeStatus(server, { protocol: "switchboard.v1", path: "/" }), / 503 /);
    await assertRejects(() => TestClient.v1(server));
    // Plain HTTP still works when the socket slots are full.
    assertEquals((await healthz(server)).connections, 2);
    assert((await metrics(server)).get("switchboard_upgrades_refused_total")! >= 3);

    await b.close();
    await connectionsAre(server, 1);
    const c = await TestClient.v1(server);
    assertEquals((await ping(c, "c")).type, "pong");
    await Promise.all([a.close(), c.close()]);
  });
});

// ---------------------------------------------------------------------------
// Slow consumers

Deno.test("a reader that never reads is evicted 1013 while a reader that keeps up gets every message in order", async () => {
  await withServer({ slowConsumerBytes: 65536, rate: 1e6, burst: 1e6 }, async (server) => {
    const stalled = await rawUpgrade(server);
    try {
      const reader = await TestClient.seed(server);
      const v1Reader = await TestClient.v1(server);
      const flooder = await TestClient.seed(server);
      await connectionsAre(server, 4);
      const pad = "p".repeat(1000);
      const sent: string[] = [];
      // The kernel's socket buffers take a few MB before the server sees a backlog:
      // flood in rounds until the stalled reader is gone (or 32 MB were sent).
      let evicted = false;
      while (!evicted && sent.length < 32_000) {
        for (let i = 0; i < 1000; i++) {
          const frame = `${String(sent.length).padStart(6, "0")}${pad}`;
          sent.push(frame);
          flooder.send(frame);
        }
        await untilWhileOpen(
          reader,
          () => reader.frames.length === sent.length,
          `the reader that keeps up had all ${sent.length} frames (it had ${reader.frames.length})`,
        );
        evicted = (await healthz(server)).connections === 3;
      }
      assert(evicted, "the stalled reader was evicted");
      await v1Reader.until(
        () => v1Reader.messages.filter((m) => m.type === "relay").length === sent.length,
        "every relay at the v1 reader",
      );
      assertSameFrames(reader.frames, sent, "the seed reader");
      assertSameFrames(
        v1Reader.messages.filter((m) => m.type === "relay").map((m) => m.data),
        sent,
        "the v1 reader",
      );
      const counted = await metrics(server);
      assert(counted.get('switchboard_closes_total{reason="slow_consumer"}')! >= 1);
      assertEquals(server.stats().connections, 3);
      await Promise.all([reader.close(), v1Reader.close(), flooder.close()]);
    } finally {
      closeQuietly(stalled);
    }
    await connectionsAre(server, 0);
  });
});

Deno.test("a burst within the default rate and size limits does not evict readers that keep up", async () => {
  await withServer({}, async (server) => {
    const readers = [await TestClient.v1(server), await TestClient.v1(server)];
    const seedReader = await TestClient.seed(server);
    const sender = await TestClient.seed(server);
    await connectionsAre(server, 4);
    // 20 frames of 60,000 bytes: well within the burst of 100 and the 64 KiB limit,
    // 1.2 MB in all, more than the 1 MiB slow-consumer limit if it arrives at once.
    const frames = Array.from({ length: 20 }, (_, i) => `${i}:`.padEnd(60_000, "b"));
    for (const frame of frames) sender.send(frame);
    await untilWhileOpen(seedReader, () => seedReader.frames.length === 20, "20 frames");
    for (const reader of readers) {
      await untilWhileOpen(
        reader,
        () => reader.messages.filter((m) => m.type === "relay").length === 20,
        "20 relays",
      );
    }
    assertSameFrames(seedReader.frames, frames, "the seed reader");
    for (const reader of readers) {
      const relayed = reader.messages.filter((m) => m.type === "relay").map((m) => m.data);
      assertSameFrames(relayed, frames, "a v1 reader");
    }
    assertEquals((await healthz(server)).connections, 4);
    await Promise.all([...readers, seedReader, sender].map((client) => client.close()));
  });
});

// ---------------------------------------------------------------------------
// Origin and subprotocol

Deno.test("a browser Origin other than the server's own host is refused 403", async () => {
  await withServer({}, async (server) => {
    const port = server.addr.port;
    assertMatch(await handshakeStatus(server, { origin: "http://evil.example" }), / 403 /);
    assertMatch(
      await handshakeStatus(server, { origin: `http://127.0.0.1:${port}.evil.example` }),
      / 403 /,
    );
    assertMatch(await handshakeStatus(server, { origin: `http://127.0.0.1:${port + 1}` }), / 403 /);
    assertMatch(await handshakeStatus(server, { origin: "null" }), / 403 /);
    assertMatch(await handshakeStatus(server, { origin: `http://127.0.0.1:${port}` }), / 101 /);
    assertMatch(await handshakeStatus(server, { origin: `https://127.0.0.1:${port}` }), / 101 /);
    assertMatch(
      await handshakeStatus(server, { origin: `http://127.0.0.1:${port}`, path: "/" }),
      / 101 /,
    );
    // A non-browser client sends no Origin and is let in.
    assertMatch(await handshakeStatus(server), / 101 /);
    await connectionsAre(server, 0);
  });
});

Deno.test("origins on allowedOrigins are admitted, and only those", async () => {
  await withServer({ allowedOrigins: ["https://app.example", "null"] }, async (server) => {
    assertMatch(await handshakeStatus(server, { origin: "https://app.example" }), / 101 /);
    assertMatch(await handshakeStatus(server, { origin: "null" }), / 101 /);
    assertMatch(await handshakeStatus(server, { origin: "http://app.example" }), / 403 /);
    assertMatch(await handshakeStatus(server, { origin: "https://app.example.evil" }), / 403 /);
    assertMatch(
      await handshakeStatus(server, { origin: `http://127.0.0.1:${server.addr.port}` }),
      / 101 /,
    );
    await connectionsAre(server, 0);
  });
});

Deno.test('allowedOrigins "*" admits any origin', async () => {
  await withServer({ allowedOrigins: ["*"] }, async (server) => {
    for (const origin of ["http://evil.example", "null", "https://anything.test:8443"]) {
      assertMatch(await handshakeStatus(server, { origin }), / 101 /, origin);
    }
    await connectionsAre(server, 0);
  });
});

Deno.test("only unknown subprotocols are refused 400; switchboard.v1 among others is chosen", async () => {
  await withServer({}, async (server) => {
    assertMatch(await handshakeStatus(server, { protocol: "foo" }), / 400 /);
    assertMatch(await handshakeStatus(server, { protocol: "foo, bar" }), / 400 /);
    assertMatch(await handshakeStatus(server, { protocol: "switchboard.v2" }), / 400 /);

    const { response, conn } = await rawHandshake(server, { protocol: "foo, switchboard.v1" });
    try {
      assertEquals(response.status, 101);
      assertEquals(response.headers.get("sec-websocket-protocol"), "switchboard.v1");
      const { bytes } = await readUntil(
        conn,
        (b) => parseServerFrames(b).length > 0,
        "the welcome",
        response.body,
      );
      const welcome = JSON.parse(new TextDecoder().decode(parseServerFrames(bytes)[0].payload));
      assertEquals([welcome.type, welcome.protocol], ["welcome", "switchboard.v1"]);
    } finally {
      closeQuietly(conn);
    }

    // Deno's own client offering several protocols gets v1 too.
    const socket = new WebSocket(server.url.replace("http", "ws") + "/ws", [
      "foo",
      "switchboard.v1",
    ]);
    const first = new Promise<string>((resolve) => socket.onmessage = (e) => resolve(e.data));
    await new Promise((resolve) => socket.onopen = resolve);
    assertEquals(socket.protocol, "switchboard.v1");
    assertEquals(JSON.parse(await first).type, "welcome");
    const closed = new Promise((resolve) => socket.onclose = resolve);
    socket.close();
    await closed;
    await connectionsAre(server, 0);
  });
});

// ---------------------------------------------------------------------------
// Idle peers

Deno.test("a peer that never answers pings is closed by the server, one that answers stays", async () => {
  await withServer({ idleTimeout: 1 }, async (server) => {
    const mute = await rawUpgrade(server);
    const lively = await TestClient.v1(server);
    try {
      const { bytes, eof } = await readUntil(mute, () => false, "the server to hang up");
      assert(eof, "the server ended the TCP connection");
      const frames = parseServerFrames(bytes);
      assert(frames.some((f) => f.opcode === 0x9), "the server pinged first");
      const close = frames.find((f) => f.opcode === 0x8);
      assert(close !== undefined, "a close frame before the end");
      assertEquals(closeCode(close!), 1001);
    } finally {
      closeQuietly(mute);
    }
    await connectionsAre(server, 1);
    // Deno's client answers protocol pings: it outlived the mute one and still talks.
    assertEquals(lively.socket.readyState, WebSocket.OPEN);
    assertEquals((await ping(lively, "lively")).type, "pong");
    await lively.close();
    await connectionsAre(server, 0);
  });
});

// ---------------------------------------------------------------------------
// No default group

Deno.test("with the default group off, a frame that would be broadcast is answered not_member", async () => {
  await withServer({ defaultGroup: null }, async (server) => {
    assertEquals((await healthz(server)).groups, 0);
    const v1 = await TestClient.v1(server);
    const seed = await TestClient.seed(server);
    v1.send("hello, anyone?");
    const error = await v1.next(isError("not_member"));
    assertEquals(typeof error.message, "string");
    v1.send(new Uint8Array([1, 2, 3]));
    await v1.until(() => v1.messages.filter(isError("not_member")).length === 2, "second error");

    seed.send('{"no":"to"}');
    await seed.until(() => seed.frames.length === 1, "the seed's error");
    const seedError = JSON.parse(seed.frames[0] as string);
    assertEquals([seedError.type, seedError.code], ["error", "not_member"]);
    // Neither client received the other's frames.
    assertEquals(v1.frames.filter((f) => typeof f !== "string").length, 0);
    assert(!v1.messages.some((m) => m.type === "relay"));

    // Groups and direct messages still work.
    await v1.online("v");
    seed.send({ type: "online", from: "s" });
    await eventually(async () => (await healthz(server)).users === 2, "two users");
    const sent = await v1.request({ type: "message", to: "s", data: "direct" });
    assertEquals(sent.delivered, 1);
    await Promise.all([v1.close(), seed.close()]);
    await connectionsAre(server, 0);
    assertEquals((await healthz(server)).groups, 0);
  });
});
