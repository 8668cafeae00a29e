/// <reference lib="dom" />
/**
 * Browser helpers for the end-to-end tests: Debian's Chromium driven by
 * `npm:playwright-core`, one persistent browser context (its own profile in a
 * temporary directory) per person, against an in-process server.
 *
 * `e2eTest()` registers a test that is ignored, with one line saying why,
 * when Chromium is missing — unless `E2E_REQUIRED=1` (CI), which makes the
 * tests fail instead. A failing test leaves a screenshot of every open page
 * in `test-results/`.
 *
 * @module
 */

import type { BrowserContext, Page } from "npm:playwright-core@1.65.1";
import type { ServerOptions } from "../src/config.ts";
import { startServer, type SwitchboardServer } from "../src/server.ts";

/** The browser; `CHROMIUM_PATH` overrides it (and lets one try the skip path). */
export const CHROMIUM_PATH = Deno.env.get("CHROMIUM_PATH") || "/usr/bin/chromium";
const E2E_REQUIRED = Deno.env.get("E2E_REQUIRED") === "1";
/** Set: regenerate the README screenshots under docs/. */
export const UPDATE_SCREENSHOTS = Deno.env.get("UPDATE_SCREENSHOTS") === "1";

const ROOT = new URL("..", import.meta.url);
export const STATIC_DIR = new URL("static", ROOT).pathname;
const RESULTS_DIR = new URL("test-results/", ROOT).pathname;
export const DOCS_DIR = new URL("docs/", ROOT).pathname;

/** Generous: a slow CI machine must never fail a correct page. */
const TIMEOUT_MS = 15_000;

const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

const chromiumMissing = !isFile(CHROMIUM_PATH);
const skip = chromiumMissing && !E2E_REQUIRED;
if (skip) {
  console.log(
    `e2e: SKIPPED the browser tests: ${CHROMIUM_PATH} not found ` +
      "(apt-get install chromium, or set E2E_REQUIRED=1 to make this a failure)",
  );
}

// deno-lint-ignore no-explicit-any
type Chromium = any;
let chromiumPromise: Promise<Chromium> | undefined;

/**
 * Loads Playwright on first use, so that a run without Chromium never loads it.
 *
 * Playwright's bundle checks `fs.existsSync("/proc/sys/fs/binfmt_misc/WSLInterop")` (is-wsl)
 * while it loads. Since Deno 2.9 any access to /proc, /sys or /dev needs `--allow-all`, and
 * Deno's `existsSync` throws `NotCapable` where Node's returns false on every error. For the
 * length of the import only, `existsSync` gets Node's behaviour back (an error means "no"), so
 * the tests need `--allow-sys=homedir,osRelease` rather than `--allow-all`.
 */
function loadChromium(): Promise<Chromium> {
  return chromiumPromise ??= (async () => {
    const fs = (await import("node:fs")).default;
    const existsSync = fs.existsSync;
    fs.existsSync = ((path: string) => {
      try {
        return existsSync(path);
      } catch {
        return false;
      }
    }) as typeof fs.existsSync;
    try {
      return (await import("npm:playwright-core@1.65.1")).chromium;
    } finally {
      fs.existsSync = existsSync;
    }
  })();
}

/** What the page reports through `window.switchboard.state()`. */
export interface PageState {
  status: "connecting" | "online" | "reconnecting" | "offline";
  user: string | null;
  groups: string[];
  dms: string[];
  current: string;
  queued: number;
}

/** A message as shown in `#messages`. */
export interface ShownMessage {
  from: string;
  text: string;
  own: boolean;
  pending: boolean;
  notSent: boolean;
}

interface PersonOptions {
  viewport?: { width: number; height: number };
  /** The page to open, relative to the server; "/" (the chat) when not given. */
  path?: string;
}

/** One person: a browser of their own (persistent context + profile dir) showing one page. */
export class Person {
  /** Messages of `alert()`/`confirm()`/`prompt()` dialogs the page opened (dismissed at once). */
  readonly dialogs: string[] = [];
  /** Uncaught exceptions in the page. */
  readonly pageErrors: string[] = [];

  constructor(
    readonly label: string,
    readonly context: BrowserContext,
    readonly page: Page,
    readonly profileDir: string,
  ) {
    page.on("dialog", (dialog) => {
      this.dialogs.push(dialog.message());
      dialog.dismiss().catch(() => {});
    });
    page.on("pageerror", (error) => this.pageErrors.push(String(error)));
  }

  /** Waits until `fn(arg)` is truthy in the page, naming `what` if it never is. */
  async until<A>(what: string, fn: (arg: A) => unknown, arg?: A): Promise<void> {
    try {
      const pageFunction = fn as (arg: unknown) => unknown;
      await this.page.waitForFunction(pageFunction, arg, { polling: 50, timeout: TIMEOUT_MS });
    } catch (error) {
      throw new Error(`${this.label}: timed out waiting for ${what}`, { cause: error });
    }
  }

  state(): Promise<PageState> {
    // deno-lint-ignore no-explicit-any
    return this.page.evaluate(() => (globalThis as any).switchboard.state());
  }

  /** Picks a name with the mouse and waits until the page is online. */
  async signIn(name: string): Promise<void> {
    await this.page.fill("#name-input", name);
    await this.page.click("#name-form button[type=submit]");
    await this.untilOnline();
  }

  untilOnline(): Promise<void> {
    return this.until(
      "status online",
      () => document.getElementById("status")?.dataset.state === "online",
    );
  }

  /** Joins a group through the join form; the page then shows it. */
  async join(group: string): Promise<void> {
    await this.page.fill("#join-input", group);
    await this.page.click("#join-form button[type=submit]");
    await this.untilShowing(`group:${group}`);
  }

  /** Opens a conversation from the sidebar: "group:<name>" or "user:<id>". */
  async open(key: string): Promise<void> {
    const [kind, name] = splitKey(key);
    await this.page.click(`button.conversation-link[data-${kind}="${name}"]`);
    await this.untilShowing(key);
  }

  untilShowing(key: string): Promise<void> {
    return this.until(
      `conversation ${key} to be shown`,
      // deno-lint-ignore no-explicit-any
      (key) => (globalThis as any).switchboard.state().current === key,
      key,
    );
  }

  /** Writes a message in the composer, clicks Send, and waits until the server acked it. */
  async say(text: string): Promise<void> {
    await this.page.fill("#message-input", text);
    await this.page.click("#send-button");
    await this.untilMessage(text, { own: true, pending: false });
  }

  /** The messages of the conversation on screen, in order. */
  messages(): Promise<ShownMessage[]> {
    return this.page.$$eval("#messages article.message", (articles) =>
      articles.map((article) => ({
        from: article.querySelector(".from")?.textContent ?? "",
        text: article.querySelector(".text")?.textContent ?? "",
        own: article.classList.contains("own"),
        pending: article.classList.contains("pending"),
        notSent: article.classList.contains("not-sent"),
      })));
  }

  /** Waits until the conversation on screen shows `text` (from `from`, in the given state). */
  untilMessage(
    text: string,
    expected: { from?: string; own?: boolean; pending?: boolean } = {},
  ): Promise<void> {
    return this.until(
      `message ${JSON.stringify(text)} ${JSON.stringify(expected)}`,
      ({ text, expected }) =>
        [...document.querySelectorAll("#messages article.message")].some((article) =>
          article.querySelector(".text")?.textContent === text &&
          (expected.from === undefined ||
            article.querySelector(".from")?.textContent === expected.from) &&
          (expected.own === undefined || article.classList.contains("own") === expected.own) &&
          (expected.pending === undefined ||
            article.classList.contains("pending") === expected.pending)
        ),
      { text, expected },
    );
  }

  /** The user ids in #members, in order. */
  members(): Promise<string[]> {
    return this.page.$$eval(
      "#members button.member",
      (buttons) => buttons.map((button) => (button as HTMLElement).dataset.user ?? ""),
    );
  }

  /** Waits until #members lists exactly `users` (sorted, as the page sorts them). */
  untilMembers(users: string[]): Promise<void> {
    const expected = [...users].sort();
    return this.until(
      `members ${JSON.stringify(expected)}`,
      (expected) =>
        JSON.stringify(
          [...document.querySelectorAll<HTMLElement>("#members button.member")]
            .map((button) => button.dataset.user),
        ) === JSON.stringify(expected),
      expected,
    );
  }

  /** Presses Tab (or Shift+Tab) until `selector` has the focus; fails after `max` presses. */
  async tabTo(selector: string, { backwards = false, max = 40 } = {}): Promise<void> {
    const focused = () =>
      this.page.evaluate((selector) => document.activeElement?.matches(selector), selector);
    for (let presses = 0; !(await focused()); presses++) {
      if (presses === max) throw new Error(`${this.label}: ${selector} never took the focus`);
      await this.page.keyboard.press(backwards ? "Shift+Tab" : "Tab");
    }
  }

  /** The id (or tag) of the focused element. */
  focused(): Promise<string> {
    return this.page.evaluate(() => {
      const el = document.activeElement;
      return el?.id ? `#${el.id}` : el?.tagName.toLowerCase() ?? "";
    });
  }
}

function splitKey(key: string): [string, string] {
  const split = key.indexOf(":");
  return [key.slice(0, split), key.slice(split + 1)];
}

/** Everything one test opened, all released at the end whatever happened. */
export class E2E {
  readonly people: Person[] = [];
  readonly servers: SwitchboardServer[] = [];
  /** Other things to close (test WebSocket clients…), closed first. */
  readonly cleanups: (() => Promise<unknown>)[] = [];

  constructor(readonly testName: string) {}

  /** An in-process server serving static/, on a free loopback port unless `port` is given. */
  async server(options: Partial<ServerOptions> = {}): Promise<SwitchboardServer> {
    const server = await startServer({
      port: 0,
      hostname: "127.0.0.1",
      logLevel: "silent",
      staticDir: STATIC_DIR,
      ...options,
    });
    this.servers.push(server);
    return server;
  }

  /** Launches a browser of its own for `label` and opens the chat (or `options.path`). */
  async person(
    label: string,
    server: SwitchboardServer,
    options: PersonOptions = {},
  ): Promise<Person> {
    const chromium = await loadChromium();
    const profileDir = await Deno.makeTempDir({ prefix: `switchboard-e2e-${label}-` });
    let context: BrowserContext;
    try {
      context = await chromium.launchPersistentContext(profileDir, {
        executablePath: CHROMIUM_PATH,
        headless: true,
        args: CHROMIUM_ARGS,
        viewport: options.viewport ?? { width: 1280, height: 800 },
        locale: "en-US",
        timezoneId: "UTC",
        colorScheme: "light",
      });
    } catch (error) {
      await Deno.remove(profileDir, { recursive: true });
      throw error;
    }
    context.setDefaultTimeout(TIMEOUT_MS);
    const page = context.pages()[0] ?? await context.newPage();
    const person = new Person(label, context, page, profileDir);
    this.people.push(person);
    await page.goto(server.url + (options.path ?? "/"));
    return person;
  }

  /** Several people at once, each with the chat open (their browsers start in parallel). */
  crowd(labels: string[], server: SwitchboardServer): Promise<Person[]> {
    return Promise.all(labels.map((label) => this.person(label, server)));
  }

  /** Closes one person's browser and removes their profile. */
  async dismiss(person: Person): Promise<void> {
    const index = this.people.indexOf(person);
    if (index === -1) return;
    this.people.splice(index, 1);
    try {
      await person.context.close();
    } finally {
      await Deno.remove(person.profileDir, { recursive: true });
    }
  }

  /** A screenshot of every open page, and their state, for a failed test. */
  async saveEvidence(): Promise<void> {
    await Deno.mkdir(RESULTS_DIR, { recursive: true });
    const slug = this.testName.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
    for (const person of this.people) {
      const path = `${RESULTS_DIR}${slug}-${person.label}.png`;
      try {
        await person.page.screenshot({ path, timeout: 5000 });
        const state = await person.page.evaluate(() =>
          // deno-lint-ignore no-explicit-any
          (globalThis as any).switchboard?.state() ?? null
        );
        console.error(`e2e: ${person.label}: ${JSON.stringify(state)}; screenshot ${path}`);
        if (person.pageErrors.length) console.error(`  page errors: ${person.pageErrors}`);
      } catch (error) {
        console.error(`e2e: no screenshot of ${person.label}: ${error}`);
      }
    }
  }

  /** Releases everything, in order: clients, browsers and profiles, servers. */
  async close(): Promise<void> {
    const errors: unknown[] = [];
    const attempt = async (fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (error) {
        errors.push(error);
      }
    };
    for (const cleanup of this.cleanups.splice(0).reverse()) await attempt(cleanup);
    await Promise.all([...this.people].map((person) => attempt(() => this.dismiss(person))));
    for (const server of this.servers.splice(0)) await attempt(() => server.shutdown());
    if (errors.length) throw new AggregateError(errors, "e2e: cleanup failed");
  }
}

/**
 * Registers a browser test: ignored (see the line printed above) when Chromium is missing,
 * failing loudly instead when E2E_REQUIRED=1.
 */
export function e2eTest(name: string, fn: (e2e: E2E) => Promise<void>): void {
  Deno.test({
    name,
    ignore: skip,
    async fn() {
      if (chromiumMissing) {
        throw new Error(
          `E2E_REQUIRED=1 but ${CHROMIUM_PATH} does not exist: install Debian's chromium`,
        );
      }
      const e2e = new E2E(name);
      try {
        await fn(e2e);
        for (const person of e2e.people) {
          if (person.pageErrors.length) {
            throw new Error(`${person.label}'s page threw: ${person.pageErrors.join("; ")}`);
          }
        }
      } catch (error) {
        await e2e.saveEvidence();
        throw error;
      } finally {
        await e2e.close();
      }
    },
  });
}
