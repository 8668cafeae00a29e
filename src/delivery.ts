/**
 * One outgoing message, as each dialect receives it. Encoded at most once per
 * dialect however many peers receive it: fan-out does no JSON work per
 * recipient.
 *
 * @module
 */

import { encodeRelay, encodeStampedRelay } from "./protocol.ts";

/**
 * What a peer of each dialect receives for one message. A string for a
 * `switchboard.v1` peer is one server message (it may share a frame with
 * others); `undefined` means peers of that dialect do not receive it.
 */
export interface Delivery {
  /** For `switchboard.v1` peers. */
  readonly v1: string | Uint8Array | undefined;
  /** For seed-dialect peers: always a frame of its own. */
  readonly seed: string | Uint8Array | undefined;
}

/** A server message that both dialects receive (`message`, `error`). */
export function toEveryone(json: string): Delivery {
  return { v1: json, seed: json };
}

/** A server message that only `switchboard.v1` peers receive (`ack`, `presence`, …). */
export function toV1Only(json: string): Delivery {
  return { v1: json, seed: undefined };
}

/** A binary frame, relayed byte for byte to both dialects. */
export function binaryRelay(bytes: Uint8Array): Delivery {
  return { v1: bytes, seed: bytes };
}

/**
 * A relayed text frame: seed peers get it verbatim, `switchboard.v1` peers get
 * it wrapped in a `relay` message whose `from` is the sender's trusted user.
 */
export function textRelay(text: string, from: string | null): Delivery {
  return new LazyDelivery(() => encodeRelay(from, text), () => text);
}

/**
 * A direct relay (a JSON object with `to`) sent by a `switchboard.v1` client:
 * seed peers get the object with `from` set to the sender's user (or removed),
 * so that a v1 client cannot speak as someone else.
 */
export function stampedRelay(
  text: string,
  object: Record<string, unknown>,
  from: string | null,
): Delivery {
  return new LazyDelivery(() => encodeRelay(from, text), () => encodeStampedRelay(object, from));
}

// Encodes each dialect's form on first use only: a relay to a room of seed
// clients never builds the v1 wrapper, and the other way round.
class LazyDelivery implements Delivery {
  #v1: string | undefined;
  #seed: string | undefined;

  constructor(readonly encodeV1: () => string, readonly encodeSeed: () => string) {}

  get v1(): string {
    return this.#v1 ??= this.encodeV1();
  }

  get seed(): string {
    return this.#seed ??= this.encodeSeed();
  }
}
