// The seed demo's semantics as a Node.js + `ws` server, for the bench only.
//
// Every frame goes verbatim to every *other* connection; a JSON object
// `{"type":"online","from":id}` registers the connection as user `id` (and is not
// relayed); a JSON object with a string `to` goes to that user's connections only.
// Nothing else: no batching, no limits, no presence.
//
// Usage: node seed.mjs [port]   (or PORT=…); prints "listening <port>" when ready.
// GET /healthz answers {"status":"ok","connections":N,"users":N,"groups":1}.

import { createServer } from "node:http";
import process from "node:process";
import { WebSocketServer } from "ws";

const port = Number(process.argv[2] ?? process.env.PORT ?? 8080);
const hostname = process.env.HOST ?? "127.0.0.1";

/** @type {Set<import("ws").WebSocket>} */
const clients = new Set();
/** @type {Map<string, Set<import("ws").WebSocket>>} */
const users = new Map();
/** @type {WeakMap<import("ws").WebSocket, string>} */
const userOf = new WeakMap();

const http = createServer((req, res) => {
  if (req.url === "/healthz") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        status: "ok",
        connections: clients.size,
        users: users.size,
        groups: 1,
      }),
    );
    return;
  }
  res.writeHead(404).end();
});

// perMessageDeflate is off by default in ws 8; said here because it matters for the figures.
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });

http.on("upgrade", (req, socket, head) => {
  wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws));
});

/** @param {import("ws").WebSocket} ws */
function onConnection(ws) {
  clients.add(ws);
  ws.on("message", (data, isBinary) => {
    // Only text that looks like a JSON object is parsed: the demo's routing needs it,
    // and plain text would only throw.
    if (!isBinary && data.length > 0 && data[0] === 0x7b) {
      let msg;
      try {
        msg = JSON.parse(data.toString());
      } catch {
        msg = undefined;
      }
      if (msg !== null && typeof msg === "object") {
        if (msg.type === "online" && typeof msg.from === "string") {
          register(ws, msg.from);
          return;
        }
        if (typeof msg.to === "string") {
          const targets = users.get(msg.to);
          if (targets) {
            for (const t of targets) if (t !== ws) t.send(data, { binary: false });
          }
          return;
        }
      }
    }
    for (const c of clients) if (c !== ws) c.send(data, { binary: isBinary });
  });
  ws.on("close", () => unregister(ws));
  ws.on("error", () => unregister(ws));
}

/**
 * @param {import("ws").WebSocket} ws
 * @param {string} id
 */
function register(ws, id) {
  const old = userOf.get(ws);
  if (old !== undefined) return;
  userOf.set(ws, id);
  let set = users.get(id);
  if (!set) users.set(id, set = new Set());
  set.add(ws);
}

/** @param {import("ws").WebSocket} ws */
function unregister(ws) {
  // "close" and "error" can both fire: removal is idempotent.
  clients.delete(ws);
  const id = userOf.get(ws);
  if (id === undefined) return;
  userOf.delete(ws);
  const set = users.get(id);
  if (set) {
    set.delete(ws);
    if (set.size === 0) users.delete(id);
  }
}

http.listen(port, hostname, () => {
  const addr = http.address();
  console.log(`listening ${typeof addr === "object" && addr ? addr.port : port}`);
});

for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => process.exit(0));
}
