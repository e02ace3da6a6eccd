// Drives the explorer in Debian's chromium with playwright-core (pinned in package.json); run by
// tests/aggregator/test_explorer.py: node explorer_browser.js <base url> <expectations json> <artifact dir>.
// Prints what the pages showed as JSON on stdout; the Python test asserts on it.
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require("playwright-core");

const [base, wantJson, outDir] = process.argv.slice(2);
const want = JSON.parse(wantJson);
const FLAGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

// WCAG relative luminance contrast of each text element's colour against white (the page's only
// background behind text, buttons aside).
function contrastProbe() {
  const lum = (rgb) => {
    const [r, g, b] = rgb.match(/\d+/g).slice(0, 3).map((v) => {
      const c = Number(v) / 255;
      return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  let min = 21;
  for (const e of document.querySelectorAll("body *")) {
    if (!e.childNodes.length || ![...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
    const st = getComputedStyle(e);
    const bg = st.backgroundColor;
    const back = bg && !bg.endsWith(", 0)") && bg !== "transparent" ? lum(bg) : 1;
    const fore = lum(st.color);
    const ratio = (Math.max(back, fore) + 0.05) / (Math.min(back, fore) + 0.05);
    min = Math.min(min, ratio);
  }
  return {
    min_contrast: Math.round(min * 100) / 100,
    unlabelled_inputs: [...document.querySelectorAll("input")].filter((i) => !i.labels || !i.labels.length).map((i) => i.id),
    tables_without_caption: [...document.querySelectorAll("table")].filter((t) => !t.caption).length,
    has_main: !!document.querySelector("main"),
  };
}

(async () => {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "sheaf-chromium-"));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: FLAGS,
    viewport: { width: 1280, height: 900 },
  });
  const out = { console_errors: [] };
  try {
    const page = ctx.pages()[0] || (await ctx.newPage());
    page.setDefaultTimeout(15000);
    page.on("console", (m) => { if (m.type() === "error") out.console_errors.push(m.text()); });
    page.on("pageerror", (e) => out.console_errors.push(String(e)));
    const texts = (sel) => page.$$eval(sel, (es) => es.map((e) => e.textContent.trim()));
    // a missing value must never be written as text
    const stray = () => page.evaluate(() => (document.querySelector("main").innerText.match(/\b(null|undefined|NaN)\b/g) || []));

    // overview (the HTTP port's root redirects to it)
    await page.goto(base + "/");
    out.landed = new URL(page.url()).pathname;
    await page.waitForSelector("#batches tbody a");
    await page.waitForFunction((n) => document.querySelectorAll("#proofs tbody a").length >= n, want.proof_ids.length);
    out.overview = {
      batches: await texts("#batches tbody td:first-child a"),
      proofs: await texts("#proofs tbody td:first-child a"),
      counts: (await texts("#counts li")).join(" | "),
      inflight: await texts("#inflight tbody td"),
      stray: await stray(),
    };
    // the charts: drawn with data, each with a text alternative that carries the numbers
    await page.waitForSelector("#chart-activity svg rect");
    out.charts = await page.evaluate(() => Object.fromEntries([...document.querySelectorAll("figure.chart-box")].map((f) => {
      const s = f.querySelector("svg");
      return [f.id, {
        role: s.getAttribute("role"),
        label: s.getAttribute("aria-label"),
        bars: s.querySelectorAll("rect").length,
        points: s.querySelectorAll("circle").length,
        caption: f.querySelector("figcaption").textContent,
      }];
    })));
    out.a11y = await page.evaluate(contrastProbe);
    await page.keyboard.press("Tab");  // first stop: the brand link; second: the search field
    await page.keyboard.press("Tab");
    out.a11y.focus_after_tab = await page.evaluate(() => document.activeElement && document.activeElement.id);
    await page.screenshot({ path: path.join(outDir, "overview.png"), fullPage: true });

    // a batch: its state, chain transaction and leaves
    await page.click("#batches tbody td:first-child a");
    await page.waitForSelector("#leaves tbody a");
    out.batch = {
      state: (await texts('#batch dd[data-field="state"]'))[0],
      tx: (await texts('#batch dd[data-field="transaction"]'))[0],
      leaves: await texts("#leaves tbody td:nth-child(2) a"),
      stray: await stray(),
    };
    await page.screenshot({ path: path.join(outDir, "batch.png"), fullPage: true });

    // one of its proofs: status, timeline (live stream), receipt with the Merkle path
    await page.click("#leaves tbody td:nth-child(2) a");
    await page.waitForSelector("#inclusion");
    await page.waitForSelector("#merkle-path", { state: "attached" });  // empty for a one-leaf batch
    out.proof = {
      id: (await texts("h1 code"))[0],
      status: (await texts('#proof dd[data-field="status"]'))[0],
      timeline: (await texts("#timeline li .status")),
      path: await texts("#merkle-path li"),
      root: (await texts('#inclusion dd[data-field="root"]'))[0],
    };
    // the on-chain check: verifyProofAggregation with this receipt, asked through the aggregator
    await page.click("#check-onchain");
    await page.waitForFunction(() => /verified/.test(document.getElementById("onchain").textContent));
    out.proof.onchain = (await texts("#onchain"))[0];
    out.proof.stray = await stray();
    await page.screenshot({ path: path.join(outDir, "proof.png"), fullPage: true });

    // search by statement hash, typed with the keyboard: lands on the proof
    await page.goto(base + "/explorer/#/");
    await page.waitForSelector("#batches");
    await page.focus("#q");
    await page.keyboard.type(want.statements[1]);
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => location.hash.startsWith("#/proof/"));
    await page.waitForSelector("#proof");
    out.search = { landed: await page.evaluate(() => decodeURIComponent(location.hash)), id: (await texts("h1 code"))[0] };
    await page.screenshot({ path: path.join(outDir, "search.png"), fullPage: true });

    // search by transaction hash: lands on the transaction's page with the aggregation posted in it
    await page.fill("#q", want.tx_hash);
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => location.hash.startsWith("#/tx/"));
    await page.waitForSelector("#tx-proofs tbody a");
    out.tx = {
      landed: await page.evaluate(() => decodeURIComponent(location.hash)),
      batch: (await texts('#tx-aggregation dd[data-field="batch"]'))[0],
      leaves: await texts("#tx-proofs tbody td:nth-child(2) a"),
      stray: await stray(),
    };
    out.a11y_tx = await page.evaluate(contrastProbe);
    await page.screenshot({ path: path.join(outDir, "tx.png"), fullPage: true });

    // search by vk hash (upper case, no 0x): lands on the key's page listing its proofs
    await page.fill("#q", want.vk_hash.slice(2).toUpperCase());
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => location.hash.startsWith("#/vk/"));
    await page.waitForSelector("#vk-proofs tbody a");
    out.vk = {
      landed: await page.evaluate(() => decodeURIComponent(location.hash)),
      proofs: await texts("#vk-proofs tbody td:first-child a"),
      stray: await stray(),
    };
    out.a11y_vk = await page.evaluate(contrastProbe);
    await page.screenshot({ path: path.join(outDir, "vk.png"), fullPage: true });

    // whole inferences: the list (from the header's nav link), then search by inference id lands on
    // its page: the unit's status, each slice's proof and status, the receipt's status
    await page.click("#nav-inferences");
    await page.waitForSelector("#inferences tbody a");
    out.inferences = {
      ids: await texts("#inferences tbody td:first-child a"),
      statuses: await texts("#inferences tbody .status"),
      stray: await stray(),
    };
    await page.screenshot({ path: path.join(outDir, "inferences.png"), fullPage: true });
    await page.fill("#q", want.inference_id);
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => location.hash.startsWith("#/inference/"));
    await page.waitForSelector("#receipt-slices");
    out.inference = {
      landed: await page.evaluate(() => decodeURIComponent(location.hash)),
      id: (await texts("h1 code"))[0],
      status: (await texts('#inference dd[data-field="status"]'))[0],
      model: (await texts('#inference dd[data-field="model"]'))[0],
      slice_proofs: await texts("#slices tbody td:nth-child(5) a"),
      slice_statuses: await texts("#slices tbody td:nth-child(6)"),
      receipt: (await texts("#receipt-status"))[0],
      receipt_slices: (await texts("#receipt-slices tbody tr")).length,
      stray: await stray(),
    };
    out.a11y_inference = await page.evaluate(contrastProbe);
    await page.screenshot({ path: path.join(outDir, "inference.png"), fullPage: true });

    // a hash nothing has: both result tables say so
    await page.goto(base + "/explorer/#/search/0x" + "ee".repeat(32));
    await page.waitForSelector("#found-batches");
    out.miss = {
      proofs: (await texts("#found-proofs tbody td"))[0],
      batches: (await texts("#found-batches tbody td"))[0],
    };
  } finally {
    await ctx.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify(out));
})().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
