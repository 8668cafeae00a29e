// The Switchboard chat page: the UI on top of the connection in client.js.
//
// Conversations are keyed "group:<name>" and "user:<id>". Groups are listed in #groups (buttons
// with data-group); direct conversations in a separate #dms list (buttons with data-user); the
// members of the current conversation in #members (buttons with data-user, yourself disabled).
//
// Delivery: a message written while the connection is down is queued, shown with the class
// .pending, and sent once the page is online again; a message in flight when the socket dropped
// is re-sent too (at least once). A message the server refuses gets the class .not-sent and the
// reason. The composer is disabled only while "offline", i.e. when no name is chosen.
//
// localStorage: "switchboard.name" (the chosen name) and "switchboard.groups" (the groups joined,
// re-joined on the next visit). A `?token=` in the page's URL is sent with `online` for servers
// that require auth.

import { Connection, socketUrl } from "./client.js";

const NAME_KEY = "switchboard.name";
const GROUPS_KEY = "switchboard.groups";
const MAX_KEPT_MESSAGES = 500;
const MAX_SHOWN_ERRORS = 3;

const $ = (id) => document.getElementById(id);

/** The server's default group, which every connection is in; `welcome` names it. */
let lobby = "lobby";
const lobbyKey = () => `group:${lobby}`;

const state = {
  user: null,
  /** key → { key, kind: "group"|"user", name, members: Set, elements: [], unread, scrollTop } */
  conversations: new Map(),
  current: lobbyKey(),
  /** messages waiting for a connection: { command, el } */
  outbox: [],
};

const connection = new Connection(socketUrl(), {
  onStatus: renderStatus,
  onReady: rejoinAndFlush,
  onRejected: rejectName,
  onMessage: receive,
});

// ---- Words for people -----------------------------------------------------------------------

const quoted = (name) => `“${name}”`;

const ERROR_TEXT = {
  invalid_message: () => "The server did not understand that request.",
  invalid_name: ({ group }) =>
    `${group ? `${quoted(group)} is not a valid group name` : "That name is not valid"}: ` +
    "use 1–64 characters without spaces.",
  not_identified: () => "Choose a name before chatting.",
  already_identified: () => "This tab is already signed in. Reload the page to change your name.",
  unauthorized: () =>
    "The server did not accept your sign-in: the access token is wrong or missing.",
  forbidden: ({ group }) => `You are not allowed in ${group ? quoted(group) : "that group"}.`,
  not_member: ({ group }) => `You are not a member of ${group ? quoted(group) : "that group"}.`,
  user_offline: ({ to }) => `${to ?? "That person"} is offline — message not delivered`,
  too_many_groups: () => "You are in too many groups. Leave one before joining another.",
  rate_limited: () => "You are sending too fast. Wait a moment and try again.",
  too_large: () => "That message is too long to send.",
  disconnected: () => "You are not connected right now. Try again once back online.",
};

/** `context` is the failed command, whose group or user makes the text specific. */
function describeError(error, context = {}) {
  const text = ERROR_TEXT[error.code];
  return text ? text(context) : error.message || "Something went wrong.";
}

/** The server's rule for user and group names: 1–64 code points, no whitespace or controls. */
function nameProblem(name) {
  const length = [...name].length;
  if (length === 0) return "Enter a name.";
  if (length > 64) return "Use at most 64 characters.";
  if (/[\p{White_Space}\p{Cc}]/u.test(name)) {
    return "Spaces and control characters are not allowed.";
  }
  return null;
}

function showError(text) {
  const errors = $("errors");
  errors.append(element("p", "error", text));
  while (errors.childElementCount > MAX_SHOWN_ERRORS) errors.firstElementChild.remove();
}

function announce(text) {
  $("announcer").textContent = text;
}

// ---- Conversations --------------------------------------------------------------------------

function conversation(key) {
  let conv = state.conversations.get(key);
  if (!conv) {
    const split = key.indexOf(":");
    const kind = key.slice(0, split);
    const name = key.slice(split + 1);
    const members = new Set(kind === "user" ? [state.user, name] : []);
    conv = { key, kind, name, members, elements: [], unread: 0, scrollTop: null };
    state.conversations.set(key, conv);
    renderConversationList();
  }
  return conv;
}

const currentConversation = () => conversation(state.current);
const groupConversations = () =>
  [...state.conversations.values()].filter((c) => c.kind === "group");
const title = (conv) => (conv.kind === "group" ? `#${conv.name}` : conv.name);

function saveGroups() {
  const names = groupConversations().map((c) => c.name).filter((name) => name !== lobby);
  localStorage.setItem(GROUPS_KEY, JSON.stringify(names));
}

function savedGroups() {
  try {
    const names = JSON.parse(localStorage.getItem(GROUPS_KEY) ?? "[]");
    return Array.isArray(names) ? names.filter((name) => typeof name === "string") : [];
  } catch {
    return [];
  }
}

function select(key) {
  const log = $("messages");
  const leaving = state.conversations.get(state.current);
  if (leaving) leaving.scrollTop = isAtBottom(log) ? null : log.scrollTop;
  const conv = conversation(key);
  state.current = key;
  conv.unread = 0;
  log.replaceChildren(...conv.elements);
  log.scrollTop = conv.scrollTop ?? log.scrollHeight;
  renderConversation();
}

function forget(conv) {
  state.conversations.delete(conv.key);
  saveGroups();
  if (conv.key === state.current) select(lobbyKey());
  else renderConversationList();
}

/** Adds a message element to a conversation, following the log's bottom if it was there. */
function addMessage(conv, el, { scroll = false } = {}) {
  conv.elements.push(el);
  if (conv.elements.length > MAX_KEPT_MESSAGES) conv.elements.shift().remove();
  if (conv.key !== state.current) {
    conv.unread += 1;
    renderConversationList();
    return;
  }
  const log = $("messages");
  const follow = scroll || isAtBottom(log);
  log.append(el);
  if (follow) log.scrollTop = log.scrollHeight;
}

function isAtBottom(log) {
  return log.scrollHeight - log.scrollTop - log.clientHeight < 8;
}

// ---- Server messages ------------------------------------------------------------------------

function receive(message) {
  switch (message.type) {
    case "welcome":
      return adoptDefaultGroup(message.defaultGroup);
    case "message":
      return receiveMessage(message);
    case "relay":
      return receiveRelay(message);
    case "presence":
      return applyPresence(message);
    case "error":
      return showError(describeError(message));
  }
}

function receiveMessage({ from, group, to, data, ts }) {
  const peer = from === state.user ? to : from;
  const key = group !== undefined ? `group:${group}` : `user:${peer}`;
  show(conversation(key), from, displayText(data), ts);
}

/**
 * The server names its default group in `welcome`. Until then the page shows a placeholder
 * under the usual name, which gives way to the real one.
 */
function adoptDefaultGroup(name) {
  if (typeof name !== "string" || name === lobby) return;
  const placeholder = state.conversations.get(lobbyKey());
  lobby = name;
  if (placeholder) forget(placeholder);
}

/**
 * Relayed frames come from seed-dialect clients. One that is a JSON object with "to" was sent
 * to this user directly, so it belongs to the direct conversation with its (identified) sender;
 * everything else was broadcast to the default group.
 */
function receiveRelay({ from, data }) {
  const key = from !== null && isDirectRelay(data) ? `user:${from}` : lobbyKey();
  show(conversation(key), from ?? "anonymous", displayText(data), Date.now());
}

function isDirectRelay(text) {
  try {
    const value = JSON.parse(text);
    return typeof value?.to === "string";
  } catch {
    return false;
  }
}

function displayText(data) {
  return typeof data === "string" ? data : JSON.stringify(data) ?? "";
}

function show(conv, from, text, ts) {
  const mine = from === state.user;
  addMessage(conv, messageElement(from, text, ts, mine));
  if (!mine) announce(`${from} in ${title(conv)}: ${text.slice(0, 200)}`);
}

function applyPresence({ group, joins = [], leaves = [] }) {
  const conv = state.conversations.get(`group:${group}`);
  if (!conv) return;
  // Diffs may repeat what a join ack already said: plain set operations make them idempotent.
  for (const user of joins) conv.members.add(user);
  for (const user of leaves) conv.members.delete(user);
  if (conv.key === state.current) renderMembers();
}

// ---- Commands -------------------------------------------------------------------------------

async function joinGroup(name) {
  const ack = await connection.request({ type: "join", group: name });
  const conv = conversation(`group:${name}`);
  conv.members = new Set(ack.members);
  if (conv.key === state.current) renderMembers();
  return conv;
}

/**
 * After every (re)connect the server has forgotten our groups: join them again, then send what
 * waited. The server handles a connection's frames in order, so the joins need no waiting for.
 */
function rejoinAndFlush() {
  announce("Connected.");
  conversation(lobbyKey()); // every connection is in the default group; the join fetches members
  for (const conv of groupConversations()) rejoin(conv);
  for (const entry of state.outbox.splice(0)) deliver(entry);
}

async function rejoin(conv) {
  try {
    await joinGroup(conv.name);
  } catch (error) {
    if (error.code === "disconnected") return; // the next connect tries again
    showError(describeError(error, { group: conv.name }));
    forget(conv);
  }
}

function deliver(entry) {
  if (connection.state !== "online") {
    state.outbox.push(entry);
    markDelivery(entry.el, "pending", "waiting for connection…");
    return;
  }
  markDelivery(entry.el, "pending", "sending…");
  connection.request(entry.command).then(
    () => markDelivery(entry.el, "sent", ""),
    (error) => {
      if (error.code === "disconnected") return deliver(entry);
      const reason = describeError(error, entry.command);
      markDelivery(entry.el, "not-sent", `not sent: ${reason}`);
      showError(reason);
    },
  );
}

function sendMessage(text) {
  const conv = currentConversation();
  const target = conv.kind === "group" ? { group: conv.name } : { to: conv.name };
  const entry = {
    command: { type: "message", ...target, data: text },
    el: messageElement(state.user, text, Date.now(), true),
  };
  addMessage(conv, entry.el, { scroll: true });
  deliver(entry);
}

async function submitJoin() {
  const name = $("join-input").value.trim();
  const problem = nameProblem(name);
  if (problem) return showError(`Group name: ${problem}`);
  try {
    const conv = state.conversations.get(`group:${name}`) ?? await joinGroup(name);
    saveGroups();
    $("join-input").value = "";
    select(conv.key);
  } catch (error) {
    showError(describeError(error, { group: name }));
  }
}

async function leaveCurrent() {
  const conv = currentConversation();
  if (conv.kind === "group") {
    try {
      await connection.request({ type: "leave", group: conv.name });
    } catch (error) {
      if (error.code !== "not_member") return showError(describeError(error, { group: conv.name }));
    }
  }
  forget(conv);
  $("message-input").focus();
}

function openDirect(user) {
  select(`user:${user}`);
  $("message-input").focus();
}

// ---- Identity -------------------------------------------------------------------------------

function signIn(name) {
  state.user = name;
  localStorage.setItem(NAME_KEY, name);
  $("user-name").textContent = name;
  $("name-view").hidden = true;
  $("chat-view").hidden = false;
  $("identity").hidden = false;
  for (const group of savedGroups()) conversation(`group:${group}`);
  select(state.current);
  const token = new URLSearchParams(location.search).get("token");
  connection.start({ user: name, token });
  $("message-input").focus();
}

/** The server refused the name (invalid, or not allowed by the token): ask for another. */
function rejectName(error) {
  localStorage.removeItem(NAME_KEY);
  showError(describeError(error));
  $("name-input").value = state.user;
  state.user = null;
  $("chat-view").hidden = true;
  $("identity").hidden = true;
  $("name-view").hidden = false;
  $("name-input").focus();
}

function submitName() {
  $("errors").replaceChildren();
  const name = $("name-input").value.trim();
  const problem = nameProblem(name);
  if (problem) return showError(`Display name: ${problem}`);
  signIn(name);
}

// ---- Rendering ------------------------------------------------------------------------------

function element(tag, className, text) {
  const el = document.createElement(tag);
  el.className = className;
  if (text !== undefined) el.textContent = text;
  return el;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

/** Text from other people only ever goes through textContent, never markup. */
function messageElement(from, text, ts, mine) {
  const el = element("article", mine ? "message own" : "message");
  const meta = element("header", "meta");
  const time = element("time", "time", timeFormat.format(ts ?? Date.now()));
  time.dateTime = new Date(ts ?? Date.now()).toISOString();
  meta.append(element("span", "from", from), time, element("span", "delivery"));
  el.append(meta, element("p", "text", text));
  return el;
}

function markDelivery(el, status, note) {
  el.classList.toggle("pending", status === "pending");
  el.classList.toggle("not-sent", status === "not-sent");
  el.querySelector(".delivery").textContent = note;
}

const HINTS = {
  online: "Enter sends · Shift+Enter starts a new line",
  connecting: "Connecting… what you send now goes out once connected.",
  reconnecting: "Connection lost — what you send now is queued until it is back.",
  offline: "You are offline. Choose a name to connect.",
};

function renderStatus(status, secondsLeft) {
  const el = $("status");
  const previous = el.dataset.state;
  el.dataset.state = status;
  el.textContent = status === "reconnecting" ? `reconnecting in ${secondsLeft} s` : status;
  $("reconnect-button").hidden = status !== "reconnecting";
  if (status === "reconnecting" && previous === "online") {
    announce("Connection lost. Reconnecting.");
  }
  const offline = status === "offline";
  $("message-input").disabled = offline;
  $("send-button").disabled = offline;
  $("composer-hint").textContent = HINTS[status];
}

function renderConversation() {
  const conv = currentConversation();
  $("conversation-title").textContent = title(conv);
  $("message-input").placeholder = `Message ${title(conv)}`;
  const leave = $("leave-button");
  leave.hidden = conv.key === lobbyKey();
  leave.textContent = conv.kind === "group" ? "Leave group" : "Close conversation";
  renderConversationList();
  renderMembers();
}

function renderConversationList() {
  const all = [...state.conversations.values()];
  rebuildList($("groups"), all.filter((c) => c.kind === "group").map(conversationItem));
  rebuildList($("dms"), all.filter((c) => c.kind === "user").map(conversationItem));
}

function conversationItem(conv) {
  const button = element("button", "conversation-link");
  button.type = "button";
  button.dataset[conv.kind] = conv.name;
  if (conv.key === state.current) button.setAttribute("aria-current", "true");
  button.append(element("span", "label", title(conv)));
  if (conv.unread > 0) {
    const badge = element("span", "unread", String(conv.unread));
    badge.setAttribute("aria-hidden", "true");
    button.append(badge, element("span", "visually-hidden", `, ${conv.unread} unread`));
  }
  button.addEventListener("click", () => select(conv.key));
  const item = document.createElement("li");
  item.append(button);
  return item;
}

function renderMembers() {
  const users = [...currentConversation().members].sort();
  rebuildList($("members"), users.map(memberItem));
}

function memberItem(user) {
  const mine = user === state.user;
  const button = element("button", "member", mine ? `${user} (you)` : user);
  button.type = "button";
  button.dataset.user = user;
  button.disabled = mine;
  button.addEventListener("click", () => openDirect(user));
  const item = document.createElement("li");
  item.append(button);
  return item;
}

/** Replaces a list's items and gives focus back to the rebuilt twin of the focused button. */
function rebuildList(list, items) {
  const focused = list.contains(document.activeElement) ? document.activeElement : null;
  list.replaceChildren(...items);
  if (!focused) return;
  const twin = (button) =>
    button.dataset.group === focused.dataset.group && button.dataset.user === focused.dataset.user;
  [...list.querySelectorAll("button")].find(twin)?.focus();
}

// ---- Wiring ---------------------------------------------------------------------------------

function onSubmit(id, handler) {
  $(id).addEventListener("submit", (event) => {
    event.preventDefault();
    handler();
  });
}

function wire() {
  onSubmit("name-form", submitName);
  onSubmit("join-form", submitJoin);
  onSubmit("composer", () => {
    const input = $("message-input");
    if (input.value.trim() === "") return;
    sendMessage(input.value);
    input.value = "";
  });
  $("message-input").addEventListener("keydown", (event) => {
    // isComposing: Enter also confirms an input method's candidate, which must not send.
    if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
    event.preventDefault();
    $("composer").requestSubmit();
  });
  $("leave-button").addEventListener("click", leaveCurrent);
  $("reconnect-button").addEventListener("click", () => connection.retryNow());
  $("errors-dismiss").addEventListener("click", () => $("errors").replaceChildren());
  $("change-name").addEventListener("click", () => {
    // A fresh page is the simplest way to drop everything that belonged to the old name.
    localStorage.removeItem(NAME_KEY);
    location.reload();
  });
  // The network is back: no reason to sit out the rest of the back-off.
  addEventListener("online", () => connection.retryNow());
}

wire();
renderStatus("offline", 0);
const savedName = localStorage.getItem(NAME_KEY);
if (savedName && !nameProblem(savedName)) signIn(savedName);
else $("name-input").focus();

/** Read-only view for tests and curious developers. */
globalThis.switchboard = Object.freeze({
  state: () => ({
    status: connection.state,
    user: state.user,
    groups: groupConversations().map((c) => c.name),
    dms: [...state.conversations.values()].filter((c) => c.kind === "user").map((c) => c.name),
    current: state.current,
    queued: state.outbox.length,
  }),
});
