import { assertEquals } from "@std/assert";
import { Connection, type Dialect, FlushScheduler } from "../src/connection.ts";
import { binaryRelay, textRelay, toEveryone, toV1Only } from "../src/delivery.ts";
import { Metrics } from "../src/metrics.ts";
import { RateLimiter } from "../src/rate_limit.ts";

/** A socket double: records frames, and holds them as unsent until the test drains it. */
class FakeSocket {
  bufferedAmount = 0;
  readonly sent: (string | Uint8Array)[] = [];
  readonly closes: [number, string][] = [];
  send(frame: string | Uint8Array): void {
    this.sent.push(frame);
    this.bufferedAmount += typeof frame === "string" ? frame.length : frame.byteLength;
  }
  /** The reader took every byte. */
  drain(): void {
    this.bufferedAmount = 0;
  }
  close(code: number, reason: string): void {
    this.closes.push([code, reason]);
  }
}

function connect(dialect: Dialect, slowConsumerBytes = 1 << 20) {
  const socket = new FakeSocket();
  const metrics = new Metrics();
  const evicted: Connection[] = [];
  const connection = new Connection(
    socket as unknown as WebSocket,
    "c1",
    dialect,
    new RateLimiter({ rate: 1, burst: 1, abuseSeconds: 1 }, 0),
    {
      metrics,
      flusher: new FlushScheduler(),
      slowConsumerBytes,
      onEvicted: (connection) => evicted.push(connection),
    },
  );
  return { socket, metrics, evicted, connection };
}

const nextTurn = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("v1 messages queued in one turn leave as one frame joined by newlines, in order", async () => {
  const { socket, metrics, connection } = connect("v1");
  connection.send(toV1Only('{"n":1}'));
  connection.send(toEveryone('{"n":2}'));
  connection.send(textRelay("three", "ann"));
  assertEquals(socket.sent, [], "nothing is written before the turn ends");
  await nextTurn();
  assertEquals(socket.sent, ['{"n":1}\n{"n":2}\n{"type":"relay","from":"ann","data":"three"}']);
  assertEquals([metrics.framesOut, metrics.deliveries], [1, 3]);
});

Deno.test("seed frames are never batched and v1-only messages never reach seed peers", async () => {
  const { socket, connection } = connect("seed");
  assertEquals(connection.send(toV1Only('{"type":"presence"}')), false);
  connection.send(toEveryone('{"n":1}'));
  connection.send(textRelay("hello", "ann"));
  await nextTurn();
  assertEquals(socket.sent, ['{"n":1}', "hello"]);
});

Deno.test("a binary frame to a v1 peer goes out after the messages queued before it", () => {
  const { socket, connection } = connect("v1");
  connection.send(toV1Only('{"n":1}'));
  connection.send(binaryRelay(new Uint8Array([7])));
  assertEquals(socket.sent, ['{"n":1}', new Uint8Array([7])]);
});

Deno.test("a burst larger than the limit within one turn is no sign of a slow reader", async () => {
  const { socket, evicted, connection } = connect("v1", 1024);
  assertEquals(connection.send(toV1Only("x".repeat(600))), true);
  assertEquals(connection.send(toV1Only("y".repeat(600))), true);
  await nextTurn();
  assertEquals(evicted, []);
  assertEquals(socket.sent, ["x".repeat(600) + "\n" + "y".repeat(600)]);
});

Deno.test("a reader whose backlog from earlier turns is over the limit is closed 1013, once", async () => {
  const { socket, metrics, evicted, connection } = connect("v1", 1024);
  for (let i = 0; i < 3; i++) connection.send(toV1Only("x".repeat(400)));
  await nextTurn(); // the reader reads nothing from here on
  assertEquals(connection.send(toV1Only("late")), false);
  assertEquals(socket.closes, [[1013, "slow consumer"]]);
  assertEquals(evicted, [connection]);
  assertEquals(connection.send(toV1Only("later")), false);
  await nextTurn();
  assertEquals(socket.sent.length, 1, "nothing more is written to an evicted reader");
  assertEquals(evicted.length, 1);
  assertEquals(metrics.drops, 2);
});

Deno.test("a seed reader whose socket stops draining is evicted once its old backlog passes the limit", async () => {
  const { socket, evicted, connection } = connect("seed", 1024);
  for (let i = 0; i < 6; i++) connection.send(toEveryone("x".repeat(200)));
  await nextTurn(); // nothing was read
  assertEquals(connection.send(toEveryone("x".repeat(200))), false);
  assertEquals(evicted, [connection]);
  assertEquals(socket.sent.length, 6);
});

Deno.test("a reader that keeps draining its socket is never evicted", async () => {
  const { socket, evicted, connection } = connect("seed", 1024);
  for (let turn = 0; turn < 10; turn++) {
    for (let i = 0; i < 4; i++) connection.send(toEveryone("x".repeat(200)));
    await nextTurn();
    socket.drain();
  }
  assertEquals(evicted, [], "bufferedAmount is read again before evicting");
  assertEquals(socket.sent.length, 40);
});
