// The seed demo's semantics on Bun's native pub/sub, for the bench only.
//
// Every connection subscribes to "lobby"; a frame is published to it with ws.publish,
// which skips the sender (broadcast to all others). {"type":"online","from":id} also
// subscribes the connection to the topic "u:<id>"; a JSON object with a string `to`
// is published to "u:<to>". No batching of our own, no limits, no presence.
//
// Usage: bun bench/peers/bun_pubsub.js [port]; prints "listening <port>" when ready.
// Plain JavaScript with JSDoc so that `deno check` never needs Bun's types.

/* global Bun */
import process from "node:process";

const port = Number(process.argv[2] ?? process.env.PORT ?? 8080);
const hostname = process.env.HOST ?? "127.0.0.1";

let connections = 0;
/** @type {Map<string, number>} connections per user */
const users = new Map();

/**
 * @typedef {{ user: string | null, closed: boolean }} ConnData
 * @typedef {{ data: ConnData, subscribe(t: string): void, publish(t: string, m: unknown): number }} BunSocket
 */

/** @param {BunSocket} ws */
function release(ws) {
  // Bun calls close once, but stay idempotent like the other peers.
  if (ws.data.closed) return;
  ws.data.closed = true;
  connections--;
  const id = ws.data.user;
  if (id === null) return;
  const n = (users.get(id) ?? 1) - 1;
  if (n <= 0) users.delete(id);
  else users.set(id, n);
}

const server = Bun.serve({
  port,
  hostname,
  /**
   * @param {Request} req
   * @param {{ upgrade(r: Request, o: { data: ConnData }): boolean }} srv
   */
  fetch(req, srv) {
    if (req.headers.get("upgrade")?.toLowerCase() === "websocket") {
      if (srv.upgrade(req, { data: { user: null, closed: false } })) return undefined;
      return new Response("upgrade failed", { status: 400 });
    }
    if (new URL(req.url).pathname === "/healthz") {
      return Response.json({ status: "ok", connections, users: users.size, groups: 1 });
    }
    return new Response("not found", { status: 404 });
  },
  websocket: {
    perMessageDeflate: false,
    /** @param {BunSocket} ws */
    open(ws) {
      connections++;
      ws.subscribe("lobby");
    },
    /**
     * @param {BunSocket} ws
     * @param {string | Uint8Array} message
     */
    message(ws, message) {
      if (typeof message === "string" && message.charCodeAt(0) === 0x7b) {
        let msg;
        try {
          msg = JSON.parse(message);
        } catch {
          msg = undefined;
        }
        if (msg !== null && typeof msg === "object") {
          if (msg.type === "online" && typeof msg.from === "string") {
            if (ws.data.user === null) {
              ws.data.user = msg.from;
              users.set(msg.from, (users.get(msg.from) ?? 0) + 1);
              ws.subscribe("u:" + msg.from);
            }
            return;
          }
          if (typeof msg.to === "string") {
            ws.publish("u:" + msg.to, message);
            return;
          }
        }
      }
      ws.publish("lobby", message);
    },
    /** @param {BunSocket} ws */
    close(ws) {
      release(ws);
    },
  },
});

console.log(`listening ${server.port}`);
