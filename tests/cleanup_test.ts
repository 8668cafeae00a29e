import { assert, assertEquals } from "@std/assert";
import {
  clientTextFrame,
  eventually,
  healthz,
  rawUpgrade,
  type ServerMessage,
  TestClient,
  withServer,
} from "./_helpers.ts";
import { closeQuietly, within } from "./_wire.ts";
import type { SwitchboardServer } from "../src/server.ts";

const GROUPS = ["g0", "g1", "g2"];
const V1_CLIENTS = 100;
/** v1 connections per user: the first `V1_CLIENTS - V1_USERS` users have two tabs. */
const V1_USERS = 80;
const SEED_CLIENTS = 80;
const RAW_CLIENTS = 120;
/** Small, so that a client the server should close can be made to send too much. */
const MAX_MESSAGE_BYTES = 4096;
const OVERSIZED = "o".repeat(MAX_MESSAGE_BYTES + 1);

/** Who each group holds, as an observer learns it from presence diffs alone. */
class PresenceView {
  readonly members = new Map<string, Set<string>>();
  /** Every user the observer was told left, by group. */
  readonly left = new Map<string, Set<string>>();
  #seen = 0;

  constructor(readonly observer: TestClient, readonly self: string) {}

  /** Applies the presence messages that arrived since the last update. */
  update(): this {
    const messages = this.observer.messages;
    for (; this.#seen < messages.length; this.#seen++) {
      const message: ServerMessage = messages[this.#seen];
      if (message.type !== "presence") continue;
      const group = message.group as string;
      const members = this.#of(this.members, group);
      const left = this.#of(this.left, group);
      for (const user of message.joins as string[]) {
        assert(user !== this.self, "a presence diff never names its recipient");
        members.add(user);
      }
      for (const user of message.leaves as string[]) {
        assert(user !== this.self, "a presence diff never names its recipient");
        members.delete(user);
        left.add(user);
      }
    }
    return this;
  }

  has(group: string, users: Iterable<string>): boolean {
    const members = this.members.get(group) ?? new Set();
    for (const user of users) if (!members.has(user)) return false;
    return true;
  }

  isEmpty(group: string): boolean {
    return (this.members.get(group)?.size ?? 0) === 0;
  }

  #of(map: Map<string, Set<string>>, group: string): Set<string> {
    let set = map.get(group);
    if (set === undefined) map.set(group, set = new Set());
    return set;
  }
}

/** One cycle's population: who is connected and which users each group should hold. */
interface Population {
  v1: TestClient[];
  seed: TestClient[];
  raw: Deno.TcpConn[];
  /** group → users expected in it (the default group: every user). */
  expected: Map<string, Set<string>>;
}

async function populate(server: SwitchboardServer, cycle: number): Promise<Population> {
  const expected = new Map<string, Set<string>>(
    ["lobby", ...GROUPS].map((group) => [group, new Set()]),
  );
  const expect = (user: string, group: string) => {
    expected.get("lobby")!.add(user);
    expected.get(group)!.add(user);
  };

  const v1 = await Promise.all(
    Array.from({ length: V1_CLIENTS }, async (_, i) => {
      const client = await TestClient.v1(server);
      const user = `u${cycle}-${i % V1_USERS}`;
      await client.online(user);
      const group = GROUPS[i % GROUPS.length];
      const ack = await client.request({ type: "join", group });
      assertEquals(ack.type, "ack");
      expect(user, group);
      return client;
    }),
  );

  const seed = await Promise.all(
    Array.from({ length: SEED_CLIENTS }, async (_, i) => {
      const client = await TestClient.seed(server);
      const user = `s${cycle}-${i}`;
      const group = GROUPS[(i + 1) % GROUPS.length];
      client.send({ type: "online", from: user });
      client.send({ type: "join", group });
      expect(user, group);
      return client;
    }),
  );

  const raw: Deno.TcpConn[] = [];
  try {
    for (let batch = 0; batch < RAW_CLIENTS; batch += 40) {
      raw.push(
        ...await Promise.all(
          Array.from({ length: Math.min(40, RAW_CLIENTS - batch) }, async (_, k) => {
            const i = batch + k;
            const conn = await rawUpgrade(server);
            const user = `raw${cycle}-${i}`;
            await conn.write(clientTextFrame(JSON.stringify({ type: "online", from: user })));
            const group = GROUPS[(i + 2) % GROUPS.length];
            await conn.write(clientTextFrame(JSON.stringify({ type: "join", group })));
            expect(user, group);
            return conn;
          }),
        ),
      );
    }
  } catch (error) {
    raw.forEach(closeQuietly);
    await Promise.all([...v1, ...seed].map((client) => client.close()));
    throw error;
  }
  return { v1, seed, raw, expected };
}

/** Everyone leaves: half the WebSocket clients close cleanly, half are closed by the server, raw sockets vanish. */
async function depart(population: Population): Promise<void> {
  const { v1, seed, raw } = population;
  const clients = [...v1, ...seed];
  const clean = clients.filter((_, i) => i % 2 === 0);
  const oversized = clients.filter((_, i) => i % 2 === 1);
  for (const client of oversized) client.send(OVERSIZED);
  // No close frame: the TCP connection simply ends.
  raw.forEach(closeQuietly);
  await Promise.all(clean.map((client) => client.close()));
  const codes = await within(
    Promise.all(oversized.map(async (client) => (await client.closed).code)),
    5000,
    "the server to close the oversized senders",
  );
  assertEquals(new Set(codes), new Set([1009]));
}

async function registryIs(
  server: SwitchboardServer,
  expected: { connections: number; users: number; groups: number },
): Promise<void> {
  let last: Record<string, unknown> = {};
  await eventually(async () => {
    last = await healthz(server);
    return last.connections === expected.connections && last.users === expected.users &&
      last.groups === expected.groups;
  }, `healthz ${JSON.stringify(expected)}`).catch((error) => {
    throw new Error(`${error.message}; last: ${JSON.stringify(last)}`);
  });
  assertEquals(last, { status: "ok", ...expected });
  assertEquals(server.stats(), expected);
}

Deno.test("after hundreds of connections come and go, twice, no connection, user or group is left and presence said goodbye to everyone", async () => {
  await withServer({ maxMessageBytes: MAX_MESSAGE_BYTES }, async (server) => {
    for (const cycle of [1, 2]) {
      const observer = await TestClient.v1(server);
      const self = `observer${cycle}`;
      await observer.online(self);
      for (const group of GROUPS) await observer.request({ type: "join", group });
      const view = new PresenceView(observer, self);

      const population = await populate(server, cycle);
      const { expected } = population;
      const users = expected.get("lobby")!;
      assertEquals(users.size, V1_USERS + SEED_CLIENTS + RAW_CLIENTS);
      try {
        // Everyone has arrived, as far as the observer can tell from presence alone.
        for (const [group, members] of expected) {
          await observer.until(
            () => view.update().has(group, members),
            `presence joins of all ${members.size} users in ${group}`,
          );
        }
        const lobby = await observer.request({ type: "members", group: "lobby" });
        assertEquals(lobby.members, [...users, self].sort());
        await registryIs(server, {
          connections: 1 + V1_CLIENTS + SEED_CLIENTS + RAW_CLIENTS,
          users: users.size + 1,
          groups: 1 + GROUPS.length,
        });
      } catch (error) {
        await depart(population).catch(() => {});
        await observer.close();
        throw error;
      }

      await depart(population);

      // Only the observer is left, and it heard every other user leave every group.
      await registryIs(server, { connections: 1, users: 1, groups: 1 + GROUPS.length });
      for (const [group, members] of expected) {
        await observer.until(() => view.update().isEmpty(group), `everyone gone from ${group}`);
        const missing = [...members].filter((user) => !view.left.get(group)?.has(user));
        assertEquals(missing, [], `users whose leave from ${group} was never announced`);
        const asked = await observer.request({ type: "members", group });
        assertEquals(asked.members, [self]);
      }

      await observer.close();
      await registryIs(server, { connections: 0, users: 0, groups: 1 });
    }
  });
});

Deno.test("a user with several tabs goes offline only when the last one closes, however it closes", async () => {
  await withServer({ maxMessageBytes: MAX_MESSAGE_BYTES }, async (server) => {
    const observer = await TestClient.v1(server);
    await observer.online("observer");
    const view = new PresenceView(observer, "observer");

    const tabA = await TestClient.v1(server);
    const tabB = await TestClient.seed(server);
    const tabC = await rawUpgrade(server);
    try {
      await tabA.online("multi");
      tabB.send({ type: "online", from: "multi" });
      await tabC.write(clientTextFrame('{"type":"online","from":"multi"}'));
      await registryIs(server, { connections: 4, users: 2, groups: 1 });
      await observer.until(() => view.update().has("lobby", ["multi"]), "multi joins");

      closeQuietly(tabC);
      await registryIs(server, { connections: 3, users: 2, groups: 1 });
      tabB.send(OVERSIZED);
      assertEquals((await tabB.closed).code, 1009);
      await registryIs(server, { connections: 2, users: 2, groups: 1 });
      // Still online through tab A: the observer was told nothing.
      assert(view.update().has("lobby", ["multi"]));
      assertEquals(
        (await observer.request({ type: "message", to: "multi", data: 1 })).delivered,
        1,
      );

      await tabA.close();
      await observer.until(() => view.update().isEmpty("lobby"), "multi leaves");
      const offline = await observer.request({ type: "message", to: "multi", data: 2 });
      assertEquals(offline.code, "user_offline");
      const presences = observer.messages.filter((m) => m.type === "presence");
      assertEquals(presences.map((m) => [m.joins, m.leaves]), [[["multi"], []], [[], ["multi"]]]);
    } finally {
      closeQuietly(tabC);
      await Promise.all([tabA.close(), tabB.close()]);
    }
    await observer.close();
    await registryIs(server, { connections: 0, users: 0, groups: 1 });
  });
});
