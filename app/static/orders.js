// kalshi-supervisor console, trading: the trading state in the header, the kill switch and
// resume, and the open orders / fills / positions & P&L panels. Loaded before console.js,
// which calls in here (onTradingEvent, tradingSummary, tradingFromStatus, renderTrading):
// this file only defines things, so load order never matters at run time.
//
// Its elements are built here, and only once the feed's hello says trading is enabled: in
// orderbook-only mode the page holds no trading element at all (not even hidden ones).
//
// Two sources, as for the stream's state: the trading events (pushed the moment the gateway
// publishes them) and /status's `trading` (the gateway's own view, polled every second with
// the books). A poll answers only for the time it was sent: one sent before the latest
// trading event cannot undo what that event said. Amounts stay the exact decimal strings
// they arrive as; nothing here does arithmetic on money.
"use strict";

const TRADING_TYPES = new Set(["order_update", "fill", "position_changed", "trading_state", "halt_completed", "reconciled"]);
const FINAL_ORDER = new Set(["executed", "canceled", "rejected"]);
const MAX_FILLS = 50;
const MAX_OPEN_ORDERS = 500;
const RECONCILED_SHOWN = 3; // as the terminal (app/console.py): the row's detail has them all
const DIFFERENCE_CHARS = 160;

const T = { state: null, reason: null, orders: new Map(), fills: [], positions: new Map(), lastHalt: null, eventAt: -1, asking: false, reply: "" };
window.__trading = T; // for tests

function tradingReset() {
  Object.assign(T, { state: null, reason: null, orders: new Map(), fills: [], positions: new Map(), lastHalt: null, eventAt: -1, reply: "" });
}

// Dollars from an exact decimal string: "0.4500" -> "$0.45", "0.0175" -> "$0.0175",
// "-1.5" -> "-$1.50" (the terminal's dollars(), app/console.py). No floats.
function dollarsText(text, signed = false) {
  if (text == null) return "–";
  const match = /^(-?)(\d+)(?:\.(\d*))?$/.exec(String(text).trim());
  if (!match) return String(text);
  const [, minus, whole, frac = ""] = match;
  const digits = frac.replace(/0+$/, "").padEnd(2, "0");
  const zero = /^0*$/.test(whole + frac);
  const sign = minus && !zero ? "-" : signed && !zero ? "+" : "";
  return `${sign}$${BigInt(whole).toLocaleString("en-US")}.${digits}`;
}
// A count without trailing zeros: "10.00" -> "10", "2.50" -> "2.5".
const countText = (text) => { const s = String(text); return s.includes(".") ? s.replace(/\.?0+$/, "") : s; };
const sideText = (side) => side === "bid" ? "buy YES" : "sell YES";
const isZero = (text) => /^-?0*\.?0*$/.test(String(text));

function onTradingEvent(ev) {
  switch (ev.type) {
    case "order_update":
      if (FINAL_ORDER.has(ev.status)) T.orders.delete(ev.client_order_id);
      else {
        T.orders.delete(ev.client_order_id); // re-inserted last: newest at the end
        T.orders.set(ev.client_order_id, ev);
        while (T.orders.size > MAX_OPEN_ORDERS) T.orders.delete(T.orders.keys().next().value);
      }
      break;
    case "fill":
      T.fills.unshift(ev);
      if (T.fills.length > MAX_FILLS) T.fills.length = MAX_FILLS;
      break;
    case "position_changed":
      if (ev.service == null) T.positions.set(ev.ticker, ev);
      break;
    case "trading_state": T.state = ev.state; T.reason = ev.reason; break;
    case "halt_completed": T.lastHalt = ev; break;
  }
  T.eventAt = performance.now();
}

function tradingFromStatus(trading, sentAt) {
  if (!trading || !trading.enabled || !trading.available || sentAt < T.eventAt) return;
  T.state = trading.state;
  T.reason = trading.reason;
  const orders = new Map();
  for (const o of trading.open_orders || []) orders.set(o.client_order_id, o);
  T.orders = orders;
  const positions = new Map();
  const pnl = (trading.pnl || []).filter((p) => p.service == null);
  for (const p of pnl) {
    positions.set(p.ticker, { ticker: p.ticker, position: p.position, realized_pnl: p.realized, unrealized_pnl: p.unrealized_exit, fees: p.fees });
  }
  for (const p of trading.positions || []) {
    if (p.service != null || positions.has(p.ticker)) continue;
    positions.set(p.ticker, { ticker: p.ticker, position: p.position, realized_pnl: null, unrealized_pnl: null, fees: null });
  }
  T.positions = positions;
}

// A reason worth showing: one that says more than the status (messages/orders.py reason_beyond).
function reasonBeyond(status, reason) {
  const words = (text) => String(text).toLowerCase().replaceAll("_", " ").replaceAll("cancelled", "canceled").trim().split(/\s+/).join(" ");
  return Boolean(reason && reason.trim()) && words(reason) !== words(status);
}

// One line per fact, the terminal's words (app/console.py describe()).
function tradingSummary(ev) {
  switch (ev.type) {
    case "order_update": {
      let text = `${ev.service} ${sideText(ev.side)} ${countText(ev.count)} ${ev.ticker} @ ${dollarsText(ev.price)}: ${ev.status.replaceAll("_", " ")}`;
      if (!isZero(ev.filled)) text += `, ${countText(ev.filled)} filled`;
      if (reasonBeyond(ev.status, ev.reason)) text += ` (${ev.reason})`;
      return `${text} · ${ev.client_order_id}`;
    }
    case "fill":
      return `${ev.service || "(not ours to a service)"} ${ev.side === "bid" ? "bought" : "sold"} ${countText(ev.count)} YES ${ev.ticker} @ ${dollarsText(ev.price)} as ${ev.is_taker ? "taker" : "maker"}, fee ${dollarsText(ev.fee)} · trade ${ev.trade_id}`;
    case "position_changed":
      return `${ev.service ? ev.service + " " : ""}${ev.ticker} ${heldText(ev.position)} · realized ${dollarsText(ev.realized_pnl, true)} · unrealized ${dollarsText(ev.unrealized_pnl, true)} · fees ${dollarsText(ev.fees)}`;
    case "trading_state": return ev.state.toUpperCase() + (ev.reason ? ` (${ev.reason})` : "");
    case "halt_completed": return haltText(ev);
    case "reconciled": {
      const total = ev.difference_count ?? ev.differences.length;
      if (!total) return `after ${ev.trigger}: no differences`;
      const shown = ev.differences.slice(0, RECONCILED_SHOWN).map((d) => d.length <= DIFFERENCE_CHARS ? d : d.slice(0, DIFFERENCE_CHARS - 1) + "…");
      const more = total - shown.length;
      return `after ${ev.trigger}: ${total} difference(s): ${shown.join("; ")}${more > 0 ? `; and ${more} more` : ""}`;
    }
  }
  return null;
}

function heldText(position) {
  if (isZero(position)) return "flat";
  const text = String(position);
  return text.startsWith("-") ? `long NO ${countText(text.slice(1))}` : `long YES ${countText(text)}`;
}

function haltText(r) {
  const parts = [];
  if (r.cancel_all_calls != null) parts.push(`${r.cancel_all_calls} cancel-all call(s)`);
  if (r.verify_reads != null) parts.push(`${r.verify_reads} verify read(s)`);
  if (r.remaining != null) parts.push(`${r.remaining} of ours still resting`);
  const took = r.duration_ms != null ? ` in ${human(r.duration_ms)}` : "";
  return `halted (${r.reason || "no reason given"})${took}${parts.length ? ": " + parts.join(", ") : ""}`;
}

// -- the kill switch ---------------------------------------------------------------------------
function controlToken() {
  const typed = $("fault-token").value.trim();
  const token = typed || sessionStorage.getItem("kalshi-console-fault-token") || S.token
    || (prompt("The control token (see control.json):") || "").trim();
  if (token) sessionStorage.setItem("kalshi-console-fault-token", token);
  return token;
}

async function tradingControl(path, body) {
  const token = controlToken();
  if (!token) { T.reply = "not sent: no control token"; renderTrading(); return; }
  T.asking = true;
  T.reply = path === "/halt" ? "halting: cancelling every order of ours…" : "resuming…";
  renderTrading();
  try {
    const response = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` }, body: JSON.stringify(body) });
    let answer;
    try { answer = await response.json(); } catch (error) { answer = { error: `HTTP ${response.status}` }; }
    if (!response.ok) T.reply = `refused (HTTP ${response.status}): ${answer.error || "no reason given"}`;
    else if (path === "/halt") {
      T.lastHalt = answer;
      T.state = answer.state || "halted";
      T.reply = "";
    } else {
      T.state = answer.state || "active";
      T.reason = null;
      T.reply = "trading resumed";
    }
    T.eventAt = performance.now();
  } catch (error) {
    T.reply = `failed: ${error}`;
  } finally {
    T.asking = false;
    renderTrading();
  }
}

function pressKill() {
  if (!confirm("Halt trading now?\n\nNew orders are refused and every order of ours is cancelled, until someone resumes.")) return;
  tradingControl("/halt", { reason: "console kill switch" });
}

function pressResume() {
  if (!confirm("Resume trading?")) return;
  tradingControl("/resume", {});
}

// -- rendering ---------------------------------------------------------------------------------
function mountTrading() {
  if ($("trading-panel")) return;
  $("stream-state").after(el("span", { id: "trading-state", class: "pill trading-unknown", "data-testid": "trading-state", "data-state": "unknown", text: "trading …" }));
  const kill = el("button", { id: "halt-button", type: "button", "data-testid": "halt-button", title: "refuse new orders and cancel every order of ours (asks to confirm)", text: "Halt trading" });
  const resume = el("button", { id: "resume-button", type: "button", class: "secondary", "data-testid": "resume-button", text: "Resume trading" });
  kill.addEventListener("click", pressKill);
  resume.addEventListener("click", pressResume);
  $("connection").before(el("span", { id: "trading-controls", class: "trading-controls" }, kill, resume));
  $("notice").after(el("div", { id: "halt-report", class: "halt-report", "data-testid": "halt-report", role: "alert", hidden: "" }));
  const part = (title, id, note, cls) => el("div", cls ? { class: cls } : {},
    el("h3", {}, title + " ", el("span", { class: "muted", id: `${id}-note`, text: note })), el("div", { id, "data-testid": id }));
  $("books-panel").before(el("section", { class: "panel wide", id: "trading-panel", "data-testid": "trading-panel" },
    el("h2", { text: "Trading" }),
    el("div", { class: "trading-grid" },
      part("Open orders", "trading-orders", ""),
      part("Positions & P&L", "trading-positions", "(dollars; positions in YES contracts)"),
      part("Fills", "trading-fills", "(latest first)", "span-all"))));
}

function renderTrading() {
  if (!S.tradingEnabled || S.instance == null) return; // nothing until the hello says trading
  mountTrading();
  const pill = $("trading-state");
  const state = T.state || "unknown";
  pill.textContent = T.state ? `trading ${state.toUpperCase()}` : "trading …";
  pill.className = `pill trading-${state}`;
  pill.dataset.state = state;
  pill.title = T.reason ? `why: ${T.reason}` : "what the order gateway lets through";
  const kill = $("halt-button"), resume = $("resume-button");
  kill.disabled = T.asking || state === "halted";
  resume.hidden = !(state === "halted" || state === "reducing");
  resume.disabled = T.asking;
  renderHaltReport();
  renderOrders();
  renderFills();
  renderPositions();
}

function renderHaltReport() {
  const box = $("halt-report");
  const r = T.lastHalt;
  const halted = T.state === "halted";
  box.hidden = !(T.reply || (r && halted));
  const parts = [];
  if (r && halted) {
    parts.push(el("strong", { text: "HALTED" }), el("span", { "data-field": "report", text: haltText(r) }));
  }
  if (T.reply) parts.push(el("span", { class: "muted", "data-field": "reply", text: T.reply }));
  box.dataset.remaining = r ? String(r.remaining) : "";
  box.replaceChildren(...parts);
}

function table(head, rows, empty) {
  if (!rows.length) return el("p", { class: "muted", text: empty });
  return el("div", { class: "table-scroll" }, el("table", { class: "books trading" },
    el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { text: h })))), el("tbody", {}, ...rows)));
}

function renderOrders() {
  const orders = [...T.orders.values()].reverse();
  $("trading-orders-note").textContent = `(${orders.length} open)`;
  $("trading-orders").replaceChildren(table(["order", "service", "market", "side", "price", "contracts", "filled", "status"],
    orders.map((o) => el("tr", { "data-client-order-id": o.client_order_id, "data-status": o.status },
      el("td", { class: "mono", text: o.client_order_id }), el("td", { text: o.service }), el("td", { text: o.ticker }),
      el("td", { class: o.side === "bid" ? "bid" : "ask", text: sideText(o.side) }), el("td", { class: "num", text: dollarsText(o.price) }),
      el("td", { class: "num", text: countText(o.count) }), el("td", { class: "num", text: countText(o.filled) }),
      el("td", { text: o.status.replaceAll("_", " ") }))),
    "no open orders"));
}

function renderFills() {
  $("trading-fills").replaceChildren(table(["time", "service", "market", "side", "contracts", "price", "fee", "liquidity"],
    T.fills.map((f) => el("tr", { "data-trade-id": f.trade_id },
      el("td", { class: "mono", text: clock(f.timestamp) }), el("td", { text: f.service || "–" }), el("td", { text: f.ticker }),
      el("td", { class: f.side === "bid" ? "bid" : "ask", text: f.side === "bid" ? "bought YES" : "sold YES" }),
      el("td", { class: "num", text: countText(f.count) }), el("td", { class: "num", text: dollarsText(f.price) }),
      el("td", { class: "num", text: dollarsText(f.fee) }), el("td", { text: f.is_taker ? "taker" : "maker" }))),
    "no fills yet"));
}

function renderPositions() {
  const rows = [...T.positions.values()].sort((a, b) => a.ticker.localeCompare(b.ticker));
  $("trading-positions").replaceChildren(table(["market", "position", "realized", "unrealized (exit)", "fees"],
    rows.map((p) => el("tr", { "data-ticker": p.ticker, "data-position": p.position },
      el("td", { text: p.ticker }), el("td", { class: "num", text: heldText(p.position) }),
      el("td", { class: "num", text: dollarsText(p.realized_pnl, true) }), el("td", { class: "num", text: dollarsText(p.unrealized_pnl, true) }),
      el("td", { class: "num", text: dollarsText(p.fees) }))),
    "no positions"));
}
