// Pantau console: writes go to the REST API with the session's CSRF token;
// the overview and target pages follow their targets over the WebSocket hub,
// the incident pages their incidents.
(function () {
  "use strict";
  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function flash(text, bad) {
    const f = document.getElementById("flash");
    if (!f) return;
    f.textContent = text;
    f.className = bad ? "flash bad" : "flash";
    f.hidden = false;
  }

  // Turns "30m", "2h", "1d" into milliseconds; null when it is not one.
  function span(text) {
    const m = /^(\d{1,6})([smhd])$/.exec((text || "").trim());
    if (!m) return null;
    return Number(m[1]) * { s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[m[2]];
  }

  // The JSON body of a form: a silence's matchers and times, or its fields.
  function body(form) {
    const data = Object.fromEntries(new FormData(form).entries());
    if (form.dataset.kind === "maintenance") return maintenance(data);
    if (form.dataset.kind !== "silence") return data;
    const ms = span(data.duration);
    if (ms === null) throw new Error("For: use a number and s, m, h or d, e.g. 2h");
    const out = {
      matchers: [{ label: data.label, value: data.value }],
      ends_at: new Date(Date.now() + ms).toISOString(),
      comment: data.comment || "",
    };
    if (data.repeat_every) out.repeat_every = data.repeat_every;
    return out;
  }

  // A maintenance window from now for the form's span, covering its targets;
  // the server checks it with the configuration's parser.
  function maintenance(data) {
    const ms = span(data.duration);
    if (ms === null) throw new Error("For: use a number and s, m, h or d, e.g. 2h");
    const iso = (t) => new Date(t).toISOString().replace(/\.\d{3}Z$/, "Z");
    const now = Date.now();
    const out = {
      id: data.id,
      targets: (data.targets || "").split(",").map((t) => t.trim()).filter((t) => t),
      start: iso(now),
      end: iso(now + ms),
      checks: data.checks || "pause",
    };
    if (data.name) out.name = data.name;
    return out;
  }

  async function call(el, url, method, payload) {
    const headers = { "X-CSRF-Token": csrf() };
    const init = { method, headers, credentials: "same-origin" };
    if (payload !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(payload);
    }
    const r = await fetch(url, init);
    if (!r.ok) {
      let msg = r.status + " " + r.statusText;
      try { const v = await r.json(); msg = (v.error && v.error.message) || v.message || msg; } catch (e) { /* not JSON */ }
      flash(msg, true);
      return;
    }
    const out = r.status === 204 ? null : await r.json().catch(() => null);
    if (el.dataset.then) { location.href = el.dataset.then; return out; }
    if (el.dataset.reload !== undefined) { location.reload(); return out; }
    flash(el.dataset.done || "Done.");
    return out;
  }
  // For the pages' own scripts (admin.js): the same call and flash.
  window.pantau = { call, flash };

  document.addEventListener("submit", (ev) => {
    const form = ev.target.closest("form[data-api]");
    if (!form) return;
    ev.preventDefault();
    let payload;
    try { payload = body(form); } catch (e) { flash(e.message, true); return; }
    call(form, form.dataset.api, form.dataset.method || "POST", payload).catch((e) => flash(String(e), true));
  });

  document.addEventListener("click", (ev) => {
    const b = ev.target.closest("button[data-api]");
    if (!b || b.form) return;
    if (b.dataset.confirm && !confirm(b.dataset.confirm)) return;
    call(b, b.dataset.api, b.dataset.method || "POST").catch((e) => flash(String(e), true));
  });

  // Live rows: one WebSocket for the targets on the page.
  let ws = null;
  function state(row) {
    const locs = row.querySelectorAll("[data-location].loc");
    const down = row.querySelectorAll("[data-location].loc.down").length;
    if (!locs.length) return "pending";
    return down === 0 ? "up" : down === locs.length ? "down" : "partial";
  }
  function apply(r) {
    document.querySelectorAll('[data-target="' + CSS.escape(r.target_id) + '"]').forEach((row) => {
      const cells = row.querySelector(".locs");
      if (cells) {
        let loc = cells.querySelector('[data-location="' + CSS.escape(r.location) + '"]');
        if (!loc) {
          cells.querySelectorAll(".muted").forEach((m) => m.remove());
          loc = document.createElement("span");
          loc.dataset.location = r.location;
          loc.textContent = r.location;
          cells.appendChild(loc);
        }
        loc.className = "loc " + r.status;
        loc.title = r.message || "";
      }
      const lat = row.querySelector("[data-latency]");
      if (lat) lat.textContent = r.latency_ms == null ? "–" : r.latency_ms.toFixed(1) + " ms";
      const s = cells ? state(row) : r.status;
      row.querySelectorAll("[data-state]").forEach((p) => { p.textContent = s; p.className = "pill " + s; });
      if (row.tagName === "TR") row.className = s;
    });
  }
  function follow() {
    const holder = document.querySelector("[data-ids]");
    if (ws) { ws.onclose = null; ws.close(); ws = null; }
    if (!holder || !holder.dataset.ids) return;
    const proto = location.protocol === "https:" ? "wss://" : "ws://";
    ws = new WebSocket(proto + location.host + "/api/v1/monitoring/events?types=check_result&target=" + encodeURIComponent(holder.dataset.ids));
    ws.onmessage = (m) => {
      try {
        const ev = JSON.parse(m.data);
        if (ev.type === "check_result") apply(ev.data);
      } catch (e) { /* not an event */ }
    };
    ws.onclose = () => setTimeout(follow, 2000);
  }
  document.addEventListener("DOMContentLoaded", follow);
  document.body.addEventListener("htmx:afterSwap", follow);

  // Live incidents: the list and one incident's page follow the hub's
  // `incident` events (the incident after the change, and its new entry).
  // Everything is written with textContent: an event's text is not markup.
  let incidentWs = null;
  function pill(el, s) { el.textContent = s; el.className = "pill " + s; }
  function cell(text) { const td = document.createElement("td"); td.textContent = text == null ? "" : String(text); return td; }
  function incidentRow(list, i) {
    let row = list.querySelector('tr[data-incident="' + CSS.escape(i.id) + '"]');
    if (!row) {
      // A new incident shows on the first page when the filter takes it.
      const filter = list.dataset.stateFilter;
      if (list.dataset.page !== "1" || (filter && filter !== i.state)) return;
      list.querySelectorAll("tr.empty").forEach((r) => r.remove());
      row = document.createElement("tr");
      row.dataset.incident = i.id;
      const state = document.createElement("td");
      const p = document.createElement("span");
      p.dataset.incidentState = "";
      state.appendChild(p);
      const what = document.createElement("td");
      const a = document.createElement("a");
      a.href = "/console/incidents/" + encodeURIComponent(i.id);
      a.dataset.incidentTitle = "";
      const why = document.createElement("small");
      why.className = "muted";
      why.textContent = i.root_cause ? "root cause " + i.root_cause : i.group_key;
      what.append(a, document.createElement("br"), why);
      const severity = cell(""); severity.dataset.incidentSeverity = "";
      const alerts = cell(""); alerts.dataset.incidentAlerts = "";
      row.append(state, what, severity, alerts, cell(i.opened_at));
      list.tBodies[0].prepend(row);
    }
    row.querySelectorAll("[data-incident-state]").forEach((p) => pill(p, i.state));
    row.querySelectorAll("[data-incident-title]").forEach((a) => { a.textContent = i.title; });
    row.querySelectorAll("[data-incident-severity]").forEach((c) => { c.textContent = i.severity; });
    row.querySelectorAll("[data-incident-alerts]").forEach((c) => { c.textContent = i.open_alerts + " / " + i.alerts; });
  }
  function incidentPage(page, i) {
    if (page.dataset.incident !== i.id) return;
    const put = (id, text) => { const el = document.getElementById(id); if (el) el.textContent = String(text); };
    const state = document.getElementById("incident-state");
    if (state) pill(state, i.state);
    put("incident-title", i.title);
    put("incident-open", i.open_alerts);
    put("incident-alerts", i.alerts);
    if (i.state !== "open") { const ack = document.getElementById("ack-form"); if (ack) ack.remove(); }
    const e = i.entry, timeline = document.getElementById("timeline");
    if (!e || !timeline) return;
    const tr = document.createElement("tr");
    tr.className = "entry-" + e.kind;
    const alert = cell("");
    if (e.alert_id) {
      const a = document.createElement("a");
      a.href = "/console/alerts/" + encodeURIComponent(e.alert_id);
      a.textContent = e.alert_id;
      alert.appendChild(a);
    }
    tr.append(cell(e.at), cell(e.kind), cell(e.actor || "engine"), alert, cell(e.text));
    timeline.tBodies[0].appendChild(tr);
  }
  function followIncidents() {
    const list = document.getElementById("incidents"), page = document.getElementById("incident");
    if (incidentWs) { incidentWs.onclose = null; incidentWs.close(); incidentWs = null; }
    if (!list && !page) return;
    const proto = location.protocol === "https:" ? "wss://" : "ws://";
    let url = proto + location.host + "/api/v1/monitoring/events?types=incident";
    if (page) url += "&resource=" + encodeURIComponent(page.dataset.incident);
    incidentWs = new WebSocket(url);
    incidentWs.onopen = () => { document.body.dataset.incidentsLive = "1"; };
    incidentWs.onmessage = (m) => {
      try {
        const ev = JSON.parse(m.data);
        if (ev.type !== "incident") return;
        if (list) incidentRow(list, ev.data);
        if (page) incidentPage(page, ev.data);
      } catch (e) { /* not an event */ }
    };
    incidentWs.onclose = () => { delete document.body.dataset.incidentsLive; setTimeout(followIncidents, 2000); };
  }
  document.addEventListener("DOMContentLoaded", followIncidents);

  // The target page's latency chart (uPlot), from the rolled-up history.
  async function chart(range) {
    const el = document.getElementById("chart");
    if (!el || !window.uPlot) return;
    const r = await fetch(el.dataset.history + "?period=" + range, { credentials: "same-origin" });
    if (!r.ok) { el.textContent = "No history: " + r.status; return; }
    const h = await r.json();
    const xs = [], avg = [], p95 = [];
    for (const p of h.points) {
      if (!p.start || !p.checks) continue;
      xs.push(Date.parse(p.start) / 1000); avg.push(p.latency_avg_ms); p95.push(p.latency_p95_ms);
    }
    el.textContent = "";
    if (!xs.length) { el.textContent = "No check in this range yet."; return; }
    new uPlot({
      width: Math.min(el.clientWidth || 600, 1100), height: 240,
      series: [{}, { label: "avg ms", stroke: "#0b61c2" }, { label: "p95 ms", stroke: "#d9a400" }],
    }, [xs, avg, p95], el);
  }
  document.addEventListener("click", (ev) => {
    const b = ev.target.closest("[data-range]");
    if (b) chart(b.dataset.range);
  });
  document.addEventListener("DOMContentLoaded", () => chart("24h"));
})();
