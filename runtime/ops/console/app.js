// The Crucible console: one page, no build step, no network beyond this bot.
// State arrives as `status` documents and journal `events` over /ws (the cookie set by
// /?token= authenticates it); actions are POSTs to /api/*, each journaled by the bot.
"use strict";

const $ = (id) => document.getElementById(id);
const JOURNAL_LINES = 400;
const CLOSE_WATCH_MS = 15000;
let journalLines = [];
let lastStatus = null;
let closeWatch = null;   // {key, until, timer}

function text(el, value) { el.textContent = value == null ? "" : String(value); }
function money(v) {
  if (v == null) return "–";
  const s = (v >= 0 ? "+" : "") + Number(v).toFixed(2);
  return s;
}
function cls(v) { return v == null ? "" : v >= 0 ? "pos" : "neg"; }
function cell(tr, value, klass) {
  const td = document.createElement("td");
  text(td, value);
  if (klass) td.className = klass;
  tr.appendChild(td);
  return td;
}
const rendered = new WeakMap();   // tbody -> the JSON it shows: unchanged rows stay (and their buttons)
function fill(tbody, rows, build) {
  const key = JSON.stringify(rows);
  if (rendered.get(tbody) === key) return;
  rendered.set(tbody, key);
  tbody.replaceChildren();
  for (const row of rows) { const tr = document.createElement("tr"); build(tr, row); tbody.appendChild(tr); }
}

function pill(el, label, klass) { text(el, label); el.className = "pill " + klass; }

function renderTree(node, depth, out) {
  const pad = "  ".repeat(depth);
  let line = `${pad}${node.name} [${node.state}] inc=${node.incarnation} restarts=${node.restarts}`;
  if (node.note) line += ` (${node.note})`;
  if (node.last_error) line += ` last_error=${node.last_error}`;
  out.push(line);
  for (const c of node.children || []) renderTree(c, depth + 1, out);
  return out;
}

// Symbols the Gateway refused (unknown, no permission): no bars, so no signals, until retry_at.
function renderRefused(refused) {
  const el = $("symbols");
  if (!refused.length) { text(el, ""); el.className = "pill hidden"; el.title = ""; return; }
  pill(el, "no data: " + refused.map((u) => `${u.symbol} (IB ${u.code})`).join(", "), "warn");
  el.title = refused.map((u) => `${u.symbol}: ${u.reason}; retried at ${u.retry_at || "?"}`)
    .join("\n");
}

function renderStatus(s) {
  lastStatus = s;
  pill($("mode"), s.mode_words || s.mode, s.mode === "LIVE" ? "bad" : s.mode === "PAPER" ? "warn" : "ok");
  const t = s.trading || {};
  pill($("trading"), `trading ${t.state}`, t.state === "ACTIVE" ? "ok" : t.state === "REDUCING" ? "warn" : "bad");
  text($("reasons"), (t.reasons || []).length ? "why: " + t.reasons.join("; ") : "");
  const l = s.link || {};
  const ls = String(l.status || "").toLowerCase();
  pill($("link"), `Gateway ${ls}${l.session_id ? " · session " + l.session_id : ""}` +
       (l.expected_outage ? " (scheduled restart)" : ""),
       ls === "up" ? "ok" : ls === "degraded" || l.expected_outage ? "warn" : "bad");
  renderRefused(s.symbols_unavailable || []);
  text($("clock"), `${s.now_et} ET · up ${Math.round(s.uptime_s)} s (${s.clock} clock)`);

  const p = s.pnl || {};
  fill($("pnl").tBodies[0], [
    ["realised today", money(p.realized_today), cls(p.realized_today)],
    ["unrealised", money(p.unrealized), cls(p.unrealized)],
    ["trades today", p.trades_today ?? "–", ""],
    ["equity / capital", `${p.equity_usd ?? "–"} / ${p.capital_usd ?? "–"}`, ""],
    ["kill switch", p.kill_switch == null ? "–" : p.kill_switch ? "ENGAGED" : "off", p.kill_switch ? "neg" : ""],
    ["weekly governor", p.governor ? "engaged" : "off", p.governor ? "neg" : ""],
  ], (tr, r) => { cell(tr, r[0]); cell(tr, r[1], "num " + r[2]); });
  fill($("limits").tBodies[0], p.limits || [], (tr, lim) => {
    cell(tr, lim.name + (lim.detail ? ` (${lim.detail})` : ""));
    cell(tr, lim.used, "num");
    cell(tr, lim.limit == null ? "n/a" : lim.limit, "num");
    const td = cell(tr, "");
    if (lim.limit) {
      const frac = Math.min(1, Math.abs(lim.used) / Math.abs(lim.limit));
      const bar = document.createElement("span");
      bar.className = "bar" + (frac >= 1 ? " bad" : frac >= 0.7 ? " warn" : "");
      bar.style.width = Math.round(frac * 80) + "px";
      td.appendChild(bar);
    }
  });

  fill($("positions").tBodies[0], s.positions || [], (tr, pos) => {
    tr.dataset.key = pos.option_key;
    cell(tr, pos.option_key);
    cell(tr, pos.contracts, "num");
    cell(tr, Number(pos.entry_premium).toFixed(2), "num");
    cell(tr, pos.mark == null ? "–" : Number(pos.mark).toFixed(2) + (pos.mark_stale ? " (stale)" : ""), "num mark");
    cell(tr, money(pos.unrealized_pnl), "num unrealized " + cls(pos.unrealized_pnl));
    cell(tr, pos.protection, pos.protection === "none" ? "neg" : "");
    cell(tr, pos.strategy);
    const td = cell(tr, "");
    const b = document.createElement("button");
    b.textContent = "Close";
    b.className = "close";
    b.addEventListener("click", () => closePosition(pos.option_key));
    td.appendChild(b);
  });
  fill($("orders").tBodies[0], s.orders || [], (tr, o) => {
    cell(tr, o.order_ref); cell(tr, o.option_key); cell(tr, o.action);
    cell(tr, `${o.filled}/${o.quantity}`, "num"); cell(tr, o.order_type);
    cell(tr, o.limit ?? "", "num"); cell(tr, o.stop ?? "", "num"); cell(tr, o.state); cell(tr, o.purpose);
  });

  const d = s.decision;
  if (d) {
    text($("decision"), `Strategy ${d.strategy} (${d.rule}): ${(d.reasons || []).join("; ")}` +
      ` · pivots ${d.pivots}/${d.max_pivots}` + (d.vix != null ? ` · VIX ${d.vix}` : ""));
  }
  const ul = $("signals");
  ul.replaceChildren();
  for (const e of (s.signals || []).slice().reverse()) {
    const li = document.createElement("li");
    const why = e.reason || (e.reasons ? [].concat(e.reasons).join("; ") : "") || e.state || "";
    text(li, `${(e.ts || "").slice(11, 19)} ${e.event} ${e.symbol || e.contract || e.strategy || ""} ${why}`);
    ul.appendChild(li);
  }
  if (s.tree) text($("tree"), renderTree(s.tree, 0, []).join("\n"));
  renderResources(s.resources || []);
  watchClose(s);
}

function renderResources(series) {
  const last = series[series.length - 1];
  text($("resource-now"), last ? `CPU ${last.cpu_pct ?? "?"} % · RSS ${last.rss_mb ?? "?"} MB · loop lag ${last.loop_lag_ms ?? "?"} ms · disk free ${last.disk_free_gb ?? "?"} GB` : "no sample yet");
  const svg = $("chart");
  svg.replaceChildren();
  const line = (key, colour) => {
    const vals = series.map((p) => p[key]).filter((v) => v != null);
    if (vals.length < 2) return;
    const max = Math.max(...vals) * 1.1 || 1;
    const pts = vals.map((v, i) => `${(i / (vals.length - 1)) * 300},${80 - (v / max) * 76}`).join(" ");
    const pl = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    pl.setAttribute("points", pts); pl.setAttribute("fill", "none");
    pl.setAttribute("stroke", colour); pl.setAttribute("stroke-width", "1.5");
    svg.appendChild(pl);
  };
  line("rss_mb", "#4ea1ff");
  line("cpu_pct", "#f0a030");
}

function addEvents(events, dropped) {
  for (const e of events) {
    const { ts, event, actor, ...rest } = e;
    journalLines.push(`${(ts || "").slice(11, 23)} ${event} ${actor} ${JSON.stringify(rest)}`);
    if (closeWatch && JSON.stringify(rest).includes(closeWatch.key) &&
        ["exit", "order_submitted", "intent_done", "order_intent", "exit_intent"].includes(event)) {
      closeDone(`close of ${closeWatch.key}: ${event}`);
    }
  }
  if (journalLines.length > JOURNAL_LINES) journalLines = journalLines.slice(-JOURNAL_LINES);
  const pre = $("journal");
  text(pre, journalLines.join("\n"));
  pre.scrollTop = pre.scrollHeight;
  if (dropped) text($("dropped"), `(${dropped} events skipped while this page was behind)`);
}

async function post(path, body) {
  const r = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" },
                                body: JSON.stringify(body), credentials: "same-origin" });
  let doc = {};
  try { doc = await r.json(); } catch (e) { /* no body */ }
  return { ok: r.ok, status: r.status, doc };
}

async function killSwitch(engaged) {
  if (!engaged && !window.confirm("Release the kill switch? Trading may resume.")) return;
  const r = await post("/api/kill-switch", { engaged, confirm: !engaged });
  text($("action-result"), r.ok ? `kill switch ${engaged ? "engage" : "release"} sent (${r.status}); ModeGuard applies it`
                                 : `refused (${r.status}): ${r.doc.error || ""}`);
}

async function closePosition(key) {
  if (!window.confirm(`Close ${key} at the market?`)) return;
  const r = await post("/api/close", { option_key: key });
  if (!r.ok) { text($("action-result"), `close refused (${r.status}): ${r.doc.error || ""}`); return; }
  text($("action-result"), `close of ${key} sent; waiting for ModeGuard to act…`);
  if (closeWatch) clearTimeout(closeWatch.timer);
  closeWatch = { key, timer: setTimeout(() => {
    closeDone(`ModeGuard did not act on the close of ${key} within ${CLOSE_WATCH_MS / 1000} s: ` +
              "this build may not handle close_position yet; use the kill switch to flatten");
  }, CLOSE_WATCH_MS) };
}

function watchClose(s) {
  if (!closeWatch) return;
  const pos = (s.positions || []).find((p) => p.option_key === closeWatch.key);
  if (!pos) closeDone(`${closeWatch.key} is closed`);
  else if (pos.protection === "exiting") closeDone(`${closeWatch.key}: exit working`);
}

function closeDone(message) {
  if (!closeWatch) return;
  clearTimeout(closeWatch.timer);
  closeWatch = null;
  text($("action-result"), message);
}

async function loadTrades() {
  try {
    const r = await fetch("/api/trades", { credentials: "same-origin" });
    if (!r.ok) return;
    const doc = await r.json();
    fill($("trades").tBodies[0], doc.trades.slice(0, 30), (tr, t) => {
      cell(tr, (t.opened_ts || "").slice(0, 16)); cell(tr, (t.closed_ts || "open").slice(0, 16));
      cell(tr, t.contract); cell(tr, t.strategy || "?"); cell(tr, t.contracts, "num");
      cell(tr, t.entry_price ?? "–", "num"); cell(tr, t.exit_price ?? "–", "num");
      cell(tr, money(t.pnl), "num " + cls(t.pnl)); cell(tr, t.exit_reason || "");
    });
    const st = doc.stats;
    text($("trade-stats"), `closed ${st.closed} · win rate ${st.win_rate == null ? "n/a" : Math.round(st.win_rate * 100) + " %"} · total ${money(st.pnl)} · max drawdown ${st.max_drawdown}`);
  } catch (e) { /* next time */ }
}

function connect() {
  const ws = new WebSocket(`ws://${location.host}/ws`);
  ws.onopen = () => pill($("conn"), "live", "ok");
  ws.onmessage = (msg) => {
    const doc = JSON.parse(msg.data);
    if (doc.type === "hello") addEvents(doc.events, 0);
    else if (doc.type === "events") {
      addEvents(doc.events, doc.dropped);
      if (doc.events.some((e) => e.event === "fill")) loadTrades();
    } else if (doc.type === "status") renderStatus(doc.status);
  };
  ws.onclose = () => { pill($("conn"), "disconnected: retrying", "bad"); setTimeout(connect, 1000); };
}

document.addEventListener("DOMContentLoaded", () => {
  $("kill-on").addEventListener("click", () => killSwitch(true));
  $("kill-off").addEventListener("click", () => killSwitch(false));
  connect();
  loadTrades();
});
