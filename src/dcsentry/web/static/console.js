// dcsentry console: live alerts over SSE and the few forms that change things. No framework, no build.
"use strict";

const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

async function send(method, url, body, contentType) {
  const headers = { "X-CSRF-Token": csrf() };
  if (contentType) headers["Content-Type"] = contentType;
  const r = await fetch(url, { method, headers, body, credentials: "same-origin" });
  let detail = "";
  if (!r.ok) {
    try { const j = await r.json(); detail = typeof j.detail === "string" ? j.detail : JSON.stringify(j.detail); }
    catch (e) { detail = r.statusText; }
  }
  return { ok: r.ok, status: r.status, detail };
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function when(iso) { return iso ? iso.slice(0, 19).replace("T", " ") + "Z" : ""; }

function entityLinks(ents) {
  const span = el("span");
  const add = (names, kind, cls) => (names || []).forEach((n) => {
    span.append(el("a", { class: "ent " + cls, href: `/entities/${kind}/${encodeURIComponent(n)}` }, n), " ");
  });
  add(ents.accounts, "account", "acct");
  add(ents.hosts, "host", "host");
  add(ents.dcs, "host", "dc");
  return span;
}

function alertRow(a) {
  return el("tr", { "data-id": a.id, "data-start": a.start, class: `sev-${a.severity} st-${a.status}` },
    el("td", { class: "when" }, when(a.start)),
    el("td", {}, el("span", { class: "badge sev" }, a.severity)),
    el("td", {}, el("a", { class: "title", href: `/alerts/${a.id}` }, a.title), el("div", { class: "sub" }, a.summary)),
    el("td", { class: "ents" }, entityLinks(a.entities || {})),
    el("td", { class: "num" }, String(a.count)),
    el("td", {}, el("span", { class: "badge st" }, a.status)));
}

function matches(a, f) {
  for (const k of ["type", "severity", "status", "kind"]) if (f[k] && a[k] !== f[k]) return false;
  if (f.entity) {
    const e = a.entities || {}, want = f.entity.toLowerCase();
    const all = [...(e.accounts || []), ...(e.hosts || []), ...(e.dcs || [])].map((x) => String(x).toLowerCase());
    if (!all.includes(want)) return false;
  }
  return true;
}

function liveAlerts() {
  const table = document.getElementById("alerts");
  const badge = document.getElementById("live");
  if (!table || !badge) return;
  const filters = JSON.parse(table.dataset.filters || "{}");
  const firstPage = !new URLSearchParams(location.search).get("cursor");
  const tbody = table.querySelector("tbody");
  const state = (s, text) => { badge.dataset.state = s; badge.textContent = text; };
  const es = new EventSource("/api/v1/alerts/stream");
  es.onopen = () => state("open", "live");
  es.onerror = () => state("error", "reconnecting…");
  es.addEventListener("alert", (msg) => {
    const a = JSON.parse(msg.data);
    const old = tbody.querySelector(`tr[data-id="${CSS.escape(a.id)}"]`);
    if (old) { old.replaceWith(alertRow(a)); return; }
    if (!firstPage || !matches(a, filters)) return;
    const row = alertRow(a);
    row.classList.add("fresh");
    const older = [...tbody.querySelectorAll("tr[data-start]")].find((r) => r.dataset.start < a.start);
    if (older) tbody.insertBefore(row, older);
    else if (tbody.rows.length < 50) tbody.append(row);  // older than the whole page: it belongs on a later one
    else return;
    const empty = document.getElementById("empty");
    if (empty) empty.remove();
  });
}

function statusForm() {
  const form = document.getElementById("status-form");
  if (!form) return;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const msg = document.getElementById("status-msg");
    msg.textContent = "saving…";
    const body = JSON.stringify({ status: form.status.value, comment: form.comment.value });
    const r = await send("POST", `/api/v1/alerts/${encodeURIComponent(form.dataset.alert)}/status`, body, "application/json");
    if (r.ok) location.reload(); else msg.textContent = `refused (${r.status}): ${r.detail}`;
  });
}

function settingForms() {
  document.querySelectorAll("form.setting-form").forEach((form) => {
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const msg = form.querySelector(".msg");
      const values = form.values.value.split("\n").map((s) => s.trim()).filter(Boolean);
      const body = JSON.stringify({ values, comment: form.comment ? form.comment.value : "" });
      const r = await send("PUT", `/api/v1/settings/${form.dataset.name}`, body, "application/json");
      if (r.ok) location.reload(); else msg.textContent = `refused (${r.status}): ${r.detail}`;
    });
  });
}

function auditUpload() {
  const form = document.getElementById("audit-form");
  if (!form) return;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const file = document.getElementById("audit-file").files[0];
    const msg = document.getElementById("audit-msg");
    if (!file) return;
    msg.textContent = "checking…";
    const r = await send("POST", `/api/v1/readiness/audits?filename=${encodeURIComponent(file.name)}`, file,
                         "application/octet-stream");
    if (r.ok) location.reload(); else msg.textContent = `refused (${r.status}): ${r.detail}`;
  });
}

function incidentRow(i) {
  const chain = el("td", { class: "chain" });
  (i.alerts || []).forEach((a, n) => {
    if (n) chain.append(" → ");
    chain.append(el("span", { class: "step", title: a.title }, (a.tactic ? a.tactic + ": " : "") + a.type));
  });
  return el("tr", { "data-id": i.id, "data-updated": String(i.updated_at), class: `sev-${i.severity} st-${i.status}` },
    el("td", { class: "when" }, when(i.start)),
    el("td", {}, el("span", { class: "badge sev" }, i.severity)),
    el("td", {}, el("a", { class: "title", href: `/incidents/${i.id}` }, i.title),
      el("div", { class: "sub" }, `${i.id} · until ${when(i.end)}`)),
    chain,
    el("td", { class: "num" }, String((i.alerts || []).length)),
    el("td", {}, el("span", { class: "badge st" }, i.status)));
}

function liveIncidents() {
  // Incidents grow as alerts are linked: the list is re-read every few seconds, newest first.
  const table = document.getElementById("incidents");
  const badge = document.getElementById("live");
  if (!table || !badge) return;
  const status = table.dataset.status;
  const tbody = table.querySelector("tbody");
  const state = (s, text) => { badge.dataset.state = s; badge.textContent = text; };
  const refresh = async () => {
    try {
      const r = await fetch(`/api/v1/incidents?limit=100${status ? "&status=" + encodeURIComponent(status) : ""}`,
                            { credentials: "same-origin" });
      if (!r.ok) throw new Error(String(r.status));
      const { incidents } = await r.json();
      const shown = new Map([...tbody.rows].map((row) => [row.dataset.id, row.dataset.updated]));
      const rows = incidents.map((i) => {
        const row = incidentRow(i);
        if (shown.get(i.id) !== String(i.updated_at)) row.classList.add("fresh");
        return row;
      });
      if (rows.some((row) => row.classList.contains("fresh")) || rows.length !== tbody.rows.length) {
        tbody.replaceChildren(...rows);
        const empty = document.getElementById("empty");
        if (empty && rows.length) empty.remove();
      }
      state("open", "live");
    } catch (e) { state("error", "reconnecting…"); }
  };
  refresh();
  setInterval(refresh, 3000);
}

function incidentForms() {
  const form = document.getElementById("incident-status-form");
  const comment = document.getElementById("incident-comment-form");
  if (form) form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const msg = document.getElementById("incident-status-msg");
    msg.textContent = "saving…";
    const body = JSON.stringify({ status: form.status.value, comment: form.comment.value });
    const r = await send("POST", `/api/v1/incidents/${encodeURIComponent(form.dataset.incident)}/status`, body,
                         "application/json");
    if (r.ok) location.reload(); else msg.textContent = `refused (${r.status}): ${r.detail}`;
  });
  if (comment) comment.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const msg = document.getElementById("incident-comment-msg");
    msg.textContent = "saving…";
    const body = JSON.stringify({ text: comment.text.value });
    const r = await send("POST", `/api/v1/incidents/${encodeURIComponent(comment.dataset.incident)}/comments`, body,
                         "application/json");
    if (r.ok) location.reload(); else msg.textContent = `refused (${r.status}): ${r.detail}`;
  });
}

function loginFromFragment() {
  // `serve --demo` prints /login#token=...: the fragment never reaches the server or its logs.
  const form = document.getElementById("login-form");
  if (!form || !location.hash.startsWith("#token=")) return;
  form.token.value = decodeURIComponent(location.hash.slice(7));
  history.replaceState(null, "", location.pathname + location.search);
  form.submit();
}

document.addEventListener("DOMContentLoaded", () => {
  loginFromFragment();
  liveAlerts();
  liveIncidents();
  statusForm();
  incidentForms();
  settingForms();
  auditUpload();
});
