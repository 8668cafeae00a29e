/**
 * The registry: who is connected, which user each connection speaks for, and
 * which groups each connection is in. It delivers to groups and to users, and
 * it computes presence diffs.
 *
 * It knows nothing of WebSockets: it holds {@linkcode Peer}s, anything with a
 * `send`. It starts no timers: when presence changes are pending it asks its
 * owner to call {@linkcode Registry.flushPresence} later, which is how the
 * server coalesces a burst of arrivals into one frame per group.
 *
 * @module
 */

import { type Delivery, toV1Only } from "./delivery.ts";
import { encodePresence } from "./protocol.ts";

/** A connection as the registry sees it. */
export interface Peer {
  /** Opaque connection id, unique for the server's lifetime. */
  readonly id: string;
  /** Hands one message to the connection; false when the peer did not take it. */
  send(delivery: Delivery): boolean;
}

/** Options of a {@linkcode Registry}. */
export interface RegistryOptions {
  /** The group every connection is in from open to close; `null` for none. */
  defaultGroup: string | null;
  /** Groups one connection may join, the default group not counted. */
  maxGroups: number;
  /**
   * Called once when a presence change becomes pending and none was; the
   * owner then calls `flushPresence()` (at once, or after a short window).
   */
  onPresencePending?: () => void;
}

/** Counts reported by `/healthz`. */
export interface RegistryStats {
  connections: number;
  users: number;
  groups: number;
}

/** Why a registry operation was refused; the operation then changed nothing. */
export type RegistryRefusal = "already_identified" | "not_member" | "too_many_groups";

interface Member {
  readonly peer: Peer;
  user: string | undefined;
  /** Groups joined by this connection, the default group included. */
  readonly groups: Set<string>;
}

interface Group {
  readonly members: Set<Member>;
  /** Identified users in the group → how many of their connections are in it. */
  readonly users: Map<string, number>;
}

type PresenceChange = "join" | "leave";

/** Groups, users and connections, with delivery and presence. */
export class Registry {
  readonly #options: RegistryOptions;
  readonly #members = new Map<Peer, Member>();
  readonly #groups = new Map<string, Group>();
  readonly #users = new Map<string, Set<Member>>();
  /** group → user → the net change since the last flush. */
  readonly #pendingPresence = new Map<string, Map<string, PresenceChange>>();

  constructor(options: RegistryOptions) {
    this.#options = options;
    if (options.defaultGroup !== null) this.#groupNamed(options.defaultGroup);
  }

  /** The group every connection is in, or `null`. */
  get defaultGroup(): string | null {
    return this.#options.defaultGroup;
  }

  /** Adds a connection; it joins the default group at once. Adding twice does nothing. */
  add(peer: Peer): void {
    if (this.#members.has(peer)) return;
    const member: Member = { peer, user: undefined, groups: new Set() };
    this.#members.set(peer, member);
    const defaultGroup = this.#options.defaultGroup;
    if (defaultGroup !== null) this.#enter(member, defaultGroup);
  }

  /**
   * Removes a connection from every group and from its user. Idempotent, so
   * that every close path (close event, error, eviction, shutdown) may call it.
   */
  remove(peer: Peer): boolean {
    const member = this.#members.get(peer);
    if (member === undefined) return false;
    for (const group of member.groups) this.#exit(member, group);
    if (member.user !== undefined) {
      const connections = this.#users.get(member.user);
      connections?.delete(member);
      if (connections?.size === 0) this.#users.delete(member.user);
    }
    this.#members.delete(peer);
    return true;
  }

  /** Whether the peer is registered. */
  has(peer: Peer): boolean {
    return this.#members.has(peer);
  }

  /**
   * Identifies a connection as `user`. Identifying again as the same user
   * changes nothing; as another user it is refused.
   */
  identify(peer: Peer, user: string): RegistryRefusal | undefined {
    const member = this.#memberOf(peer);
    if (member.user !== undefined) {
      return member.user === user ? undefined : "already_identified";
    }
    member.user = user;
    let connections = this.#users.get(user);
    if (connections === undefined) this.#users.set(user, connections = new Set());
    connections.add(member);
    for (const name of member.groups) this.#countUserIn(this.#groupNamed(name), name, user);
    return undefined;
  }

  /** The user a connection is identified as, if any. */
  userOf(peer: Peer): string | undefined {
    return this.#members.get(peer)?.user;
  }

  /** Joins a group; joining a group one is already in changes nothing. */
  join(peer: Peer, group: string): RegistryRefusal | undefined {
    const member = this.#memberOf(peer);
    if (member.groups.has(group)) return undefined;
    if (this.#joinedCount(member) >= this.#options.maxGroups) return "too_many_groups";
    this.#enter(member, group);
    return undefined;
  }

  /** Leaves a group. Keeping connections in the default group is the caller's rule. */
  leave(peer: Peer, group: string): RegistryRefusal | undefined {
    const member = this.#memberOf(peer);
    if (!member.groups.has(group)) return "not_member";
    this.#exit(member, group);
    return undefined;
  }

  /** Whether the connection is in the group. */
  isMember(peer: Peer, group: string): boolean {
    return this.#members.get(peer)?.groups.has(group) ?? false;
  }

  /** The identified users in a group, sorted. Anonymous connections are not listed. */
  members(group: string): string[] {
    const users = this.#groups.get(group)?.users;
    return users === undefined ? [] : [...users.keys()].sort();
  }

  /** Whether the user has at least one connection. */
  isOnline(user: string): boolean {
    return this.#users.has(user);
  }

  /** Delivers to every connection in the group except `except`; returns how many took it. */
  publishToGroup(group: string, delivery: Delivery, except?: Peer): number {
    const members = this.#groups.get(group)?.members;
    return members === undefined ? 0 : deliver(members, delivery, except);
  }

  /** Delivers to every connection of the user except `except`; returns how many took it. */
  publishToUser(user: string, delivery: Delivery, except?: Peer): number {
    const connections = this.#users.get(user);
    return connections === undefined ? 0 : deliver(connections, delivery, except);
  }

  /** Connections, users and groups now held. */
  stats(): RegistryStats {
    return {
      connections: this.#members.size,
      users: this.#users.size,
      groups: this.#groups.size,
    };
  }

  /**
   * Sends every pending presence diff: one `presence` message per changed
   * group to each of its members, never naming the recipient's own user.
   */
  flushPresence(): void {
    const pending = [...this.#pendingPresence];
    this.#pendingPresence.clear();
    for (const [name, changes] of pending) {
      const group = this.#groups.get(name);
      if (group !== undefined) sendPresence(name, group, changes);
    }
  }

  #memberOf(peer: Peer): Member {
    const member = this.#members.get(peer);
    if (member === undefined) throw new Error(`peer ${peer.id} is not registered`);
    return member;
  }

  #joinedCount(member: Member): number {
    const defaultGroup = this.#options.defaultGroup;
    const inDefault = defaultGroup !== null && member.groups.has(defaultGroup);
    return member.groups.size - (inDefault ? 1 : 0);
  }

  #groupNamed(name: string): Group {
    let group = this.#groups.get(name);
    if (group === undefined) {
      group = { members: new Set(), users: new Map() };
      this.#groups.set(name, group);
    }
    return group;
  }

  #enter(member: Member, name: string): void {
    const group = this.#groupNamed(name);
    group.members.add(member);
    member.groups.add(name);
    if (member.user !== undefined) this.#countUserIn(group, name, member.user);
  }

  #exit(member: Member, name: string): void {
    const group = this.#groups.get(name);
    member.groups.delete(name);
    if (group === undefined) return;
    group.members.delete(member);
    const user = member.user;
    if (user !== undefined) {
      const count = (group.users.get(user) ?? 1) - 1;
      if (count > 0) {
        group.users.set(user, count);
      } else {
        group.users.delete(user);
        this.#notePresence(name, user, "leave");
      }
    }
    if (group.members.size === 0 && name !== this.#options.defaultGroup) {
      this.#groups.delete(name);
    }
  }

  #countUserIn(group: Group, name: string, user: string): void {
    const count = group.users.get(user) ?? 0;
    group.users.set(user, count + 1);
    if (count === 0) this.#notePresence(name, user, "join");
  }

  #notePresence(group: string, user: string, change: PresenceChange): void {
    const wasIdle = this.#pendingPresence.size === 0;
    let changes = this.#pendingPresence.get(group);
    if (changes === undefined) this.#pendingPresence.set(group, changes = new Map());
    // A join and a leave inside one window cancel out: the others saw neither.
    if (changes.has(user) && changes.get(user) !== change) changes.delete(user);
    else changes.set(user, change);
    if (wasIdle) this.#options.onPresencePending?.();
  }
}

function deliver(targets: Set<Member>, delivery: Delivery, except: Peer | undefined): number {
  let delivered = 0;
  for (const { peer } of targets) {
    if (peer !== except && peer.send(delivery)) delivered++;
  }
  return delivered;
}

function sendPresence(name: string, group: Group, changes: Map<string, PresenceChange>): void {
  if (changes.size === 0) return;
  const joins: string[] = [];
  const leaves: string[] = [];
  for (const [user, change] of changes) (change === "join" ? joins : leaves).push(user);
  const shared = toV1Only(encodePresence(name, joins, leaves));
  // A recipient whose own user is in the diff gets a copy without it, built once per such user.
  const personal = new Map<string, Delivery | null>();
  for (const { peer, user } of group.members) {
    if (user === undefined || !changes.has(user)) {
      peer.send(shared);
      continue;
    }
    let delivery = personal.get(user);
    if (delivery === undefined) {
      const otherJoins = joins.filter((name) => name !== user);
      const otherLeaves = leaves.filter((name) => name !== user);
      delivery = otherJoins.length + otherLeaves.length === 0
        ? null
        : toV1Only(encodePresence(name, otherJoins, otherLeaves));
      personal.set(user, delivery);
    }
    if (delivery !== null) peer.send(delivery);
  }
}
