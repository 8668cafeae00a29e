/**
 * Unit tests of the per-connection token bucket, with time passed in: no
 * clock is read, so nothing here depends on how fast the machine is.
 */

import { assertEquals } from "@std/assert";
import { type RateDecision, RateLimiter } from "../src/rate_limit.ts";

const T0 = 1_700_000_000_000;

/** Takes `count` tokens at the same instant and returns the decisions. */
function takeMany(limiter: RateLimiter, count: number, now: number): RateDecision[] {
  return Array.from({ length: count }, () => limiter.take(now));
}

Deno.test("a fresh connection may send a full burst at once; the next frame is dropped", () => {
  const limiter = new RateLimiter({ rate: 50, burst: 100, abuseSeconds: 10 }, T0);
  const decisions = takeMany(limiter, 101, T0);
  assertEquals(decisions.slice(0, 100), Array(100).fill("accept"));
  assertEquals(decisions[100], "drop");
});

Deno.test("tokens refill at the sustained rate, never above the burst", () => {
  // Times are chosen so that token counts are exact binary fractions.
  const limiter = new RateLimiter({ rate: 4, burst: 5, abuseSeconds: 10 }, T0);
  assertEquals(takeMany(limiter, 5, T0), Array(5).fill("accept"));
  assertEquals(limiter.take(T0), "drop");
  // 4 frames/s: one token every 250 ms.
  assertEquals(limiter.take(T0 + 125), "drop", "half a token is not a token");
  assertEquals(limiter.take(T0 + 250), "accept");
  assertEquals(limiter.take(T0 + 250), "drop");
  assertEquals(limiter.take(T0 + 750), "accept");
  assertEquals(limiter.take(T0 + 750), "accept");
  assertEquals(limiter.take(T0 + 750), "drop");
  // A long quiet spell refills only up to the burst.
  assertEquals(takeMany(limiter, 6, T0 + 60_000), [...Array(5).fill("accept"), "drop"]);
});

Deno.test("a client sending at exactly the sustained rate is never dropped", () => {
  const limiter = new RateLimiter({ rate: 8, burst: 1, abuseSeconds: 10 }, T0);
  for (let i = 0; i < 5000; i++) assertEquals(limiter.take(T0 + i * 125), "accept", `frame ${i}`);
  assertEquals(limiter.take(T0 + 4999 * 125 + 1), "drop", "one frame faster is dropped");
});

Deno.test("continuous abuse closes only after abuseSeconds of drops", () => {
  const limiter = new RateLimiter({ rate: 1, burst: 1, abuseSeconds: 3 }, T0);
  assertEquals(limiter.take(T0), "accept");
  // 8 frames a second from then on: mostly drops, one accepted per second.
  const decisions: [number, RateDecision][] = [];
  for (let t = T0 + 125; t <= T0 + 4000; t += 125) decisions.push([t - T0, limiter.take(t)]);
  const firstDrop = decisions.find(([, d]) => d === "drop")![0];
  assertEquals(firstDrop, 125);
  const firstClose = decisions.find(([, d]) => d === "close")![0];
  assertEquals(firstClose, firstDrop + 3000, "closed exactly abuseSeconds after the first drop");
  const beforeClose = decisions.filter(([t]) => t < firstClose).map(([, d]) => d);
  assertEquals(beforeClose.includes("close"), false);
  assertEquals(beforeClose.filter((d) => d === "accept").length, 3, "one token per second");
});

Deno.test("accepted frames in between do not end an abuse run", () => {
  const limiter = new RateLimiter({ rate: 2, burst: 1, abuseSeconds: 2 }, T0);
  assertEquals(limiter.take(T0), "accept");
  assertEquals(limiter.take(T0), "drop"); // abuse begins
  // Alternate: an accepted frame whenever a token is there, a dropped one 125 ms later.
  const afterAccept: RateDecision[] = [];
  for (let t = T0 + 500; t <= T0 + 2000; t += 500) {
    assertEquals(limiter.take(t), "accept", `at ${t - T0}`);
    afterAccept.push(limiter.take(t + 125));
  }
  assertEquals(afterAccept, ["drop", "drop", "drop", "close"], "2 s after the first drop");
});

Deno.test("drops that stop short of abuseSeconds never close", () => {
  const limiter = new RateLimiter({ rate: 1, burst: 1, abuseSeconds: 3 }, T0);
  limiter.take(T0);
  for (let t = T0 + 10; t < T0 + 2990; t += 10) {
    assertEquals(limiter.take(t) === "close", false, `closed early at ${t - T0} ms`);
  }
});

Deno.test("a pause of a full second forgives the abuse run", () => {
  const limiter = new RateLimiter({ rate: 1, burst: 1, abuseSeconds: 3 }, T0);
  limiter.take(T0);
  // 2.5 s of abuse...
  for (let t = T0 + 125; t <= T0 + 2500; t += 125) assertEquals(limiter.take(t) !== "close", true);
  // ...then 1 s of silence (a token refilled): accepted, and the run is over.
  assertEquals(limiter.take(T0 + 3500), "accept");
  // Abuse starts again: it needs 3 more seconds, not 0.5.
  const decisions: [number, RateDecision][] = [];
  for (let t = T0 + 3625; t <= T0 + 7000; t += 125) decisions.push([t - T0, limiter.take(t)]);
  assertEquals(decisions[0], [3625, "drop"]);
  const firstClose = decisions.find(([, d]) => d === "close")?.[0];
  assertEquals(firstClose, 3625 + 3000);
});

Deno.test("a pause of a full second forgives even when no token has refilled", () => {
  // At 0.1 frame/s a second of silence refills no token, but still ends the run.
  const limiter = new RateLimiter({ rate: 0.1, burst: 1, abuseSeconds: 3 }, T0);
  limiter.take(T0);
  for (let t = T0 + 100; t <= T0 + 2500; t += 100) assertEquals(limiter.take(t), "drop");
  // Without forgiveness this drop, 3.4 s after the first, would close.
  assertEquals(limiter.take(T0 + 3500), "drop", "no token yet: dropped, but a new run begins");
  const decisions: RateDecision[] = [];
  for (let t = T0 + 4000; t <= T0 + 6500; t += 500) decisions.push(limiter.take(t));
  assertEquals(decisions, ["drop", "drop", "drop", "drop", "drop", "close"]);
});

Deno.test("a pause shorter than a second does not forgive", () => {
  const limiter = new RateLimiter({ rate: 0.1, burst: 1, abuseSeconds: 3 }, T0);
  limiter.take(T0);
  const decisions: RateDecision[] = [];
  // Drops 999 ms apart: the run is continuous.
  for (let t = T0 + 1; t <= T0 + 1 + 4 * 999; t += 999) decisions.push(limiter.take(t));
  assertEquals(decisions, ["drop", "drop", "drop", "drop", "close"]);
});

Deno.test("abuseSeconds 0 closes on the first dropped frame", () => {
  const limiter = new RateLimiter({ rate: 1, burst: 2, abuseSeconds: 0 }, T0);
  assertEquals(takeMany(limiter, 3, T0), ["accept", "accept", "close"]);
});
