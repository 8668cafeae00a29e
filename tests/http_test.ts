import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { healthz, TestClient, withServer } from "./_helpers.ts";
import { metrics, rawRequest } from "./_wire.ts";

const staticDir = new URL("../static", import.meta.url).pathname;

/** The directives of a Content-Security-Policy header, by name. */
function directives(policy: string): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const part of policy.split(";")) {
    const [name, ...values] = part.trim().split(/\s+/);
    if (name) map.set(name.toLowerCase(), values);
  }
  return map;
}

Deno.test("GET / serves the chat page as HTML with a CSP that allows no inline script", async () => {
  await withServer({}, async (server) => {
    const response = await fetch(`${server.url}/`);
    assertEquals(response.status, 200);
    assertMatch(response.headers.get("content-type") ?? "", /^text\/html/);
    const body = await response.text();
    assertEquals(body, await Deno.readTextFile(`${staticDir}/index.html`));

    const policy = response.headers.get("content-security-policy") ?? "";
    assert(policy !== "", "a Content-Security-Policy header");
    const csp = directives(policy);
    // Without script-src, default-src governs scripts.
    const scriptSrc = csp.get("script-src") ?? csp.get("default-src") ?? [];
    assert(scriptSrc.length > 0, "script-src or default-src");
    assert(!scriptSrc.includes("'unsafe-inline'"), `script-src: ${scriptSrc.join(" ")}`);
    assert(!scriptSrc.includes("'unsafe-eval'"), `script-src: ${scriptSrc.join(" ")}`);
    assertEquals(response.headers.get("x-content-type-options"), "nosniff");
  });
});

Deno.test("/app.js is served with a JavaScript content type and its exact bytes", async () => {
  await withServer({}, async (server) => {
    const response = await fetch(`${server.url}/app.js`);
    assertEquals(response.status, 200);
    assertMatch(response.headers.get("content-type") ?? "", /^(text|application)\/javascript/);
    assertEquals(
      new Uint8Array(await response.arrayBuffer()),
      await Deno.readFile(`${staticDir}/app.js`),
    );
  });
});

Deno.test("a request with a matching If-None-Match gets 304 with no body; a stale one gets the file", async () => {
  await withServer({}, async (server) => {
    const first = await fetch(`${server.url}/app.js`);
    await first.body?.cancel();
    const etag = first.headers.get("etag") ?? "";
    assert(etag.length > 2, "an ETag");

    const cached = await fetch(`${server.url}/app.js`, { headers: { "if-none-match": etag } });
    assertEquals(cached.status, 304);
    assertEquals(await cached.text(), "");
    assertEquals(cached.headers.get("etag"), etag);

    const listed = await fetch(`${server.url}/app.js`, {
      headers: { "if-none-match": `"something-else", ${etag}` },
    });
    assertEquals(listed.status, 304);
    await listed.body?.cancel();

    const stale = await fetch(`${server.url}/app.js`, {
      headers: { "if-none-match": '"not-the-etag"' },
    });
    assertEquals(stale.status, 200);
    assert((await stale.text()).length > 0);

    // Each file has its own ETag: the page's does not validate the script.
    const page = await fetch(`${server.url}/`, { headers: { "if-none-match": etag } });
    assertEquals(page.status, 200);
    await page.body?.cancel();
  });
});

Deno.test("HEAD returns the headers of GET and no body", async () => {
  await withServer({}, async (server) => {
    const get = await fetch(`${server.url}/app.js`);
    const size = (await get.arrayBuffer()).byteLength;
    const head = await rawRequest(server, "HEAD", "/app.js");
    assertEquals(head.status, 200);
    assertEquals(head.headers.get("content-type"), get.headers.get("content-type"));
    assertEquals(head.headers.get("etag"), get.headers.get("etag"));
    assertEquals(head.headers.get("content-length"), String(size));
    assertEquals(head.body.length, 0, "no body after the head");

    const viaFetch = await fetch(`${server.url}/`, { method: "HEAD" });
    assertEquals(viaFetch.status, 200);
    assertEquals(await viaFetch.text(), "");
  });
});

Deno.test("an unknown path is 404, and so is a write method on a static file", async () => {
  await withServer({}, async (server) => {
    for (const path of ["/nope", "/index.htm", "/app.js/", "/static/app.js", "/ws/x"]) {
      const response = await fetch(`${server.url}${path}`);
      assertEquals(response.status, 404, path);
      await response.body?.cancel();
    }
    const post = await fetch(`${server.url}/app.js`, { method: "POST", body: "x" });
    assertEquals(post.status, 404);
    await post.body?.cancel();
  });
});

Deno.test("path traversal attempts, however encoded, are 404 and reveal no file", async () => {
  await withServer({}, async (server) => {
    const secret = await Deno.readTextFile(new URL("../deno.json", import.meta.url));
    const attempts = [
      "/../deno.json",
      "/%2e%2e/deno.json",
      "/%2E%2E/deno.json",
      "/static/../deno.json",
      "/..%2fdeno.json",
      "/..%2Fdeno.json",
      "/%2e%2e%2fdeno.json",
      "/..\\deno.json",
      "/....//deno.json",
      "//etc/passwd",
      "/../../../../etc/passwd",
      "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
      "/../src/server.ts",
      "/..%5csrc%5cserver.ts",
      "/app.js%00.html",
    ];
    for (const path of attempts) {
      const response = await rawRequest(server, "GET", path);
      assert(
        response.status === 404 || response.status === 400,
        `${path}: ${response.statusLine}`,
      );
      const body = new TextDecoder().decode(response.body);
      assert(!body.includes('"@switchboard/server"'), `${path} leaked deno.json`);
      assert(!body.includes("root:"), `${path} leaked /etc/passwd`);
      assert(!body.includes("startServer"), `${path} leaked source`);
      assert(body.length < secret.length || !body.includes(secret), path);
    }
    // The normalising client path reaches no file either.
    const normalised = await fetch(`${server.url}/static/../deno.json`);
    assertEquals(normalised.status, 404);
    await normalised.body?.cancel();
  });
});

Deno.test("GET /ws without an upgrade is 426 Upgrade Required", async () => {
  await withServer({}, async (server) => {
    const response = await fetch(`${server.url}/ws`);
    assertEquals(response.status, 426);
    assertEquals(response.headers.get("upgrade")?.toLowerCase(), "websocket");
    await response.body?.cancel();
  });
});

Deno.test("/healthz reports status, connections, users and groups as JSON numbers", async () => {
  await withServer({}, async (server) => {
    const response = await fetch(`${server.url}/healthz`);
    assertEquals(response.status, 200);
    assertMatch(response.headers.get("content-type") ?? "", /^application\/json/);
    const idle = await response.json();
    assertEquals(Object.keys(idle).sort(), ["connections", "groups", "status", "users"]);
    assertEquals(idle, { status: "ok", connections: 0, users: 0, groups: 1 });

    const alice = await TestClient.v1(server);
    const anonymous = await TestClient.v1(server);
    await alice.online("alice");
    await alice.request({ type: "join", group: "room" });
    assertEquals(await healthz(server), { status: "ok", connections: 2, users: 1, groups: 2 });
    assertEquals(server.stats(), { connections: 2, users: 1, groups: 2 });
    await Promise.all([alice.close(), anonymous.close()]);
  });
});

Deno.test("/metrics is Prometheus text whose counters follow the traffic", async () => {
  await withServer({}, async (server) => {
    const response = await fetch(`${server.url}/metrics`);
    assertEquals(response.status, 200);
    assertMatch(response.headers.get("content-type") ?? "", /^text\/plain/);
    const text = await response.text();
    for (const line of text.trimEnd().split("\n")) {
      assertMatch(
        line,
        /^(# (HELP|TYPE) switchboard_\w+ .+|switchboard_\w+(\{\w+="[^"]*"\})? -?\d+(\.\d+)?(e[+-]?\d+)?)$/,
        `exposition line: ${line}`,
      );
    }
    assertStringIncludes(text, "# TYPE switchboard_frames_in_total counter");
    const before = await metrics(server);
    assertEquals(before.get("switchboard_connections"), 0);

    const a = await TestClient.v1(server);
    const b = await TestClient.v1(server);
    await a.online("a");
    a.send("hello b"); // relayed to b
    await b.next((m) => m.type === "relay" && m.data === "hello b");
    const error = await a.request({ type: "join", group: "has space" });
    assertEquals(error.code, "invalid_name");

    const after = await metrics(server);
    const grew = (name: string) => (after.get(name) ?? NaN) - (before.get(name) ?? NaN);
    assertEquals(after.get("switchboard_connections"), 2);
    assertEquals(after.get("switchboard_users"), 1);
    assert(grew("switchboard_frames_in_total") >= 3, "frames_in_total counts a's 3 frames");
    assert(grew("switchboard_deliveries_total") >= 5, "welcomes, ack, relay, error delivered");
    assert(grew("switchboard_frames_out_total") >= 1);
    assert(grew("switchboard_bytes_in_total") >= "hello b".length);
    assertEquals(grew('switchboard_errors_total{code="invalid_name"}'), 1);
    assertEquals(grew('switchboard_errors_total{code="not_member"}'), 0);
    assertEquals(grew("switchboard_connections_opened_total"), 2);

    await a.close();
    await b.close();
    let closed = await metrics(server);
    for (let i = 0; i < 100 && closed.get("switchboard_connections") !== 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      closed = await metrics(server);
    }
    assertEquals(closed.get("switchboard_connections"), 0);
    assertEquals(
      (closed.get('switchboard_closes_total{reason="normal"}') ?? 0) -
        (before.get('switchboard_closes_total{reason="normal"}') ?? 0),
      2,
    );
  });
});
