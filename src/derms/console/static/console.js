// derms operator console: live updates from /console/api/stream and JSON actions.
// Hand-written, no dependencies, served by the app itself (works offline).
"use strict";
(function () {
  const page = document.body.dataset.page;
  const kw = (w) => (w === null || w === undefined ? "—" : (w / 1e3).toLocaleString("en-US", { minimumFractionDigits: 1, maximumFractionDigits: 1 }));
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  function flash(text, ok) {
    const el = $("#flash");
    if (!el) return;
    el.textContent = text;
    el.className = ok ? "ok" : "error";
  }

  async function post(path, body) {
    const res = await fetch("/console/api/" + path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      credentials: "same-origin",
      body: JSON.stringify(body),
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(data.detail || res.statusText);
    return data;
  }

  function act(path, body, done) {
    post(path, body)
      .then((data) => flash(done(data), true))
      .catch((err) => flash("Refused: " + err.message, false));
  }

  if (page === "login") {
    $("#login-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      post("session", { token: $("#token").value })
        .then(() => { window.location = "/console/"; })
        .catch((err) => { $("#login-error").textContent = err.message; });
    });
    return;
  }

  $("#logout").addEventListener("click", () => post("logout", {}).finally(() => { window.location = "/console/login"; }));

  function form(id, handler) {
    const f = $(id);
    if (f) f.addEventListener("submit", (ev) => { ev.preventDefault(); handler(new FormData(f)); });
  }
  form("#override-form", (d) => {
    let control;
    try { control = JSON.parse(d.get("control")); } catch (e) { flash("control is not valid JSON", false); return; }
    act("override", { der_id: d.get("der_id"), control, duration_s: 60 * Number(d.get("minutes")), reason: d.get("reason") },
      (r) => "Override sent: command " + r.command_id);
  });
  form("#cancel-form", (d) => act("cancel", { command_id: d.get("command_id") }, (r) => "Cancelled by command " + r.command_id));
  form("#optout-form", (d) => act("opt-out", { site_id: d.get("site_id"), opt_out: d.get("opt_out") === "true" },
    (r) => r.ders.length + " DERs updated"));
  form("#switch-form", (d) => act("switch", { switch_id: d.get("switch_id"), closed: d.get("closed") === "true" },
    (r) => "Switch operated; " + r.sites_moved + " sites moved feeder"));
  form("#outage-form", (d) => act("outage", { branch_id: d.get("branch_id"), out: d.get("out") === "true", note: d.get("note") },
    (r) => "Outage applied; " + r.sites_moved + " sites moved feeder"));
  $$("form.dispatch").forEach((f) => f.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const d = new FormData(f);
    act("dispatch", { feeder_id: f.dataset.feeder, direction: d.get("direction"), target_w: 1e3 * Number(d.get("target_kw")),
      duration_s: 60 * Number(d.get("minutes")) }, (r) => "Dispatch " + r.id + ": " + r.commands + " commands, " + r.refused + " refused");
  }));
  document.addEventListener("click", (ev) => {
    const t = ev.target;
    if (t.classList.contains("ack")) {
      act("ack", { alarm_id: Number(t.dataset.alarm) }, (r) => "Alarm " + r.id + " acknowledged");
    } else if (t.classList.contains("cover")) {
      act("dispatch", { feeder_id: t.dataset.feeder, direction: "up", target_w: Math.max(1, Number(t.dataset.w)), duration_s: 3600 },
        (r) => "Backups on " + r.feeder_id + ": " + r.commands + " commands sent");
    }
  });

  const canControl = document.body.dataset.role !== "viewer";

  function renderFeeders(state) {
    state.feeders.forEach((f) => {
      const row = $('tr[data-feeder="' + (f.feeder_id || "") + '"]') || (page === "feeder" ? $("#feeder-summary") : null);
      if (!row || (page === "feeder" && row.dataset.feeder !== f.feeder_id)) return;
      const set = (cls, v) => { const el = $("." + cls, row); if (el) el.textContent = v; };
      set("online", f.online); set("offline", f.offline); set("ders", f.ders);
      set("p", kw(f.p_w)); set("up", kw(f.flex_up_w)); set("down", kw(f.flex_down_w));
      set("cmds", f.active_commands); set("events", f.events.join(", "));
    });
    if ($("#fleet-online")) {
      $("#fleet-online").textContent = state.fleet.online;
      $("#fleet-offline").textContent = state.fleet.offline;
      $("#fleet-p").textContent = kw(state.fleet.p_w);
      $("#fleet-up").textContent = kw(state.fleet.flex_up_w);
      $("#fleet-down").textContent = kw(state.fleet.flex_down_w);
    }
  }

  function renderAlarms(state) {
    const body = $("#alarms tbody");
    if (!body) return;
    body.innerHTML = "";
    state.alarms.forEach((a) => {
      const tr = document.createElement("tr");
      tr.dataset.alarm = a.id;
      tr.className = "sev-" + a.severity;
      [a.id, a.kind, a.message, a.raised_at].forEach((v) => { const td = document.createElement("td"); td.textContent = v; tr.appendChild(td); });
      const td = document.createElement("td");
      if (canControl) {
        const b = document.createElement("button");
        b.type = "button"; b.className = "ack"; b.dataset.alarm = a.id; b.textContent = "Acknowledge";
        td.appendChild(b);
      }
      tr.appendChild(td);
      body.appendChild(tr);
    });
  }

  function renderGrid(state) {
    if (!state.grid || !$("#schematic")) return;
    $$("#schematic line[data-branch]").forEach((el) => {
      const v = state.grid.lines[el.dataset.branch];
      if (v) { el.setAttribute("class", el.getAttribute("class").replace(/ (ok|warm|hot|over|dead)$/, "") + " " + v[1]); el.dataset.loading = v[0]; }
    });
    $$("#schematic circle[data-bus]").forEach((el) => {
      const v = state.grid.buses[el.dataset.bus];
      if (v) { el.setAttribute("class", "bus " + v[1]); el.dataset.vm = v[0]; }
    });
  }

  function renderIncident(state) {
    const banner = $("#incident-banner");
    if (banner && state.incident) {
      banner.classList.toggle("hidden", !state.incident.active);
      $("#incident-devices").textContent = state.incident.devices;
    }
    if (page === "drill" && state.drill && state.drill.incident) {
      const holder = $("#drill");
      const shown = holder.dataset.incident;
      // A new incident, or a different ranking: reload the server-rendered view.
      // New commands since the drop change the backups and the "done since" column too.
      const ranking = state.drill.feeders.map((f) => f.feeder_id).join(",");
      const done = state.drill.feeders.reduce((n, f) => n + f.commands_since, 0);
      if (shown !== String(state.drill.incident.id) || (holder.dataset.ranking && holder.dataset.ranking !== ranking)
          || String(done) !== holder.dataset.done) {
        window.location.reload();
      }
      holder.dataset.ranking = ranking;
      const body = $("#drill-actions tbody");
      if (body) {
        body.innerHTML = "";
        state.drill.actions.forEach((a) => {
          const tr = document.createElement("tr");
          [a.first_seen, a.command_id.slice(0, 10), a.der_id, a.feeder_id || "", a.state, a.source].forEach((v) => {
            const td = document.createElement("td"); td.textContent = v; tr.appendChild(td);
          });
          body.appendChild(tr);
        });
      }
    }
  }

  async function refreshCommands() {
    const body = $("#commands tbody");
    if (!body) return;
    const res = await fetch("/console/api/commands?limit=20", { credentials: "same-origin" });
    if (!res.ok) return;
    const rows = await res.json();
    body.innerHTML = "";
    rows.forEach((c) => {
      const tr = document.createElement("tr");
      [c.command_id, c.der_id, c.feeder_id || "", c.state, c.source, c.detail].forEach((v) => { const td = document.createElement("td"); td.textContent = v; tr.appendChild(td); });
      body.appendChild(tr);
    });
  }

  let lastVersion = -1;
  const source = new EventSource("/console/api/stream");
  source.addEventListener("state", (ev) => {
    const state = JSON.parse(ev.data);
    $("#sim-clock").textContent = state.at;
    document.body.dataset.updated = state.at;
    renderFeeders(state);
    renderAlarms(state);
    renderGrid(state);
    renderIncident(state);
    if (state.version !== lastVersion) { lastVersion = state.version; refreshCommands(); }
  });
  source.addEventListener("error", () => { if (source.readyState === EventSource.CLOSED) flash("Live updates lost; reload the page", false); });
})();
