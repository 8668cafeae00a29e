/**
 * The HTTP server: routes requests, upgrades WebSockets and wires each socket
 * to the dispatcher and the registry. Data flows one way: socket →
 * dispatcher (parse) → registry → peers.
 *
 * @module
 */

import { DEFAULT_OPTIONS, type ServerOptions } from "./config.ts";
import { Connection, type Dialect, FlushScheduler } from "./connection.ts";
import { toV1Only } from "./delivery.ts";
import { Dispatcher } from "./dispatch.ts";
import { createLogger, type Logger } from "./log.ts";
import { Metrics } from "./metrics.ts";
import { encodeWelcome, PROTOCOL_NAME } from "./protocol.ts";
import { RateLimiter } from "./rate_limit.ts";
import { Registry, type RegistryStats } from "./registry.ts";
import { loadStaticFiles, serveStatic, type StaticFiles } from "./static.ts";

/** A running server. */
export interface SwitchboardServer {
  /** Where it listens (the real port when 0 was asked for). */
  readonly addr: Deno.NetAddr;
  /** `http://host:port`, with a loopback host when it listens on every interface. */
  readonly url: string;
  /** Connections, users and groups now held by the registry. */
  stats(): RegistryStats;
  /** Closes every connection with 1001, stops listening, and resolves once all is released. */
  shutdown(): Promise<void>;
  /** Resolves when the server has stopped. */
  readonly finished: Promise<void>;
}

/** Everything a request handler needs, built once per server. */
interface ServerContext {
  readonly options: ServerOptions;
  readonly files: StaticFiles;
  readonly registry: Registry;
  readonly dispatcher: Dispatcher;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly flusher: FlushScheduler;
  /** Every connection from upgrade to close, opened or not: what `--max-connections` counts. */
  readonly connections: Set<Connection>;
  nextId(): string;
}

/** Starts a server; options not given take their defaults. */
export async function startServer(
  overrides: Partial<ServerOptions> = {},
): Promise<SwitchboardServer> {
  const options: ServerOptions = { ...DEFAULT_OPTIONS, ...overrides };
  let presenceTimer: ReturnType<typeof setTimeout> | undefined;
  let lastPresenceFlush = -Infinity;
  const flushPresence = () => {
    presenceTimer = undefined;
    lastPresenceFlush = Date.now();
    registry.flushPresence();
  };
  const registry = new Registry({
    defaultGroup: options.defaultGroup,
    maxGroups: options.maxGroups,
    // Leading edge: a lone change goes out at once; in a storm, at most one
    // diff per window reaches each member, so N arrivals never cost N² frames.
    onPresencePending: () => {
      const wait = Math.max(0, lastPresenceFlush + options.presenceWindowMs - Date.now());
      presenceTimer = setTimeout(flushPresence, wait);
    },
  });
  const metrics = new Metrics();
  // A per-process prefix keeps connection ids unique across restarts, for logs.
  const idPrefix = crypto.randomUUID().slice(0, 8);
  let lastId = 0;
  const context: ServerContext = {
    options,
    files: await loadStaticFiles(options.staticDir),
    registry,
    dispatcher: new Dispatcher(registry, metrics, options),
    metrics,
    log: createLogger(options.logLevel),
    flusher: new FlushScheduler(),
    connections: new Set(),
    nextId: () => `${idPrefix}-${(++lastId).toString(36)}`,
  };

  const { promise: listening, resolve: onListen } = Promise.withResolvers<Deno.NetAddr>();
  const server = Deno.serve({
    port: options.port,
    hostname: options.hostname,
    onListen: (addr) => onListen(addr as Deno.NetAddr),
  }, (request) => route(request, context));
  const addr = await listening;
  const host = addr.hostname === "0.0.0.0" || addr.hostname === "::" ? "127.0.0.1" : addr.hostname;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${addr.port}`;
  context.log.info(`listening on ${url} (WebSocket at ${url.replace("http", "ws")}/ws)`);

  let stopping: Promise<void> | undefined;
  const shutdown = (): Promise<void> =>
    stopping ??= (async () => {
      for (const connection of context.connections) {
        connection.close(1001, "server shutting down");
        release(context, connection, 1001);
      }
      await server.shutdown();
      clearTimeout(presenceTimer);
      context.log.info("stopped");
    })();

  return { addr, url, stats: () => registry.stats(), shutdown, finished: server.finished };
}

function route(request: Request, context: ServerContext): Response {
  const path = new URL(request.url).pathname;
  const isUpgrade = request.headers.get("upgrade")?.toLowerCase() === "websocket";
  // The original demo connects to the bare ws://host:port, so "/" upgrades too.
  if (isUpgrade && (path === "/ws" || path === "/")) return acceptWebSocket(request, context);
  if (path === "/ws") {
    return plain(426, "this endpoint speaks WebSocket only\n", { upgrade: "websocket" });
  }
  if (path === "/healthz" || path === "/metrics") {
    if (request.method !== "GET" && request.method !== "HEAD") {
      return plain(405, "method not allowed\n", { allow: "GET, HEAD" });
    }
    const stats = context.registry.stats();
    if (path === "/healthz") return Response.json({ status: "ok", ...stats });
    return plain(200, context.metrics.render(stats), {
      "content-type": "text/plain; version=0.0.4; charset=utf-8",
    });
  }
  return serveStatic(context.files, request) ?? plain(404, "not found\n");
}

function acceptWebSocket(request: Request, context: ServerContext): Response {
  const { options, metrics } = context;
  const refuse = (status: number, reason: string): Response => {
    metrics.upgradesRefused++;
    context.log.debug(`upgrade refused (${status}): ${reason}`);
    return plain(status, `${reason}\n`);
  };
  if (!isOriginAllowed(request, options.allowedOrigins)) {
    return refuse(403, "origin not allowed");
  }
  const dialect = chooseDialect(request.headers.get("sec-websocket-protocol"));
  if (dialect === undefined) {
    return refuse(400, `unsupported subprotocol; this server speaks ${PROTOCOL_NAME}`);
  }
  if (context.connections.size >= options.maxConnections) {
    return refuse(503, "too many connections");
  }

  const { socket, response } = Deno.upgradeWebSocket(request, {
    protocol: dialect === "v1" ? PROTOCOL_NAME : undefined,
    // Deno pings after half its idleTimeout of silence and closes after the other half.
    idleTimeout: options.idleTimeout * 2,
  });
  socket.binaryType = "arraybuffer";
  const connection = new Connection(
    socket,
    context.nextId(),
    dialect,
    new RateLimiter(options, Date.now()),
    {
      metrics,
      flusher: context.flusher,
      slowConsumerBytes: options.slowConsumerBytes,
      onEvicted: (evicted) => release(context, evicted, 1013),
    },
  );
  context.connections.add(connection);

  socket.onopen = () => {
    if (connection.closed) return;
    context.registry.add(connection);
    metrics.connectionsOpened++;
    if (dialect === "v1") {
      connection.send(toV1Only(encodeWelcome(connection.id, {
        maxMessageBytes: options.maxMessageBytes,
        rateLimit: options.rate,
        rateBurst: options.burst,
        maxGroups: options.maxGroups,
      }, options.defaultGroup)));
    }
  };
  socket.onmessage = (event: MessageEvent<string | ArrayBuffer>) => {
    if (!connection.closed) context.dispatcher.receive(connection, event.data);
  };
  // The close event can fire twice for one socket; release() is idempotent.
  socket.onclose = (event) => release(context, connection, event.code);
  socket.onerror = () => context.log.debug(`connection ${connection.id}: socket error`);
  return response;
}

/**
 * Forgets a connection everywhere: the registry (groups, user, presence) and
 * the server's own set. Counted once, whichever close path gets here first.
 */
function release(context: ServerContext, connection: Connection, code: number): void {
  if (!context.connections.delete(connection)) return;
  context.registry.remove(connection);
  context.metrics.countClose(code);
  connection.detach();
}

/**
 * `switchboard.v1` when offered; the seed dialect when no subprotocol is
 * offered; `undefined` (refuse) when only unknown ones are.
 */
function chooseDialect(offered: string | null): Dialect | undefined {
  if (offered === null || offered.trim() === "") return "seed";
  const protocols = offered.split(",").map((protocol) => protocol.trim());
  return protocols.includes(PROTOCOL_NAME) ? "v1" : undefined;
}

/**
 * Browsers always send `Origin`; other clients need not. A browser page may
 * connect from the server's own host or from an origin on the allow-list.
 */
function isOriginAllowed(request: Request, allowed: readonly string[]): boolean {
  const origin = request.headers.get("origin");
  if (origin === null || allowed.includes("*") || allowed.includes(origin)) return true;
  const host = request.headers.get("host");
  return host !== null && (origin === `http://${host}` || origin === `https://${host}`);
}

function plain(status: number, body: string, headers: Record<string, string> = {}): Response {
  return new Response(body, {
    status,
    headers: { "content-type": "text/plain; charset=utf-8", ...headers },
  });
}
