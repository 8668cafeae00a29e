/**
 * The browser client's files, served from memory. The directory is read once
 * at start: the set of paths it held is the allow-list, so no request path,
 * however it is encoded, can reach another file.
 *
 * @module
 */

import { eTag as untypedETag, ifNoneMatch as untypedIfNoneMatch } from "@std/http/etag";
import { contentType as untypedContentType } from "@std/media-types";

const eTag = untypedETag as (entity: Uint8Array) => Promise<string>;
const ifNoneMatch = untypedIfNoneMatch as (value: string | null, etag: string) => boolean;
const contentType = untypedContentType as (extensionOrType: string) => string | undefined;

/**
 * The page's Content-Security-Policy: scripts and styles from this origin
 * only, so text injected into the page can never run.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "connect-src 'self' ws: wss:",
  "img-src 'self' data:",
  "style-src 'self'",
  "script-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

interface StaticFile {
  readonly body: Uint8Array;
  readonly contentType: string;
  readonly etag: string;
}

/** URL path → file, for every file of the static directory. */
export type StaticFiles = ReadonlyMap<string, StaticFile>;

/** Reads every file under `dir`; `/` serves `index.html`. A missing directory serves nothing. */
export async function loadStaticFiles(dir: string): Promise<StaticFiles> {
  const files = new Map<string, StaticFile>();
  for (const relative of await listFiles(dir)) {
    const body = await Deno.readFile(`${dir}/${relative}`);
    const extension = relative.slice(relative.lastIndexOf("."));
    files.set(`/${relative}`, {
      body,
      contentType: contentType(extension) ?? "application/octet-stream",
      etag: await eTag(body),
    });
  }
  const index = files.get("/index.html");
  if (index !== undefined) files.set("/", index);
  return files;
}

async function listFiles(dir: string, prefix = ""): Promise<string[]> {
  const names: string[] = [];
  let entries: AsyncIterable<Deno.DirEntry>;
  try {
    entries = Deno.readDir(`${dir}/${prefix}`);
    for await (const entry of entries) {
      const relative = `${prefix}${entry.name}`;
      if (entry.isDirectory) names.push(...await listFiles(dir, `${relative}/`));
      else if (entry.isFile) names.push(relative);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  return names.sort();
}

/** Answers a GET or HEAD for a static file, or returns `undefined` when there is none. */
export function serveStatic(files: StaticFiles, request: Request): Response | undefined {
  if (request.method !== "GET" && request.method !== "HEAD") return undefined;
  const file = files.get(new URL(request.url).pathname);
  if (file === undefined) return undefined;
  const headers = new Headers({
    "content-type": file.contentType,
    "etag": file.etag,
    "cache-control": "no-cache",
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
  });
  if (!ifNoneMatch(request.headers.get("if-none-match"), file.etag)) {
    return new Response(null, { status: 304, headers });
  }
  headers.set("content-length", String(file.body.byteLength));
  const body = request.method === "HEAD" ? null : file.body;
  return new Response(body as BodyInit | null, { status: 200, headers });
}
