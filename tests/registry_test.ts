/**
 * Unit tests of the registry with fake peers that record every delivery:
 * membership, delivery to groups and users, identification, presence diffs
 * and cleanup. No sockets, no timers.
 */

import { assert, assertEquals, assertFalse, assertThrows } from "@std/assert";
import { type Delivery, toEveryone } from "../src/delivery.ts";
import { type Peer, Registry, type RegistryOptions } from "../src/registry.ts";

/** A peer that records every delivery handed to it. */
class FakePeer implements Peer {
  readonly received: Delivery[] = [];
  /** What `send` answers: false plays a closed or evicted connection. */
  accepts = true;

  constructor(readonly id: string) {}

  send(delivery: Delivery): boolean {
    this.received.push(delivery);
    return this.accepts;
  }

  /** The v1 form of every delivery, parsed. */
  v1Messages(): Record<string, unknown>[] {
    return this.received.map((delivery) => {
      assertEquals(typeof delivery.v1, "string");
      return JSON.parse(delivery.v1 as string);
    });
  }

  /** The presence messages received, in order. */
  presence(): Record<string, unknown>[] {
    return this.v1Messages().filter((message) => message.type === "presence");
  }

  clear(): void {
    this.received.length = 0;
  }
}

let nextId = 0;

function makeRegistry(options: Partial<RegistryOptions> = {}): Registry {
  return new Registry({ defaultGroup: "lobby", maxGroups: 100, ...options });
}

function addPeer(registry: Registry, user?: string): FakePeer {
  const peer = new FakePeer(`c${nextId++}`);
  registry.add(peer);
  if (user !== undefined) assertEquals(registry.identify(peer, user), undefined);
  return peer;
}

function addPeerIn(registry: Registry, group: string, user?: string): FakePeer {
  const peer = addPeer(registry, user);
  assertEquals(registry.join(peer, group), undefined);
  return peer;
}

const message = (text: string): Delivery => toEveryone(JSON.stringify({ type: "message", text }));

/** Flushes presence and forgets everything delivered so far. */
function settle(registry: Registry, peers: FakePeer[]): void {
  registry.flushPresence();
  for (const peer of peers) peer.clear();
}

/** A presence message, with the lists sorted for comparison. */
function presence(group: string, joins: string[], leaves: string[]) {
  return { type: "presence", group, joins, leaves };
}

function sortedPresence(peer: FakePeer): Record<string, unknown>[] {
  return peer.presence().map((message) => ({
    ...message,
    joins: [...(message.joins as string[])].sort(),
    leaves: [...(message.leaves as string[])].sort(),
  }));
}

// ---------------------------------------------------------------------------
// Membership.

Deno.test("join, leave and isMember track one connection's groups", () => {
  const registry = makeRegistry();
  const peer = addPeer(registry, "alice");
  assertFalse(registry.isMember(peer, "room"));
  assertEquals(registry.join(peer, "room"), undefined);
  assert(registry.isMember(peer, "room"));
  assertEquals(registry.members("room"), ["alice"]);
  // Joining again changes nothing.
  assertEquals(registry.join(peer, "room"), undefined);
  assertEquals(registry.members("room"), ["alice"]);
  assertEquals(registry.leave(peer, "room"), undefined);
  assertFalse(registry.isMember(peer, "room"));
  assertEquals(registry.members("room"), []);
  assertEquals(registry.leave(peer, "room"), "not_member");
  assertEquals(registry.leave(peer, "never-joined"), "not_member");
});

Deno.test("members lists each identified user once, sorted, and never anonymous connections", () => {
  const registry = makeRegistry();
  addPeerIn(registry, "room", "zed");
  addPeerIn(registry, "room", "amy");
  addPeerIn(registry, "room", "Bob");
  addPeerIn(registry, "room", "amy"); // a second tab of amy
  addPeerIn(registry, "room"); // anonymous
  assertEquals(registry.members("room"), ["Bob", "amy", "zed"]);
  assertEquals(registry.members("lobby"), ["Bob", "amy", "zed"]);
  assertEquals(registry.members("nowhere"), []);
});

Deno.test("a connection is in the default group from add() until remove()", () => {
  const registry = makeRegistry();
  assertEquals(registry.defaultGroup, "lobby");
  const peer = new FakePeer("p");
  assertFalse(registry.isMember(peer, "lobby"));
  assertFalse(registry.has(peer));
  registry.add(peer);
  assert(registry.has(peer));
  assert(registry.isMember(peer, "lobby"));
  assertEquals(registry.members("lobby"), [], "anonymous connections are not listed");
  registry.identify(peer, "alice");
  assertEquals(registry.members("lobby"), ["alice"]);
  // Adding twice does nothing.
  registry.add(peer);
  assertEquals(registry.stats(), { connections: 1, users: 1, groups: 1 });
  assert(registry.remove(peer));
  assertFalse(registry.has(peer));
  assertFalse(registry.isMember(peer, "lobby"));
  assertEquals(registry.members("lobby"), []);
});

Deno.test("with the default group off, a new connection is in no group", () => {
  const registry = makeRegistry({ defaultGroup: null });
  assertEquals(registry.defaultGroup, null);
  assertEquals(registry.stats(), { connections: 0, users: 0, groups: 0 });
  const peer = addPeer(registry, "alice");
  assertFalse(registry.isMember(peer, "lobby"));
  assertEquals(registry.stats(), { connections: 1, users: 1, groups: 0 });
  assertEquals(registry.publishToGroup("lobby", message("x")), 0);
  assertEquals(peer.received, []);
});

Deno.test("maxGroups does not count the default group", () => {
  const registry = makeRegistry({ maxGroups: 2 });
  const peer = addPeer(registry, "alice");
  assertEquals(registry.join(peer, "a"), undefined);
  assertEquals(registry.join(peer, "b"), undefined);
  assert(registry.isMember(peer, "lobby"));
  assertEquals(registry.join(peer, "c"), "too_many_groups");
});

Deno.test("a too_many_groups refusal changes nothing", () => {
  const registry = makeRegistry({ maxGroups: 1 });
  const peer = addPeerIn(registry, "a", "alice");
  const other = addPeerIn(registry, "c", "bob");
  settle(registry, [peer, other]);
  const before = registry.stats();
  assertEquals(registry.join(peer, "b"), "too_many_groups");
  assertEquals(registry.join(peer, "c"), "too_many_groups");
  assertFalse(registry.isMember(peer, "b"));
  assertFalse(registry.isMember(peer, "c"));
  assertEquals(registry.members("b"), []);
  assertEquals(registry.members("c"), ["bob"]);
  assertEquals(registry.stats(), before, "no empty group was left behind");
  registry.flushPresence();
  assertEquals(other.received, [], "no presence for a refused join");
  // Re-joining a group one is in is not a new group; after leaving one, there is room.
  assertEquals(registry.join(peer, "a"), undefined);
  assertEquals(registry.leave(peer, "a"), undefined);
  assertEquals(registry.join(peer, "b"), undefined);
});

Deno.test("maxGroups 0 allows only the default group; with no default group every group counts", () => {
  const zero = makeRegistry({ maxGroups: 0 });
  const peer = addPeer(zero, "alice");
  assertEquals(zero.join(peer, "a"), "too_many_groups");
  assert(zero.isMember(peer, "lobby"));

  const noDefault = makeRegistry({ defaultGroup: null, maxGroups: 1 });
  const other = addPeer(noDefault, "bob");
  assertEquals(noDefault.join(other, "a"), undefined);
  assertEquals(noDefault.join(other, "b"), "too_many_groups");
});

Deno.test("operations on a connection that was never added throw", () => {
  const registry = makeRegistry();
  const stranger = new FakePeer("stranger");
  assertThrows(() => registry.join(stranger, "g"));
  assertThrows(() => registry.identify(stranger, "x"));
  assertEquals(registry.userOf(stranger), undefined);
  assertFalse(registry.remove(stranger));
});

// ---------------------------------------------------------------------------
// Delivery.

Deno.test("publishToGroup skips the sending connection but reaches the sender's other tabs", () => {
  const registry = makeRegistry();
  const aliceTab1 = addPeerIn(registry, "room", "alice");
  const aliceTab2 = addPeerIn(registry, "room", "alice");
  const bob = addPeerIn(registry, "room", "bob");
  const outsider = addPeer(registry, "carol");
  settle(registry, [aliceTab1, aliceTab2, bob, outsider]);
  const delivery = message("hi");
  assertEquals(registry.publishToGroup("room", delivery, aliceTab1), 2);
  assertEquals(aliceTab1.received, []);
  assertEquals(aliceTab2.received, [delivery]);
  assertEquals(bob.received, [delivery]);
  assertEquals(outsider.received, []);
});

Deno.test("publishToGroup without except reaches every member, anonymous ones included", () => {
  const registry = makeRegistry();
  const peers = [addPeerIn(registry, "room", "a"), addPeerIn(registry, "room")];
  settle(registry, peers);
  assertEquals(registry.publishToGroup("room", message("x")), 2);
  for (const peer of peers) assertEquals(peer.received.length, 1);
  assertEquals(registry.publishToGroup("empty", message("x")), 0);
});

Deno.test("publishToUser reaches every connection of a user except `except`", () => {
  const registry = makeRegistry();
  const tabs = [addPeer(registry, "alice"), addPeer(registry, "alice"), addPeer(registry, "alice")];
  const bob = addPeer(registry, "bob");
  const anonymous = addPeer(registry);
  settle(registry, [...tabs, bob, anonymous]);
  const first = message("one");
  assertEquals(registry.publishToUser("alice", first, tabs[0]), 2);
  assertEquals(tabs.map((tab) => tab.received.length), [0, 1, 1]);
  const second = message("two");
  assertEquals(registry.publishToUser("alice", second, bob), 3);
  assertEquals(tabs.map((tab) => tab.received.at(-1)), [second, second, second]);
  assertEquals(bob.received, []);
  assertEquals(anonymous.received, []);
  assertEquals(registry.publishToUser("nobody", message("x")), 0);
});

Deno.test("delivered counts leave out peers whose send returns false", () => {
  const registry = makeRegistry();
  const sender = addPeerIn(registry, "room", "alice");
  const live = addPeerIn(registry, "room", "bob");
  const dead = addPeerIn(registry, "room", "bob");
  dead.accepts = false;
  settle(registry, [sender, live, dead]);
  assertEquals(registry.publishToGroup("room", message("x"), sender), 1);
  assertEquals(registry.publishToUser("bob", message("y")), 1);
  assertEquals(dead.received.length, 2, "the dead peer was still offered both");
});

// ---------------------------------------------------------------------------
// Identification.

Deno.test("identify as the same user twice is fine; as another user it is refused and changes nothing", () => {
  const registry = makeRegistry();
  const peer = addPeerIn(registry, "room", "alice");
  assertEquals(registry.identify(peer, "alice"), undefined);
  assertEquals(registry.stats(), { connections: 1, users: 1, groups: 2 });
  assertEquals(registry.identify(peer, "bob"), "already_identified");
  assertEquals(registry.userOf(peer), "alice");
  assertFalse(registry.isOnline("bob"));
  assert(registry.isOnline("alice"));
  assertEquals(registry.members("room"), ["alice"]);
  assertEquals(registry.stats(), { connections: 1, users: 1, groups: 2 });
  // Identifying twice as the same user did not count the connection twice.
  registry.remove(peer);
  assertFalse(registry.isOnline("alice"));
  assertEquals(registry.stats(), { connections: 0, users: 0, groups: 1 });
});

Deno.test("a user is online while any of its connections remains", () => {
  const registry = makeRegistry();
  const tab1 = addPeer(registry, "alice");
  const tab2 = addPeer(registry, "alice");
  assertEquals(registry.stats().users, 1);
  registry.remove(tab1);
  assert(registry.isOnline("alice"));
  registry.remove(tab2);
  assertFalse(registry.isOnline("alice"));
});

// ---------------------------------------------------------------------------
// Presence.

Deno.test("presence: a user's first connection joining a group is announced to the others", () => {
  const registry = makeRegistry();
  const bob = addPeerIn(registry, "room", "bob");
  const anonymous = addPeerIn(registry, "room");
  const lobbyOnly = addPeer(registry, "carol");
  settle(registry, [bob, anonymous, lobbyOnly]);
  const alice = addPeer(registry, "alice");
  settle(registry, [bob, anonymous, lobbyOnly, alice]); // the lobby join, tested elsewhere
  registry.join(alice, "room");
  registry.flushPresence();
  assertEquals(bob.presence(), [presence("room", ["alice"], [])]);
  assertEquals(anonymous.presence(), [presence("room", ["alice"], [])]);
  assertEquals(lobbyOnly.received, []);
  assertEquals(alice.received, [], "the joiner learns the members from its ack");
});

Deno.test("presence is for switchboard.v1 peers only", () => {
  const registry = makeRegistry();
  const bob = addPeer(registry, "bob");
  settle(registry, [bob]);
  addPeer(registry, "alice");
  registry.flushPresence();
  assertEquals(bob.received.length, 1);
  assertEquals(bob.received[0].seed, undefined);
  assertEquals(JSON.parse(bob.received[0].v1 as string), presence("lobby", ["alice"], []));
});

Deno.test("presence: a user's second tab joining or leaving announces nothing", () => {
  const registry = makeRegistry();
  const bob = addPeerIn(registry, "room", "bob");
  const tab1 = addPeerIn(registry, "room", "alice");
  const tab2 = addPeer(registry, "alice");
  settle(registry, [bob, tab1, tab2]);
  registry.join(tab2, "room");
  registry.flushPresence();
  assertEquals(bob.received, []);
  registry.leave(tab2, "room");
  registry.flushPresence();
  registry.remove(tab2);
  registry.flushPresence();
  assertEquals(bob.received, []);
  assertEquals(tab1.received, []);
});

Deno.test("presence: a user's last tab leaving or closing is announced as a leave", () => {
  const registry = makeRegistry();
  const bob = addPeerIn(registry, "room", "bob");
  const tab1 = addPeerIn(registry, "room", "alice");
  const tab2 = addPeerIn(registry, "room", "alice");
  settle(registry, [bob, tab1, tab2]);
  registry.leave(tab1, "room");
  registry.flushPresence();
  assertEquals(bob.received, [], "alice still has a tab in the room");
  registry.leave(tab2, "room");
  registry.flushPresence();
  assertEquals(bob.presence(), [presence("room", [], ["alice"])]);
  bob.clear();
  // Closing the last connection leaves every group it was in.
  registry.remove(tab1);
  registry.remove(tab2);
  registry.flushPresence();
  assertEquals(bob.presence(), [presence("lobby", [], ["alice"])]);
});

Deno.test("presence: closing a connection announces a leave in every group it was the user's last in", () => {
  const registry = makeRegistry();
  const bob = addPeerIn(registry, "a", "bob");
  registry.join(bob, "b");
  const alice = addPeerIn(registry, "a", "alice");
  registry.join(alice, "b");
  settle(registry, [bob, alice]);
  registry.remove(alice);
  registry.flushPresence();
  assertEquals(
    sortedPresence(bob).sort((x, y) => String(x.group).localeCompare(String(y.group))),
    [presence("a", [], ["alice"]), presence("b", [], ["alice"]), presence("lobby", [], ["alice"])],
  );
  assertEquals(alice.received, [], "a removed connection receives nothing");
});

Deno.test("presence: a join and a leave within one window cancel out", () => {
  const registry = makeRegistry();
  const bob = addPeerIn(registry, "room", "bob");
  const alice = addPeer(registry, "alice");
  settle(registry, [bob, alice]);
  registry.join(alice, "room");
  registry.leave(alice, "room");
  registry.flushPresence();
  assertEquals(bob.received, []);
  // A leave and a re-join cancel too.
  registry.join(alice, "room");
  settle(registry, [bob, alice]);
  registry.leave(alice, "room");
  registry.join(alice, "room");
  registry.flushPresence();
  assertEquals(bob.received, []);
  // A connection that opens, identifies and closes within one window is never seen.
  const ghost = addPeer(registry, "ghost");
  registry.join(ghost, "room");
  registry.remove(ghost);
  registry.flushPresence();
  assertEquals(bob.received, []);
  // Join, leave, join is a join.
  const carol = addPeer(registry, "carol");
  settle(registry, [bob, alice, carol]);
  registry.join(carol, "room");
  registry.leave(carol, "room");
  registry.join(carol, "room");
  registry.flushPresence();
  assertEquals(bob.presence(), [presence("room", ["carol"], [])]);
});

Deno.test("presence: a diff never names its recipient's own user", () => {
  const registry = makeRegistry();
  const carol = addPeerIn(registry, "room", "carol");
  const dave = addPeerIn(registry, "room", "dave");
  const aliceTab1 = addPeer(registry, "alice");
  const aliceTab2 = addPeer(registry, "alice");
  const bob = addPeer(registry, "bob");
  const all = [carol, dave, aliceTab1, aliceTab2, bob];
  settle(registry, all);
  registry.join(aliceTab1, "room");
  registry.join(aliceTab2, "room");
  registry.join(bob, "room");
  registry.leave(dave, "room");
  registry.flushPresence();
  assertEquals(sortedPresence(carol), [presence("room", ["alice", "bob"], ["dave"])]);
  assertEquals(sortedPresence(aliceTab1), [presence("room", ["bob"], ["dave"])]);
  assertEquals(sortedPresence(aliceTab2), [presence("room", ["bob"], ["dave"])]);
  assertEquals(sortedPresence(bob), [presence("room", ["alice"], ["dave"])]);
  assertEquals(dave.received, [], "dave left: he is not a recipient");
  // A diff naming only the recipient is not sent to it at all.
  settle(registry, all);
  const erin = addPeer(registry, "erin");
  registry.flushPresence();
  assertEquals(erin.received, []);
  assertEquals(carol.presence(), [presence("lobby", ["erin"], [])]);
});

Deno.test("presence: anonymous connections are never announced", () => {
  const registry = makeRegistry();
  const bob = addPeerIn(registry, "room", "bob");
  settle(registry, [bob]);
  const anonymous = addPeer(registry);
  registry.join(anonymous, "room");
  registry.flushPresence();
  registry.leave(anonymous, "room");
  registry.remove(anonymous);
  registry.flushPresence();
  assertEquals(bob.received, []);
});

Deno.test("presence: identifying a connection that sits in the default group counts as joining it", () => {
  const registry = makeRegistry();
  const bob = addPeer(registry, "bob");
  const anonymous = addPeer(registry);
  settle(registry, [bob, anonymous]);
  registry.flushPresence();
  assertEquals(bob.received, [], "an anonymous arrival is not announced");
  registry.identify(anonymous, "alice");
  registry.flushPresence();
  assertEquals(bob.presence(), [presence("lobby", ["alice"], [])]);
  assertEquals(anonymous.received, []);
});

Deno.test("presence: identifying announces the user in every group the connection had joined", () => {
  const registry = makeRegistry();
  const bob = addPeerIn(registry, "room", "bob");
  const anonymous = addPeerIn(registry, "room");
  settle(registry, [bob, anonymous]);
  registry.identify(anonymous, "alice");
  registry.flushPresence();
  assertEquals(
    sortedPresence(bob).sort((x, y) => String(x.group).localeCompare(String(y.group))),
    [presence("lobby", ["alice"], []), presence("room", ["alice"], [])],
  );
  assertEquals(registry.members("room"), ["alice", "bob"]);
});

Deno.test("presence: onPresencePending is called once per pending window", () => {
  let calls = 0;
  const registry = makeRegistry({ onPresencePending: () => calls++ });
  const bob = addPeer(registry, "bob");
  assertEquals(calls, 1);
  addPeer(registry, "alice");
  addPeerIn(registry, "room", "carol");
  assertEquals(calls, 1, "later changes in the same window do not ask again");
  registry.flushPresence();
  assertEquals(calls, 1);
  // Anonymous arrivals and a second tab change nothing: no window opens.
  addPeerIn(registry, "room");
  addPeer(registry, "bob");
  assertEquals(calls, 1);
  registry.join(bob, "room");
  assertEquals(calls, 2);
  registry.flushPresence();
  registry.flushPresence();
  assertEquals(calls, 2);
});

Deno.test("presence: flushing with nothing pending sends nothing", () => {
  const registry = makeRegistry();
  const bob = addPeer(registry, "bob");
  settle(registry, [bob]);
  registry.flushPresence();
  assertEquals(bob.received, []);
});

// ---------------------------------------------------------------------------
// Cleanup.

Deno.test("after every peer is removed, only the default group remains", () => {
  const registry = makeRegistry();
  const peers = [
    addPeerIn(registry, "a", "alice"),
    addPeerIn(registry, "a", "alice"),
    addPeerIn(registry, "b", "bob"),
    addPeerIn(registry, "b"),
  ];
  registry.join(peers[0], "c");
  assertEquals(registry.stats(), { connections: 4, users: 2, groups: 4 });
  for (const peer of peers) assert(registry.remove(peer));
  assertEquals(registry.stats(), { connections: 0, users: 0, groups: 1 });
  for (const group of ["lobby", "a", "b", "c"]) assertEquals(registry.members(group), []);
  assertFalse(registry.isOnline("alice"));
  assertFalse(registry.isOnline("bob"));
});

Deno.test("after every peer is removed with no default group, no group remains", () => {
  const registry = makeRegistry({ defaultGroup: null });
  const peers = [addPeerIn(registry, "a", "alice"), addPeerIn(registry, "b")];
  assertEquals(registry.stats(), { connections: 2, users: 1, groups: 2 });
  for (const peer of peers) registry.remove(peer);
  assertEquals(registry.stats(), { connections: 0, users: 0, groups: 0 });
});

Deno.test("a group is dropped when its last member leaves, but the default group persists", () => {
  const registry = makeRegistry();
  const peer = addPeerIn(registry, "room", "alice");
  assertEquals(registry.stats().groups, 2);
  registry.leave(peer, "room");
  assertEquals(registry.stats().groups, 1);
  registry.leave(peer, "lobby"); // the registry allows it; the dispatcher forbids it
  assertEquals(registry.stats().groups, 1);
});

Deno.test("remove() is idempotent: the second call returns false and changes nothing", () => {
  const registry = makeRegistry();
  const bob = addPeer(registry, "bob");
  const alice = addPeer(registry, "alice");
  settle(registry, [bob, alice]);
  assert(registry.remove(alice));
  assertFalse(registry.remove(alice));
  registry.flushPresence();
  assertEquals(bob.presence(), [presence("lobby", [], ["alice"])], "one leave, not two");
  assertEquals(registry.stats(), { connections: 1, users: 1, groups: 1 });
});

/** A small deterministic PRNG (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface ModelPeer {
  peer: FakePeer;
  user: string | undefined;
  groups: Set<string>;
}

/** Users per group according to a plain model of the registry. */
function modelUsers(model: ModelPeer[], group: string): Set<string> {
  const users = new Set<string>();
  for (const { user, groups } of model) {
    if (user !== undefined && groups.has(group)) users.add(user);
  }
  return users;
}

for (const defaultGroup of ["lobby", null]) {
  Deno.test(`hundreds of random peers, joins, identifies and removes match a model and leave nothing behind (default group ${defaultGroup})`, () => {
    const next = random(defaultGroup === null ? 7 : 42);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)];
    const registry = makeRegistry({ defaultGroup, maxGroups: 3 });
    const groupNames = ["g0", "g1", "g2", "g3", "g4", "__proto__", "constructor"];
    const userNames = ["u0", "u1", "u2", "u3", "u4", "u5", "toString", "__proto__"];
    const allGroups = [...groupNames, ...(defaultGroup === null ? [] : [defaultGroup])];
    const live: ModelPeer[] = [];
    let lastFlushed = new Map(allGroups.map((g) => [g, new Set<string>()]));

    const checkFlush = () => {
      for (const { peer } of live) peer.clear();
      registry.flushPresence();
      const now = new Map(allGroups.map((g) => [g, modelUsers(live, g)]));
      for (const entry of live) {
        const expected = allGroups.flatMap((group) => {
          if (!entry.groups.has(group)) return [];
          const before = lastFlushed.get(group)!;
          const after = now.get(group)!;
          const joins = [...after].filter((u) => !before.has(u) && u !== entry.user).sort();
          const leaves = [...before].filter((u) => !after.has(u) && u !== entry.user).sort();
          return joins.length + leaves.length === 0 ? [] : [presence(group, joins, leaves)];
        });
        const got = sortedPresence(entry.peer).sort((a, b) =>
          String(a.group).localeCompare(String(b.group))
        );
        expected.sort((a, b) => a.group.localeCompare(b.group));
        assertEquals(got, expected, `presence received by ${entry.peer.id} (${entry.user})`);
      }
      lastFlushed = now;
    };

    const checkState = () => {
      for (const group of allGroups) {
        assertEquals(registry.members(group), [...modelUsers(live, group)].sort(), group);
      }
      const users = new Set(live.flatMap(({ user }) => user === undefined ? [] : [user]));
      const groups = new Set(allGroups.filter((g) => live.some((p) => p.groups.has(g))));
      if (defaultGroup !== null) groups.add(defaultGroup);
      assertEquals(registry.stats(), {
        connections: live.length,
        users: users.size,
        groups: groups.size,
      });
      for (const { peer, user, groups } of live) {
        assertEquals(registry.userOf(peer), user);
        for (const group of allGroups) {
          assertEquals(registry.isMember(peer, group), groups.has(group));
        }
      }
    };

    for (let step = 0; step < 3000; step++) {
      const roll = next();
      if (roll < 0.2 || live.length === 0) {
        const peer = new FakePeer(`r${step}`);
        registry.add(peer);
        live.push({
          peer,
          user: undefined,
          groups: new Set(defaultGroup === null ? [] : [defaultGroup]),
        });
      } else if (roll < 0.35) {
        const entry = pick(live);
        const user = pick(userNames);
        const refusal = registry.identify(entry.peer, user);
        if (entry.user === undefined || entry.user === user) {
          assertEquals(refusal, undefined);
          entry.user = user;
        } else {
          assertEquals(refusal, "already_identified");
        }
      } else if (roll < 0.6) {
        const entry = pick(live);
        const group = pick(groupNames);
        const joined = [...entry.groups].filter((g) => g !== defaultGroup).length;
        const refusal = registry.join(entry.peer, group);
        if (entry.groups.has(group) || joined < 3) {
          assertEquals(refusal, undefined);
          entry.groups.add(group);
        } else {
          assertEquals(refusal, "too_many_groups");
        }
      } else if (roll < 0.75) {
        const entry = pick(live);
        const group = pick(groupNames);
        assertEquals(
          registry.leave(entry.peer, group),
          entry.groups.has(group) ? undefined : "not_member",
        );
        entry.groups.delete(group);
      } else if (roll < 0.9) {
        const index = Math.floor(next() * live.length);
        const [entry] = live.splice(index, 1);
        assert(registry.remove(entry.peer));
        assertFalse(registry.remove(entry.peer));
      } else {
        checkFlush();
      }
      if (step % 50 === 0) checkState();
    }
    assert(live.length > 0, "the run ended with connections open");
    checkState();

    const gone = live.splice(0, live.length);
    for (const { peer } of gone) assert(registry.remove(peer));
    for (const { peer } of gone) peer.clear();
    registry.flushPresence();
    for (const { peer } of gone) assertEquals(peer.received, [], "a removed peer gets nothing");
    assertEquals(registry.stats(), {
      connections: 0,
      users: 0,
      groups: defaultGroup === null ? 0 : 1,
    });
    for (const group of allGroups) {
      assertEquals(registry.members(group), []);
      assertEquals(registry.publishToGroup(group, message("x")), 0);
    }
    for (const user of userNames) assertFalse(registry.isOnline(user), user);
  });
}
