/**
 * Micro-benchmarks of the server's hot paths: `deno task bench:micro`.
 * Each measures one piece of work the server does per message or per delivery.
 */

import { Connection, FlushScheduler } from "../src/connection.ts";
import { type Delivery, toEveryone } from "../src/delivery.ts";
import { Dispatcher } from "../src/dispatch.ts";
import { Metrics } from "../src/metrics.ts";
import { encodeMessage, parseFrame } from "../src/protocol.ts";
import { RateLimiter } from "../src/rate_limit.ts";
import { type Peer, Registry } from "../src/registry.ts";

const groupMessage = JSON.stringify({ type: "message", group: "room", data: "x".repeat(64) });
const unlimited = { rate: 1e9, burst: 1e9, abuseSeconds: 10 };

Deno.bench("parse a group message command", { group: "protocol" }, () => {
  parseFrame(groupMessage);
});

Deno.bench("classify a plain-text relay", { group: "protocol" }, () => {
  parseFrame("hello everyone, this is a plain text frame from the old demo");
});

Deno.bench("encode a group message", { group: "protocol" }, () => {
  encodeMessage("ann", { group: "room" }, "x".repeat(64), 1_795_760_000_000);
});

/** A peer that only counts, so the fan-out itself is measured. */
class CountingPeer implements Peer {
  received = 0;
  constructor(readonly id: string) {}
  send(_delivery: Delivery): boolean {
    this.received++;
    return true;
  }
}

function registryWith(peers: number): { registry: Registry; sender: Peer } {
  const registry = new Registry({ defaultGroup: "lobby", maxGroups: 10 });
  const all = Array.from({ length: peers }, (_, i) => new CountingPeer(`p${i}`));
  for (const peer of all) {
    registry.add(peer);
    registry.identify(peer, peer.id);
    registry.join(peer, "room");
  }
  registry.flushPresence();
  return { registry, sender: all[0] };
}

{
  const { registry, sender } = registryWith(1000);
  const delivery = toEveryone(encodeMessage("p0", { group: "room" }, "hi", 0));
  Deno.bench("registry fan-out to 1,000 peers", { group: "fan-out" }, () => {
    registry.publishToGroup("room", delivery, sender);
  });
}

/** A socket that swallows frames, so batching is measured without I/O. */
class NullSocket {
  bufferedAmount = 0;
  frames = 0;
  send(): void {
    this.frames++;
  }
  close(): void {}
}

{
  const metrics = new Metrics();
  const flusher = new FlushScheduler();
  const connection = new Connection(
    new NullSocket() as unknown as WebSocket,
    "c",
    "v1",
    new RateLimiter(unlimited, 0),
    { metrics, flusher, slowConsumerBytes: 1 << 30, onEvicted: () => {} },
  );
  const delivery = toEveryone(encodeMessage("ann", { group: "room" }, "x".repeat(64), 0));
  Deno.bench("batch 28 messages into one v1 frame", { group: "batching" }, () => {
    for (let i = 0; i < 28; i++) connection.send(delivery);
    connection.flush();
  });
}

{
  const registry = new Registry({ defaultGroup: "lobby", maxGroups: 10 });
  const observers = Array.from({ length: 100 }, (_, i) => new CountingPeer(`o${i}`));
  for (const peer of observers) {
    registry.add(peer);
    registry.identify(peer, peer.id);
  }
  registry.flushPresence();
  let round = 0;
  Deno.bench(
    "presence: 100 arrivals coalesced, sent to 100 observers",
    { group: "presence" },
    () => {
      const arrivals = Array.from({ length: 100 }, (_, i) => new CountingPeer(`a${round}-${i}`));
      round++;
      for (const peer of arrivals) {
        registry.add(peer);
        registry.identify(peer, peer.id);
      }
      registry.flushPresence();
      for (const peer of arrivals) registry.remove(peer);
      registry.flushPresence();
    },
  );
}

{
  const metrics = new Metrics();
  const { registry } = registryWith(50);
  const dispatcher = new Dispatcher(registry, metrics, { maxMessageBytes: 65536 });
  const sender = {
    id: "s",
    dialect: "v1" as const,
    limiter: new RateLimiter(unlimited, 0),
    send: () => true,
    close: () => {},
  };
  registry.add(sender);
  registry.identify(sender, "sender");
  registry.join(sender, "room");
  registry.flushPresence();
  Deno.bench("dispatch a group message to 50 members", { group: "fan-out" }, () => {
    dispatcher.receive(sender, groupMessage);
  });
}
