/**
 * The `switchboard.v1` wire protocol: turns one incoming frame into a typed
 * command or a relay, and encodes the frames the server sends.
 *
 * Nothing here knows about sockets, peers or maps: every function is pure, so
 * the whole protocol is unit-testable with plain values.
 *
 * @module
 */

/** The subprotocol a client offers to speak the full protocol. */
export const PROTOCOL_NAME = "switchboard.v1";

/** Error codes of the contract, each sent in an `error` frame. */
export type ErrorCode =
  | "invalid_message"
  | "invalid_name"
  | "not_identified"
  | "already_identified"
  | "unauthorized"
  | "forbidden"
  | "not_member"
  | "user_offline"
  | "too_many_groups"
  | "rate_limited";

/** Every error code, for metrics that report each one even at zero. */
export const ERROR_CODES: readonly ErrorCode[] = [
  "invalid_message",
  "invalid_name",
  "not_identified",
  "already_identified",
  "unauthorized",
  "forbidden",
  "not_member",
  "user_offline",
  "too_many_groups",
  "rate_limited",
];

/** A command id: echoed in the `ack` or `error` that answers the command. */
export type CommandId = string | number;

/** Identify the connection as user `from`. */
export interface OnlineCommand {
  type: "online";
  id?: CommandId;
  from: string;
  token?: string;
}

/** Join a group; `since` asks for missed messages when history is on. */
export interface JoinCommand {
  type: "join";
  id?: CommandId;
  group: string;
  since?: number;
}

/** Leave a group. */
export interface LeaveCommand {
  type: "leave";
  id?: CommandId;
  group: string;
}

/** Send `data` to a group or to every connection of one user. */
export type MessageCommand =
  & { type: "message"; id?: CommandId; data: unknown }
  & ({ group: string; to?: undefined } | { to: string; group?: undefined });

/** Ask for the members of a group. */
export interface MembersCommand {
  type: "members";
  id?: CommandId;
  group: string;
}

/** Application-level ping, for browsers that cannot send protocol pings. */
export interface PingCommand {
  type: "ping";
  id?: CommandId;
}

/** A well-formed command. */
export type Command =
  | OnlineCommand
  | JoinCommand
  | LeaveCommand
  | MessageCommand
  | MembersCommand
  | PingCommand;

/**
 * A frame that is not a command and is forwarded as the seed demo did:
 * `direct` (a JSON object with a string `to`) or `broadcast` (anything else).
 */
export type Relay =
  | { kind: "direct"; to: string; object: Record<string, unknown> }
  | { kind: "broadcast" };

/** A command that failed to parse or validate. */
export interface ProtocolError {
  code: ErrorCode;
  message: string;
  id?: CommandId;
}

/** What one incoming frame is. */
export type Frame =
  | { kind: "command"; command: Command }
  | { kind: "relay"; relay: Relay }
  | { kind: "error"; error: ProtocolError };

/** The longest accepted string id, in Unicode code points. */
export const MAX_ID_LENGTH = 64;

/** The longest user or group name, in Unicode code points. */
export const MAX_NAME_LENGTH = 64;

const COMMAND_TYPES: ReadonlySet<string> = new Set([
  "online",
  "join",
  "leave",
  "message",
  "members",
  "ping",
]);

// One to 64 code points, none of them a control character or whitespace.
const NAME_PATTERN = /^[^\p{Cc}\p{White_Space}]{1,64}$/u;

const BROADCAST: Frame = { kind: "relay", relay: { kind: "broadcast" } };

/**
 * Classifies one text frame. Binary frames are always broadcast relays and
 * never reach this function.
 */
export function parseFrame(text: string): Frame {
  const object = parseJsonObject(text);
  if (object === undefined) return BROADCAST;
  const type = object.type;
  if (typeof type === "string" && COMMAND_TYPES.has(type)) return parseCommand(type, object);
  if (typeof object.to === "string") {
    return { kind: "relay", relay: { kind: "direct", to: object.to, object } };
  }
  return BROADCAST;
}

/** Whether `name` is a valid user or group id (1–64 code points, no controls or spaces). */
export function isValidName(name: string): boolean {
  return NAME_PATTERN.test(name);
}

function parseJsonObject(text: string): Record<string, unknown> | undefined {
  // Most relayed chatter is plain text: skip JSON.parse unless it can be an object.
  let start = 0;
  while (start < text.length && isJsonWhitespace(text.charCodeAt(start))) start++;
  if (text.charCodeAt(start) !== 0x7b /* { */) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return isPlainObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

function isJsonWhitespace(code: number): boolean {
  return code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

class CommandError extends Error {
  constructor(readonly code: ErrorCode, message: string) {
    super(message);
  }
}

function parseCommand(type: string, object: Record<string, unknown>): Frame {
  const rawId = object.id;
  if (rawId !== undefined && !isValidId(rawId)) {
    return invalid(`"id" must be a string of at most ${MAX_ID_LENGTH} characters or an integer`);
  }
  const id = rawId as CommandId | undefined;
  try {
    const command = buildCommand(type, object, id);
    return { kind: "command", command };
  } catch (error) {
    if (!(error instanceof CommandError)) throw error;
    return { kind: "error", error: withId({ code: error.code, message: error.message }, id) };
  }
}

function buildCommand(type: string, object: Record<string, unknown>, id?: CommandId): Command {
  switch (type) {
    case "online": {
      const from = requireName(object, "from", "user");
      const token = object.token;
      if (token !== undefined && typeof token !== "string") {
        throw new CommandError("invalid_message", `"token" must be a string`);
      }
      return withId({ type, from, ...(token === undefined ? {} : { token }) }, id);
    }
    case "join": {
      const group = requireName(object, "group", "group");
      const since = object.since;
      if (since !== undefined && !(Number.isSafeInteger(since) && (since as number) >= 0)) {
        throw new CommandError("invalid_message", `"since" must be a non-negative integer`);
      }
      return withId(
        { type, group, ...(since === undefined ? {} : { since: since as number }) },
        id,
      );
    }
    case "leave":
    case "members":
      return withId({ type, group: requireName(object, "group", "group") }, id);
    case "message":
      return withId(buildMessage(object), id);
    default: // "ping": the set of command types is closed above.
      return withId({ type: "ping" }, id);
  }
}

function buildMessage(object: Record<string, unknown>): MessageCommand {
  const hasGroup = object.group !== undefined;
  const hasTo = object.to !== undefined;
  if (hasGroup === hasTo) {
    throw new CommandError("invalid_message", `a message needs exactly one of "group" or "to"`);
  }
  if (!("data" in object)) {
    throw new CommandError("invalid_message", `a message needs "data"`);
  }
  const data = object.data;
  return hasGroup
    ? { type: "message", group: requireName(object, "group", "group"), data }
    : { type: "message", to: requireName(object, "to", "user"), data };
}

function requireName(object: Record<string, unknown>, field: string, what: string): string {
  const value = object[field];
  if (typeof value !== "string") {
    throw new CommandError("invalid_message", `"${field}" must be a ${what} id (a string)`);
  }
  if (!isValidName(value)) {
    throw new CommandError(
      "invalid_name",
      `"${field}" must be 1–${MAX_NAME_LENGTH} characters without spaces or control characters`,
    );
  }
  return value;
}

function isValidId(id: unknown): id is CommandId {
  if (typeof id !== "string") return Number.isSafeInteger(id);
  // Counted in code points, like names; most ids are short ASCII and skip the count.
  return id.length <= MAX_ID_LENGTH ||
    (id.length <= 2 * MAX_ID_LENGTH && [...id].length <= MAX_ID_LENGTH);
}

function withId<T extends object>(value: T, id: CommandId | undefined): T & { id?: CommandId } {
  return id === undefined ? value : { ...value, id };
}

function invalid(message: string): Frame {
  return { kind: "error", error: { code: "invalid_message", message } };
}

// ---------------------------------------------------------------------------
// Server frames. Each encoder returns the JSON text of one server message;
// JSON.stringify never emits a raw newline, so messages can be joined by "\n".

/** Limits announced in `welcome`, so clients can stay within them. */
export interface AnnouncedLimits {
  maxMessageBytes: number;
  rateLimit: number;
  rateBurst: number;
  maxGroups: number;
}

/** The first frame a `switchboard.v1` connection receives; `defaultGroup` is `null` when off. */
export function encodeWelcome(
  connection: string,
  limits: AnnouncedLimits,
  defaultGroup: string | null,
): string {
  // `defaultGroup` goes beyond the contract's fields: a client cannot otherwise know which
  // group it is already in (it is configurable, and may be off).
  return JSON.stringify({
    type: "welcome",
    connection,
    protocol: PROTOCOL_NAME,
    limits,
    defaultGroup,
  });
}

/** A successful command's answer; `fields` are the command's own ack fields. */
export function encodeAck(id: CommandId, fields: Record<string, unknown> = {}): string {
  return JSON.stringify({ type: "ack", id, ...fields });
}

/** A failed command's answer. */
export function encodeError(error: ProtocolError): string {
  const { code, message, id } = error;
  return JSON.stringify(
    id === undefined ? { type: "error", code, message } : {
      type: "error",
      code,
      message,
      id,
    },
  );
}

/** The answer to `ping`. */
export function encodePong(id?: CommandId): string {
  return JSON.stringify(id === undefined ? { type: "pong" } : { type: "pong", id });
}

/** Where a `message` frame was addressed. */
export type MessageTarget = { group: string } | { to: string };

/** A `message` frame: `data` from user `from`, stamped by the server. */
export function encodeMessage(
  from: string,
  target: MessageTarget,
  data: unknown,
  ts: number,
  offset?: number,
): string {
  // Built by hand: this runs once per message on the hot path, and spreading
  // objects into JSON.stringify costs twice as much.
  const address = "group" in target
    ? `"group":${JSON.stringify(target.group)}`
    : `"to":${JSON.stringify(target.to)}`;
  const tail = offset === undefined ? "" : `,"offset":${offset}`;
  return `{"type":"message","from":${JSON.stringify(from)},${address},"data":${
    JSON.stringify(data) ?? "null"
  },"ts":${ts}${tail}}`;
}

/** A relayed text frame as a `switchboard.v1` recipient sees it. */
export function encodeRelay(from: string | null, text: string): string {
  return JSON.stringify({ type: "relay", from, data: text });
}

/** A presence diff for one group. */
export function encodePresence(
  group: string,
  joins: readonly string[],
  leaves: readonly string[],
): string {
  return JSON.stringify({ type: "presence", group, joins, leaves });
}

/**
 * A direct relay as a seed-dialect recipient sees it when a `switchboard.v1`
 * client sent it: `from` is the sender's identified user, or absent, so that a
 * v1 client cannot speak as someone else.
 */
export function encodeStampedRelay(object: Record<string, unknown>, from: string | null): string {
  const stamped: Record<string, unknown> = {};
  // Copying key by key keeps an own "__proto__" key a plain data key.
  for (const key of Object.keys(object)) {
    if (key !== "from") Object.defineProperty(stamped, key, descriptorOf(object[key]));
  }
  if (from !== null) stamped.from = from;
  return JSON.stringify(stamped);
}

function descriptorOf(value: unknown): PropertyDescriptor {
  return { value, enumerable: true, writable: true, configurable: true };
}

/** Person-readable text for an error code, used where no more specific text exists. */
export function describeError(code: ErrorCode): string {
  return ERROR_TEXT[code];
}

const ERROR_TEXT: Record<ErrorCode, string> = {
  invalid_message: "the command's fields are missing or wrong",
  invalid_name: "names are 1–64 characters without spaces or control characters",
  not_identified: 'send "online" first',
  already_identified: "this connection is already identified as another user",
  unauthorized: "a valid token is required",
  forbidden: "your token does not allow that group",
  not_member: "you are not a member of that group",
  user_offline: "that user has no open connection",
  too_many_groups: "this connection is in too many groups",
  rate_limited: "too many frames; this one was dropped",
};
