// Pantau console, network pages: the router page follows its router over
// the WebSocket hub: a live traffic chart per interface (uPlot) from the
// `traffic` events, and the timeline from reboots, counter resets,
// interface changes and WAN detections. The locations page registers an
// instance with the join token the admin types (POST /sync/api/register).
// The target page's Edit form loads the target's REST body and saves it with
// PUT, showing the API's refusal (it names the field) next to the form.
(function () {
  "use strict";
  const form = document.getElementById("register");
  if (!form) return;
  const flash = (text, bad) => {
    const f = document.getElementById("flash");
    f.textContent = text;
    f.className = bad ? "flash bad" : "flash";
    f.hidden = false;
  };
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const d = Object.fromEntries(new FormData(form).entries());
    const body = {
      instance_id: d.instance_id, name: d.name, location: d.location,
      failover_order: Number(d.failover_order || 0),
    };
    try {
      const r = await fetch("/sync/api/register", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "Authorization": "Bearer " + d.join_token },
        body: JSON.stringify(body),
      });
      const v = await r.json().catch(() => ({}));
      if (!r.ok) { flash((v.error && v.error.message) || v.message || r.status + " " + r.statusText, true); return; }
      form.reset();
      document.getElementById("instance-token").textContent = v.token;
      document.getElementById("registered").hidden = false;
      flash("Registered " + body.instance_id + ".");
    } catch (e) { flash(String(e), true); }
  });
})();

(function () {
  "use strict";
  const KEEP = 120; // points per chart
  const TIMELINE = ["reboot", "counter_reset", "interface_up", "interface_down", "target_up", "target_down", "wan_detected"];
  const holder = document.getElementById("router");
  if (!holder) return;
  const router = holder.dataset.router;
  const charts = new Map(); // if_index -> { xs, ins, outs, plot }

  function rate(bits) {
    const units = [[1e12, "Tbit/s"], [1e9, "Gbit/s"], [1e6, "Mbit/s"], [1e3, "kbit/s"]];
    for (const [s, u] of units) if (bits >= s) return (bits / s).toFixed(1) + " " + u;
    return bits.toFixed(0) + " bit/s";
  }

  function traffic(ev) {
    const a = ev.attributes || {};
    const idx = a.if_index;
    const inb = Number(a.in_bits_per_second), outb = Number(a.out_bits_per_second);
    if (idx === undefined || !isFinite(inb) || !isFinite(outb)) return;
    const row = document.querySelector('#interfaces tr[data-if="' + CSS.escape(idx) + '"]');
    if (row) {
      row.querySelector("[data-in]").textContent = rate(inb);
      row.querySelector("[data-out]").textContent = rate(outb);
    }
    const box = document.querySelector('[data-chart="' + CSS.escape(idx) + '"]');
    if (!box || !window.uPlot) return;
    let c = charts.get(idx);
    if (!c) {
      c = { xs: [], ins: [], outs: [], plot: null };
      charts.set(idx, c);
    }
    const at = ev.occurred_at ? Date.parse(ev.occurred_at) / 1000 : Date.now() / 1000;
    c.xs.push(at); c.ins.push(inb); c.outs.push(outb);
    if (c.xs.length > KEEP) { c.xs.shift(); c.ins.shift(); c.outs.shift(); }
    box.hidden = false;
    if (!c.plot) {
      c.plot = new uPlot({
        width: Math.min(box.clientWidth || 600, 1100), height: 180,
        series: [{}, { label: "in bit/s", stroke: "#0b61c2" }, { label: "out bit/s", stroke: "#2e9e44" }],
      }, [c.xs, c.ins, c.outs], box);
    } else {
      c.plot.setData([c.xs, c.ins, c.outs]);
    }
  }

  function event(kind, ev) {
    const list = document.getElementById("timeline");
    if (!list) return;
    const empty = document.getElementById("timeline-empty");
    if (empty) empty.remove();
    const li = document.createElement("li");
    li.dataset.kind = kind;
    const pill = document.createElement("span");
    pill.className = "pill " + (ev.severity === "critical" ? "down" : ev.severity === "warning" ? "partial" : "up");
    pill.textContent = kind;
    const when = document.createElement("small");
    when.className = "muted";
    when.textContent = ev.occurred_at || "";
    li.append(pill, " " + (ev.message || "") + " ", when);
    list.prepend(li);
  }

  let ws = null;
  function follow() {
    const proto = location.protocol === "https:" ? "wss://" : "ws://";
    const types = ["traffic"].concat(TIMELINE).join(",");
    ws = new WebSocket(proto + location.host + "/api/v1/monitoring/events?types=" + types + "&router=" + encodeURIComponent(router));
    ws.onmessage = (m) => {
      let ev;
      try { ev = JSON.parse(m.data); } catch (e) { return; }
      if (!ev || !ev.data) return;
      const a = ev.data.attributes || {};
      // Events of other resources named like this router are not its own.
      if (ev.type !== "wan_detected" && a.router !== undefined && a.router !== router) return;
      if (ev.type === "traffic") traffic(ev.data);
      else if (TIMELINE.includes(ev.type)) event(ev.type, ev.data);
    };
    ws.onclose = () => setTimeout(follow, 2000);
  }
  follow();
})();

(function () {
  "use strict";
  const card = document.getElementById("edit-target");
  const form = document.getElementById("edit-form");
  if (!card || !form) return;
  const url = card.dataset.targetApi;
  const area = form.querySelector("textarea");
  const error = document.getElementById("edit-error");
  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const say = (text) => { error.textContent = text; error.hidden = !text; };
  const message = async (r) => {
    const v = await r.json().catch(() => ({}));
    return (v.error && v.error.message) || v.message || r.status + " " + r.statusText;
  };
  // What GET answers beyond the target itself; PUT does not take it.
  const STATE = ["source", "breaker", "paused"];

  document.getElementById("edit-load").addEventListener("click", async () => {
    say("");
    const r = await fetch(url, { credentials: "same-origin" });
    if (!r.ok) { form.hidden = false; say(await message(r)); return; }
    const t = await r.json();
    for (const k of STATE) delete t[k];
    area.value = JSON.stringify(t, null, 2);
    form.hidden = false;
    area.focus();
  });
  document.getElementById("edit-cancel").addEventListener("click", () => { say(""); form.hidden = true; });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    ev.stopPropagation();
    say("");
    let body;
    try { body = JSON.parse(area.value); } catch (e) { say("The target is not valid JSON: " + e.message); return; }
    if (area.value.includes('"***"')) {
      say("A secret is still shown as ***: type its real value (or remove the field) before saving.");
      return;
    }
    const r = await fetch(url, {
      method: "PUT", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify(body),
    });
    if (!r.ok) { say(await message(r)); return; }
    location.reload();
  });
})();
