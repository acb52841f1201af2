// Pantau console, administration pages: the rule, user, role and API key
// forms. Each is sent as JSON to its REST route through console.js's call
// (session cookie and CSRF token); what only the answer holds (a new API
// key) is shown once, in the page, never stored.
(function () {
  "use strict";
  const list = (s) => (s || "").split(",").map((x) => x.trim()).filter(Boolean);

  // "team=web, page=yes" as an object; a pair without `=` is refused.
  function labels(text) {
    const out = {};
    for (const pair of list(text)) {
      const at = pair.indexOf("=");
      if (at < 1) throw new Error("Labels: write name=value pairs separated by commas, not `" + pair.slice(0, 40) + "`");
      out[pair.slice(0, at).trim()] = pair.slice(at + 1).trim();
    }
    return out;
  }

  // The JSON body of each kind of form, from its fields.
  const bodies = {
    rule(d) {
      const out = {
        id: d.id, expr: d.expr, severity: d.severity, message: d.message || "",
        enabled: d.enabled === "true", labels: labels(d.labels), depends_on: list(d.depends_on),
      };
      for (const k of ["name", "for", "cooldown"]) if (d[k]) out[k] = d[k];
      return out;
    },
    user(d) { return { username: d.username, password: d.password, role: d.role }; },
    role(d) { return { role: d.role }; },
    key(d, form) {
      const out = { name: d.name, scopes: new FormData(form).getAll("scopes") };
      if (d.ttl) out.ttl = d.ttl;
      return out;
    },
  };

  document.addEventListener("submit", async (ev) => {
    const form = ev.target.closest("form[data-admin-api]");
    if (!form) return;
    ev.preventDefault();
    const p = window.pantau;
    let payload;
    try {
      payload = bodies[form.dataset.kind](Object.fromEntries(new FormData(form).entries()), form);
    } catch (e) { p.flash(e.message, true); return; }
    let out;
    try {
      out = await p.call(form, form.dataset.adminApi, form.dataset.method || "POST", payload);
    } catch (e) { p.flash(String(e), true); return; }
    const show = form.dataset.show && out && out[form.dataset.show];
    const into = form.dataset.showIn && document.getElementById(form.dataset.showIn);
    if (show && into) {
      into.querySelector("output").textContent = show;
      into.hidden = false;
      form.reset();
    }
  });

  // The channel form: the chosen type's fields, and the YAML of the channel
  // to paste under notifier.channels. Nothing is sent to the server.
  const channelForm = document.querySelector("form[data-channel-form]");
  if (channelForm) {
    const show = () => {
      const type = channelForm.elements.type.value;
      for (const fs of channelForm.querySelectorAll("fieldset[data-type]")) {
        const on = fs.dataset.type === type;
        fs.hidden = !on;
        fs.disabled = !on;
      }
    };
    channelForm.elements.type.addEventListener("change", show);
    show();
    channelForm.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const out = document.getElementById("channel-yaml");
      const lines = [];
      try {
        for (const [k, v] of new FormData(channelForm).entries()) {
          if (!String(v).trim()) continue;
          let value;
          if (k === "to") value = JSON.stringify(list(v));
          else if (k === "smtp" || k === "body" || k === "priorities") {
            try { value = JSON.stringify(JSON.parse(v)); } catch (e) { throw new Error(k + ": write a JSON object, " + e.message); }
          } else value = JSON.stringify(String(v).trim());
          lines.push((lines.length ? "  " : "- ") + k + ": " + value);
        }
      } catch (e) { window.pantau.flash(e.message, true); return; }
      out.textContent = lines.join("\n") + "\n";
      out.hidden = false;
    });
  }

  // "Send a test": the outcome goes into the row, not only the flash.
  document.addEventListener("click", async (ev) => {
    const b = ev.target.closest("button[data-admin-api]");
    if (!b) return;
    const into = document.getElementById(b.dataset.result);
    if (into) into.textContent = "sending…";
    let out;
    try {
      out = await window.pantau.call(b, b.dataset.adminApi, b.dataset.method || "POST");
    } catch (e) { window.pantau.flash(String(e), true); }
    if (!into) return;
    if (!out) { into.textContent = "not sent"; return; }
    into.textContent = out.ok
      ? "sent" + (out.latency_ms == null ? "" : " in " + Math.round(out.latency_ms) + " ms")
      : "failed: " + (out.error || "status " + out.status_code);
    into.className = out.ok ? "ok" : "error";
  });
})();
