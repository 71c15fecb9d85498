// Drives headless Chromium (Debian's, through playwright-core from npm) against a running
// cluster's dashboard for tests/dashboard_test.cpp:
//   node dashboard_browser.js CONFIG.json
// CONFIG: {url, chromium, out_dir, deadline_ms,
//          expect: {nodes: {ID: {state, labels}}, pools: {NAME: {redundancy, failure_domain,
//                   locality, pgs}}, volumes: {NAME: used_bytes}},
//          kill: {pid, node, deadline_ms} (optional)}
// Loads the page at 1280x800, waits (bounded) until it shows what `expect` says `granary admin`
// printed, screenshots it; then, with `kill`, SIGKILLs that datanode process and waits until the
// page shows it down. Prints one line `RESULT {json}`; exits 1 on a mismatch, a console error, a
// failed request or a page error.
'use strict';
const fs = require('fs');
const path = require('path');
const {chromium} = require('playwright-core');

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const result = {problems: [], console_errors: [], screenshots: []};

function finish(code) {
  console.log('RESULT ' + JSON.stringify(result));
  process.exit(code);
}

// What the page shows, read from its tables (the data-* attributes carry the exact figures the
// cells print in human units).
function readPage() {
  const nodes = {};
  for (const tr of document.querySelectorAll('#datanodes tbody tr[data-node]')) {
    nodes[tr.dataset.node] = {
      state: tr.dataset.state,
      labels: tr.querySelector('td[data-labels]').dataset.labels,
      shown: tr.textContent,
    };
  }
  const pools = {};
  for (const tr of document.querySelectorAll('#pools tbody tr[data-pool]')) {
    const field = (f) => tr.querySelector(`td[data-field="${f}"]`).textContent;
    pools[tr.dataset.pool] = {
      redundancy: field('redundancy'),
      failure_domain: field('failure-domain'),
      locality: field('locality'),
      pgs: Number(field('pgs')),
    };
  }
  const volumes = {};
  for (const tr of document.querySelectorAll('#volumes tbody tr[data-volume]')) {
    volumes[tr.dataset.volume] = Number(tr.dataset.usedBytes);
  }
  return {
    loaded: document.body.dataset.loaded === 'true',
    health: document.getElementById('health').dataset.state,
    charts: document.querySelectorAll('.chart canvas').length,
    nodes, pools, volumes,
  };
}

function mismatches(shown, expect) {
  const out = [];
  if (!shown.loaded) return ['the page has not loaded /api/status'];
  if (shown.charts < 3) out.push(`${shown.charts} charts drawn, expected 3`);
  for (const [id, n] of Object.entries(expect.nodes)) {
    const s = shown.nodes[id];
    if (!s) out.push(`datanode ${id} not shown`);
    else if (s.state !== n.state) out.push(`datanode ${id} shown ${s.state}, admin says ${n.state}`);
    else if (s.labels !== n.labels) out.push(`datanode ${id} labels ${s.labels} != ${n.labels}`);
  }
  if (Object.keys(shown.nodes).length !== Object.keys(expect.nodes).length) {
    out.push(`${Object.keys(shown.nodes).length} datanodes shown, admin lists ` +
             Object.keys(expect.nodes).length);
  }
  for (const [name, p] of Object.entries(expect.pools)) {
    const s = shown.pools[name];
    if (!s) out.push(`pool ${name} not shown`);
    else {
      for (const k of Object.keys(p)) {
        if (s[k] !== p[k]) out.push(`pool ${name} shows ${k} ${s[k]}, admin says ${p[k]}`);
      }
    }
  }
  if (Object.keys(shown.pools).length !== Object.keys(expect.pools).length) {
    out.push(`${Object.keys(shown.pools).length} pools shown`);
  }
  for (const [name, used] of Object.entries(expect.volumes)) {
    if (!(name in shown.volumes)) out.push(`volume ${name} not shown`);
    else if (shown.volumes[name] !== used) {
      out.push(`volume ${name} shown used ${shown.volumes[name]}, admin says ${used}`);
    }
  }
  if (Object.keys(shown.volumes).length !== Object.keys(expect.volumes).length) {
    out.push(`${Object.keys(shown.volumes).length} volumes shown`);
  }
  return out;
}

// Polls the page until it matches `expect` or `deadline_ms` passes; returns the wait in ms.
async function waitForMatch(page, expect, deadlineMs) {
  const start = Date.now();
  let last = [];
  while (Date.now() - start < deadlineMs) {
    last = mismatches(await page.evaluate(readPage), expect);
    if (last.length === 0) return Date.now() - start;
    await page.waitForTimeout(100);  // the page's own poll is every 2 s: a condition, not a sync
  }
  result.problems.push(...last);
  return -1;
}

async function shot(page, name, fullPage = false) {
  const file = path.join(config.out_dir, name);
  await page.screenshot({path: file, fullPage});
  result.screenshots.push(file);
}

(async () => {
  fs.mkdirSync(config.out_dir, {recursive: true});
  const browser = await chromium.launch({
    executablePath: config.chromium,
    // Root in a container: no user namespace for the sandbox; no GPU.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
  try {
    const page = await browser.newPage({viewport: {width: 1280, height: 800}});
    page.on('console', (m) => {
      if (m.type() === 'error') result.console_errors.push(m.text());
    });
    page.on('pageerror', (e) => result.console_errors.push('page error: ' + e.message));
    page.on('requestfailed', (r) => {
      result.console_errors.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
    });
    page.on('response', (r) => {
      if (r.status() >= 400) result.console_errors.push(`HTTP ${r.status()} for ${r.url()}`);
    });
    const t0 = Date.now();
    await page.goto(config.url, {waitUntil: 'load', timeout: config.deadline_ms});
    result.load_ms = await waitForMatch(page, config.expect, config.deadline_ms);
    result.first_match_ms = Date.now() - t0;
    result.shown = await page.evaluate(readPage);
    await shot(page, 'dashboard.png');
    await shot(page, 'dashboard-full.png', true);
    if (result.load_ms >= 0 && config.kill) {
      const k = config.kill;
      const expect = JSON.parse(JSON.stringify(config.expect));
      expect.nodes[k.node].state = 'down';
      const killed = Date.now();
      process.kill(k.pid, 'SIGKILL');
      const waited = await waitForMatch(page, expect, k.deadline_ms);
      result.down_ms = waited < 0 ? -1 : Date.now() - killed;
      result.shown_after_kill = await page.evaluate(readPage);
      await shot(page, 'dashboard-datanode-down.png');
    }
    if (result.console_errors.length > 0) result.problems.push('console errors');
  } finally {
    await browser.close();
  }
  finish(result.problems.length === 0 ? 0 : 1);
})().catch((e) => {
  result.problems.push(String(e && e.stack || e));
  finish(1);
});
