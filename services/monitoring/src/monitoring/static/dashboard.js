// Live alert feed: Server-Sent Events tell us an alert of our site changed; we then re-read
// the server-rendered feed fragment. No framework, no external script.
"use strict";
(function () {
  const body = document.body;
  const site = body.dataset.site || "";
  const feed = document.getElementById("feed");
  const live = document.getElementById("live-status");
  const query = site ? "?site=" + encodeURIComponent(site) : "";
  const openAudits = new Set();
  let refreshing = null;
  let again = false;

  async function refreshFeed() {
    if (refreshing) { again = true; return refreshing; }
    refreshing = (async () => {
      do {
        again = false;
        const r = await fetch("/dashboard/feed" + query, { credentials: "same-origin" });
        if (r.status === 401) { window.location = "/dashboard/login"; return; }
        if (!r.ok) continue;
        const html = await r.text();
        const kept = {};
        feed.querySelectorAll("[data-keep]").forEach((el) => { if (el.value) kept[el.dataset.keep] = el.value; });
        feed.innerHTML = html;
        feed.querySelectorAll("[data-keep]").forEach((el) => { if (kept[el.dataset.keep]) el.value = kept[el.dataset.keep]; });
        for (const id of openAudits) {
          const row = feed.querySelector('[data-alert-id="' + id + '"]');
          if (row) await showAudit(row); else openAudits.delete(id);
        }
      } while (again);
    })();
    try { await refreshing; } finally { refreshing = null; }
  }

  function connect() {
    const source = new EventSource("/v1/alerts/stream" + query);
    source.addEventListener("ready", () => {
      body.dataset.live = "connected";
      live.textContent = "live";
      live.className = "live on";
      refreshFeed(); // catch up on anything that changed while we were not listening
    });
    source.addEventListener("alert", () => refreshFeed());
    source.onerror = () => {
      body.dataset.live = "reconnecting";
      live.textContent = "reconnecting…";
      live.className = "live off";
    };
  }

  async function showAudit(row) {
    const list = row.querySelector(".audit");
    const r = await fetch("/v1/alerts/" + row.dataset.alertId + "/audit", { credentials: "same-origin" });
    list.replaceChildren();
    if (!r.ok) { list.textContent = "audit not available (" + r.status + ")"; list.hidden = false; return; }
    for (const e of (await r.json()).entries) {
      const li = document.createElement("li");
      const when = new Date(e.occurred_at).toISOString().replace("T", " ").slice(0, 19) + " UTC";
      const who = e.actor_detail ? e.actor_detail.name + " (" + e.actor + ", " + e.actor_detail.role + ")" : e.actor;
      li.textContent = when + " · " + who + " · " + e.action + " (" + (e.old_status || "-") + " → " +
        (e.new_status || "-") + ")" + (e.note ? ": " + e.note : "");
      li.dataset.action = e.action;
      list.appendChild(li);
    }
    if (!list.children.length) list.textContent = "no audit entries yet";
    list.hidden = false;
  }

  async function act(row, action) {
    const error = row.querySelector(".error");
    error.textContent = "";
    const payload = action === "acknowledge"
      ? { note: row.querySelector(".note").value.trim() || null }
      : { reason: row.querySelector(".reason").value };
    const r = await fetch("/v1/alerts/" + row.dataset.alertId + "/" + action, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload),
    });
    if (!r.ok) {
      const problem = (await r.json()).error || {};
      const fields = (problem.details || []).map((d) => d.field + ": " + d.message).join("; ");
      error.textContent = fields || problem.message || "failed (" + r.status + ")";
      return;
    }
    row.querySelectorAll("[data-keep]").forEach((el) => { el.value = ""; });
    await refreshFeed();
  }

  feed.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button) return;
    const row = button.closest("[data-alert-id]");
    const action = button.dataset.action;
    if (action === "audit") {
      const list = row.querySelector(".audit");
      if (!list.hidden) { list.hidden = true; openAudits.delete(row.dataset.alertId); return; }
      openAudits.add(row.dataset.alertId);
      showAudit(row);
    } else {
      act(row, action);
    }
  });

  function light(status) {
    const span = document.createElement("span");
    span.className = "light " + status;
    span.title = status;
    span.textContent = status;
    return span;
  }

  async function loadKris() {
    const target = document.getElementById("kris");
    if (!site) return;
    const r = await fetch("/v1/sites/" + encodeURIComponent(site) + "/kris", { credentials: "same-origin" });
    if (r.status === 404) { target.textContent = "not available"; return; }
    if (!r.ok) { target.textContent = "not available (" + r.status + ")"; return; }
    const data = await r.json();
    const table = document.createElement("table");
    table.className = "kris";
    for (const k of data.kris || []) {
      const tr = table.insertRow();
      tr.insertCell().appendChild(light(k.status));
      tr.insertCell().textContent = k.label || k.name;
      const value = k.value === null || k.value === undefined ? "–" : Number(k.value).toFixed(2) + " " + (k.unit || "");
      tr.insertCell().textContent = value;
      const t = k.threshold || {};
      tr.insertCell().textContent = t.direction ? (t.direction === "above" ? "≥ " : "≤ ") + t.amber + " / " + t.red : "";
      tr.dataset.kri = k.name;
    }
    target.replaceChildren(table);
    if (!table.rows.length) target.textContent = "no KRIs yet";
  }

  async function loadFlags() {
    const target = document.getElementById("flags");
    if (!site) return;
    const r = await fetch("/v1/flags?status=open&site=" + encodeURIComponent(site), { credentials: "same-origin" });
    if (r.status === 404) { target.textContent = "not available"; return; }
    if (!r.ok) { target.textContent = "not available (" + r.status + ")"; return; }
    const flags = (await r.json()).flags || [];
    const list = document.createElement("ul");
    list.className = "flags";
    for (const f of flags) {
      const li = document.createElement("li");
      const link = document.createElement("a");
      link.href = "/dashboard/participants/" + encodeURIComponent(f.participant_id);
      link.textContent = f.participant_id;
      li.append(link, " · " + f.kind + ": " + f.reason);
      list.appendChild(li);
    }
    target.replaceChildren(list);
    if (!flags.length) target.textContent = "no open flags";
  }

  connect();
  loadKris();
  loadFlags();
  setInterval(() => { loadKris(); loadFlags(); }, 60000);
  // Overdue marks depend on the clock too: re-read the feed each minute.
  setInterval(refreshFeed, 60000);
})();
