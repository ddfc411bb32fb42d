// Herald console: plain JavaScript, no framework. Every value from the
// server is written with textContent, never as HTML.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const el = (tag, props = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k in e && k !== "ariaLabel") e[k] = v;
    else e.setAttribute(k === "ariaLabel" ? "aria-label" : k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
};
const when = (t) => { const d = new Date(t); return isNaN(d) ? "" : d.toLocaleString(); };

async function api(path, opts = {}) {
  const res = await fetch(path, { headers: { "Content-Type": "application/json" }, ...opts });
  let body = null;
  try { body = await res.json(); } catch { body = null; }
  return { ok: res.ok, status: res.status, body };
}

// ---- views ----------------------------------------------------------------
const views = ["users", "mailbox", "events", "dlq", "health"];
const onShow = {};
let current = null;
let mailTimer = null;

function show() {
  const want = location.hash.slice(1);
  const name = views.includes(want) ? want : "users";
  for (const v of views) {
    $("#" + v).classList.toggle("active", v === name);
    const a = $(`nav a[href="#${v}"]`);
    if (v === name) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  clearInterval(mailTimer);
  if (name === "mailbox") mailTimer = setInterval(loadMails, 2000);
  if (current !== null && current !== name) {
    const h = $(`#${name} h2`);
    h.tabIndex = -1;
    h.focus();
  }
  current = name;
  onShow[name]?.();
}
window.addEventListener("hashchange", show);

// ---- users ----------------------------------------------------------------
async function loadUsers() {
  const q = $("#user-q").value.trim();
  const { ok, body } = await api("/api/users" + (q ? "?q=" + encodeURIComponent(q) : ""));
  const tbody = $("#user-table tbody");
  tbody.replaceChildren();
  if (!ok) { $("#users-status").textContent = body?.message || "Users cannot be listed."; return; }
  for (const u of body) {
    tbody.append(el("tr", {}, el("td", {}, u.name), el("td", {}, u.email), el("td", {}, when(u.created_at))));
  }
  $("#users-status").textContent = body.length === 0 ? (q ? "No user matches." : "No users yet.") : `${body.length} user${body.length === 1 ? "" : "s"}.`;
}
onShow.users = loadUsers;
$("#user-search").addEventListener("submit", (e) => { e.preventDefault(); loadUsers(); });

$("#register").addEventListener("submit", async (e) => {
  e.preventDefault();
  const form = e.target;
  const fields = ["name", "email", "password"];
  for (const f of fields) { $(`#reg-${f}-err`).textContent = ""; $(`#reg-${f}`).removeAttribute("aria-invalid"); }
  const status = $("#register-status");
  status.className = "";
  status.textContent = "Registering…";
  const data = Object.fromEntries(fields.map((f) => [f, form.elements[f].value]));
  const { ok, status: code, body } = await api("/api/users", { method: "POST", body: JSON.stringify(data) });
  if (ok) {
    status.className = "ok";
    status.textContent = `Registered ${body.name} <${body.email}>. The welcome mail is on its way.`;
    form.reset();
    loadUsers();
    return;
  }
  status.className = "bad";
  let first = null;
  for (const [f, why] of Object.entries(body?.fields || {})) {
    const input = $(`#reg-${f}`);
    if (!input) continue;
    $(`#reg-${f}-err`).textContent = why;
    input.setAttribute("aria-invalid", "true");
    first = first || input;
  }
  status.textContent = first ? "Please correct the fields marked above." : (body?.message || `Registration failed (HTTP ${code}).`);
  if (body?.code === "already_exists" && !first) status.textContent = body.message;
  (first || status).focus?.();
});

// ---- mailbox --------------------------------------------------------------
let mailCount = -1;
async function loadMails() {
  const { ok, body } = await api("/api/mails");
  const status = $("#mail-status");
  if (!ok) { status.textContent = body?.message || "The mailbox cannot be read."; return; }
  if (body.length === mailCount) return;
  mailCount = body.length;
  const list = $("#mail-list");
  list.replaceChildren();
  for (const m of body) {
    list.append(el("li", {},
      el("button", { type: "button", class: "link", onclick: () => openMail(m.id) }, m.subject || "(no subject)"),
      el("div", { class: "muted" }, `to ${(m.to || []).join(", ")} · ${when(m.received || m.date)}`)));
  }
  status.textContent = `${body.length} mail${body.length === 1 ? "" : "s"}.`;
}
async function openMail(id) {
  const view = $("#mail-view");
  const { ok, body } = await api("/api/mails/" + encodeURIComponent(id));
  if (!ok) { view.replaceChildren(el("p", { class: "bad" }, body?.message || "The mail cannot be read.")); return; }
  view.replaceChildren(
    el("h3", {}, body.subject || "(no subject)"),
    el("dl", {},
      el("dt", {}, "From"), el("dd", {}, body.from || ""),
      el("dt", {}, "To"), el("dd", {}, (body.to || []).join(", ")),
      el("dt", {}, "Date"), el("dd", {}, when(body.date))),
    el("pre", {}, body.body || ""));
}
onShow.mailbox = () => { mailCount = -1; loadMails(); };
$("#mail-refresh").addEventListener("click", () => { mailCount = -1; loadMails(); });

// ---- live events ------------------------------------------------------------
function startEvents() {
  const status = $("#events-status");
  const src = new EventSource("/api/events");
  src.onopen = () => { status.textContent = "Live."; };
  src.onerror = () => { status.textContent = "Disconnected; reconnecting…"; };
  src.addEventListener("message", (e) => {
    const ev = JSON.parse(e.data);
    const list = $("#event-list");
    const dead = ev.topic.endsWith(".dlq");
    list.prepend(el("li", {},
      el("span", { class: "tag" + (dead ? " bad" : "") }, ev.topic), " ",
      ev.type ? ev.type + " " : "", el("code", {}, ev.id),
      el("div", { class: "muted" }, `${when(ev.at)}${ev.attempt ? " · attempt " + ev.attempt : ""}${ev.reason ? " · " + ev.reason : ""}`)));
    while (list.children.length > 100) list.lastChild.remove();
  });
  src.addEventListener("stats", (e) => {
    const s = JSON.parse(e.data);
    const tbody = $("#flow-table tbody");
    tbody.replaceChildren();
    for (const f of s.flows) {
      tbody.append(el("tr", {}, el("td", {}, f.topic), el("td", {}, f.queue || "—"),
        ...[f.published, f.delivered, f.acked, f.nacked, f.dead_lettered, f.lag < 0 ? "—" : f.lag].map((n) => el("td", { class: "num" }, n))));
    }
    $("#outbox").textContent = s.outbox.length === 0 ? "No outbox reported." :
      s.outbox.map((o) => `${o.outbox}: ${o.rows} waiting${o.rows ? `, oldest ${o.oldest_seconds.toFixed(1)} s` : ""}`).join("; ");
  });
}

// ---- dead letters -------------------------------------------------------------
async function loadDLQ() {
  const sel = $("#dlq-topic");
  const topic = sel.value;
  const { ok, body } = await api("/api/dlq" + (topic ? "?topic=" + encodeURIComponent(topic) : ""));
  const status = $("#dlq-status");
  const list = $("#dlq-list");
  list.replaceChildren();
  if (!ok) { status.textContent = body?.message || "Dead letters cannot be read."; return; }
  if (sel.options.length === 0) for (const t of body.topics) sel.append(el("option", { value: t }, t));
  sel.value = body.topic;
  status.textContent = body.dead_letters.length === 0 ? `No dead letters on ${body.topic}.` : `${body.dead_letters.length} dead letter${body.dead_letters.length === 1 ? "" : "s"} on ${body.topic}.`;
  for (const d of body.dead_letters) {
    const act = async (what) => {
      const r = await api("/api/dlq/" + what, { method: "POST", body: JSON.stringify({ topic: body.topic, ids: [d.id] }) });
      await loadDLQ();
      $("#dlq-status").textContent = r.ok ? `${what === "replay" ? "Replayed" : "Purged"} ${d.id}. ` + $("#dlq-status").textContent : (r.body?.message || `${what} failed.`);
    };
    list.append(el("li", { "data-id": d.id },
      el("div", {}, el("code", {}, d.id), " ", el("span", { class: "tag" }, `from ${d.original_topic}${d.queue ? " · group " + d.queue : ""} · ${d.attempts} attempt(s)`)),
      el("div", { class: "bad" }, d.reason),
      el("details", {}, el("summary", {}, "Show message"),
        el("pre", { class: "dlq-body" }, Object.entries(d.header).map(([k, v]) => `${k}: ${v}`).join("\n") + "\n\n" + d.body)),
      el("div", { class: "actions" },
        el("button", { type: "button", ariaLabel: `Replay ${d.id}`, onclick: () => act("replay") }, "Replay"),
        el("button", { type: "button", class: "danger", ariaLabel: `Purge ${d.id}`, onclick: () => act("purge") }, "Purge"))));
  }
}
onShow.dlq = loadDLQ;
$("#dlq-form").addEventListener("submit", (e) => { e.preventDefault(); loadDLQ(); });

// ---- health -------------------------------------------------------------------
async function loadHealth() {
  const { ok, body } = await api("/api/health");
  const list = $("#health-list");
  list.replaceChildren();
  if (!ok) { list.append(el("li", { class: "bad" }, "Health cannot be read.")); return; }
  for (const h of body) {
    list.append(el("li", {}, el("strong", {}, h.name), " ",
      el("span", { class: h.ok ? "ok" : "bad" }, h.ok ? "✓ healthy" : "✗ failing"), " ",
      el("span", { class: "muted" }, h.detail)));
  }
}
onShow.health = loadHealth;
$("#health-refresh").addEventListener("click", loadHealth);

startEvents();
show();
