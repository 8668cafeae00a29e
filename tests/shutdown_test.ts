import { assert, assertEquals, assertMatch } from "@std/assert";
import { startServer } from "../src/server.ts";
import { TestClient } from "./_helpers.ts";

const mainModule = new URL("../main.ts", import.meta.url).pathname;
const permissions = ["--allow-net", "--allow-read=static", "--allow-env"];

Deno.test("shutdown closes every connection with 1001 and leaves the registry empty", async () => {
  const server = await startServer({ port: 0, hostname: "127.0.0.1", logLevel: "silent" });
  const v1 = await TestClient.v1(server);
  await v1.online("ann");
  const seed = await TestClient.seed(server);
  await server.shutdown();
  const [v1Close, seedClose] = await Promise.all([v1.closed, seed.closed]);
  assertEquals([v1Close.code, seedClose.code], [1001, 1001]);
  assertEquals(server.stats(), { connections: 0, users: 0, groups: 1 });
});

Deno.test("the server process exits 0 on SIGTERM after closing its connections with 1001", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...permissions, mainModule, "--port", "0", "--hostname", "127.0.0.1"],
    cwd: new URL("..", import.meta.url).pathname,
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let output = "";
  while (!/listening on (http:\S+) /.test(output)) {
    const { value, done } = await lines.read();
    if (done) break;
    output += value;
  }
  const url = output.match(/listening on (http:\S+) /)![1];
  const socket = new WebSocket(url.replace("http", "ws") + "/ws", "switchboard.v1");
  const closed = new Promise<CloseEvent>((resolve) => socket.onclose = resolve);
  await new Promise((resolve) => socket.onmessage = resolve); // the welcome

  child.kill("SIGTERM");
  assertEquals((await closed).code, 1001);
  const status = await child.status;
  while (!(await lines.read()).done) { /* drain stderr until the process is gone */ }
  assertEquals(status.code, 0);
});

Deno.test("a bad flag exits 2 with one line naming it, before anything listens", async () => {
  for (const [flags, named] of [[["--port", "70000"], "--port"], [["--rate", "abc"], "--rate"]]) {
    const { code, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", ...permissions, mainModule, ...flags],
      stdout: "null",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(stderr).trim();
    assertEquals(code, 2);
    assertEquals(text.split("\n").length, 1, text);
    assertMatch(text, new RegExp(`^switchboard: ${named}: `));
    assert(!text.includes("listening"));
  }
});
