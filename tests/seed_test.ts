import { assertEquals } from "@std/assert";
import { eventually, healthz, type RawFrame, TestClient, withServer } from "./_helpers.ts";

const decoder = new TextDecoder();
const asText = (frame: RawFrame) =>
  typeof frame === "string" ? frame : `bin:${decoder.decode(frame)}`;

Deno.test("seed clients A–D each receive exactly the other three's frames, verbatim", async () => {
  await withServer({}, async (server) => {
    const names = ["A", "B", "C", "D"];
    const clients = await Promise.all(names.map(() => TestClient.seed(server)));
    await eventually(async () => (await healthz(server)).connections === 4, "4 connections");

    clients.forEach((client, i) => {
      client.send(`hello from ${names[i]}`);
      client.send(`{"not":"a command","n":${i}}`);
      client.send(new TextEncoder().encode(`bytes ${names[i]}`));
    });
    for (const client of clients) await client.until(() => client.frames.length === 9, "9 frames");

    clients.forEach((client, i) => {
      const expected = names.flatMap((name, j) =>
        j === i ? [] : [`hello from ${name}`, `{"not":"a command","n":${j}}`, `bin:bytes ${name}`]
      );
      assertEquals(client.frames.map(asText).sort(), expected.sort());
      // Binary stays binary: exactly three frames are bytes.
      assertEquals(client.frames.filter((f) => f instanceof Uint8Array).length, 3);
    });

    // Nothing else arrives: a fence from everyone lands right after what came before.
    clients.forEach((client) => client.send("fence"));
    for (const client of clients) {
      await client.until(() => client.frames.filter((f) => f === "fence").length === 3, "fences");
      assertEquals(client.frames.length, 12);
    }
    await Promise.all(clients.map((client) => client.close()));
  });
});

Deno.test("a seed client that said online receives JSON with its `to` verbatim, and nobody else does", async () => {
  await withServer({}, async (server) => {
    const [a, b, c] = await Promise.all([0, 1, 2].map(() => TestClient.seed(server)));
    a.send({ type: "online", from: "A" });
    b.send({ type: "online", from: "B" });
    await eventually(async () => (await healthz(server)).users === 2, "2 users");

    const direct = '{"type":"chat","from":"A","to":"B","text":"psst \\u00e9 你好"}';
    a.send(direct);
    await b.until(() => b.frames.length === 1, "the direct frame");
    assertEquals(b.frames, [direct]);

    c.send("fence");
    await a.until(() => a.frames.includes("fence"), "fence at A");
    await b.until(() => b.frames.includes("fence"), "fence at B");
    assertEquals(a.frames, ["fence"]);
    assertEquals(c.frames, []);
    assertEquals(b.frames, [direct, "fence"]);
    await Promise.all([a, b, c].map((client) => client.close()));
  });
});

Deno.test("seed clients get no welcome, presence or acks, but do get errors for failed commands", async () => {
  await withServer({}, async (server) => {
    const seed = await TestClient.seed(server);
    const v1 = await TestClient.v1(server);
    await v1.online("watcher");
    seed.send({ type: "online", from: "S", id: 1 });
    await v1.next((m) => m.type === "presence" && m.joins.includes("S"));
    seed.send({ type: "join", group: "", id: 2 });
    await seed.until(() => seed.frames.length === 1, "the error");
    const error = JSON.parse(seed.frames[0] as string);
    assertEquals([error.type, error.code, error.id], ["error", "invalid_name", 2]);

    seed.send({ type: "ping" });
    v1.send({ type: "join", group: "room" });
    seed.send({ type: "join", group: "room", id: 3 });
    await v1.next((m) => m.type === "presence" && m.group === "room" && m.joins.includes("S"));
    v1.send("fence");
    await seed.until(() => seed.frames.includes("fence"), "fence");
    assertEquals(seed.frames.slice(1), ["fence"]);
    await Promise.all([seed.close(), v1.close()]);
  });
});

Deno.test("a seed client receives group messages and direct messages from v1 clients", async () => {
  await withServer({}, async (server) => {
    const seed = await TestClient.seed(server);
    const v1 = await TestClient.v1(server);
    seed.send({ type: "online", from: "old" });
    seed.send({ type: "join", group: "room" });
    await v1.online("new");
    await v1.request({ type: "join", group: "room" });
    await eventually(
      async () => (await v1.request({ type: "members", group: "room" })).members.includes("old"),
      "the seed client in room",
    );
    const sent = await v1.request({ type: "message", group: "room", data: { text: "hi" } });
    assertEquals(sent.delivered, 1);
    const direct = await v1.request({ type: "message", to: "old", data: "just you" });
    assertEquals(direct.delivered, 1);
    await seed.until(() => seed.frames.length === 2, "two messages");
    const [group, dm] = seed.frames.map((frame) => JSON.parse(frame as string));
    assertEquals([group.type, group.from, group.group, group.data], ["message", "new", "room", {
      text: "hi",
    }]);
    assertEquals([dm.type, dm.from, dm.to, dm.data], ["message", "new", "old", "just you"]);
    assertEquals(typeof dm.ts, "number");
    await Promise.all([seed.close(), v1.close()]);
  });
});
