// Loads every dashboard page of a running mirato server in headless Chromium and checks it:
// no console errors, no failed requests, the script ran, every panel shows a chart or a table,
// no English code, chart text of 12px or more and no legend over the bars or lines.
// Also exercises the filters (cascade, submit, carried across pages) and table sorting.
// Screenshots go to OUT_DIR. Usage: node pages.mjs BASE_URL OUT_DIR
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

const [base, outDir] = process.argv.slice(2);
if (!base || !outDir) {
  console.error("usage: node pages.mjs BASE_URL OUT_DIR");
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const failures = [];
const fail = (msg) => { failures.push(msg); console.error("FAIL " + msg); };

const context = await browser.newContext({ viewport: { width: 1400, height: 1000 }, locale: "it-IT" });
const page = await context.newPage();
page.setDefaultTimeout(180_000);
let current = "";
page.on("console", (m) => { if (m.type() === "error") fail(`${current}: console error: ${m.text()}`); });
page.on("pageerror", (e) => fail(`${current}: page error: ${e.message}`));
page.on("response", (r) => { if (r.status() >= 400) fail(`${current}: ${r.status()} for ${r.url()}`); });

// Runs in the page, over every chart: its text smaller than 12px on screen (the font size
// times the SVG's scale), and its legend when it overlaps a bar or a line, or is missing where
// the marks have more than one colour of the palette (charts.rs: PALETTE).
function chartProblems(svgs) {
  const palette = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7"];
  const overlap = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5
    && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
  return svgs.map((svg) => {
    const problems = [];
    const scale = svg.getScreenCTM()?.a ?? 1;
    const small = Array.from(svg.querySelectorAll("text"))
      .map((t) => ({ words: t.textContent.trim(), px: parseFloat(getComputedStyle(t).fontSize) * scale }))
      .filter((t) => t.words && t.px < 12)
      .sort((a, b) => a.px - b.px);
    if (small.length) problems.push(`${small.length} texts under 12px, "${small[0].words}" at ${small[0].px.toFixed(1)}px`);
    const legend = svg.querySelector("g.legend");
    const marks = Array.from(svg.querySelectorAll("rect, polyline, polygon, path, circle"))
      .filter((e) => !e.closest("g.legend"))
      .map((e) => ({ e, colour: [e.getAttribute("fill"), e.getAttribute("stroke")]
        .map((c) => (c || "").toUpperCase()).find((c) => palette.includes(c)) }))
      .filter((m) => m.colour);
    const colours = new Set(marks.map((m) => m.colour));
    if (colours.size > 1 && !legend) problems.push(`${colours.size} series and no legend (g.legend)`);
    if (legend) {
      const box = legend.getBoundingClientRect();
      const covered = marks.filter((m) => overlap(box, m.e.getBoundingClientRect()));
      if (covered.length) problems.push(`the legend covers ${covered.length} bars or lines`);
    }
    return { id: svg.closest("article, section, div")?.id || svg.id, problems };
  });
}

async function visit(url) {
  current = url;
  const resp = await page.goto(url, { waitUntil: "load", timeout: 180_000 });
  if (!resp || resp.status() !== 200) fail(`${url}: status ${resp && resp.status()}`);
  await page.waitForFunction(() => document.body.dataset.ready === "1", null, { timeout: 10_000 })
    .catch(() => fail(`${url}: app.js did not run`));
}

// Unauthenticated, a page sends to the login form; log in there.
current = `${base}/login`;
await page.goto(`${base}/p/panoramica`, { waitUntil: "load" });
if (!page.url().includes("/login")) fail(`no redirect to the login page: ${page.url()}`);
await page.fill("input[name=user]", process.env.E2E_USER || "");
await page.fill("input[name=password]", process.env.E2E_PASSWORD || "");
await Promise.all([page.waitForNavigation({ timeout: 180_000 }), page.click("form.login button[type=submit]")]);
if (!page.url().includes("/p/panoramica")) fail(`login did not return to the page: ${page.url()}`);
await page.screenshot({ path: join(outDir, "login-done.png") });

// The pages, from the navigation.
await visit(`${base}/p/panoramica`);
const links = await page.$$eval("nav a", (as) => as.map((a) => [a.textContent.trim(), a.getAttribute("href")]));
if (links.length < 10) fail(`only ${links.length} pages in the navigation`);

const report = [];
for (const [title, href] of links) {
  const slug = href.split("?")[0].split("/").pop();
  await visit(base + href);
  const panels = await page.$$eval("article.panel", (arts) => arts.map((a) => ({
    id: a.id,
    title: a.querySelector("h2")?.textContent,
    chart: a.dataset.chart,
    svg: !!a.querySelector("svg.chart"),
    svgTitle: !!a.querySelector("svg.chart title"),
    table: !!a.querySelector("table"),
    empty: !!a.querySelector(".empty"),
    tile: !!a.querySelector(".value"),
    error: a.querySelector("[role=alert]")?.textContent || null,
  })));
  if (panels.length === 0) fail(`${slug}: no panels`);
  for (const p of panels) {
    if (p.error) fail(`${slug} ${p.id} (${p.title}): ${p.error}`);
    const drawn = p.chart === "table" ? p.table || p.empty
      : p.chart === "tile" ? p.tile && p.table
      : (p.svg && p.svgTitle && p.table) || p.empty;
    if (!drawn) fail(`${slug} ${p.id} (${p.title}, ${p.chart}): chart or table missing`);
  }
  // No English code in what people read (KPIS.md v2): no snake_case word and no "other" or
  // "unknown", in the text or the charts.
  const text = await page.$eval("main", (m) => m.innerText + " "
    + Array.from(m.querySelectorAll("svg text")).map((t) => t.textContent).join(" "));
  const codes = text.match(/\b[a-z]+(?:_[a-z0-9]+)+\b|\bother\b|\bunknown\b/g);
  if (codes) fail(`${slug}: codes shown instead of Italian words: ${[...new Set(codes)].slice(0, 10).join(", ")}`);
  // Charts read at 100% zoom: no text under 12px, in this window and in one as narrow as the
  // grid's narrowest column; where several series share a chart, a legend that covers none.
  for (const width of [1400, 600]) {
    await page.setViewportSize({ width, height: 1000 });
    for (const c of await page.$$eval("svg.chart", chartProblems)) {
      for (const problem of c.problems) fail(`${slug} ${c.id} at ${width}px: ${problem}`);
    }
  }
  await page.setViewportSize({ width: 1400, height: 1000 });
  await page.screenshot({ path: join(outDir, `${slug}.png`), fullPage: true });
  // Funnel plots and maps on their own too (the README shows them): a funnel plot draws its
  // territories as points and its limits as curves, a map its twenty regions.
  for (const kind of ["funnelplot", "map"]) {
    const panel = page.locator(`article[data-chart=${kind}]`).first();
    if (await panel.count() === 0) continue;
    const marks = await panel.evaluate((a, k) => a.querySelectorAll(k === "map" ? "svg.chart > path" : "svg.chart circle").length, kind);
    if (marks === 0 && await panel.locator(".empty").count() === 0) fail(`${slug}: the ${kind} draws nothing`);
    if (kind === "map" && marks !== 20) fail(`${slug}: the map has ${marks} regions, not 20`);
    await panel.screenshot({ path: join(outDir, `${slug}-${kind}.png`) });
  }
  report.push({ page: title, slug, panels: panels.length });
}

// Filters: choosing a region hides the other regions' provinces; applying puts it in the URL,
// and the navigation carries it to the next page.
await visit(`${base}/p/iscrizione`);
await page.selectOption("#f-region", "Lazio");
const visibleProvinces = await page.$$eval("#f-province option", (os) => os.filter((o) => o.value && !o.hidden).map((o) => o.value));
if (visibleProvinces.sort().join(",") !== "FR,LT,RI,RM,VT") fail(`cascade: provinces shown for Lazio: ${visibleProvinces}`);
await page.selectOption("#f-province", "RM");
const visibleCpis = await page.$$eval("#f-cpi option", (os) => os.filter((o) => o.value && !o.hidden).map((o) => o.dataset.province));
if (visibleCpis.length === 0 || visibleCpis.some((p) => p !== "RM")) fail(`cascade: CPIs shown for RM: ${visibleCpis}`);
await Promise.all([page.waitForNavigation(), page.click("form.filters button[type=submit]")]);
current = page.url();
if (!/region=Lazio/.test(page.url()) || !/province=RM/.test(page.url())) fail(`filters not in the URL: ${page.url()}`);
const esiti = await page.$eval('nav a[href^="/p/esiti"]', (a) => a.getAttribute("href"));
if (!/region=Lazio/.test(esiti)) fail(`filters not carried to other pages: ${esiti}`);

// Presets change the period.
await visit(`${base}/p/panoramica`);
const preset = await page.$$eval(".presets a", (as) => as.map((a) => a.getAttribute("href")));
if (!preset.some((h) => /from=\d{4}-\d{2}-\d{2}&to=/.test(h))) fail(`presets without a period: ${preset}`);

// Sorting: a table with several rows reverses when its value column is clicked twice.
await visit(`${base}/p/iscrizione`);
const table = page.locator("article.panel[data-chart=table] table").first();
const valuesOf = () => table.locator("tbody tr td.num:nth-child(2)").allTextContents();
const header = table.locator("thead th").nth(1).locator("button");
await header.click();
const asc = await valuesOf();
await header.click();
const desc = await valuesOf();
if (asc.length > 1 && asc.join() !== desc.slice().reverse().join()) fail(`sorting: ${asc} vs ${desc}`);
const sortState = await table.locator("thead th").nth(1).getAttribute("aria-sort");
if (sortState !== "descending") fail(`aria-sort after two clicks: ${sortState}`);

await browser.close();
console.log(JSON.stringify({ pages: report, failures }, null, 1));
process.exit(failures.length ? 1 : 0);
