// ktnchat web client: the KTN JSON chat protocol over a WebSocket, one object per frame.
// Rules: text from the server is only ever put in the page with textContent (never as
// HTML); moderator actions are shown only when the server's `help` lists them for us;
// the connection comes back by itself (with backoff) and logs in again as the same user.
"use strict";

const $ = (id) => document.getElementById(id);
const MOD_WORDS = ["remove", "kick", "mute", "ban"];
const state = {
  ws: null, name: null, password: "", loggedIn: false, wanted: false,
  room: "lobby", allowed: new Set(), retry: 0, timer: null, users: [],
  autoHelp: 0, skipHelp: false, quietTopic: false,
};

function status(text, down) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("down", Boolean(down));
}

function send(request, content) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) {
    state.ws.send(JSON.stringify({ request, content: content === undefined ? null : content }));
    return true;
  }
  return false;
}

function connect() {
  clearTimeout(state.timer);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws`);
  state.ws = ws;
  status(state.retry ? "reconnecting…" : "connecting…");
  ws.onopen = () => {
    const again = state.retry > 0;
    state.retry = 0;
    status(again ? "reconnected" : "connected");
    if (state.wanted && state.name) {
      if (again) note("Reconnected; logging in again as " + state.name, "info");
      login();
    }
  };
  ws.onmessage = (event) => {
    let obj;
    try { obj = JSON.parse(event.data); } catch (e) { return; }
    if (obj && typeof obj === "object") handle(obj);
  };
  ws.onclose = (event) => {
    if (state.ws !== ws) return;
    state.loggedIn = false;
    const wait = Math.min(30, 2 ** state.retry);
    state.retry += 1;
    const why = event.reason ? ` (${event.reason})` : "";
    status(`connection lost${why}; reconnecting in ${wait} s`, true);
    if (state.wanted) note(`Connection lost${why}; reconnecting in ${wait} s`, "error");
    state.timer = setTimeout(connect, wait * 1000);
  };
}

function login() {
  const content = state.password ? `${state.name} ${state.password}` : state.name;
  return send("login", content);
}

// -- rendering ----------------------------------------------------------------------------

function stamp(text, earlier) {
  if (typeof text !== "string") text = String(text);
  const today = new Date();
  const pad = (n) => String(n).padStart(2, "0");
  const day = `${today.getFullYear()}-${pad(today.getMonth() + 1)}-${pad(today.getDate())}`;
  if (!earlier && text.startsWith(day + " ")) return text.slice(11);
  return text;
}

function scrolledToEnd(list) {
  return list.scrollHeight - list.scrollTop - list.clientHeight < 40;
}

function append(li) {
  const list = $("messages");
  const follow = scrolledToEnd(list);
  list.appendChild(li);
  if (follow) list.scrollTop = list.scrollHeight;
}

function note(text, kind) {
  const li = document.createElement("li");
  li.className = kind;
  const time = document.createElement("span");
  time.className = "time";
  const now = new Date();
  time.textContent = now.toTimeString().slice(0, 8);
  li.append(time, document.createTextNode(String(text)));
  append(li);
}

function actionButton(label, title, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "small";
  b.textContent = label;
  b.title = title;
  b.addEventListener("click", onClick);
  return b;
}

function userActions(user) {
  const box = document.createElement("span");
  box.className = "actions";
  if (!user || user === state.name) return box;
  if (state.allowed.has("kick")) box.append(actionButton("kick", `kick ${user}`, () => send("kick", user)));
  if (state.allowed.has("mute")) box.append(actionButton("mute", `mute ${user} for 10 minutes`, () => send("mute", user)));
  if (state.allowed.has("ban") && confirmable()) box.append(actionButton("ban", `ban ${user} from this room`, () => {
    if (window.confirm(`Ban ${user} from ${state.room}?`)) send("ban", user);
  }));
  return box;
}

function confirmable() { return typeof window.confirm === "function"; }

function showMessage(obj, earlier) {
  const li = document.createElement("li");
  const isPrivate = obj.private === true;
  li.className = (earlier ? "earlier" : "") + (isPrivate ? " private" : "");
  if (Number.isInteger(obj.id)) li.dataset.id = String(obj.id);
  const time = document.createElement("span");
  time.className = "time";
  time.textContent = stamp(obj.timestamp, earlier);
  const who = document.createElement("span");
  who.className = "sender";
  who.textContent = isPrivate
    ? (obj.sender === state.name ? `${obj.sender} → ${obj.to}` : `${obj.sender} (privately)`)
    : String(obj.sender) + ":";
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = typeof obj.content === "string" ? obj.content : JSON.stringify(obj.content);
  li.append(time, who, text);
  const actions = userActions(isPrivate ? null : obj.sender);
  if (state.allowed.has("remove") && Number.isInteger(obj.id) && !isPrivate) {
    actions.append(actionButton("remove", `remove message ${obj.id}`, () => send("remove", String(obj.id))));
  }
  if (actions.childNodes.length) li.append(actions);
  append(li);
}

// A history's content in any shape a server may send: a list of objects, a list of JSON
// strings, or the JSON text of a list.
function historyEntries(content) {
  let list = content;
  if (typeof list === "string") { try { list = JSON.parse(list); } catch (e) { return []; } }
  if (!Array.isArray(list)) return [];
  const out = [];
  for (let entry of list) {
    if (typeof entry === "string") { try { entry = JSON.parse(entry); } catch (e) { entry = { content: entry }; } }
    if (entry && typeof entry === "object") out.push(entry);
  }
  return out;
}

function showNames(names) {
  state.users = names.slice();
  const ul = $("names");
  ul.replaceChildren();
  for (const name of names) {
    const li = document.createElement("li");
    const label = document.createElement("span");
    label.textContent = name + (name === state.name ? " (you)" : "");
    li.append(label);
    if (name !== state.name) {
      li.append(actionButton("pm", `private message to ${name}`, () => privateTo(name)));
      li.append(userActions(name));
    }
    ul.append(li);
  }
  const select = $("send-to");
  const chosen = select.value;
  select.replaceChildren(new Option("to the room", ""));
  for (const name of names) if (name !== state.name) select.append(new Option(`to ${name} only`, name));
  select.value = names.includes(chosen) ? chosen : "";
}

function privateTo(name) {
  const select = $("send-to");
  if (![...select.options].some((o) => o.value === name)) select.append(new Option(`to ${name} only`, name));
  select.value = name;
  $("send-text").focus();
}

function showRooms(rooms) {
  const ul = $("rooms");
  ul.replaceChildren();
  for (const room of rooms) {
    const li = document.createElement("li");
    if (String(room.name).toLowerCase() === state.room.toLowerCase()) li.className = "current";
    const link = document.createElement("a");
    link.textContent = `${room.name} (${room.members})`;
    link.title = room.topic ? String(room.topic) : "";
    link.addEventListener("click", () => send("join", String(room.name)));
    li.append(link);
    ul.append(li);
  }
}

function setRoom(room, topic) {
  state.room = room;
  $("room-title").textContent = room;
  $("topic").textContent = topic || "(no topic)";
  $("leave-room").hidden = room.toLowerCase() === "lobby";
}

function refreshPermissions() {
  $("topic-form").hidden = !state.allowed.has("kick");
}

// -- the protocol -------------------------------------------------------------------------

function handle(obj) {
  const kind = obj.response;
  if (kind === "message") return showMessage(obj, obj.history === true);
  if (kind === "history") {
    for (const entry of historyEntries(obj.content)) showMessage(entry, true);
    return;
  }
  if (kind === "error") {
    if (!state.loggedIn && (obj.request === "login" || /username|name|password|banned/i.test(obj.content))) {
      $("login-error").textContent = String(obj.content);
      state.wanted = false;
      showLogin();
      return;
    }
    return note(obj.content, "error");
  }
  if (kind !== "info") return;
  if (!state.loggedIn && obj.username && Array.isArray(obj.features)) return loggedIn(obj);
  if (Array.isArray(obj.names)) {
    state.skipHelp = false;  // the help text, when asked for by the page, ends here
    return showNames(obj.names.map(String));
  }
  if (state.skipHelp && obj.event === undefined) return;  // the rest of that help text
  if (Array.isArray(obj.rooms)) return showRooms(obj.rooms);
  if (Array.isArray(obj.requests)) {
    state.allowed = new Set(obj.requests.map(String));
    refreshPermissions();
    state.skipHelp = state.autoHelp > 0;
    if (state.autoHelp > 0) state.autoHelp -= 1;
    if (state.skipHelp) return;
  }
  if (obj.event === undefined && typeof obj.topic === "string" && state.quietTopic) {
    state.quietTopic = false;
    $("topic").textContent = obj.topic || "(no topic)";
    return;
  }
  switch (obj.event) {
    case "joined":
      $("messages").replaceChildren();
      setRoom(String(obj.room), obj.topic);
      note(obj.content, "info");
      askForState(false);
      return;
    case "join": case "leave":
      note(obj.content, "info");
      send("names");
      return;
    case "topic":
      $("topic").textContent = obj.topic || "(no topic)";
      return note(obj.content, "info");
    case "removed":
      for (const id of obj.deleted || []) {
        const li = document.querySelector(`#messages li[data-id="${Number(id)}"]`);
        if (li) li.classList.add("removed");
      }
      return note(obj.content, "info");
    default:
      if (obj.username === state.name && /^Logged out/.test(obj.content)) return loggedOut();
      return note(obj.content, "info");
  }
}

// What the page shows beside the messages: what we may do here (help's `requests`),
// who is here, the rooms, the topic. Their answers update the panel, not the log; the
// names answer comes after help's pieces, so it marks the end of the help text.
function askForState(topic) {
  state.autoHelp += 1;
  send("help");
  send("names");
  send("rooms");
  if (topic) { state.quietTopic = true; send("topic"); }
}

function loggedIn(obj) {
  state.loggedIn = true;
  state.wanted = true;
  state.name = String(obj.username);
  $("login-error").textContent = "";
  $("login-view").hidden = true;
  $("chat-view").hidden = false;
  $("messages").replaceChildren();
  setRoom(obj.room ? String(obj.room) : "lobby", "");
  note(obj.content, "info");
  askForState(true);
  $("send-text").focus();
}

function loggedOut() {
  state.loggedIn = false;
  state.wanted = false;
  state.password = "";
  showLogin();
}

function showLogin() {
  $("chat-view").hidden = true;
  $("login-view").hidden = false;
  $("login-name").focus();
}

// -- the page -----------------------------------------------------------------------------

function setup() {
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    state.name = $("login-name").value.trim();
    state.password = $("login-password").value;
    $("login-password").value = "";
    state.wanted = true;
    if (!login() && (!state.ws || state.ws.readyState !== WebSocket.OPEN)) {
      $("login-error").textContent = "Not connected yet; logging in when the server answers";
    }
  });
  $("send-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("send-text");
    const text = input.value;
    if (!text.trim()) return;
    const to = $("send-to").value;
    const ok = to ? send("sendto", `${to} ${text}`) : send("msg", text);
    if (ok) input.value = "";
    else note("Not connected; the message was not sent", "error");
  });
  $("room-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const room = $("room-name").value.trim();
    if (room) send("join", room);
  });
  $("create-room").addEventListener("click", () => {
    const room = $("room-name").value.trim();
    if (room) send("create", room);
  });
  $("leave-room").addEventListener("click", () => send("leave"));
  $("topic-form").addEventListener("submit", (event) => {
    event.preventDefault();
    send("topic", $("topic-text").value);
    $("topic-text").value = "";
  });
  $("logout").addEventListener("click", () => send("logout"));
  connect();
}

setup();
