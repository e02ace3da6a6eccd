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

async function overview() {
  const draw = async () => {
    const [o, b, p, inf, ...open] = await Promise.all([
      api("/v1/overview"),
      api("/v1/batches?limit=20"),
      api("/v1/proofs?limit=20"),
      api("/v1/inferences?limit=5"),
      ...["pending", "signed", "submitted"].map((st) => api("/v1/batches?limit=20&state=" + st)),
    ]);
    const inflight = open.flatMap((x) => x.batches).sort((x, y) => y.batch_id - x.batch_id);
    const counts = el("ul", { class: "counts", id: "counts", "aria-label": "proofs by status" });
    for (const [s, n] of Object.entries(o.proofs_by_status)) counts.append(el("li", {}, status(s), " " + n));
    show(
      el("h1", { text: "Overview" }),
      counts,
      table("Batches in flight (being proved or signed, or sent and not yet final)", BATCH_HEADS, batchRows(inflight), "inflight"),
      table("Recent batches", BATCH_HEADS, batchRows(b.batches), "batches"),
      table("Recent proofs", PROOF_HEADS, proofRows(p.proofs), "proofs"),
      table("Recent inferences (whole models)", INFERENCE_HEADS, inferenceRows(inf.inferences), "recent-inferences"),
    );
  };
  await draw();
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
          ["transaction", mono(cur.tx_hash)],
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
        ["vk hash", mono(p.vk_hash)],
        ["aggregation id", document.createTextNode(p.aggregation_id === null ? "—" : String(p.aggregation_id))],
        ["transaction", mono(p.tx_hash)],
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

async function searchPage(q) {
  document.getElementById("q").value = q;
  const r = await api("/v1/search?q=" + encodeURIComponent(q));
  if (r.proofs.length + r.batches.length + r.inferences.length === 1) {
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
