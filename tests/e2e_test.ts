/// <reference lib="dom" />
/**
 * End-to-end tests: the chat page (static/) in real Chromium browsers, one per
 * person, against an in-process server. Every wait is on a condition in the
 * page or on the wire, never on the clock. See tests/_browser.ts for the
 * set-up, the skip rule and the screenshots a failure leaves behind.
 *
 * `UPDATE_SCREENSHOTS=1` also rewrites the README's screenshots in docs/.
 *
 * @module
 */

import { assert, assertEquals, assertMatch } from "@std/assert";
import { DOCS_DIR, type E2E, e2eTest, type Person, UPDATE_SCREENSHOTS } from "./_browser.ts";
import { eventually, type ServerMessage, TestClient } from "./_helpers.ts";
import type { SwitchboardServer } from "../src/server.ts";

/** A v1 test client identified as `user`, closed when the test ends. */
async function wireClient(e2e: E2E, server: SwitchboardServer, user: string) {
  const client = await TestClient.v1(server);
  e2e.cleanups.push(() => client.close());
  await client.online(user);
  return client;
}

/** The `message` frames a test client received, as [from, data]. */
const received = (client: TestClient, match: (m: ServerMessage) => boolean) =>
  client.messages.filter((m) => m.type === "message" && match(m)).map((m) => [m.from, m.data]);

e2eTest("two people join a group and exchange messages", async (e2e) => {
  const server = await e2e.server();
  // Bob is on a phone: the narrow layout gets the same workout.
  const [alice, bob] = await Promise.all([
    e2e.person("alice", server),
    e2e.person("bob", server, { viewport: { width: 360, height: 740 } }),
  ]);
  await Promise.all([alice.signIn("alice"), bob.signIn("bob")]);
  await Promise.all([alice.join("release"), bob.join("release")]);
  await alice.untilMembers(["alice", "bob"]);
  await bob.untilMembers(["alice", "bob"]);
  assert(await alice.page.isDisabled('#members button.member[data-user="alice"]'));
  assert(await alice.page.isEnabled('#members button.member[data-user="bob"]'));

  // A third member on the wire makes the conversation (and the screenshots) realistic.
  const carol = await wireClient(e2e, server, "carol");
  assertEquals((await carol.request({ type: "join", group: "release" })).type, "ack");
  await alice.untilMembers(["alice", "bob", "carol"]);

  const lines: [Person | TestClient, string, string][] = [
    [alice, "alice", "Morning! Is 2.4 still going out today?"],
    [bob, "bob", "Yes: CI is green, I tag it after lunch."],
    [carol, "carol", "Release notes are drafted, link in the wiki."],
    [alice, "alice", "Great. I'll keep an eye on the dashboards <3"],
    [bob, "bob", "Tagged v2.4.0, rolling out now."],
    [carol, "carol", "Error rates are flat so far."],
    [alice, "alice", "Nice work, both of you!"],
  ];
  for (const [who, name, text] of lines) {
    if (who instanceof TestClient) {
      assertEquals(
        (await who.request({ type: "message", group: "release", data: text })).type,
        "ack",
      );
    } else {
      await who.say(text);
    }
    for (const reader of [alice, bob]) {
      await reader.untilMessage(text, { from: name, own: reader === who, pending: false });
    }
  }
  const expected = (me: string) =>
    lines.map(([, from, text]) => ({
      from,
      text,
      own: from === me,
      pending: false,
      notSent: false,
    }));
  assertEquals(await alice.messages(), expected("alice"));
  assertEquals(await bob.messages(), expected("bob"));
  assertEquals(
    received(carol, (m) => m.group === "release"),
    lines.filter(([, from]) => from !== "carol").map(([, from, text]) => [from, text]),
  );

  // Something said elsewhere shows as an unread count until opened.
  assertEquals(
    (await carol.request({ type: "message", group: "lobby", data: "lunch?" })).type,
    "ack",
  );
  await alice.until(
    "an unread badge on #lobby",
    () => document.querySelector('#groups button[data-group="lobby"] .unread')?.textContent === "1",
  );

  // A direct message from carol opens a conversation in alice's sidebar, unread.
  const dm = { type: "message", to: "alice", data: "Could you review my PR after the release?" };
  assertEquals((await carol.request(dm)).type, "ack");
  await alice.until(
    "a direct conversation with carol, 1 unread",
    () => document.querySelector('#dms button[data-user="carol"] .unread')?.textContent === "1",
  );

  // The page remembers the name and the groups for the next visit.
  assertEquals(
    await alice.page.evaluate(() => [
      localStorage.getItem("switchboard.name"),
      localStorage.getItem("switchboard.groups"),
    ]),
    ["alice", '["release"]'],
  );
  const state = await alice.state();
  assertEquals(
    { ...state, groups: [...state.groups].sort() },
    {
      status: "online",
      user: "alice",
      groups: ["lobby", "release"],
      dms: ["carol"],
      current: "group:release",
      queued: 0,
    },
  );

  if (UPDATE_SCREENSHOTS) {
    await alice.page.screenshot({
      path: `${DOCS_DIR}screenshot-desktop.png`,
      animations: "disabled",
    });
    await bob.page.screenshot({ path: `${DOCS_DIR}screenshot-phone.png`, animations: "disabled" });
    console.log(`e2e: wrote ${DOCS_DIR}screenshot-desktop.png and screenshot-phone.png`);
  }

  await alice.open("group:lobby");
  await alice.untilMessage("lunch?", { from: "carol" });
  await alice.until(
    "the badge to go once #lobby is open",
    () => document.querySelector("#groups .unread") === null,
  );
});

e2eTest("presence: the member list shows a third person arriving and leaving", async (e2e) => {
  const server = await e2e.server();
  const [alice, bob, carol] = await e2e.crowd(["alice", "bob", "carol"], server);
  await Promise.all([alice.signIn("alice"), bob.signIn("bob")]);
  await Promise.all([alice.join("team"), bob.join("team")]);
  await alice.untilMembers(["alice", "bob"]);

  // Carol comes online: the lobby knows her, #team does not yet.
  await carol.signIn("carol");
  await alice.open("group:lobby");
  await alice.untilMembers(["alice", "bob", "carol"]);
  await alice.open("group:team");
  await alice.untilMembers(["alice", "bob"]);
  assertEquals(await bob.members(), ["alice", "bob"]);

  // She joins #team…
  await carol.join("team");
  await alice.untilMembers(["alice", "bob", "carol"]);
  await bob.untilMembers(["alice", "bob", "carol"]);
  await carol.untilMembers(["alice", "bob", "carol"]);

  // …leaves it with the button (she stays in the lobby)…
  await carol.page.click("#leave-button");
  await carol.untilShowing("group:lobby");
  assertEquals((await carol.state()).groups, ["lobby"]);
  await alice.untilMembers(["alice", "bob"]);
  await bob.untilMembers(["alice", "bob"]);
  await bob.open("group:lobby");
  await bob.untilMembers(["alice", "bob", "carol"]);

  // …and closes her browser: gone from the lobby too.
  await e2e.dismiss(carol);
  await bob.untilMembers(["alice", "bob"]);
  await alice.open("group:lobby");
  await alice.untilMembers(["alice", "bob"]);
});

e2eTest("a direct message (click a member) reaches only its recipient", async (e2e) => {
  const server = await e2e.server();
  const [alice, bob, carol] = await e2e.crowd(["alice", "bob", "carol"], server);
  await Promise.all([alice.signIn("alice"), bob.signIn("bob"), carol.signIn("carol")]);
  await alice.untilMembers(["alice", "bob", "carol"]);

  await alice.page.click('#members button.member[data-user="bob"]');
  await alice.untilShowing("user:bob");
  assertEquals(await alice.page.textContent("#conversation-title"), "bob");
  const secret = "psst, bob: the surprise party is at six";
  await alice.say(secret);

  // Bob gets a direct conversation with an unread count; opening it shows the message.
  await bob.until(
    "a direct conversation with alice, 1 unread",
    () => document.querySelector('#dms button[data-user="alice"] .unread')?.textContent === "1",
  );
  await bob.open("user:alice");
  await bob.untilMessage(secret, { from: "alice", own: false });
  await bob.say("I'll be there, not a word");
  await alice.untilMessage("I'll be there, not a word", { from: "bob" });

  // A fence: the server delivers to carol in order, so once she has this lobby message,
  // anything sent before it that was meant for her would have arrived too.
  await alice.open("group:lobby");
  await alice.say("see you all later");
  await carol.untilMessage("see you all later", { from: "alice" });
  assertEquals((await carol.state()).dms, []);
  assertEquals(await carol.page.locator("#dms button").count(), 0);
  const everything = await carol.page.evaluate(() => document.body.textContent ?? "");
  assert(!everything.includes("psst"), "carol's page shows the direct message");
  assert(!everything.includes("not a word"), "carol's page shows bob's reply");
  assertEquals((await bob.state()).dms, ["alice"]);
});

e2eTest("a message with markup renders as text: no element, no script", async (e2e) => {
  const server = await e2e.server();
  const alice = await e2e.person("alice", server);
  await alice.signIn("alice");
  const xss = "<img src=x onerror=alert(1)>";

  // Received from someone else (whose name is markup too)…
  const nastyName = "<img/src=x/onerror=alert(2)>";
  const mallory = await wireClient(e2e, server, nastyName);
  await alice.untilMembers(["alice", nastyName]);
  assertEquals((await mallory.request({ type: "message", group: "lobby", data: xss })).type, "ack");
  await alice.untilMessage(xss, { from: nastyName, own: false });
  // …relayed from a seed client…
  const seed = await TestClient.seed(server);
  e2e.cleanups.push(() => seed.close());
  seed.send("<script>alert(3)</script>");
  await alice.untilMessage("<script>alert(3)</script>", { from: "anonymous" });
  // …and typed in the page itself.
  await alice.say(xss);
  assertEquals(received(mallory, () => true), [["alice", xss]]);

  const texts = alice.page.locator("#messages article.message .text");
  assertEquals(await texts.allTextContents(), [xss, "<script>alert(3)</script>", xss]);
  for (const text of await texts.all()) assert(await text.isVisible(), "the characters are hidden");
  assertEquals(
    await alice.page.locator("#messages img, #messages script, #members img").count(),
    0,
    "markup became elements",
  );
  assertEquals(
    await alice.page.evaluate(() => document.querySelectorAll("body img:not(.brand img)").length),
    0,
  );
  assertEquals(alice.dialogs, [], "a dialog opened");
});

e2eTest(
  "after a server restart on the same port the page reconnects, rejoins and delivers",
  async (e2e) => {
    const first = await e2e.server();
    const port = first.addr.port;
    const alice = await e2e.person("alice", first);
    await alice.signIn("alice");
    await alice.join("ops");

    // Record every status the page shows, with whether "Retry now" was visible at the time.
    await alice.page.evaluate(() => {
      const status = document.getElementById("status")!;
      const retry = document.getElementById("reconnect-button")!;
      const log: { state?: string; text: string | null; retry: boolean }[] = [];
      Object.assign(globalThis, { statusLog: log });
      new MutationObserver(() =>
        log.push({ state: status.dataset.state, text: status.textContent, retry: !retry.hidden })
      ).observe(status, { attributes: true, childList: true, characterData: true, subtree: true });
    });

    await first.shutdown();
    await alice.until(
      "status reconnecting, with Retry now",
      () => document.getElementById("status")?.dataset.state === "reconnecting",
    );
    // Written while the server is away: queued, shown as pending.
    const queued = "written while the server was down";
    await alice.page.fill("#message-input", queued);
    await alice.page.click("#send-button");
    await alice.untilMessage(queued, { own: true, pending: true });
    assertEquals((await alice.state()).queued, 1);

    const second = await e2e.server({ port });
    const watcher = await wireClient(e2e, second, "watcher");
    assertEquals((await watcher.request({ type: "join", group: "ops" })).members, ["watcher"]);

    // Skip what is left of the back-off (the page may also get there by itself first).
    for (let tries = 0; (await alice.state()).status !== "online"; tries++) {
      assert(tries < 20, "the page never came back online");
      await alice.until(
        "status online or reconnecting",
        () =>
          ["online", "reconnecting"].includes(document.getElementById("status")!.dataset.state!),
      );
      if ((await alice.state()).status === "reconnecting") {
        await alice.page.click("#reconnect-button", { timeout: 2000 }).catch(() => {});
      }
    }

    // It rejoined #ops by itself, then sent what was queued.
    await watcher.next((m) =>
      m.type === "presence" && m.group === "ops" && m.joins.includes("alice")
    );
    await watcher.next((m) => m.type === "message" && m.group === "ops" && m.data === queued);
    await alice.untilMessage(queued, { own: true, pending: false });
    assertEquals((await alice.state()).queued, 0);

    // Messages flow both ways again.
    await alice.say("back online");
    await watcher.next((m) => m.type === "message" && m.data === "back online");
    watcher.send({ type: "message", group: "ops", data: "welcome back" });
    await alice.untilMessage("welcome back", { from: "watcher" });
    assertEquals(received(watcher, (m) => m.group === "ops"), [
      ["alice", queued],
      ["alice", "back online"],
    ]);

    // What the page showed: reconnecting (with the button and a countdown), then online.
    const log = await alice.page.evaluate(() =>
      (globalThis as unknown as { statusLog: { state: string; text: string; retry: boolean }[] })
        .statusLog
    );
    const reconnecting = log.findIndex((entry) => entry.state === "reconnecting");
    assert(reconnecting !== -1, `never showed reconnecting: ${JSON.stringify(log)}`);
    assertEquals(log.at(-1), { state: "online", text: "online", retry: false });
    for (const entry of log) {
      assertEquals(entry.retry, entry.state === "reconnecting", JSON.stringify(entry));
      if (entry.state === "reconnecting") assertMatch(entry.text, /^reconnecting in \d+ s$/);
      else assertEquals(entry.text, entry.state);
    }
    assert(
      await alice.page.isHidden("#reconnect-button"),
      "Retry now is still visible while online",
    );
  },
);

e2eTest("the seed demo page and the chat page talk through the lobby", async (e2e) => {
  const server = await e2e.server();
  const alice = await e2e.person("alice", server);
  await alice.signIn("alice");
  const seed = await e2e.person("seed", server, { path: "/seed.html" });
  // The demo shows nothing when its socket opens: the server's count tells.
  await eventually(() => server.stats().connections === 2, "the seed page's socket");

  // Seed → chat: a bare text frame, relayed to the lobby.
  await seed.page.fill("#text", "hello from the old demo");
  await seed.page.click("#send");
  await alice.untilMessage("hello from the old demo", { from: "anonymous", own: false });

  // Chat → seed: the chat's message, as the frame the demo prints.
  await alice.say("hello, old demo");
  await seed.until(
    "the chat's message in the demo's log",
    (text) =>
      [...document.querySelectorAll("#log div")].some((line) => {
        try {
          const frame = JSON.parse(line.textContent ?? "");
          return frame.type === "message" && frame.from === "alice" && frame.group === "lobby" &&
            frame.data === text;
        } catch {
          return false;
        }
      }),
    "hello, old demo",
  );
  assertEquals(await seed.page.locator("#log div").count(), 1);
});

e2eTest("keyboard only: pick a name, send, open a direct message, join a group", async (e2e) => {
  const server = await e2e.server();
  const bob = await wireClient(e2e, server, "bob");
  const kim = await e2e.person("kim", server);
  const keys = kim.page.keyboard;

  // The name box has the focus from the start; Enter submits it.
  await kim.until(
    "the name box to have the focus",
    () => document.activeElement?.id === "name-input",
  );
  await keys.type("kim");
  await keys.press("Enter");
  await kim.untilOnline();
  assertEquals(await kim.focused(), "#message-input");

  // Enter sends; Shift+Enter starts a new line.
  await keys.type("typed without a mouse");
  await keys.press("Shift+Enter");
  await keys.type("second line");
  await keys.press("Enter");
  const twoLines = "typed without a mouse\nsecond line";
  await bob.next((m) => m.type === "message" && m.group === "lobby" && m.data === twoLines);
  await kim.untilMessage(twoLines, { own: true, pending: false });

  // Tab to bob in the member list; Enter opens the direct conversation, focus in the composer.
  await kim.untilMembers(["bob", "kim"]);
  await kim.tabTo('#members button.member[data-user="bob"]');
  await keys.press("Enter");
  await kim.untilShowing("user:bob");
  assertEquals(await kim.focused(), "#message-input");
  await keys.type("just between us");
  await keys.press("Enter");
  await bob.next((m) => m.type === "message" && m.to === "bob" && m.data === "just between us");

  // Shift+Tab back to the join box; Enter joins, and the new group is shown.
  assertEquals((await bob.request({ type: "join", group: "keyboard-club" })).type, "ack");
  await kim.tabTo("#join-input", { backwards: true });
  await keys.type("keyboard-club");
  await keys.press("Enter");
  await kim.untilShowing("group:keyboard-club");
  await kim.tabTo("#message-input");
  await keys.type("hello, club");
  await keys.press("Enter");
  await bob.next((m) => m.type === "message" && m.group === "keyboard-club");
  assertEquals(received(bob, () => true), [
    ["kim", twoLines],
    ["kim", "just between us"],
    ["kim", "hello, club"],
  ]);
});
