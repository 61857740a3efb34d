// kalshi-supervisor console: renders the /ws event feed. Plain JS, no build step.
//
// Every event carries an id; the page remembers the last one it saw and resumes with
// ?since=ID after any disconnect, so the log never has a gap or a duplicate. A hello with
// another `instance` means the process restarted: the page starts over from id 0.
"use strict";

const PIPELINE = ["INITIALIZING", "ORDERBOOK_CONNECT", "TRADING_CLIENT_CONNECT", "KALSHI_DATA_SYNC", "READY"];
const TRADING_STATES = new Set(["TRADING_CLIENT_CONNECT", "KALSHI_DATA_SYNC"]);
const ACTOR_FAULTS = ["crash", "crash_on_start", "hang", "disconnect", "slow", "bad_metadata"];
const EXCHANGE_FAULTS = ["ws_drop", "seq_gap", "malformed_frame", "rest_5xx", "rest_429", "auth_reject", "stall", "pause_trading", "pause_exchange", "resume"];
const MAX_LOG_ROWS = 2048;
const MAX_PASSES = 3;

const S = {
  instance: null, lastId: 0, renderedId: 0, countedUpTo: 0, tradingEnabled: true, current: null,
  passes: [], attempts: {}, stages: {}, stream: { interrupted: 0, heals: {} },
  sync: null, readyTrading: null, logIds: [], types: new Set(), ws: null, retry: 250,
  pauses: {}, pausesAsOf: 0,
  token: sessionStorage.getItem("kalshi-console-token") || "",
};
window.__console = S; // for tests and curious people

const $ = (id) => document.getElementById(id);
const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
};
const stateName = (s) => String(s).toUpperCase();
const clock = (iso) => { const d = new Date(iso); return d.toLocaleTimeString([], { hour12: false }) + "." + String(d.getMilliseconds()).padStart(3, "0"); };
// One vocabulary with the terminal (app/console.py): durations human-scaled, money in dollars
// ($ and the precision of its source: the account's cents, the market's price decimals).
const human = (value) => {
  if (value == null) return "–";
  if (value < 10) return value.toFixed(1) + " ms";
  if (value < 1000) return Math.round(value) + " ms";
  const s = value / 1000;
  if (s < 60) return s.toFixed(1) + " s";
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.floor(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
};
const ms = human;
const money = (cents) => {
  const n = Math.abs(Math.trunc(cents));
  return `${cents < 0 ? "-" : ""}$${Math.floor(n / 100).toLocaleString("en-US")}.${String(n % 100).padStart(2, "0")}`;
};
// A signed cents string from a sync ("+120") as "+$1.20"; anything else is shown as it is.
const signedMoney = (text) => { const n = Number(text); return Number.isInteger(n) ? (n < 0 ? "-" : "+") + money(Math.abs(n)) : String(text); };
const CENT_FIELDS = new Set(["balance", "portfolio_value"]);
// A metadata value as shown (the raw JSON value stays in data-value).
const shownValue = (key, value) => {
  if (value == null) return "none";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (CENT_FIELDS.has(key) && Number.isInteger(value)) return money(value);
  if (key.endsWith("_ms") && typeof value === "number") return human(value);
  if (Array.isArray(value)) return value.join(", ");
  return String(value);
};
const shownKey = (key) => key.endsWith("_ms") ? key.slice(0, -3) : key;

// -- connection -----------------------------------------------------------------------------
function connect() {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  let url = `${proto}://${location.host}/ws?since=${S.lastId}`;
  if (S.token) url += `&token=${encodeURIComponent(S.token)}`;
  const ws = new WebSocket(url);
  S.ws = ws;
  ws.onopen = () => { S.retry = 250; setConnection(true); };
  ws.onmessage = (message) => onMessage(JSON.parse(message.data));
  ws.onclose = (close) => {
    setConnection(false, close.reason);
    if (S.ws !== ws) return;
    if (close.code === 1008 && /token/.test(close.reason)) {
      const token = prompt("This console needs the control token (see control.json):");
      if (token) { S.token = token.trim(); sessionStorage.setItem("kalshi-console-token", S.token); }
    }
    setTimeout(connect, S.retry);
    S.retry = Math.min(S.retry * 2, 2000);
  };
}

function setConnection(up, reason) {
  const node = $("connection");
  node.textContent = up ? "console live" : (reason ? `console offline: ${reason}` : "console offline, reconnecting");
  node.className = "pill " + (up ? "conn-up" : "conn-down");
}

function onMessage(msg) {
  if (msg.type === "hello") return onHello(msg);
  if (typeof msg.id !== "number" || msg.id <= S.lastId) return; // never twice
  S.lastId = msg.id;
  handle(msg);
}

function onHello(hello) {
  if (S.instance && hello.instance !== S.instance) {
    // Another process: our ids mean nothing to it. Start over from its first event.
    reset();
    S.instance = hello.instance;
    S.ws.close();
    return;
  }
  S.instance = hello.instance;
  S.tradingEnabled = hello.trading_enabled;
  if (hello.since === 0 || hello.missed) {
    applyCounters(hello.counters);
    S.countedUpTo = hello.last_id;
    // The pauses in force as of event `pauses_as_of`; only later pause events change them.
    S.pauses = {};
    for (const p of hello.exchange_pauses || []) S.pauses[pauseKey(p.exchange_index)] = p;
    S.pausesAsOf = hello.pauses_as_of || 0;
    scheduleRender();
  }
  const notice = $("notice");
  notice.hidden = !hello.missed;
  notice.textContent = hello.missed_note || "";
  setupForMode();
}

function reset() {
  Object.assign(S, { lastId: 0, renderedId: 0, countedUpTo: 0, current: null, passes: [], attempts: {}, stages: {},
    stream: { interrupted: 0, heals: {} }, sync: null, readyTrading: null, logIds: [], types: new Set(),
    pauses: {}, pausesAsOf: 0 });
  $("log").replaceChildren();
  tradingReset();
  Object.assign(LOG, { groups: [], events: 0, routine: 0 });
  render();
}

function applyCounters(counters) {
  S.stages = {};
  for (const [stage, n] of Object.entries(counters.failures_by_stage)) stageOf(stage).failures = n;
  for (const [stage, n] of Object.entries(counters.restarts_by_stage)) stageOf(stage).restarts = n;
  S.stream = { interrupted: counters.events_by_type.stream_interrupted || 0, heals: { ...counters.stream_heals_by_kind } };
}

function stageOf(name, kind = "stage") {
  return S.stages[name] ||= { kind, failures: 0, restarts: 0, backoff: null, lastFailure: null, lastFailureType: null, failedAfterReady: false, dropped: false };
}

// -- events ----------------------------------------------------------------------------------
function handle(ev) {
  const fresh = ev.id > S.countedUpTo; // counters from hello already include older events
  switch (ev.type) {
    case "state_transition": onTransition(ev); break;
    case "stage_failure": {
      const st = stageOf(ev.stage);
      if (fresh) st.failures += 1;
      st.lastFailure = `${ev.error_type}: ${ev.reason}`;
      st.lastFailureType = ev.error_type;
      st.failedAfterReady = true;
      break;
    }
    // Services get the same row; the hello counters cover stages only, so count every event.
    case "service_started": stageOf(ev.service, "service").failedAfterReady = false; break;
    case "service_failed": {
      const sv = stageOf(ev.service, "service");
      sv.failures += 1;
      sv.lastFailure = `${ev.error_type}: ${ev.reason}`;
      sv.lastFailureType = ev.error_type;
      sv.failedAfterReady = true;
      if (ev.next_restart_in_ms != null) sv.backoff = ev.next_restart_in_ms;
      break;
    }
    case "service_restarted": {
      const sv = stageOf(ev.service, "service");
      sv.restarts += 1;
      sv.failedAfterReady = false;
      break;
    }
    case "service_dropped": stageOf(ev.service, "service").dropped = true; break;
    case "restart_scheduled":
      for (const stage of ev.stages) { if (fresh) stageOf(stage).restarts += 1; stageOf(stage).backoff = ev.delay_ms; }
      break;
    case "stage_dropped": stageOf(ev.stage).dropped = true; break;
    case "stream_interrupted":
      if (fresh) S.stream.interrupted += 1;
      streamFromEvent(false, ev);
      break;
    case "stream_healed":
      if (fresh) S.stream.heals[ev.kind] = (S.stream.heals[ev.kind] || 0) + 1;
      streamFromEvent(true, ev);
      break;
    case "kalshi_sync_complete": S.sync = ev; break;
    case "exchange_paused": {
      if (ev.id <= S.pausesAsOf) break; // already in the hello's snapshot
      const key = pauseKey(ev.exchange_index);
      const before = S.pauses[key]; // a new estimate for a pause in force keeps its start
      S.pauses[key] = { exchange_index: ev.exchange_index, scope: ev.scope, resume_estimate: ev.resume_estimate, since: before ? before.since : ev.timestamp };
      break;
    }
    case "exchange_resumed": if (ev.id > S.pausesAsOf) delete S.pauses[pauseKey(ev.exchange_index)]; break;
  }
  if (TRADING_TYPES.has(ev.type)) onTradingEvent(ev); // trading.js
  appendLog(ev);
  scheduleRender();
}

// A burst of events (a recovery is ~10 within milliseconds) is drawn once, on the next frame.
let renderPending = false;
function scheduleRender() {
  if (renderPending) return;
  renderPending = true;
  requestAnimationFrame(() => { renderPending = false; render(); });
}

function onTransition(ev) {
  const to = stateName(ev.to_state);
  S.attempts[to] = (S.attempts[to] || 0) + 1;
  S.current = ev;
  let pass = S.passes[S.passes.length - 1];
  if (!pass || to === "STARTUP" || (to === "INITIALIZING" && pass.ended)) {
    pass = { number: (pass ? pass.number : 0) + 1, latest: {}, order: [], recovery: null, error: null, shutdown: null, ended: false };
    S.passes.push(pass);
    if (S.passes.length > MAX_PASSES) S.passes.shift();
  }
  const previous = pass.latest[stateName(ev.from_state)];
  if (previous) previous.leftAfterMs = ev.duration_ms;
  const entry = { ev, to, attempt: S.attempts[to], leftAfterMs: null, renderedAt: null };
  if (to === "STARTUP") pass.recovery = entry;
  else if (to === "ERROR") { pass.error = entry; pass.ended = true; }
  else if (to === "SHUTDOWN") { pass.shutdown = entry; pass.ended = true; }
  else pass.latest[to] = entry;
  if (to === "READY" && ev.metadata.trading_client) S.readyTrading = ev.metadata.trading_client;
  if (to === "READY") streamFromEvent(true, ev); // READY is announced only with the stream live
  if (to === "READY") for (const st of Object.values(S.stages)) if (st.kind === "stage") st.failedAfterReady = false;
}

// -- the orderbook stream's state, in the header ------------------------------------------------
// Two sources: the feed's stream_interrupted / stream_healed events (pushed the moment the
// supervisor sees them) and /status, polled every second (which also sees a stream that is
// down outside READY, and stale books). A poll answers only for the time it was sent: one sent
// before the latest event cannot undo what that event said.
const STREAM = { up: null, since: null, detail: "", live: null, markets: null, eventAt: -1, changes: 0 };
window.__stream = STREAM; // for tests

function streamFromEvent(up, ev) {
  if (STREAM.up !== up) { STREAM.since = ev.timestamp; STREAM.changes += 1; }
  STREAM.up = up;
  STREAM.detail = up ? "" : ev.detail || "";
  if (up) STREAM.live = STREAM.markets;
  STREAM.eventAt = performance.now();
}

function streamFromStatus(stream, sentAt) {
  if (!stream || !stream.available || sentAt < STREAM.eventAt) return;
  const up = Boolean(stream.connected);
  if (STREAM.up !== up) { STREAM.since = new Date().toISOString(); STREAM.changes += 1; if (!up) STREAM.detail = "connection down"; }
  STREAM.up = up;
  STREAM.live = stream.live_markets;
  STREAM.markets = stream.markets;
}

const streamDegraded = () => STREAM.up === false || (STREAM.up === true && STREAM.markets != null && STREAM.live < STREAM.markets);

function renderStreamState() {
  const pill = $("stream-state");
  let text = "stream …", cls = "stream-unknown", state = "unknown";
  if (STREAM.up === false) { text = "stream DOWN"; cls = "stream-down"; state = "down"; }
  else if (STREAM.up === true && streamDegraded()) { text = `stream up · ${STREAM.live}/${STREAM.markets} books live`; cls = "stream-stale"; state = "stale"; }
  else if (STREAM.up === true) { text = "stream live"; cls = "stream-live"; state = "live"; }
  pill.textContent = text;
  pill.className = `pill ${cls}`;
  pill.dataset.state = state;
  const current = S.current ? stateName(S.current.to_state) : "STARTUP";
  if (STREAM.drawnDegraded !== streamDegraded()) { STREAM.drawnDegraded = streamDegraded(); scheduleRender(); } // READY's card label
  const statePill = $("current-state");
  statePill.classList.toggle("degraded", current === "READY" && streamDegraded());
  const banner = $("degraded");
  const show = streamDegraded() && current !== "SHUTDOWN";
  banner.hidden = !show;
  if (!show) { banner.replaceChildren(); return; }
  const since = STREAM.since ? ` since ${clock(STREAM.since)}` : "";
  const what = STREAM.up === false
    ? `Orderbook stream down${since}${STREAM.detail ? ` (${STREAM.detail})` : ""}: every book is stale until it reconnects and resyncs.`
    : `${STREAM.markets - STREAM.live} of ${STREAM.markets} books stale${since}: they are being resynced.`;
  banner.replaceChildren(el("strong", { text: current === "READY" ? "READY, degraded" : "Degraded" }), el("span", { text: what }));
}

// -- rendering -------------------------------------------------------------------------------
function render() {
  S.renderedId = S.lastId;
  const current = S.current ? stateName(S.current.to_state) : "STARTUP";
  const pill = $("current-state");
  pill.textContent = current;
  pill.className = `pill state-${current}` + (current === "READY" && streamDegraded() ? " degraded" : "");
  pill.dataset.eventId = S.current ? S.current.id : "";
  renderStreamState();
  $("since").textContent = S.current ? `since ${clock(S.current.timestamp)}` : "";
  renderPasses(current);
  renderPauses();
  renderHealth();
  renderAccount();
  renderTrading();
  $("log-count").textContent = `(${LOG.events} events in ${LOG.groups.length} rows, last id ${S.lastId}${LOG.routine ? `; ${LOG.routine} routine update syncs hidden by default` : ""})`;
}

function renderPasses(current) {
  const container = $("passes");
  container.replaceChildren();
  const states = PIPELINE.filter((s) => S.tradingEnabled || !TRADING_STATES.has(s));
  [...S.passes].reverse().forEach((pass, index) => {
    const live = index === 0;
    const cards = el("div", { class: "cards" });
    if (pass.recovery) cards.append(recoveryCard(pass.recovery));
    for (const state of states) cards.append(stateCard(state, pass, live && !pass.ended, current));
    if (pass.error) cards.append(errorCard(pass.error));
    if (pass.shutdown) cards.append(metaCard(pass.shutdown, "SHUTDOWN", "failed", "stopped"));
    const title = pass.recovery
      ? `Pass ${pass.number}: recovery, attempt ${pass.recovery.ev.metadata.restart_attempt}`
      : `Pass ${pass.number}: cold start`;
    container.append(el("div", { class: "pass", "data-pass": String(pass.number), "data-live": String(live) },
      el("div", { class: "pass-title", text: title + (live ? "" : " (earlier)") }), cards));
  });
}

function stateCard(state, pass, live, current) {
  const entry = pass.latest[state];
  let status = "pending";
  if (entry) {
    if (pass.error && stateName(pass.error.ev.metadata.failed_state) === state) status = "failed";
    else if (live && current === state && state !== "READY") status = "in-progress";
    else status = "done";
  }
  if (!entry) {
    return el("div", { class: "card pending", "data-state": state, "data-status": status },
      el("div", { class: "card-head" }, el("span", { class: "card-name", text: breakable(state) }), el("span", { class: "card-status", text: "pending" })));
  }
  const label = state === "READY" && live && current === "READY" ? (streamDegraded() ? "ready · degraded" : "ready · live") : status.replace("-", " ");
  return metaCard(entry, state, status, label);
}

function metaCard(entry, state, status, label) {
  const ev = entry.ev;
  if (!entry.renderedAt) entry.renderedAt = Date.now();
  const duration = entry.leftAfterMs != null ? ms(entry.leftAfterMs)
    : status === "in-progress" ? `${ms(Math.max(0, Date.now() - Date.parse(ev.timestamp)))} so far` : "";
  const attempts = entry.attempt || 1; // this entry's own number, not the latest one's
  return el("div", { class: `card ${status}`, "data-state": state, "data-status": status, "data-event-id": String(ev.id), "data-rendered-at": String(entry.renderedAt) },
    el("div", { class: "card-head" }, el("span", { class: "card-name", text: breakable(state) }), el("span", { class: "card-status", text: label })),
    el("div", { class: "card-meta", text: `entered ${clock(ev.timestamp)}${duration ? " · " + duration : ""} · entry #${attempts} · id ${ev.id}` }),
    kvTable(ev.metadata));
}

function recoveryCard(entry) { return metaCard(entry, "STARTUP", "done", "recovery"); }

function errorCard(entry) {
  const card = metaCard(entry, "ERROR", "error", "error");
  const md = entry.ev.metadata;
  const next = md.next_restart_in_ms == null ? "no restart (giving up)" : `next restart in ${ms(md.next_restart_in_ms)}`;
  card.insertBefore(el("div", { class: "card-meta", text: `${md.actor} failed in ${stateName(md.failed_state)} · ${next}` }), card.children[2]);
  return card;
}

// -- exchange pauses ---------------------------------------------------------------------------
// A pause is a condition of the exchange, not a failure: the banner shows each one in force
// (the whole exchange, or one shard), what it refuses, the exchange's resume estimate and how
// long it has lasted; it goes when the supervisor sees the exchange resume.
const pauseKey = (index) => index == null ? "all" : String(index);
const SCOPE_TEXT = { exchange: "nothing allowed", trading: "new orders refused, cancels allowed" };
const span = (s) => s < 60 ? `${Math.round(s)} s` : s < 3600 ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s` : `${(s / 3600).toFixed(1)} h`;

function renderPauses() {
  const box = $("pauses");
  const pauses = Object.values(S.pauses).sort((a, b) => (a.exchange_index ?? -1) - (b.exchange_index ?? -1));
  box.hidden = pauses.length === 0;
  box.replaceChildren(...pauses.map((p) => {
    const shard = p.exchange_index == null ? null : `shard ${p.exchange_index}`;
    const where = p.scope === "exchange" ? (shard ? `Exchange ${shard} paused` : "Exchange paused")
      : `Trading paused on ${shard || "every shard"}`;
    const now = Date.now();
    let resume = "no resume estimate";
    if (p.resume_estimate) {
      const left = (Date.parse(p.resume_estimate) - now) / 1000;
      const at = new Date(p.resume_estimate).toLocaleTimeString([], { hour12: false });
      resume = `estimated resume ${at} (${left >= 0 ? "in " + span(left) : "overdue by " + span(-left)})`;
    }
    const lasted = Math.max(0, (now - Date.parse(p.since)) / 1000);
    return el("div", { class: `pause scope-${p.scope}`, "data-shard": pauseKey(p.exchange_index), "data-scope": p.scope, "data-resume-estimate": p.resume_estimate || "" },
      el("strong", { text: where }),
      el("span", { "data-field": "scope", text: `${p.scope}: ${SCOPE_TEXT[p.scope] || p.scope}` }),
      el("span", { "data-field": "resume", text: resume }),
      el("span", { "data-field": "paused-for", text: `paused for ${span(lasted)}` }));
  }));
}

// Let long state names wrap at their underscores, never mid-word.
const breakable = (name) => name.replaceAll("_", "_\u200b");

function kvTable(values) {
  const table = el("table", { class: "kv" });
  for (const [key, value] of Object.entries(values)) {
    if (value && typeof value === "object" && !Array.isArray(value)) {
      // A nested object (READY's trading_client) gets the card's full width below its key.
      const cell = el("td", { class: "v nested", colspan: "2", "data-value": JSON.stringify(value) },
        el("div", { class: "k", text: shownKey(key) }), kvTable(value));
      table.append(el("tr", { "data-key": key }, cell));
      continue;
    }
    const cell = el("td", { class: "v", "data-value": JSON.stringify(value) });
    cell.textContent = shownValue(key, value);
    table.append(el("tr", { "data-key": key }, el("td", { class: "k", text: shownKey(key) }), cell));
  }
  return table;
}

// Liveness as the supervisor judges it: while READY it pings every stage and service, and a
// missed ping or a dead actor arrives here as a failure (Unresponsive / ActorDied).
function liveness(s, current) {
  if (s.dropped) return "dropped";
  if (s.failedAfterReady) return s.lastFailureType === "Unresponsive" || s.lastFailureType === "ActorDied" ? s.lastFailureType.toLowerCase() : "restarting";
  if (current === "READY") return "answering pings";
  return s.kind === "service" ? "paused (not READY)" : "not probed (pinged in READY)";
}

function renderHealth() {
  const current = S.current ? stateName(S.current.to_state) : "STARTUP";
  const names = new Set(S.tradingEnabled ? ["orderbook", "trading", "sync"] : ["orderbook"]);
  for (const name of Object.keys(S.stages)) names.add(name);
  const rows = [...names].map((name) => {
    const s = S.stages[name] || stageOf(name);
    const label = s.kind === "service" ? `${name} (service)` : name;
    return el("tr", { "data-stage": name, "data-kind": s.kind }, el("td", { text: label + (s.dropped ? " (dropped)" : "") }),
      el("td", { "data-field": "liveness", text: liveness(s, current) }),
      el("td", { text: String(s.failures) }), el("td", { text: String(s.restarts) }),
      el("td", { text: s.backoff == null ? "–" : ms(s.backoff) }), el("td", { class: "muted", text: s.lastFailure || "" }));
  });
  const heals = Object.entries(S.stream.heals).map(([k, n]) => `${k} ${n}`).join(", ") || "none";
  $("health").replaceChildren(
    el("table", { class: "health" }, el("thead", {}, el("tr", {}, ...["stage", "liveness", "failures", "restarts", "last backoff", "last failure"].map((h) => el("th", { text: h })))), el("tbody", {}, ...rows)),
    el("p", { class: "muted", text: `orderbook stream: ${S.stream.interrupted} interruption(s) while READY; healed in place: ${heals}` }));
}

function renderAccount() {
  const panel = $("account-panel");
  if (!S.tradingEnabled) { panel.remove(); return; }
  if (!S.sync && !S.readyTrading) return;
  const state = S.sync ? S.sync.state : S.readyTrading;
  const changes = S.sync && S.sync.changes;
  const figure = (label, value, change) => el("div", { class: "figure", "data-field": label },
    el("div", { class: "label", text: label }), el("div", { class: "value", text: value }), el("div", { class: "change", text: change || "" }));
  $("account").replaceChildren(
    el("div", { class: "account-grid" },
      figure("balance", money(state.balance), changes && `${signedMoney(changes.balance_change)} since last sync`),
      figure("portfolio value", money(state.portfolio_value), changes && `${signedMoney(changes.portfolio_change)} since last sync`),
      figure("positions", String(state.positions), changes && `${changes.positions_change} since last sync`),
      figure("resting orders", String(state.orders), changes && `${changes.orders_change} since last sync`)),
    el("p", { class: "muted", text: S.sync ? `last sync: ${S.sync.sync_type} at ${clock(S.sync.timestamp)}${changes ? "" : " (first sync)"}` : "" }));
}

// -- the log ---------------------------------------------------------------------------------
// One line per fact, in the terminal's words; counters stay in the row's detail (click it).
const shardText = (index) => index == null ? "every shard" : `shard ${index}`;
function syncSummary(ev) {
  const st = ev.state;
  const figures = `balance ${money(st.balance)} · portfolio value ${money(st.portfolio_value)} · positions ${st.positions} · resting orders ${st.orders}`;
  if (!ev.changes) return `${ev.sync_type} sync (first) · ${figures}`;
  const c = ev.changes;
  const moved = [["balance", signedMoney(c.balance_change), c.balance_change], ["portfolio value", signedMoney(c.portfolio_change), c.portfolio_change],
    ["positions", c.positions_change, c.positions_change], ["resting orders", c.orders_change, c.orders_change]]
    .filter(([, , raw]) => Number(raw) !== 0).map(([label, shown]) => `${label} ${shown}`);
  return `${ev.sync_type} sync: ${moved.join(", ") || "no change"} · ${figures}`;
}

function faultSummary(f) {
  const parts = [`injected ${f.fault} into ${f.target}`];
  if (f.seconds != null) parts.push(`for ${f.seconds} s`);
  if (f.count != null) parts.push(`${f.count} time(s)`);
  if (f.shard != null) parts.push(`on shard ${f.shard}`);
  if (f.resume_in != null) parts.push(`resuming in ${f.resume_in} s`);
  return parts.join(" ");
}

function summary(ev) {
  if (TRADING_TYPES.has(ev.type)) return tradingSummary(ev); // trading.js
  switch (ev.type) {
    case "state_transition": return `${stateName(ev.from_state)} → ${stateName(ev.to_state)} after ${human(ev.duration_ms)} · ${ev.context}`;
    case "stage_failure": return `${ev.stage} in ${stateName(ev.state)}: ${ev.error_type}: ${ev.reason}`;
    case "restart_scheduled": return `restart ${ev.stages.join(", ")} (attempt ${ev.attempt}) in ${human(ev.delay_ms)}`;
    case "fault_injected": return faultSummary(ev.fault);
    case "kalshi_sync_complete": return syncSummary(ev);
    case "stream_interrupted": return `interrupted (${ev.detail}); healing in place for up to ${human(ev.heal_timeout_ms)}`;
    case "stream_healed": return `healed by ${ev.kind} (${ev.detail}); ${ev.healed_total} healed so far`;
    case "stream_notice": return `${ev.kind}: ${ev.detail}`;
    case "exchange_paused": return `${ev.scope} pause on ${shardText(ev.exchange_index)}; estimated resume ${ev.resume_estimate ? clock(ev.resume_estimate) : "none given"}`;
    case "exchange_resumed": return `${ev.scope} pause on ${shardText(ev.exchange_index)} ended after ${human(ev.paused_ms)}`;
    case "service_started": return `${ev.service} started`;
    case "service_failed": return `${ev.service} failed: ${ev.error_type}: ${ev.reason}; ${ev.next_restart_in_ms == null ? "not restarted" : "restart in " + human(ev.next_restart_in_ms)}`;
    case "service_restarted": return `${ev.service} restarted (attempt ${ev.attempt})`;
    case "service_dropped": return `${ev.service} dropped: ${ev.reason}`;
    case "stage_dropped": return `${ev.stage} dropped: ${ev.reason}`;
    default: {
      const { id, type, timestamp, counters, ...rest } = ev;
      return Object.entries(rest).filter(([, v]) => v != null)
        .map(([k, v]) => `${shownKey(k)}=${typeof v === "object" && !Array.isArray(v) ? JSON.stringify(v) : shownValue(k, v)}`).join(" ");
    }
  }
}

// Routine: an update sync that changed nothing (every --sync-interval seconds, forever).
// Hidden unless asked for, and repeats of any identical line fold into one row (×N).
// A kind may wrap after its underscores (never mid-word); <wbr> keeps textContent intact.
const wrappable = (name) => name.split("_").flatMap((part, i, all) => i < all.length - 1 ? [part + "_", el("wbr")] : [part]);
const isRoutine = (ev) => ev.type === "kalshi_sync_complete" && ev.sync_type === "update" && ev.changes != null
  && ["balance_change", "portfolio_change", "positions_change", "orders_change"].every((k) => Number(ev.changes[k]) === 0);
const LOG = { groups: [], events: 0, routine: 0 };

function appendLog(ev) {
  const body = $("log");
  const text = summary(ev);
  const key = `${ev.type}|${text}`;
  const top = LOG.groups[LOG.groups.length - 1];
  LOG.events += 1;
  if (isRoutine(ev)) LOG.routine += 1;
  if (top && top.key === key) {
    top.ids.push(ev.id);
    top.ev = ev;
    top.row.dataset.id = String(ev.id);
    top.row.dataset.ids = top.ids.join(",");
    top.row.children[0].textContent = String(ev.id);
    top.row.children[1].textContent = clock(ev.timestamp);
    top.count.textContent = `×${top.ids.length} since ${clock(top.first)}`;
    return;
  }
  const count = el("span", { class: "repeat", "data-field": "repeat" });
  const row = el("tr", { class: "row", "data-id": String(ev.id), "data-ids": String(ev.id), "data-type": ev.type, "data-routine": String(isRoutine(ev)) },
    el("td", { class: "mono", text: String(ev.id) }), el("td", { class: "mono", text: clock(ev.timestamp) }),
    el("td", { class: `type t-${ev.type}` }, ...wrappable(ev.type)), el("td", { class: "summary" }, text, count));
  const group = { key, row, count, ids: [ev.id], ev, first: ev.timestamp };
  row.addEventListener("click", () => {
    const next = row.nextSibling;
    if (next && next.classList.contains("detail")) { next.remove(); return; }
    row.after(el("tr", { class: "detail" }, el("td", { colspan: "4" }, el("pre", { text: JSON.stringify(group.ev, null, 2) }))));
  });
  body.prepend(row);
  LOG.groups.push(group);
  if (!S.types.has(ev.type)) { S.types.add(ev.type); $("log-type").append(el("option", { value: ev.type, text: ev.type })); }
  while (LOG.events > MAX_LOG_ROWS && LOG.groups.length > 1) {
    const oldest = LOG.groups.shift();
    LOG.events -= oldest.ids.length;
    const node = oldest.row;
    if (node.nextSibling && node.nextSibling.classList.contains("detail")) node.nextSibling.remove();
    node.remove();
  }
  applyFilter(row);
}

function applyFilter(only) {
  const text = $("log-filter").value.toLowerCase();
  const type = $("log-type").value;
  const rows = only ? [only] : $("log").querySelectorAll("tr.row");
  for (const row of rows) {
    const kindHidden = type === "" ? row.dataset.routine === "true" : type !== "*" && row.dataset.type !== type;
    row.hidden = kindHidden || Boolean(text && !row.textContent.toLowerCase().includes(text));
  }
}

// -- faults ----------------------------------------------------------------------------------
function setupForMode() {
  const target = $("fault-target");
  const targets = S.tradingEnabled ? ["orderbook", "trading", "sync", "exchange"] : ["orderbook", "exchange"];
  if (target.options.length !== targets.length) {
    target.replaceChildren(...targets.map((t) => el("option", { value: t, text: t })));
    setFaults();
  }
}

function setFaults() {
  const faults = $("fault-target").value === "exchange" ? EXCHANGE_FAULTS : ACTOR_FAULTS;
  $("fault-kind").replaceChildren(...faults.map((f) => el("option", { value: f, text: f })));
}

async function inject(event) {
  event.preventDefault();
  const token = $("fault-token").value.trim();
  const body = { target: $("fault-target").value, fault: $("fault-kind").value };
  if ($("fault-seconds").value) body.seconds = Number($("fault-seconds").value);
  if ($("fault-count").value) body.count = Number($("fault-count").value);
  if ($("fault-shard").value) body.shard = Number($("fault-shard").value);
  if ($("fault-resume-in").value) body.resume_in = Number($("fault-resume-in").value);
  const reply = $("fault-reply");
  reply.textContent = "sending…";
  try {
    const response = await fetch("/inject", { method: "POST", headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
    const answer = await response.json();
    // A 200 may still be a refusal (no such stage, a service that is restarting).
    const accepted = response.ok && answer.accepted !== false;
    reply.textContent = accepted ? `accepted: ${faultSummary(body)}`
      : `refused${response.ok ? "" : ` (HTTP ${response.status})`}: ${answer.error || "no reason given"}`;
    reply.dataset.outcome = accepted ? "accepted" : "refused";
    if (accepted) { S.token = S.token || ""; sessionStorage.setItem("kalshi-console-fault-token", token); }
  } catch (error) {
    reply.textContent = `failed: ${error}`;
  }
}

// -- books and stream health ------------------------------------------------------------------
// Books change with every frame, far too often for the event feed, so the page polls the
// console once a second while it is visible: /books for tops, /books/{ticker} for the market
// whose depth is open, /status for the stream's counters.
const BOOKS = { selected: null, tops: null, depth: null, stream: null, polling: false, refreshes: 0, rows: new Map() };
window.__books = BOOKS; // for tests

async function getJSON(path) {
  const headers = S.token ? { Authorization: `Bearer ${S.token}` } : {};
  const response = await fetch(path, { headers, cache: "no-store" });
  let body;
  try { body = await response.json(); } catch (error) { body = { error: `HTTP ${response.status}` }; }
  return { ok: response.ok, status: response.status, body };
}

async function pollBooks() {
  if (BOOKS.polling || document.visibilityState !== "visible") return;
  BOOKS.polling = true;
  try {
    const selected = BOOKS.selected;
    const sentAt = performance.now();
    const [tops, status, depth] = await Promise.all([getJSON("/books"), getJSON("/status"),
      selected ? getJSON(`/books/${encodeURIComponent(selected)}`) : Promise.resolve(null)]);
    BOOKS.tops = tops;
    BOOKS.stream = status.ok ? status.body.orderbook_stream || null : null;
    streamFromStatus(BOOKS.stream, sentAt);
    tradingFromStatus(status.ok ? status.body.trading : null, sentAt);
    BOOKS.refreshes += 1;
    if (selected === BOOKS.selected) BOOKS.depth = depth;
  } catch (error) {
    BOOKS.tops = { ok: false, status: 0, body: { error: `console unreachable: ${error}` } };
    BOOKS.stream = null;
  } finally {
    BOOKS.polling = false;
  }
  renderBooks();
  renderStream();
  renderStreamState();
  renderTrading();
}

const seconds = (s) => s == null ? "–" : s < 10 ? `${s.toFixed(1)} s` : s < 120 ? `${Math.round(s)} s` : `${Math.round(s / 60)} min`;
// Prices arrive as exact decimal strings; the spread is computed in integer micro-dollars.
const micros = (text) => { const [whole, frac = ""] = text.split("."); return Number(whole) * 1e6 + Number((frac + "000000").slice(0, 6)); };

const shownPrice = (text) => text == null ? "–" : `$${text}`; // the exchange's decimals, exact
// The spread in dollars, to the precision of the prices it comes from.
const spreadText = (bid, ask) => {
  const places = Math.max((bid.split(".")[1] || "").length, (ask.split(".")[1] || "").length, 2);
  const value = micros(ask) - micros(bid);
  const s = String(Math.abs(value)).padStart(7, "0");
  const text = `${s.slice(0, -6)}.${s.slice(-6)}`.slice(0, s.length - 6 + 1 + places);
  return `${value < 0 ? "-" : ""}$${text}`;
};

function setQuote(cell, price, size) {
  cell.dataset.value = price == null ? "" : price;
  cell.dataset.size = size == null ? "" : size;
  const text = price == null ? "–" : `${shownPrice(price)} × ${size}`;
  if (cell.dataset.shown === text) return;
  cell.dataset.shown = text;
  if (price == null) { cell.replaceChildren("–"); return; }
  cell.replaceChildren(shownPrice(price), el("span", { class: "size", text: `× ${size}` }));
}

const BOOK_HEAD = ["market", "best YES bid × contracts", "best YES ask × contracts", "spread", "levels YES / NO", "unchanged for", "book"];

function bookRow(ticker) {
  const row = el("tr", { class: "book", "data-ticker": ticker },
    el("td", { text: ticker }),
    el("td", { class: "num bid", "data-field": "best_yes_bid" }),
    el("td", { class: "num ask", "data-field": "best_yes_ask" }),
    el("td", { class: "num", "data-field": "spread" }),
    el("td", { class: "num", "data-field": "levels" }),
    el("td", { class: "num", "data-field": "unchanged" }),
    el("td", {}, el("span", { class: "tag" })));
  row.addEventListener("click", () => selectBook(ticker));
  return row;
}

const setText = (node, text) => { if (node.textContent !== text) node.textContent = text; };

// Rows are kept and updated in place: a row under the pointer is never replaced, so a click
// started on it lands on it, and the depth view (a row right below the selected one) stays.
function renderBooks() {
  const box = $("books");
  const tops = BOOKS.tops;
  if (!tops) return;
  const message = !tops.ok ? `books unavailable: ${tops.body.error}` : !tops.body.available ? `no books (${tops.body.reason})` : null;
  if (message) {
    BOOKS.rows.clear();
    box.replaceChildren(el("p", { class: "muted", text: message }));
    $("books-note").textContent = "";
    return;
  }
  const books = tops.body.books;
  setText($("books-note"), `(${books.length} markets; prices in dollars, sizes in contracts; click one for its depth)`);
  let body = box.querySelector("table.books > tbody");
  if (!body) {
    body = el("tbody");
    BOOKS.rows.clear();
    box.replaceChildren(el("div", { class: "table-scroll" }, el("table", { class: "books" },
      el("thead", {}, el("tr", {}, ...BOOK_HEAD.map((h) => el("th", { text: h })))), body)));
  }
  const seen = new Set();
  let previous = null;
  for (const b of books) {
    seen.add(b.ticker);
    let row = BOOKS.rows.get(b.ticker);
    if (!row) { row = bookRow(b.ticker); BOOKS.rows.set(b.ticker, row); }
    const cells = row.children;
    setQuote(cells[1], b.best_yes_bid, b.best_yes_bid_size);
    setQuote(cells[2], b.best_yes_ask, b.best_yes_ask_size);
    setText(cells[3], b.best_yes_bid != null && b.best_yes_ask != null ? spreadText(b.best_yes_bid, b.best_yes_ask) : "–");
    setText(cells[4], `${b.yes_levels} / ${b.no_levels}`);
    setText(cells[5], seconds(b.unchanged_for_seconds));
    cells[5].classList.toggle("still", b.unchanged_for_seconds >= 60);
    const tag = cells[6].firstChild;
    setText(tag, b.stale ? "stale" : "live");
    tag.className = `tag ${b.stale ? "stale" : "live"}`;
    row.dataset.stale = String(b.stale);
    row.classList.toggle("selected", b.ticker === BOOKS.selected);
    // Keep the table's order without moving rows that are already in place.
    const want = previous ? previous.nextSibling : body.firstChild;
    if (want !== row) body.insertBefore(row, want);
    previous = row;
    if (b.ticker === BOOKS.selected) previous = placeDepthRow(body, row);
  }
  for (const [ticker, row] of BOOKS.rows) if (!seen.has(ticker)) { row.remove(); BOOKS.rows.delete(ticker); }
  if (BOOKS.selected && !seen.has(BOOKS.selected)) { BOOKS.selected = null; }
  if (!BOOKS.selected) { const stray = body.querySelector("tr.depth-row"); if (stray) stray.remove(); }
  renderDepth();
}

// The depth view lives in a row right below its market's row; returns that row.
function placeDepthRow(body, row) {
  let depthRow = body.querySelector("tr.depth-row");
  if (!depthRow) {
    depthRow = el("tr", { class: "depth-row" }, el("td", { colspan: String(BOOK_HEAD.length) }, el("div", { id: "book-depth", "data-testid": "book-depth" })));
  }
  if (row.nextSibling !== depthRow) row.after(depthRow);
  return depthRow;
}

function selectBook(ticker) {
  BOOKS.selected = BOOKS.selected === ticker ? null : ticker;
  BOOKS.depth = null;
  const body = $("books").querySelector("table.books > tbody");
  for (const row of BOOKS.rows.values()) row.classList.toggle("selected", row.dataset.ticker === BOOKS.selected);
  if (body) {
    const row = BOOKS.rows.get(BOOKS.selected);
    if (row) { placeDepthRow(body, row); $("book-depth").replaceChildren(); }
    else { const stray = body.querySelector("tr.depth-row"); if (stray) stray.remove(); }
  }
  renderDepth();
  pollBooks();
}

function renderDepth() {
  const box = $("book-depth");
  const ticker = BOOKS.selected;
  if (!box || !ticker) return;
  const depth = BOOKS.depth;
  if (!depth) { if (!box.firstChild) box.replaceChildren(el("p", { class: "muted", text: `loading depth of ${ticker}…` })); return; }
  if (!depth.ok) { box.replaceChildren(el("p", { class: "muted", text: `no depth for ${ticker}: ${depth.body.error}` })); return; }
  const d = depth.body;
  const ladder = (title, levels, side) => el("table", { class: "books ladder", "data-side": side },
    el("thead", {}, el("tr", {}, el("th", { text: title }), el("th", { text: "contracts" }))),
    el("tbody", {}, ...(levels.length ? levels.map((l) => el("tr", { "data-price": l.price, "data-size": l.size },
      el("td", { class: `num ${side}`, text: shownPrice(l.price) }), el("td", { class: "num", text: l.size })))
      : [el("tr", {}, el("td", { class: "muted", text: "none" }), el("td", {}))])));
  box.replaceChildren(
    el("div", { class: "depth-title", "data-ticker": d.ticker, text: `${d.ticker} depth · ${d.stale ? "STALE" : "live"} · unchanged for ${seconds(d.unchanged_for_seconds)} (YES terms in dollars; asks are NO bids at $1 − p)` }),
    el("div", { class: "depth" }, ladder("YES bids", d.yes_bids, "bid"), ladder("YES asks", d.yes_asks, "ask")));
}

function renderStream() {
  const box = $("stream-health");
  const stream = BOOKS.stream;
  if (!stream) { box.replaceChildren(); return; }
  if (!stream.available) { box.replaceChildren(el("p", { class: "muted", text: `orderbook stream: ${stream.reason}` })); return; }
  const counters = Object.entries(stream.counters).map(([name, n]) =>
    el("div", { "data-counter": name }, el("span", { class: "muted", text: name.replaceAll("_", " ") }), el("span", { class: "n", text: String(n) })));
  box.replaceChildren(
    el("p", { class: "muted", text: `stream connection: ${stream.connected ? "up" : "DOWN"} · ${stream.live_markets}/${stream.markets} books live · last frame ${seconds(stream.last_frame_age_seconds)} ago` }),
    el("div", { class: "stream-counters" }, ...counters));
}

document.addEventListener("visibilitychange", pollBooks);
(function booksLoop() { pollBooks().finally(() => setTimeout(booksLoop, 1000)); })();

$("fault-token").value = sessionStorage.getItem("kalshi-console-fault-token") || "";
$("fault-target").addEventListener("change", setFaults);
$("fault-form").addEventListener("submit", inject);
$("log-filter").addEventListener("input", () => applyFilter());
$("log-type").addEventListener("change", () => applyFilter());
setInterval(() => { if (S.current && stateName(S.current.to_state) !== "READY") renderPasses(stateName(S.current.to_state)); }, 500);
setInterval(() => { if (Object.keys(S.pauses).length) renderPauses(); }, 1000); // "paused for" and "in N s" move
render();
connect();
