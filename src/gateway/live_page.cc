// The live page served at the admin listener's `/`: one self-contained document (inline
// style and script, no external assets, so it works in an air-gapped cluster) that polls
// `/api/live` every second and draws pools, endpoints, the queue and recent decisions.
#include <string_view>

namespace infergate::gateway {

extern const std::string_view kLivePageHtml;

const std::string_view kLivePageHtml = R"IGPAGE(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>infergate live</title>
<link rel="icon" href="data:,">
<style>
:root { --bg:#f6f7f9; --card:#fff; --ink:#1d2330; --dim:#6b7385; --line:#e2e5ea;
        --ok:#1f9d55; --warn:#d97706; --bad:#dc2626; --bar:#3b82f6; }
* { box-sizing: border-box; }
body { margin:0; font:13px/1.4 system-ui, sans-serif; background:var(--bg); color:var(--ink); }
header { display:flex; gap:16px; align-items:baseline; padding:10px 16px; background:#1d2330; color:#fff; }
header h1 { font-size:16px; margin:0; }
header .dim { color:#aab; }
main { padding:12px 16px; display:grid; gap:12px; }
section { background:var(--card); border:1px solid var(--line); border-radius:6px; padding:10px 12px; }
h2 { font-size:14px; margin:0 0 8px; display:flex; gap:10px; align-items:baseline; flex-wrap:wrap; }
h2 .tag { font-weight:normal; color:var(--dim); font-size:12px; }
table { border-collapse:collapse; width:100%; }
th, td { text-align:left; padding:3px 8px; border-bottom:1px solid var(--line); white-space:nowrap; }
th { color:var(--dim); font-weight:600; font-size:12px; }
td.num { text-align:right; font-variant-numeric:tabular-nums; }
.badge { display:inline-block; padding:0 6px; border-radius:8px; font-size:11px; color:#fff; }
.ok { background:var(--ok); } .warn { background:var(--warn); } .bad { background:var(--bad); }
.bar { display:inline-block; width:70px; height:8px; background:var(--line); border-radius:4px; vertical-align:middle; margin-right:6px; }
.bar > i { display:block; height:100%; background:var(--bar); border-radius:4px; }
.stats { display:flex; gap:18px; flex-wrap:wrap; margin-bottom:8px; }
.stat b { font-size:16px; display:block; font-variant-numeric:tabular-nums; }
.stat span { color:var(--dim); font-size:11px; }
.cand { display:inline-block; margin-right:8px; color:var(--dim); }
.cand.chosen { color:var(--ink); font-weight:600; }
#error { color:var(--bad); }
</style>
</head>
<body>
<header><h1>infergate</h1><span class="dim" id="clock">connecting…</span>
<span class="dim" id="active"></span><span id="error"></span></header>
<main>
<div id="pools"></div>
<section><h2>Recent decisions <span class="tag">newest first; predicted TTFT per candidate on sampled decisions</span></h2>
<table><thead><tr><th>time</th><th>pool</th><th>model</th><th>prio</th><th>reason</th><th>chosen → served</th>
<th>fallbacks</th><th>prefix</th><th>decided in</th><th>TTFT</th><th>status</th><th>candidates</th></tr></thead>
<tbody id="decisions"></tbody></table></section>
</main>
<script>
"use strict";
let updates = 0;
const $ = (id) => document.getElementById(id);
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function fmt(x, digits) { return (x === undefined || x === null) ? "–" : Number(x).toFixed(digits); }
function ms(s) { return (s === undefined || s === null) ? "–" : (s * 1000).toFixed(s < 0.01 ? 2 : 0) + " ms"; }
function bar(frac, label) {
  const td = el("td", null, "num");
  const b = el("span", null, "bar"); const i = el("i");
  i.style.width = Math.max(0, Math.min(100, frac * 100)).toFixed(0) + "%";
  b.appendChild(i); td.appendChild(b); td.appendChild(document.createTextNode(label));
  return td;
}
function row(cells) {
  const tr = el("tr");
  for (const c of cells) tr.appendChild(c instanceof Node ? c : el("td", c));
  return tr;
}
function num(x, digits) { return el("td", fmt(x, digits), "num"); }
function stat(value, label) {
  const d = el("div", null, "stat"); d.appendChild(el("b", value)); d.appendChild(el("span", label));
  return d;
}
function renderPool(p) {
  const s = el("section"); s.className = "pool"; s.dataset.id = p.id;
  const h = el("h2", p.id);
  h.appendChild(el("span", "profile " + p.profile, "tag"));
  h.appendChild(el("span", p.saturated ? "saturated" : "has room", "badge " + (p.saturated ? "bad" : "ok")));
  s.appendChild(h);
  const stats = el("div", null, "stats");
  stats.appendChild(stat(p.ready + " / " + p.endpoints.length, "ready endpoints"));
  stats.appendChild(stat(p.fresh, "with fresh metrics"));
  stats.appendChild(stat(p.inflight, "in flight (ledger)"));
  const queued = p.queue.reduce((a, q) => a + q.queued, 0);
  stats.appendChild(stat(queued, "in the gateway queue"));
  const t = p.ttft_1m;
  stats.appendChild(stat(t.count ? ms(t.p50) + " / " + ms(t.p90) + " / " + ms(t.p99) : "–",
                         "TTFT p50 / p90 / p99, last minute (" + t.count + " requests)"));
  s.appendChild(stats);
  if (p.queue.length) {
    const q = el("div", "queue by priority: ", "queue");
    for (const b of p.queue) q.appendChild(el("span", "[" + b.priority + "] " + b.queued + "  ", "band"));
    s.appendChild(q);
  }
  const table = el("table");
  const head = el("thead");
  head.appendChild(row(["endpoint", "pod", "state", "scrape age", "waiting", "running", "KV",
                        "ledger in flight", "awaiting 1st token", "decoding", "est. waiting", "est. KV",
                        "prefix entries"].map((x) => el("th", x))));
  table.appendChild(head);
  const body = el("tbody");
  for (const e of p.endpoints) {
    const state = !e.ready ? ["not ready", "bad"] : e.fresh ? ["fresh", "ok"] : ["stale", "warn"];
    const st = el("td"); st.appendChild(el("span", state[0], "badge " + state[1]));
    const tr = row([e.id, e.pod || "", st, el("td", e.age_s === undefined ? "never" : ms(e.age_s), "num"),
                    num(e.scraped.waiting, 0), num(e.scraped.running, 0),
                    bar(e.scraped.kv, fmt(e.scraped.kv * 100, 1) + "%"),
                    num(e.ledger.inflight, 0), num(e.ledger.awaiting, 0), num(e.ledger.decoding, 0),
                    num(e.estimate.waiting, 1), bar(e.estimate.kv, fmt(e.estimate.kv * 100, 1) + "%"),
                    num(e.prefix_entries, 0)]);
    tr.className = "endpoint"; tr.dataset.id = e.id;
    body.appendChild(tr);
  }
  table.appendChild(body);
  s.appendChild(table);
  return s;
}
function renderDecision(d) {
  const when = new Date(d.t_ms).toISOString().substring(11, 23);
  const chosen = d.endpoints.length ? d.endpoints[0] : "—";
  const served = d.served_by && d.served_by !== chosen ? chosen + " → " + d.served_by : chosen;
  const status = el("td"); status.appendChild(el("span", d.status, "badge " + (d.status < 300 ? "ok" : d.status < 500 ? "warn" : "bad")));
  const cands = el("td");
  for (const c of (d.candidates || [])) {
    cands.appendChild(el("span", c.endpoint + " " + ms(c.predicted_ttft_s) + (c.kv_fits ? "" : " (KV full)"),
                         "cand" + (c.endpoint === chosen ? " chosen" : "")));
  }
  return row([when, d.pool, d.model, d.priority, d.reason + (d.decided_by ? " (" + d.decided_by + ")" : ""), served,
              d.endpoints.slice(1).join(", "),
              el("td", d.prompt_blocks ? d.prefix_blocks + "/" + d.prompt_blocks : "–", "num"),
              el("td", ms(d.decide_s), "num"), el("td", ms(d.ttft_s), "num"), status, cands]);
}
function render(state) {
  $("clock").textContent = new Date(state.now_ms).toISOString().replace("T", " ").substring(0, 19) + " UTC";
  $("active").textContent = state.active_requests + " requests in flight";
  const pools = $("pools"); pools.replaceChildren(...state.pools.map(renderPool));
  $("decisions").replaceChildren(...state.decisions.map(renderDecision));
  updates++;
  document.body.dataset.updates = String(updates);
}
async function tick() {
  try {
    const r = await fetch("api/live", { cache: "no-store" });
    if (!r.ok) throw new Error("HTTP " + r.status);
    render(await r.json());
    $("error").textContent = "";
  } catch (err) {
    $("error").textContent = "update failed: " + err.message;
  }
  setTimeout(tick, 1000);
}
tick();
</script>
</body>
</html>
)IGPAGE";

}  // namespace infergate::gateway
