// Sheaf explorer: a hash-routed page over the aggregator's JSON API (no build step, no dependencies).
// Every value from the server is put on the page with textContent (never as HTML).
"use strict";

const view = () => document.getElementById("view");
let stopLive = () => {};  // closes the current page's stream or timer

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined) continue;
    if (k === "text") e.textContent = String(v);
    else e.setAttribute(k, String(v));
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}

const link = (href, text, cls) => el("a", { href, text, class: cls });
const proofLink = (id) => link("#/proof/" + encodeURIComponent(id), id, "mono");
const batchLink = (id) => link("#/batch/" + id, "#" + id);
const status = (s) => el("span", { class: "status s-" + s, text: s });
const mono = (v) => (v === null || v === undefined ? el("span", { class: "muted", text: "—" }) : el("code", { text: v }));
const age = (ms) => {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 120 ? s + " s ago" : s < 7200 ? Math.round(s / 60) + " min ago" : Math.round(s / 3600) + " h ago";
};

async function api(path) {
  const r = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await r.json();
  if (!r.ok) {
    const e = body.error || {};
    throw new Error((e.code || "HTTP_" + r.status) + (e.field ? " (" + e.field + ")" : "") + ": " + (e.message || ""));
  }
  return body;
}

function table(caption, heads, rows, id) {
  const t = el("table", { id });
  t.append(el("caption", { text: caption }));
  const hr = el("tr");
  for (const h of heads) hr.append(el("th", { scope: "col", text: h }));
  t.append(el("thead", {}, hr));
  const tb = el("tbody");
  for (const r of rows) tb.append(el("tr", {}, ...r.map((c) => el("td", {}, c))));
  if (!rows.length) tb.append(el("tr", {}, el("td", { colspan: heads.length, class: "muted", text: "none" })));
  t.append(tb);
  return t;
}

function facts(pairs, id) {
  const dl = el("dl", { id });
  for (const [k, v] of pairs) dl.append(el("dt", { text: k }), el("dd", { "data-field": k }, v));
  return dl;
}

function batchRows(batches) {
  return batches.map((b) => [
    batchLink(b.batch_id),
    document.createTextNode(String(b.domain_id)),
    document.createTextNode(b.aggregation_id === null ? "—" : String(b.aggregation_id)),
    document.createTextNode(b.kind),
    status(b.state),
    document.createTextNode(String(b.leaf_count)),
    mono(b.tx_hash),
    document.createTextNode(b.block_number === null ? "—" : String(b.block_number)),
    document.createTextNode(age(b.created_unix_ms)),
  ]);
}
const BATCH_HEADS = ["batch", "domain", "aggregation", "kind", "state", "leaves", "tx", "block", "age"];

function proofRows(proofs) {
  return proofs.map((p) => [
    proofLink(p.proof_id),
    status(p.status),
    document.createTextNode(p.scheme),
    p.batch_id === null ? mono(null) : batchLink(p.batch_id),
    document.createTextNode(age(p.created_unix_ms)),
  ]);
}
const PROOF_HEADS = ["proof", "status", "scheme", "batch", "submitted"];

const inferenceLink = (id) => link("#/inference/" + encodeURIComponent(id), id, "mono");
const short = (h) => (h && h.length > 20 ? h.slice(0, 10) + "…" + h.slice(-6) : h);
const TERMINAL = ["FINALIZED", "REJECTED", "FAILED"];

function inferenceRows(infs) {
  return infs.map((i) => {
    const proven = i.slices.filter((x) => x !== null);
    return [
      inferenceLink(i.inference_id),
      el("code", { text: short(i.model_id), title: i.model_id }),
      status(i.status),
      document.createTextNode(proven.filter((x) => x.status === "FINALIZED").length + " of " + proven.length + " proven (" + i.slices.length + " slices)"),
      document.createTextNode(age(i.created_unix_ms)),
    ];
  });
}
const INFERENCE_HEADS = ["inference", "model", "status", "slices finalized", "submitted"];

// replaceChildren writes a null as the text "null": optional parts are left out instead
function put(parent, ...nodes) {
  parent.replaceChildren(...nodes.filter((n) => n !== null && n !== undefined));
}

function show(...nodes) {
  put(view(), ...nodes);
}

// Charts are small hand-drawn SVGs: four fixed shapes (bars, a line) over at most 50 points do not
// need a chart library, and the page loads nothing but its own three files (CSP: script-src 'self').
const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, ...kids) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) e.setAttribute(k, String(v));
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}
const fmt = (n) => (n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US"));
// axis labels are short (1.4M, 125k); the exact numbers are in the text alternative and the titles
const axis = (n) => (Math.abs(n) >= 1e6 ? (n / 1e6).toFixed(1) + "M" : Math.abs(n) >= 1e4 ? Math.round(n / 1e3) + "k" : String(n));
const minute = (ms) => new Date(ms).toISOString().slice(11, 16) + " UTC";

// A bar chart: series = [{name, cls, values}] drawn side by side per point; labels[i] names point i.
// The numbers are in the figure's aria-label (the summary) and in each bar's <title> (exact values).
function barChart(id, title, summary, labels, series, opts = {}) {
  const W = 360, H = 150, L = 36, B = 18, T = 8;
  const vals = series.flatMap((s) => s.values.filter((v) => v !== null));
  const lo = Math.min(0, ...vals), hi = Math.max(1, ...vals);
  const y = (v) => T + (H - T - B) * (hi - v) / (hi - lo);
  const step = Math.min(40, (W - L) / Math.max(1, labels.length)), bw = Math.max(1, (step - 2) / series.length);
  const g = svg("g");
  for (const v of [hi, lo === 0 ? 0 : lo]) {
    g.append(svg("line", { x1: L, x2: W, y1: y(v), y2: y(v), class: "axis" }));
    g.append(svg("text", { x: L - 4, y: y(v) + 4, "text-anchor": "end" }, axis(v)));
  }
  labels.forEach((lab, i) => {
    series.forEach((s, j) => {
      const v = s.values[i];
      if (v === null || v === undefined || v === 0) return;
      const top = y(Math.max(v, 0)), bottom = y(Math.min(v, 0));
      g.append(svg("rect", { x: L + i * step + 1 + j * bw, y: top, width: bw, height: Math.max(1, bottom - top), class: s.cls + (v < 0 ? " negative" : "") },
        svg("title", {}, lab + ": " + fmt(v) + " " + s.name)));
    });
  });
  if (labels.length) {
    g.append(svg("text", { x: L, y: H - 6 }, opts.first || labels[0]));
    if (labels.length > 1) g.append(svg("text", { x: W, y: H - 6, "text-anchor": "end" }, opts.last || labels[labels.length - 1]));
  }
  return figure(id, title, summary, g, W, H, series);
}

// A line chart of one series (null: no data for that point, the line breaks there).
function lineChart(id, title, summary, labels, s) {
  const W = 360, H = 130, L = 36, B = 18, T = 8;
  const hi = Math.max(1, ...s.values.filter((v) => v !== null));
  const y = (v) => T + (H - T - B) * (hi - v) / hi;
  const x = (i) => L + (W - L) * (labels.length > 1 ? i / (labels.length - 1) : 0.5);
  const g = svg("g");
  for (const v of [hi, 0]) {
    g.append(svg("line", { x1: L, x2: W, y1: y(v), y2: y(v), class: "axis" }));
    g.append(svg("text", { x: L - 4, y: y(v) + 4, "text-anchor": "end" }, axis(v)));
  }
  let pts = [];
  const flush = () => { if (pts.length) g.append(svg("polyline", { points: pts.join(" "), class: s.cls })); pts = []; };
  s.values.forEach((v, i) => {
    if (v === null) return flush();
    pts.push(x(i) + "," + y(v));
    g.append(svg("circle", { cx: x(i), cy: y(v), r: 2.5, class: s.cls }, svg("title", {}, labels[i] + ": " + fmt(v) + " " + s.name)));
  });
  flush();
  g.append(svg("text", { x: L, y: H - 6 }, labels[0]));
  g.append(svg("text", { x: W, y: H - 6, "text-anchor": "end" }, labels[labels.length - 1]));
  return figure(id, title, summary, g, W, H, [s]);
}

function figure(id, title, summary, g, W, H, series) {
  const chart = svg("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": title + ". " + summary, class: "chart" },
    svg("title", {}, title + ". " + summary), g);
  const legend = el("ul", { class: "legend" });
  for (const s of series) legend.append(el("li", {}, el("span", { class: "swatch " + s.cls, "aria-hidden": "true" }), " " + s.name));
  return el("figure", { id, class: "chart-box" }, el("figcaption", { text: title }), chart, legend, el("p", { class: "muted summary", text: summary }));
}

function activityCharts(o) {
  const bs = o.activity.buckets;
  const labels = bs.map((b) => minute(b.start_unix_ms));
  const known = bs.filter((b) => b.submitted !== null);
  const sum = (k) => known.reduce((a, b) => a + b[k], 0);
  const busiest = known.filter((b) => b.submitted || b.finalized).map((b) => minute(b.start_unix_ms) + " " + b.submitted + "/" + b.finalized);
  const span = bs.length + " minutes";
  const partial = known.length < bs.length ? " (the oldest " + (bs.length - known.length) + " minutes are not counted: too many events to read)" : "";
  const perMin = barChart("chart-activity", "Proofs per minute, last " + span,
    sum("submitted") + " submitted, " + sum("finalized") + " finalized" + partial +
      (busiest.length ? ". Per minute (submitted/finalized): " + busiest.slice(-12).join(", ") : ""),
    labels, [
      { name: "submitted", cls: "c-submitted", values: bs.map((b) => b.submitted) },
      { name: "finalized", cls: "c-finalized", values: bs.map((b) => b.finalized) },
    ]);
  const depth = bs.map((b) => b.queue_depth);
  const known_depth = depth.filter((v) => v !== null);
  const queue = lineChart("chart-queue", "Queue depth (proofs waiting to be batched), last " + span,
    o.queue_depth + " waiting now; at most " + Math.max(0, ...known_depth) + " at a minute's end" + partial,
    labels, { name: "waiting", cls: "c-queue", values: depth });
  return [perMin, queue];
}

function gasChart(o) {
  const g = o.gas;
  const a = g.aggregations;
  const perProof = Object.entries(g.direct_gas_per_proof).map(([k, v]) => k + " " + fmt(v)).join(", ");
  const summary = "Estimated " + fmt(g.saved_gas) + " gas saved by the last " + a.length + " finalized aggregations (" +
    fmt(a.reduce((x, r) => x + r.leaf_count, 0)) + " proofs): direct verification (" + perProof +
    " gas per proof, measured in docs/performance.md) minus each aggregation's gasUsed and its leaves' inclusion checks" +
    (g.not_counted ? "; " + g.not_counted + " aggregations not counted (no receipt or no measured figure)" : "") +
    (a.length ? ". Per aggregation: " + a.slice(-10).map((r) => "#" + r.aggregation_id + " " + fmt(r.saved_gas)).join(", ") : "");
  return barChart("chart-gas", "Gas saved against direct verification (estimated)", summary,
    a.map((r) => "aggregation " + r.aggregation_id + " (" + r.leaf_count + " proofs)"),
    [{ name: "gas saved (estimated)", cls: "c-gas", values: a.map((r) => r.saved_gas) }],
    { first: a.length ? "#" + a[0].aggregation_id : "", last: a.length ? "#" + a[a.length - 1].aggregation_id : "" });
}

const elapsed = (ms) => {
  const s = Math.round(ms / 1000);
  return s < 120 ? s + " s" : s < 7200 ? Math.round(s / 60) + " min" : Math.round(s / 3600) + " h";
};

function inflightRows(batches) {
  return batches.map((b) => [
    batchLink(b.batch_id),
    document.createTextNode(b.kind),
    status(b.state),
    document.createTextNode(b.progress ? b.stage + " (" + b.progress + ")" : b.stage),
    document.createTextNode(String(b.leaf_count)),
    document.createTextNode(elapsed(b.elapsed_ms)),
    mono(b.tx_hash),
  ]);
}

async function overview() {
  let last = "";
  const draw = async () => {
    const [o, b, p, inf] = await Promise.all([
      api("/v1/overview"),
      api("/v1/batches?limit=20"),
      api("/v1/proofs?limit=20"),
      api("/v1/inferences?limit=5"),
    ]);
    // redraw only on news: a redraw moves keyboard focus and makes the live region speak
    const key = JSON.stringify([o.proofs_by_status, o.activity, o.gas, o.in_flight.map((x) => [x.batch_id, x.state, Math.floor(x.elapsed_ms / 10000)]), b, p, inf]);
    if (key === last) return;
    last = key;
    const counts = el("ul", { class: "counts", id: "counts", "aria-label": "proofs by status" });
    for (const [s, n] of Object.entries(o.proofs_by_status)) counts.append(el("li", {}, status(s), " " + n));
    show(
      el("h1", { text: "Overview" }),
      counts,
      el("div", { class: "charts" }, ...activityCharts(o), gasChart(o)),
      table("Batches in flight: being proved or signed, or sent and not yet final (time since the batch was made)",
        ["batch", "kind", "state", "stage", "leaves", "for", "tx"], inflightRows(o.in_flight), "inflight"),
      table("Recent batches", BATCH_HEADS, batchRows(b.batches), "batches"),
      table("Recent proofs", PROOF_HEADS, proofRows(p.proofs), "proofs"),
      table("Recent inferences (whole models)", INFERENCE_HEADS, inferenceRows(inf.inferences), "recent-inferences"),
    );
  };
  await draw();
  // Polling, not a stream: the overview is an aggregate over the whole store that the server
  // computes at most every 2 s for all clients; an event stream would have to push the same
  // aggregate on every proof's change. A few seconds of lag are fine for charts by the minute.
  const t = setInterval(() => draw().catch(() => {}), 3000);
  stopLive = () => clearInterval(t);
}

async function batchPage(id) {
  const b = await api("/v1/batches/" + id);
  const draw = (cur) => {
    show(
      el("h1", { text: "Batch #" + b.batch_id }),
      facts(
        [
          ["state", status(cur.state)],
          ["domain", document.createTextNode(String(cur.domain_id))],
          ["aggregation id", document.createTextNode(cur.aggregation_id === null ? "—" : String(cur.aggregation_id))],
          ["kind", document.createTextNode(cur.kind)],
          ["Merkle root", mono(cur.root)],
          ["leaves", document.createTextNode(String(cur.leaf_count))],
          ["transaction", txLink(cur.tx_hash)],
          ["block", document.createTextNode(cur.block_number === null ? "—" : String(cur.block_number))],
          ["chain / registry", mono(b.chain_id + " / " + b.registry)],
          ["reason", document.createTextNode(cur.reason || "—")],
          ["signatures", document.createTextNode(b.signatures.filter((s) => s.signed).length + " of " + b.signatures.length + " operators")],
        ],
        "batch",
      ),
      table(
        "Proofs (leaf order)",
        ["leaf", "proof", "statement hash", "status"],
        b.proofs.map((p) => [document.createTextNode(String(p.leaf_index)), proofLink(p.proof_id), mono(p.statement_hash), status(p.status)]),
        "leaves",
      ),
    );
  };
  draw(b);
  if (b.state === "finalized" || b.state === "failed") return;
  const es = new EventSource("/v1/batches/" + id + "/events");
  es.addEventListener("batch", (m) => draw(JSON.parse(m.data)));
  es.addEventListener("end", () => es.close());
  stopLive = () => es.close();
}

async function proofPage(id) {
  const p = await api("/v1/proofs/" + encodeURIComponent(id));
  const timeline = el("ol", { id: "timeline", "aria-label": "status timeline" });
  const statusCell = el("span", {}, status(p.status));
  const receipt = el("section", { id: "receipt" });
  show(
    el("h1", {}, "Proof ", el("code", { text: p.proof_id })),
    facts(
      [
        ["status", statusCell],
        ["reason", document.createTextNode(p.reason_code ? p.reason_code + ": " + p.message : "—")],
        ["domain", document.createTextNode(String(p.domain_id))],
        ["scheme", document.createTextNode(p.scheme)],
        ["statement hash", mono(p.statement_hash)],
        ["vk hash", vkLink(p.vk_hash)],
        ["aggregation id", document.createTextNode(p.aggregation_id === null ? "—" : String(p.aggregation_id))],
        ["transaction", txLink(p.tx_hash)],
      ],
      "proof",
    ),
    el("h2", { text: "Status timeline" }),
    timeline,
    receipt,
  );
  const loadReceipt = async () => {
    const r = await api("/v1/proofs/" + encodeURIComponent(id) + "/inclusion");
    const check = el("button", { type: "button", id: "check-onchain", text: "Check on chain" });
    const verdict = el("span", { id: "onchain", role: "status", "aria-live": "polite" });
    const path = el("ol", { id: "merkle-path", start: 0 });
    for (const h of r.merkle_path) path.append(el("li", {}, mono(h)));
    put(receipt, 
      el("h2", { text: "Inclusion receipt" }),
      facts(
        [
          ["aggregation", document.createTextNode(r.domain_id + " / " + r.aggregation_id + " (" + r.kind + ")")],
          ["root", mono(r.root)],
          ["leaf", mono(r.leaf)],
          ["index / leaves", document.createTextNode(r.index + " / " + r.leaf_count)],
          ["transaction", mono(r.tx_hash)],
          ["block", document.createTextNode(String(r.block_number))],
          ["chain / registry", mono(r.chain_id + " / " + r.registry)],
        ],
        "inclusion",
      ),
      el("h2", { text: "Merkle path (leaf to root)" }),
      path,
      r.merkle_path.length ? null : el("p", { class: "muted", text: "Empty: the batch has one leaf, which is the root." }),
      el("p", {}, check, " ", verdict),
    );
    check.addEventListener("click", async () => {
      verdict.textContent = "asking the registry…";
      try {
        const v = await api("/v1/proofs/" + encodeURIComponent(id) + "/verify");
        verdict.replaceChildren(
          el("span", { class: "status " + (v.verified ? "s-FINALIZED" : "s-FAILED"), text: v.verified ? "verified" : "NOT verified" }),
          " by " + v.function.split("(")[0] + " on chain " + v.chain_id + ", registry " + v.registry,
        );
      } catch (err) {
        verdict.replaceChildren(el("span", { class: "error", text: String(err.message) }));
      }
    });
  };
  const es = new EventSource("/v1/proofs/" + encodeURIComponent(id) + "/events");
  es.addEventListener("status", (m) => {
    const e = JSON.parse(m.data);
    timeline.append(el("li", {}, status(e.status), " " + new Date(e.unix_ms).toISOString() + (e.reason_code ? " " + e.reason_code : "")));
    statusCell.replaceChildren(status(e.status));
    if (e.status === "FINALIZED") loadReceipt().catch((err) => put(receipt, el("p", { class: "error", text: String(err.message) })));
  });
  es.addEventListener("end", () => es.close());
  stopLive = () => es.close();
}

async function inferencesPage(cursor) {
  const r = await api("/v1/inferences?limit=20" + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
  show(
    el("h1", { text: "Inferences" }),
    el("p", { class: "muted", text: "Whole inferences: every slice of one model run, submitted as one unit with one status (docs/inference.md)." }),
    table("Inferences, newest first", INFERENCE_HEADS, inferenceRows(r.inferences), "inferences"),
    r.next_cursor ? link("#/inferences/" + encodeURIComponent(r.next_cursor), "Older inferences", "older") : null,
  );
}

async function inferencePage(id) {
  const enc = encodeURIComponent(id);
  const draw = async () => {
    const v = await api("/v1/inferences/" + enc);
    const m = await api("/v1/models/" + v.model_id);
    const receipt = el("section", { id: "inference-receipt" });
    show(
      el("h1", {}, "Inference ", el("code", { text: v.inference_id })),
      facts(
        [
          ["status", status(v.status)],
          ["model", mono(v.model_id)],
          ["domain", document.createTextNode(String(v.domain_id))],
          ["inference hash", mono(v.inference_hash)],
          ["slices", document.createTextNode(m.slices.length + " (" + m.slices.filter((x) => x.proven).length + " proven)")],
        ],
        "inference",
      ),
      table(
        "Slices (model order)",
        ["slice", "proven", "scheme", "vk hash", "proof", "status"],
        m.slices.map((sp, i) => {
          const sl = v.slices[i];
          return [
            document.createTextNode(String(i)),
            document.createTextNode(sp.proven ? "yes" : "no (runs unproven)"),
            document.createTextNode(sp.proven ? ["", "groth16", "plonk", "halo2"][sp.scheme] || String(sp.scheme) : "—"),
            sp.proven ? el("code", { text: short(sp.vk_hash), title: sp.vk_hash }) : mono(null),
            sl ? proofLink(sl.proof_id) : mono(null),
            sl ? status(sl.status) : mono(null),
          ];
        }),
        "slices",
      ),
      receipt,
    );
    if (v.status !== "FINALIZED") {
      put(receipt, 
        el("h2", { text: "Inference receipt" }),
        el("p", { id: "receipt-status", text: TERMINAL.includes(v.status)
          ? "none: a slice is " + v.status + ", so the inference cannot be accepted"
          : "not yet: available once every proven slice is FINALIZED (now " + v.status + ")" }),
      );
      return v.status;
    }
    const r = await api("/v1/inferences/" + enc + "/receipt");
    put(receipt, 
      el("h2", { text: "Inference receipt" }),
      el("p", { id: "receipt-status", text: "available: checked against every slice's aggregation; SheafInference.verifyInference takes it as is" }),
      facts(
        [
          ["input commitment", mono(r.input_commitment)],
          ["output (slice " + r.output_slice + ")", mono(r.output.join(", "))],
          ["chain / registry", mono(r.chain_id + " / " + r.registry)],
        ],
        "receipt",
      ),
      table(
        "Inclusion of each proven slice",
        ["slice", "aggregation", "kind", "leaf", "index / leaves", "transaction"],
        r.slices.flatMap((x, i) => (x.proven ? [[
          document.createTextNode(String(i)),
          document.createTextNode(String(x.aggregation_id)),
          document.createTextNode(x.kind),
          el("code", { text: short(x.statement_hash), title: x.statement_hash }),
          document.createTextNode(x.index + " / " + x.leaf_count),
          el("code", { text: short(x.tx_hash), title: x.tx_hash }),
        ]] : [])),
        "receipt-slices",
      ),
    );
    return v.status;
  };
  if (TERMINAL.includes(await draw())) return;
  const t = setInterval(() => draw().then((st) => { if (TERMINAL.includes(st)) clearInterval(t); }).catch(() => {}), 3000);
  stopLive = () => clearInterval(t);
}

const txLink = (h) => (h === null ? mono(null) : el("a", { href: "#/tx/" + h, class: "mono" }, el("code", { text: h })));
const vkLink = (h) => (h === null ? mono(null) : el("a", { href: "#/vk/" + h, class: "mono" }, el("code", { text: h })));

// The aggregation(s) posted in a transaction (one: the aggregator sends each in its own).
async function txPage(hash) {
  const r = await api("/v1/batches?tx_hash=" + encodeURIComponent(hash));
  const found = await Promise.all(r.batches.map((b) => api("/v1/batches/" + b.batch_id)));
  show(
    el("h1", {}, "Transaction ", el("code", { text: hash })),
    found.length ? null : el("p", { id: "tx-none", text: "No aggregation of this aggregator was posted in this transaction." }),
    ...found.flatMap((d, i) => [
      el("h2", { text: "Aggregation " + d.domain_id + " / " + (d.aggregation_id === null ? "—" : d.aggregation_id) }),
      facts(
        [
          ["batch", batchLink(d.batch_id)],
          ["state", status(d.state)],
          ["kind", document.createTextNode(d.kind)],
          ["Merkle root", mono(d.root)],
          ["leaves", document.createTextNode(String(d.leaf_count))],
          ["block", document.createTextNode(d.block_number === null ? "—" : String(d.block_number))],
          ["chain / registry", mono(d.chain_id + " / " + d.registry)],
        ],
        i === 0 ? "tx-aggregation" : null,
      ),
      table(
        "Proofs in aggregation " + (d.aggregation_id === null ? "—" : d.aggregation_id) + " (leaf order)",
        ["leaf", "proof", "statement hash", "status"],
        d.proofs.map((p) => [document.createTextNode(String(p.leaf_index)), proofLink(p.proof_id), mono(p.statement_hash), status(p.status)]),
        i === 0 ? "tx-proofs" : null,
      ),
    ]),
  );
}

// The proofs verified with one verification key, newest first (GET /v1/proofs?vk_hash=, paged).
async function vkPage(arg) {
  const [hash, cursor] = arg.split("/");
  const r = await api("/v1/proofs?limit=50&vk_hash=" + encodeURIComponent(hash) + (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
  show(
    el("h1", {}, "Verification key ", el("code", { text: hash })),
    table("Proofs with this verification key, newest first" + (cursor ? " (older page)" : ""), PROOF_HEADS, proofRows(r.proofs), "vk-proofs"),
    r.next_cursor ? link("#/vk/" + hash + "/" + encodeURIComponent(r.next_cursor), "Older proofs", "older") : null,
  );
}

async function searchPage(q) {
  document.getElementById("q").value = q;
  const r = await api("/v1/search?q=" + encodeURIComponent(q));
  // a 32-byte hash can be a statement, a verification key, a transaction or a Merkle root: go to
  // the page for what it is when it is one of them
  const m = /^(?:0x)?([0-9a-fA-F]{64})$/.exec(q.trim());
  if (m) {
    const h = "0x" + m[1].toLowerCase();
    const hits = [
      ["statement", r.proofs.filter((p) => p.statement_hash === h), (x) => (x.length === 1 ? "#/proof/" + encodeURIComponent(x[0].proof_id) : null)],
      ["tx", r.batches.filter((b) => b.tx_hash === h), () => "#/tx/" + h],
      ["root", r.batches.filter((b) => b.root === h), (x) => (x.length === 1 ? "#/batch/" + x[0].batch_id : null)],
      ["vk", r.proofs.filter((p) => p.vk_hash === h), () => "#/vk/" + h],
    ].filter(([, found]) => found.length);
    const to = hits.length === 1 ? hits[0][2](hits[0][1]) : null;
    if (to) return location.replace(to);
  } else if (r.proofs.length + r.batches.length + r.inferences.length === 1) {
    location.replace(
      r.proofs.length ? "#/proof/" + encodeURIComponent(r.proofs[0].proof_id)
        : r.batches.length ? "#/batch/" + r.batches[0].batch_id
        : "#/inference/" + encodeURIComponent(r.inferences[0].inference_id),
    );
    return;
  }
  show(
    el("h1", { text: "Search: " + q }),
    table("Proofs", PROOF_HEADS, proofRows(r.proofs), "found-proofs"),
    table("Batches", BATCH_HEADS, batchRows(r.batches), "found-batches"),
    table("Inferences", INFERENCE_HEADS, inferenceRows(r.inferences), "found-inferences"),
  );
}

async function route() {
  stopLive();
  stopLive = () => {};
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  const arg = decodeURIComponent(parts.slice(1).join("/"));
  try {
    if (parts[0] === "batch") await batchPage(arg);
    else if (parts[0] === "proof") await proofPage(arg);
    else if (parts[0] === "search") await searchPage(arg);
    else if (parts[0] === "inferences") await inferencesPage(arg);
    else if (parts[0] === "inference") await inferencePage(arg);
    else if (parts[0] === "tx") await txPage(arg);
    else if (parts[0] === "vk") await vkPage(arg);
    else await overview();
  } catch (err) {
    show(el("h1", { text: "Not available" }), el("p", { class: "error", role: "alert", id: "error", text: String(err.message) }));
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("search").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = document.getElementById("q").value.trim();
    if (q) location.hash = "#/search/" + encodeURIComponent(q);
  });
  api("/v1/overview")
    .then((o) => (document.getElementById("chain").textContent = "chain " + o.chain_id + " · registry " + o.registry))
    .catch(() => {});
  window.addEventListener("hashchange", route);
  route();
});
