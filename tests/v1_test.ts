import { assert, assertEquals } from "@std/assert";
import { eventually, healthz, TestClient, withServer } from "./_helpers.ts";

Deno.test("a v1 client is welcomed with its connection id, the protocol, the limits and the default group", async () => {
  await withServer({ maxMessageBytes: 1000, rate: 7, burst: 9, maxGroups: 3 }, async (server) => {
    const client = await TestClient.v1(server);
    const welcome = client.messages[0];
    assertEquals(welcome.type, "welcome");
    assertEquals(welcome.protocol, "switchboard.v1");
    assertEquals(typeof welcome.connection, "string");
    assertEquals(welcome.limits, {
      maxMessageBytes: 1000,
      rateLimit: 7,
      rateBurst: 9,
      maxGroups: 3,
    });
    assertEquals(client.socket.protocol, "switchboard.v1");
    await client.close();
  });
});

Deno.test("online is acked with the user; another user on the same connection is refused", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.v1(server);
    assertEquals(await client.request({ type: "online", from: "ann" }), {
      type: "ack",
      id: "r1",
      user: "ann",
    });
    assertEquals((await client.request({ type: "online", from: "ann" })).type, "ack");
    const refused = await client.request({ type: "online", from: "bob" });
    assertEquals([refused.type, refused.code], ["error", "already_identified"]);
    assertEquals((await healthz(server)).users, 1);
    await client.close();
  });
});

Deno.test("commands other than online and ping need online first", async () => {
  await withServer({}, async (server) => {
    const client = await TestClient.v1(server);
    for (
      const command of [
        { type: "join", group: "g" },
        { type: "leave", group: "g" },
        { type: "members", group: "lobby" },
        { type: "message", group: "lobby", data: 1 },
      ]
    ) {
      const answer = await client.request(command);
      assertEquals([answer.type, answer.code], ["error", "not_identified"], command.type);
    }
    client.send({ type: "ping", id: 42 });
    assertEquals(await client.next((m) => m.type === "pong"), { type: "pong", id: 42 });
    await client.close();
  });
});

Deno.test("join acks the sorted members, and the others see the joiner in a presence diff", async () => {
  await withServer({}, async (server) => {
    const [zed, amy] = [await TestClient.v1(server), await TestClient.v1(server)];
    await zed.online("zed");
    await amy.online("amy");
    assertEquals(await zed.request({ type: "join", group: "room" }), {
      type: "ack",
      id: "r2",
      group: "room",
      members: ["zed"],
    });
    const joined = await amy.request({ type: "join", group: "room" });
    assertEquals(joined.members, ["amy", "zed"]);
    const presence = await zed.next((m) => m.type === "presence" && m.group === "room");
    assertEquals(presence, { type: "presence", group: "room", joins: ["amy"], leaves: [] });

    await amy.request({ type: "leave", group: "room" });
    const left = await zed.next((m) => m.type === "presence" && m.leaves.length > 0);
    assertEquals(left, { type: "presence", group: "room", joins: [], leaves: ["amy"] });
    // Nobody is ever told about their own arrival.
    assert(!zed.messages.some((m) => m.type === "presence" && m.joins.includes("zed")));
    assert(!amy.messages.some((m) => m.type === "presence" && m.joins.includes("amy")));
    await Promise.all([zed.close(), amy.close()]);
  });
});

Deno.test("a group message reaches every other connection, the sender's other tabs included", async () => {
  await withServer({}, async (server) => {
    const [tab1, tab2, bob, outsider] = await Promise.all(
      [0, 1, 2, 3].map(() => TestClient.v1(server)),
    );
    await tab1.online("ann");
    await tab2.online("ann");
    await bob.online("bob");
    await outsider.online("eve");
    for (const client of [tab1, tab2, bob]) await client.request({ type: "join", group: "room" });

    const ack = await tab1.request({
      type: "message",
      group: "room",
      from: "mallory",
      data: { text: "hi" },
    });
    assertEquals(ack, { type: "ack", id: "r3", delivered: 2 });
    for (const receiver of [tab2, bob]) {
      const message = await receiver.next((m) => m.type === "message");
      assertEquals(message.from, "ann", "the server stamps the sender, whatever the client claims");
      assertEquals([message.group, message.data], ["room", { text: "hi" }]);
      assertEquals(typeof message.ts, "number");
    }
    // A fence proves the sender and the outsider got nothing.
    await bob.request({ type: "message", group: "lobby", data: "fence" });
    for (const client of [tab1, outsider]) {
      await client.next((m) => m.type === "message" && m.data === "fence");
      assertEquals(client.messages.filter((m) => m.type === "message").length, 1);
    }
    const refused = await outsider.request({ type: "message", group: "room", data: "let me in" });
    assertEquals(refused.code, "not_member");
    await Promise.all([tab1, tab2, bob, outsider].map((client) => client.close()));
  });
});

Deno.test("a direct message reaches every connection of its user; to oneself, only the other tabs", async () => {
  await withServer({}, async (server) => {
    const [ann1, ann2, bob] = await Promise.all([0, 1, 2].map(() => TestClient.v1(server)));
    await ann1.online("ann");
    await ann2.online("ann");
    await bob.online("bob");
    assertEquals((await bob.request({ type: "message", to: "ann", data: "hey" })).delivered, 2);
    for (const tab of [ann1, ann2]) {
      const message = await tab.next((m) => m.type === "message");
      assertEquals([message.from, message.to, message.data], ["bob", "ann", "hey"]);
    }
    assertEquals((await ann1.request({ type: "message", to: "ann", data: "note" })).delivered, 1);
    await ann2.next((m) => m.type === "message" && m.data === "note");
    assert(!ann1.messages.some((m) => m.data === "note"));

    const offline = await bob.request({ type: "message", to: "nobody", data: "?" });
    assertEquals([offline.type, offline.code], ["error", "user_offline"]);
    await Promise.all([ann1, ann2, bob].map((client) => client.close()));
  });
});

Deno.test("members lists a group's users; leave and members refuse non-members", async () => {
  await withServer({}, async (server) => {
    const [ann, bob] = [await TestClient.v1(server), await TestClient.v1(server)];
    await ann.online("ann");
    await bob.online("bob");
    await ann.request({ type: "join", group: "g" });
    assertEquals((await ann.request({ type: "members", group: "g" })).members, ["ann"]);
    assertEquals((await ann.request({ type: "members", group: "lobby" })).members, ["ann", "bob"]);
    assertEquals((await bob.request({ type: "members", group: "g" })).code, "not_member");
    assertEquals((await bob.request({ type: "leave", group: "g" })).code, "not_member");
    assertEquals((await ann.request({ type: "leave", group: "lobby" })).code, "invalid_message");
    const left = await ann.request({ type: "leave", group: "g" });
    assertEquals([left.type, left.group], ["ack", "g"]);
    await eventually(async () => (await healthz(server)).groups === 1, "the empty group removed");
    await Promise.all([ann.close(), bob.close()]);
  });
});

Deno.test("relayed text reaches v1 clients wrapped, so a seed client cannot forge a server frame", async () => {
  await withServer({}, async (server) => {
    const seed = await TestClient.seed(server);
    const v1 = await TestClient.v1(server);
    seed.send({ type: "online", from: "old" });
    await v1.next((m) => m.type === "presence" && m.joins.includes("old"));
    const forged = '{"type":"presence","group":"lobby","joins":["ghost"],"leaves":[]}';
    seed.send(forged);
    const relay = await v1.next((m) => m.type === "relay");
    assertEquals(relay, { type: "relay", from: "old", data: forged });
    seed.send(new Uint8Array([0, 1, 255]));
    await v1.until(() => v1.frames.some((f) => f instanceof Uint8Array), "binary frame");
    assertEquals(v1.frames.find((f) => f instanceof Uint8Array), new Uint8Array([0, 1, 255]));
    await Promise.all([seed.close(), v1.close()]);
  });
});

Deno.test("a v1 client's direct relay reaches a seed client with `from` set by the server", async () => {
  await withServer({}, async (server) => {
    const seed = await TestClient.seed(server);
    const [named, anonymous] = [await TestClient.v1(server), await TestClient.v1(server)];
    seed.send({ type: "online", from: "old" });
    await named.online("ann");
    await named.next((m) => m.type === "presence" && m.joins.includes("old"));
    named.send({ to: "old", from: "mallory", text: "hi" });
    anonymous.send({ to: "old", from: "mallory", text: "anon" });
    await seed.until(() => seed.frames.length === 2, "two relays");
    const received = seed.frames.map((f) => JSON.parse(f as string));
    received.sort((a, b) => a.text.localeCompare(b.text));
    assertEquals(received, [{ to: "old", text: "anon" }, { to: "old", text: "hi", from: "ann" }]);

    anonymous.send({ to: "nobody", text: "lost?" });
    const error = await anonymous.next((m) => m.type === "error");
    assertEquals(error.code, "user_offline");
    await Promise.all([seed.close(), named.close(), anonymous.close()]);
  });
});

Deno.test("non-ASCII names and text work end to end", async () => {
  await withServer({}, async (server) => {
    const [zhang, li] = [await TestClient.v1(server), await TestClient.v1(server)];
    await zhang.online("张三");
    await li.online("李四");
    await zhang.request({ type: "join", group: "聊天室" });
    await li.request({ type: "join", group: "聊天室" });
    await zhang.request({ type: "message", group: "聊天室", data: "你好 👋" });
    const message = await li.next((m) => m.type === "message");
    assertEquals([message.from, message.group, message.data], ["张三", "聊天室", "你好 👋"]);
    assertEquals(
      (await li.request({ type: "members", group: "聊天室" })).members.sort(),
      [
        "张三",
        "李四",
      ].sort(),
    );
    await Promise.all([zhang.close(), li.close()]);
  });
});

Deno.test("a burst of messages arrives complete and in order, however the server batches it", async () => {
  await withServer({ rate: 10_000, burst: 10_000 }, async (server) => {
    const [sender, receiver] = [await TestClient.v1(server), await TestClient.v1(server)];
    await sender.online("s");
    await receiver.online("r");
    for (let i = 0; i < 500; i++) sender.send({ type: "message", to: "r", data: i });
    await receiver.until(
      () => receiver.messages.filter((m) => m.type === "message").length === 500,
      "500 messages",
    );
    const data = receiver.messages.filter((m) => m.type === "message").map((m) => m.data);
    assertEquals(data, Array.from({ length: 500 }, (_, i) => i));
    await Promise.all([sender.close(), receiver.close()]);
  });
});

Deno.test("a burst of arrivals is announced with each user named exactly once", async () => {
  await withServer({ presenceWindowMs: 100 }, async (server) => {
    const observer = await TestClient.v1(server);
    await observer.online("observer");
    const arrivals = await Promise.all(
      Array.from({ length: 30 }, () => TestClient.v1(server)),
    );
    arrivals.forEach((client, i) => client.send({ type: "online", from: `u${i}` }));
    const joined = () =>
      observer.messages.filter((m) => m.type === "presence").flatMap((m) => m.joins);
    await observer.until(() => joined().length >= 30, "30 joins");
    assertEquals(joined().sort(), Array.from({ length: 30 }, (_, i) => `u${i}`).sort());
    await Promise.all([observer, ...arrivals].map((client) => client.close()));
  });
});

Deno.test("welcome names a configured default group, or null when there is none", async () => {
  for (const defaultGroup of ["hall", null]) {
    await withServer({ defaultGroup }, async (server) => {
      const client = await TestClient.v1(server);
      assertEquals(client.messages[0].defaultGroup, defaultGroup);
      await client.close();
    });
  }
});
