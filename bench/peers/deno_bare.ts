// The least code on Deno.serve that does what the seed demo does, for the bench only:
// the ceiling for any Deno server that sends one frame per delivery.
//
// Every frame goes verbatim to every other connection; {"type":"online","from":id}
// registers (not relayed); a JSON object with a string `to` goes to that user only.
// No batching, no limits, no presence.
//
// Usage: deno run --allow-net --allow-env bench/peers/deno_bare.ts [port]
// Prints "listening <port>" when ready; GET /healthz answers like Switchboard's.

const port = Number(Deno.args[0] ?? Deno.env.get("PORT") ?? 8080);
const hostname = Deno.env.get("HOST") ?? "127.0.0.1";

const clients = new Set<WebSocket>();
const users = new Map<string, Set<WebSocket>>();
const userOf = new Map<WebSocket, string>();

function register(ws: WebSocket, id: string): void {
  if (userOf.has(ws)) return;
  userOf.set(ws, id);
  let set = users.get(id);
  if (!set) users.set(id, set = new Set());
  set.add(ws);
}

function unregister(ws: WebSocket): void {
  // onclose can fire twice for one socket in Deno 2.9: removal is idempotent.
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

function onMessage(ws: WebSocket, data: string | ArrayBuffer): void {
  // Only text that looks like a JSON object is parsed: routing needs it, plain text would throw.
  if (typeof data === "string" && data.charCodeAt(0) === 0x7b) {
    let msg: unknown;
    try {
      msg = JSON.parse(data);
    } catch {
      msg = undefined;
    }
    if (msg !== null && typeof msg === "object") {
      const m = msg as { type?: unknown; from?: unknown; to?: unknown };
      if (m.type === "online" && typeof m.from === "string") {
        register(ws, m.from);
        return;
      }
      if (typeof m.to === "string") {
        const targets = users.get(m.to);
        if (targets) { for (const t of targets) if (t !== ws) t.send(data); }
        return;
      }
    }
  }
  for (const c of clients) if (c !== ws && c.readyState === WebSocket.OPEN) c.send(data);
}

Deno.serve({
  port,
  hostname,
  onListen: ({ port }) => console.log(`listening ${port}`),
}, (req) => {
  if (req.headers.get("upgrade")?.toLowerCase() === "websocket") {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.binaryType = "arraybuffer";
    socket.onopen = () => clients.add(socket);
    socket.onmessage = (e) => onMessage(socket, e.data);
    socket.onclose = () => unregister(socket);
    socket.onerror = () => unregister(socket);
    return response;
  }
  if (new URL(req.url).pathname === "/healthz") {
    return Response.json({
      status: "ok",
      connections: clients.size,
      users: users.size,
      groups: 1,
    });
  }
  return new Response("not found", { status: 404 });
});
