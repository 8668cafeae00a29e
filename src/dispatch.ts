/**
 * Executes each incoming frame on behalf of the connection that sent it:
 * checks size and rate, parses, applies the command to the registry and
 * answers. This is the one place where the two dialects' rules differ.
 *
 * @module
 */

import type { Dialect } from "./connection.ts";
import {
  binaryRelay,
  type Delivery,
  stampedRelay,
  textRelay,
  toEveryone,
  toV1Only,
} from "./delivery.ts";
import type { Metrics } from "./metrics.ts";
import {
  type Command,
  type CommandId,
  describeError,
  encodeAck,
  encodeError,
  encodeMessage,
  encodePong,
  type ErrorCode,
  type Frame,
  type MessageCommand,
  parseFrame,
  type ProtocolError,
  type Relay,
} from "./protocol.ts";
import type { RateLimiter } from "./rate_limit.ts";
import type { Peer, Registry, RegistryRefusal } from "./registry.ts";

/** Close code for a message over the size limit. */
export const CLOSE_TOO_BIG = 1009;
/** Close code for a connection that kept breaking the rate limit. */
export const CLOSE_POLICY = 1008;

/** A connection as the dispatcher needs it; the server's `Connection` is one. */
export interface Client extends Peer {
  readonly dialect: Dialect;
  readonly limiter: RateLimiter;
  close(code: number, reason: string): void;
}

/** Options of a {@linkcode Dispatcher}. */
export interface DispatcherOptions {
  maxMessageBytes: number;
  /** Milliseconds since the epoch; injectable for tests. */
  now?: () => number;
}

/** Applies clients' frames to a registry. */
export class Dispatcher {
  readonly #registry: Registry;
  readonly #metrics: Metrics;
  readonly #maxMessageBytes: number;
  readonly #now: () => number;

  constructor(registry: Registry, metrics: Metrics, options: DispatcherOptions) {
    this.#registry = registry;
    this.#metrics = metrics;
    this.#maxMessageBytes = options.maxMessageBytes;
    this.#now = options.now ?? Date.now;
  }

  /** Handles one complete incoming message: text, or binary as an ArrayBuffer. */
  receive(client: Client, data: string | ArrayBuffer): void {
    const size = typeof data === "string" ? data.length : data.byteLength;
    this.#metrics.framesIn++;
    this.#metrics.bytesIn += size;
    if (isOverLimit(data, this.#maxMessageBytes)) {
      client.close(CLOSE_TOO_BIG, "message too big");
      return;
    }
    const decision = client.limiter.take(this.#now());
    if (decision === "close") {
      client.close(CLOSE_POLICY, "rate limit exceeded");
      return;
    }
    if (decision === "drop") {
      // A dropped command is still answered with its id, so that no request waits forever.
      this.#fail(
        client,
        "rate_limited",
        typeof data === "string" ? idOf(parseFrame(data)) : undefined,
      );
      return;
    }
    if (typeof data !== "string") {
      this.#broadcast(client, binaryRelay(new Uint8Array(data)));
      return;
    }
    const frame = parseFrame(data);
    if (frame.kind === "command") this.#execute(client, frame.command);
    else if (frame.kind === "relay") this.#relay(client, data, frame.relay);
    else this.#reply(client, frame.error);
  }

  #execute(client: Client, command: Command): void {
    const registry = this.#registry;
    if (command.type === "ping") {
      if (client.dialect === "v1") client.send(toV1Only(encodePong(command.id)));
      return;
    }
    if (command.type === "online") {
      const refusal = registry.identify(client, command.from);
      if (refusal !== undefined) return this.#fail(client, refusal, command.id);
      return this.#ack(client, command.id, { user: command.from });
    }
    const user = registry.userOf(client);
    if (user === undefined) return this.#fail(client, "not_identified", command.id);
    switch (command.type) {
      case "join": {
        const refusal = registry.join(client, command.group);
        if (refusal !== undefined) return this.#fail(client, refusal, command.id);
        return this.#ack(client, command.id, {
          group: command.group,
          members: registry.members(command.group),
        });
      }
      case "leave": {
        if (command.group === registry.defaultGroup) {
          return this.#reply(client, {
            code: "invalid_message",
            message: "every connection stays in the default group until it closes",
            id: command.id,
          });
        }
        const refusal = registry.leave(client, command.group);
        if (refusal !== undefined) return this.#fail(client, refusal, command.id);
        return this.#ack(client, command.id, { group: command.group });
      }
      case "members":
        if (!registry.isMember(client, command.group)) {
          return this.#fail(client, "not_member", command.id);
        }
        return this.#ack(client, command.id, {
          group: command.group,
          members: registry.members(command.group),
        });
      case "message":
        return this.#message(client, user, command);
    }
  }

  #message(client: Client, user: string, command: MessageCommand): void {
    const registry = this.#registry;
    let delivered: number;
    if (command.group !== undefined) {
      if (!registry.isMember(client, command.group)) {
        return this.#fail(client, "not_member", command.id);
      }
      const json = encodeMessage(user, { group: command.group }, command.data, this.#now());
      delivered = registry.publishToGroup(command.group, toEveryone(json), client);
    } else {
      if (!registry.isOnline(command.to)) return this.#fail(client, "user_offline", command.id);
      const json = encodeMessage(user, { to: command.to }, command.data, this.#now());
      delivered = registry.publishToUser(command.to, toEveryone(json), client);
    }
    this.#ack(client, command.id, { delivered });
  }

  #relay(client: Client, text: string, relay: Relay): void {
    const from = this.#registry.userOf(client) ?? null;
    if (relay.kind === "broadcast") {
      this.#broadcast(client, textRelay(text, from));
      return;
    }
    if (!this.#registry.isOnline(relay.to)) {
      // The seed demo dropped frames to nobody in silence; its clients expect no answer.
      if (client.dialect === "v1") this.#fail(client, "user_offline");
      else this.#metrics.drops++;
      return;
    }
    const delivery = client.dialect === "v1"
      ? stampedRelay(text, relay.object, from)
      : textRelay(text, from);
    this.#registry.publishToUser(relay.to, delivery, client);
  }

  #broadcast(client: Client, delivery: Delivery): void {
    const group = this.#registry.defaultGroup;
    if (group === null) {
      this.#reply(client, {
        code: "not_member",
        message: "there is no default group to broadcast to",
      });
      return;
    }
    this.#registry.publishToGroup(group, delivery, client);
  }

  #ack(client: Client, id: CommandId | undefined, fields: Record<string, unknown>): void {
    if (id !== undefined && client.dialect === "v1") client.send(toV1Only(encodeAck(id, fields)));
  }

  #fail(client: Client, code: ErrorCode | RegistryRefusal, id?: CommandId): void {
    this.#reply(client, { code, message: describeError(code), id });
  }

  #reply(client: Client, error: ProtocolError): void {
    this.#metrics.countError(error.code);
    client.send(toEveryone(encodeError(error)));
  }
}

/** The id a command frame carries (a relay has none), for answering it when it is dropped. */
function idOf(frame: Frame): CommandId | undefined {
  if (frame.kind === "command") return frame.command.id;
  return frame.kind === "error" ? frame.error.id : undefined;
}

/** Whether a message is over `max` bytes, measuring UTF-8 only when it can matter. */
export function isOverLimit(data: string | ArrayBuffer, max: number): boolean {
  if (typeof data !== "string") return data.byteLength > max;
  // UTF-8 takes at least one byte and at most three per UTF-16 unit.
  if (data.length > max) return true;
  if (data.length * 3 <= max) return false;
  return utf8Length(data) > max;
}

function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}
