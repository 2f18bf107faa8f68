// The Ambrosia web admin page: a client of the HTTP API (/api/v1), with
// no build step and nothing fetched from elsewhere. The token (the admin
// token, or a login's) lives in the tab's sessionStorage only.
"use strict";

const api = "../api/v1";
let token = sessionStorage.getItem("ambrosia-token") || "";
let server = null;
let refresher = 0;

const $ = (id) => document.getElementById(id);

// el makes an element with text: user data is only ever set as text.
function el(tag, text, attrs) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

function row(cells) {
  const tr = el("tr");
  for (const c of cells) {
    const td = c instanceof Node ? el("td") : el("td", c);
    if (c instanceof Node) td.append(c);
    if (typeof c === "number") td.className = "num";
    tr.append(td);
  }
  return tr;
}

function button(text, onclick, attrs) {
  const b = el("button", text, attrs);
  b.type = "button";
  b.addEventListener("click", onclick);
  return b;
}

async function call(method, path, body) {
  const opts = { method, headers: { Authorization: "Bearer " + token } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(api + path, opts);
  if (r.status === 401) {
    logout("Your login has ended: log in again.");
    throw new Error("logged out");
  }
  const text = await r.text();
  const data = text ? JSON.parse(text) : null;
  if (!r.ok) throw new Error((data && data.error) || r.statusText);
  return data;
}

// report shows what went wrong with an action; a refresh's failure too.
function report(err) {
  if (err.message !== "logged out") $("error").textContent = err.message;
}

function logout(why) {
  if (token.startsWith("login-")) {
    fetch(api + "/login", { method: "DELETE", headers: { Authorization: "Bearer " + token } }).catch(() => {});
  }
  token = "";
  sessionStorage.removeItem("ambrosia-token");
  clearInterval(refresher);
  $("app").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("who").textContent = "";
  $("login-error").textContent = why || "";
}

async function start(who) {
  try {
    server = await call("GET", "/server");
  } catch (err) {
    if (err.message !== "logged out") logout(err.message);
    return;
  }
  sessionStorage.setItem("ambrosia-token", token);
  if (who) sessionStorage.setItem("ambrosia-who", who);
  $("who").textContent = sessionStorage.getItem("ambrosia-who") || "";
  $("server").textContent = "version " + server.version + " · " + server.domains.join(", ");
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
  $("error").textContent = "";
  await refresh();
  clearInterval(refresher);
  refresher = setInterval(refreshCounters, 3000);
}

const counterNames = [
  ["ambrosia_c2s_sessions", "Client sessions"],
  ["ambrosia_c2s_connections", "Client connections"],
  ["ambrosia_c2s_authentications_total", "Client authentications"],
  ["ambrosia_sm_stanzas_routed_total", "Stanzas routed", true],
  ["ambrosia_sm_offline_messages_stored_total", "Offline messages stored"],
  ["ambrosia_sm_archive_entries_written_total", "Archive entries written", true],
  ["ambrosia_s2s_incoming_streams", "Incoming server streams"],
  ["ambrosia_s2s_outgoing_streams", "Outgoing server streams"],
  ["ambrosia_component_connected", "Components connected"],
  ["ambrosia_link_connected", "Service links up"],
  ["ambrosia_appservice_backlog", "Application service backlog"],
  ["process_resident_memory_bytes", "Resident memory (MiB)"],
  ["go_goroutines", "Goroutines"],
];
let lastCounters = null;

async function refreshCounters() {
  let stats;
  try {
    stats = (await call("GET", "/stats")).stats;
  } catch (err) {
    report(err);
    return;
  }
  const now = Date.now();
  const body = $("counters");
  body.replaceChildren();
  for (const [name, label, rate] of counterNames) {
    if (!(name in stats)) continue;
    let v = stats[name];
    if (name === "process_resident_memory_bytes") v = Math.round(v / 1048576);
    const cells = [label, v];
    if (rate && lastCounters && name in lastCounters.stats) {
      const dt = (now - lastCounters.at) / 1000;
      cells.push(Math.round((stats[name] - lastCounters.stats[name]) / dt) + "/s");
    }
    const tr = row(cells);
    tr.dataset.metric = name;
    body.append(tr);
  }
  lastCounters = { at: now, stats };
}

async function refresh() {
  $("error").textContent = "";
  await Promise.all([refreshCounters(), refreshUsers(), refreshRooms(), refreshComponents(), refreshS2S()]).catch(report);
}

async function refreshUsers() {
  const [sessions, ...perDomain] = await Promise.all([
    call("GET", "/sessions"),
    ...server.domains.map((d) => call("GET", "/users?domain=" + encodeURIComponent(d))),
  ]);
  const users = { users: perDomain.flatMap((u) => u.users) };
  const count = {};
  for (const s of sessions.sessions) {
    const bare = s.jid.split("/")[0];
    count[bare] = (count[bare] || 0) + 1;
  }
  const ul = $("user-list");
  ul.replaceChildren();
  for (const u of users.users) {
    const actions = el("span");
    actions.append(
      button("Reset password", () => resetPassword(u)),
      " ",
      button("Delete", () => deleteUser(u), { "data-user": u }),
    );
    const tr = row([u, count[u] || 0, actions]);
    tr.dataset.user = u;
    ul.append(tr);
  }
  const sl = $("session-list");
  sl.replaceChildren();
  for (const s of sessions.sessions) {
    const kick = button("Kick", () => kickSession(s.jid), { "data-session": s.jid });
    const tr = row([s.jid, s.address || "", s.kind, s.available ? "yes" : "no", kick]);
    tr.dataset.session = s.jid;
    sl.append(tr);
  }
}

async function refreshRooms() {
  const rl = $("room-list");
  rl.replaceChildren();
  for (const service of server.conference) {
    const rooms = await call("GET", "/rooms?service=" + encodeURIComponent(service));
    for (const r of rooms.rooms) rl.append(row([r.jid, r.name || "", r.occupants, r.public ? "yes" : "no"]));
  }
}

async function refreshComponents() {
  const cl = $("component-list");
  cl.replaceChildren();
  for (const c of (await call("GET", "/components")).components) cl.append(row([c.domain, c.kind, c.connected ? "yes" : "no"]));
}

async function refreshS2S() {
  const sl = $("s2s-list");
  sl.replaceChildren();
  for (const s of (await call("GET", "/s2s")).s2s) sl.append(row([s.local, s.remote, s.direction, s.auth]));
}

async function act(what) {
  $("error").textContent = "";
  try {
    await what();
  } catch (err) {
    report(err);
  }
  await refresh();
}

function kickSession(full) {
  const reason = prompt("End " + full + "'s session. The reason the client is told (optional):", "");
  if (reason === null) return;
  act(() => call("DELETE", "/sessions/" + encodeURIComponent(full) + "?reason=" + encodeURIComponent(reason)));
}

function deleteUser(user) {
  if (!confirm("Delete " + user + " and everything stored for them?")) return;
  act(() => call("DELETE", "/users/" + encodeURIComponent(user)));
}

function resetPassword(user) {
  const password = prompt("New password for " + user + " (their sessions end):", "");
  if (!password) return;
  act(() => call("PUT", "/users/" + encodeURIComponent(user) + "/password", { password, end_sessions: true }));
}

$("user-add").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const f = ev.target;
  const body = { jid: f.jid.value.trim(), password: f.password.value };
  act(async () => {
    await call("POST", "/users", body);
    f.reset();
  });
});

$("login-account").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target;
  const r = await fetch(api + "/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ jid: f.jid.value.trim(), password: f.password.value }),
  });
  const data = await r.json().catch(() => ({}));
  f.password.value = "";
  if (!r.ok) {
    $("login-error").textContent = data.error || r.statusText;
    return;
  }
  token = data.token;
  start(data.jid);
});

$("login-token").addEventListener("submit", (ev) => {
  ev.preventDefault();
  token = ev.target.token.value.trim();
  ev.target.reset();
  start("admin token");
});

$("logout").addEventListener("click", () => logout());

if (token) start();
