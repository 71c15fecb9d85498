// The Granary dashboard: polls /api/status (the document `granary admin status` renders) and
// /api/io (the leader's last hour of data-path history), and draws them. Read-only; no framework;
// every string from the cluster goes in through textContent, never as HTML.
'use strict';

const STATUS_EVERY_MS = 2000;
const IO_EVERY_MS = 5000;

// ------------------------------------------------------------------ formatting (as summary.cpp)
const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];
function bytes(n) {
  if (n === null || n === undefined) return '-';
  let unit = 0;
  while (Math.abs(n) >= 1024 && unit < UNITS.length - 1) {
    n /= 1024;
    unit++;
  }
  if (unit === 0) return n.toFixed(0) + 'B';
  return (Math.abs(n) < 10 ? n.toFixed(1) : n.toFixed(0)) + UNITS[unit];
}
function num(n, digits = 0) {
  return n === null || n === undefined ? '-' : Number(n).toFixed(digits);
}
function ms(n) {
  return n === null || n === undefined ? '-' : Number(n).toFixed(2) + 'ms';
}
function age(msAgo) {
  if (msAgo === null || msAgo === undefined || msAgo < 0) return '-';
  if (msAgo < 1000) return msAgo + 'ms';
  if (msAgo < 120000) return (msAgo / 1000).toFixed(1) + 's';
  return Math.round(msAgo / 60000) + 'min';
}

// ------------------------------------------------------------------ DOM helpers
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('data-') || k === 'title') e.setAttribute(k, String(v));
    else e[k] = v;
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}
function td(text, attrs = {}) {
  return el('td', attrs, text);
}
function fillBody(table, rows, empty) {
  const body = document.querySelector(table + ' tbody');
  const cols = document.querySelectorAll(table + ' thead th').length;
  if (rows.length === 0) rows = [el('tr', {class: 'empty'}, td(empty, {colSpan: cols}))];
  body.replaceChildren(...rows);
}
function stateBadge(state) {
  return el('span', {class: 'state state-' + state, text: state});
}

// ------------------------------------------------------------------ sections
function renderHeader(s) {
  const h = document.getElementById('health');
  h.dataset.state = s.health.state;
  h.textContent = s.health.state === 'ok' ? 'healthy' : s.health.state;
  document.getElementById('redundancy').textContent =
      'redundancy: ' + s.health.redundancy + ' · map epoch ' + s.repair.epoch;
  document.getElementById('updated').textContent =
      'updated ' + new Date(s.generated_ms).toLocaleTimeString();
  const problems = s.health.problems.map(
      (p) => el('li', {class: 'problem-' + p.severity, 'data-severity': p.severity}, p.text));
  document.getElementById('problems').replaceChildren(...problems);
}

function card(label, value, detail, attrs = {}) {
  return el('div', Object.assign({class: 'card'}, attrs), el('div', {class: 'label', text: label}),
            el('div', {class: 'value', text: value}),
            el('div', {class: 'detail', text: detail || ''}));
}

function renderGlance(s) {
  const sum = s.summary;
  const io = s.io;
  const meta = s.meta;
  let metaText = '-';
  let metaDetail = meta.error || '';
  if (meta.reachable && !meta.replicated) {
    metaText = '1';
    metaDetail = 'single metanode';
  } else if (meta.reachable) {
    const up = meta.members.filter((m) => m.role !== 'down').length;
    const leader = meta.members.find((m) => m.role === 'leader');
    metaText = up + '/' + meta.members.length;
    metaDetail = leader ? 'leader ' + leader.id + ', term ' + leader.term : 'no leader';
  }
  document.getElementById('glance').replaceChildren(
      card('datanodes up', sum.up + '/' + sum.datanodes,
           sum.down + ' down, ' + sum.out + ' out', {'data-card': 'datanodes'}),
      card('placement groups', String(s.repair.pgs_total),
           s.repair.pgs_degraded + ' degraded, ' + s.repair.pgs_moving + ' moving',
           {'data-card': 'pgs'}),
      card('raw capacity', bytes(sum.raw_bytes), bytes(sum.raw_used_bytes) + ' used',
           {'data-card': 'capacity'}),
      card('stored', bytes(sum.logical_used_bytes),
           sum.pools + ' pools, ' + sum.volumes + ' volumes, ' + sum.buckets + ' buckets',
           {'data-card': 'stored'}),
      card('read / write', io ? bytes(io.read_Bps) + '/s · ' + bytes(io.write_Bps) + '/s' : '-',
           io ? num(io.read_iops, 1) + ' / ' + num(io.write_iops, 1) + ' IOPS (last minute)' :
                'no I/O history', {'data-card': 'io'}),
      card('latency p99', io ? ms(io.read_p99_ms) + ' · ' + ms(io.write_p99_ms) : '-',
           'read · write, last minute', {'data-card': 'latency'}),
      card('metadata group', metaText, metaDetail, {'data-card': 'meta'}));
}

// "k=v,k2=v2" (the CLI's spelling) as one chip per label; "-" stays plain.
function labelChips(text) {
  if (text === '-') return ['-'];
  return text.split(',').map((kv) => el('span', {class: kv === 'gpu=true' ? 'chip gpu' : 'chip', text: kv}));
}

function renderDatanodes(s) {
  const rows = s.datanodes.map((n) => el(
      'tr', {'data-node': n.id, 'data-state': n.state},
      td(String(n.id)), el('td', {}, stateBadge(n.state), n.healthy ? null : ' disk errors'),
      el('td', {class: 'labels', 'data-labels': n.label_text},
         ...labelChips(n.label_text)),
      td(n.address, {class: 'muted'}),
      td(bytes(n.capacity_bytes), {class: 'num', title: n.capacity_bytes + ' bytes'}),
      td(bytes(n.used_bytes), {class: 'num', title: n.used_bytes + ' bytes'}),
      td(n.pgs + ' (' + n.primary_pgs + ')', {class: 'num'}),
      // A node that is not up serves nothing now, whatever its last heartbeats said.
      td(n.state === 'up' ? bytes(n.read_Bps) + '/s' : '-', {class: 'num'}),
      td(n.state === 'up' ? bytes(n.write_Bps) + '/s' : '-', {class: 'num'}),
      td(n.state === 'up' ? num(n.read_iops, 1) + ' / ' + num(n.write_iops, 1) : '-', {class: 'num'}),
      td(age(n.heartbeat_age_ms), {class: 'num'})));
  fillBody('#datanodes', rows, 'no datanode registered');
}

function renderPools(s) {
  const rows = s.pools.map((p) => el(
      'tr', {'data-pool': p.name},
      td(p.name), td(String(p.id)), td(p.redundancy, {'data-field': 'redundancy'}),
      td(p.failure_domain, {'data-field': 'failure-domain'}),
      td(p.locality, {'data-field': 'locality'}),
      td(String(p.pgs), {class: 'num', 'data-field': 'pgs'}),
      td(String(p.pgs_degraded), {class: 'num'}),
      td(p.placed ? 'yes' : 'no: ' + p.message),
      td(bytes(p.usable_bytes), {class: 'num', title: p.usable_bytes + ' bytes'}),
      td(bytes(p.used_bytes), {class: 'num', title: p.used_bytes + ' bytes'}),
      td(String(p.volumes), {class: 'num'})));
  fillBody('#pools', rows, 'no pool');
}

function renderPlacement(s) {
  const blocks = s.placement.map((v) => {
    const domains = v.domains.map((d) => el(
        'div', {class: 'domain'}, el('div', {class: 'domain-name', text: d.name + ' · ' + d.pgs + ' PGs'}),
        ...d.nodes.map((n) => el('div', {class: 'domain-node', 'data-node': n.id},
                                 stateBadge(n.state), ' datanode ' + n.id + ': ' + n.pgs + ' PGs, ' +
                                     n.primary + ' primary'))));
    const squares = v.listed ?
        el('div', {class: 'pgs'},
           ...v.pg_list.map((pg) => el('span', {
             class: 'pg pg-' + pg.state,
             title: 'pg ' + pg.pg + ' (' + pg.state + '): datanodes ' + pg.members.join(', '),
           }))) :
        el('p', {class: 'muted small', text: 'too many PGs to list one by one'});
    return el('div', {class: 'placement', 'data-pool': v.pool},
              el('h3', {text: v.pool + ' — by ' + v.level + ' (' + v.pgs_moving + ' moving, ' +
                                  v.pgs_degraded + ' degraded)'}),
              el('div', {class: 'domains'}, ...domains), squares);
  });
  document.getElementById('placement').replaceChildren(...blocks);
}

function renderRepair(s) {
  const r = s.repair;
  const sc = s.scrub;
  const facts = [
    ['redundancy', s.health.redundancy],
    ['PGs degraded', r.pgs_degraded + ' of ' + r.pgs_total],
    ['blocks to repair', r.blocks_to_repair],
    ['datanodes repairing', r.nodes_repairing],
    ['PGs moving (rebalance)', r.pgs_moving],
    ['copies known bad', r.copies_bad],
    ['corruptions reported', r.corruptions_reported],
    ['garbage slices', r.garbage_slices],
    ['scrub pass', num(sc.pass_progress, 1) + '% on ' + sc.nodes + ' datanodes'],
    ['scrub behind', sc.nodes_behind + ' datanodes'],
    ['oldest unscrubbed', sc.oldest_unscrubbed_s > 0 ? age(sc.oldest_unscrubbed_s * 1000) : '-'],
    ['sessions', s.summary.sessions],
  ];
  const out = [];
  for (const [k, v] of facts) out.push(el('dt', {text: k}), el('dd', {text: String(v)}));
  for (const b of r.pgs_with_bad_copies.slice(0, 10)) {
    out.push(el('dt', {text: 'bad copies'}),
             el('dd', {text: 'pool ' + b.pool + ' pg ' + b.pg + ': ' + b.copies}));
  }
  const progress = el('progress', {max: 100, value: sc.pass_progress});
  out.push(el('dt', {text: ''}), el('dd', {}, progress));
  document.getElementById('repair').replaceChildren(...out);
}

function quota(used, q, fmt) {
  return q > 0 ? fmt(q) + ' (' + Math.round((100 * used) / q) + '%)' : 'none';
}

function renderVolumes(s) {
  const rows = s.volumes.map((v) => el(
      'tr', {'data-volume': v.name, 'data-used-bytes': v.used_bytes},
      td(v.name), td(String(v.id)), td(v.pool || String(v.pool_id)),
      td(bytes(v.used_bytes), {class: 'num', title: v.used_bytes + ' bytes'}),
      td(quota(v.used_bytes, v.quota_bytes, bytes), {class: 'num'}),
      td(String(v.used_inodes), {class: 'num'}),
      td(quota(v.used_inodes, v.quota_inodes, String), {class: 'num'})));
  fillBody('#volumes', rows, 'no volume');
  const buckets = s.buckets.map((b) => el(
      'tr', {'data-bucket': b.name}, td(b.name), td(b.owner), td(b.volume || String(b.volume_id)),
      td(b.owns_volume ? 'yes' : 'no'), td(String(b.grants), {class: 'num'})));
  fillBody('#buckets', buckets, 'no bucket');
}

function renderMeta(s) {
  const m = s.meta;
  let rows = [];
  if (m.reachable) {
    rows = m.members.map((x) => el(
        'tr', {'data-member': x.id, 'data-role': x.role}, td(String(x.id)), td(x.address),
        el('td', {}, stateBadge(x.role)), td(num(x.term), {class: 'num'}),
        td(num(x.applied), {class: 'num'}), td(num(x.lag), {class: 'num'})));
  }
  fillBody('#meta', rows, m.error || 'unknown');
}

// ------------------------------------------------------------------ charts (uPlot)
const charts = {};
const COLORS = {read: '#2b6cb0', write: '#c05621', read2: '#90cdf4', write2: '#fbd38d'};

function chartSize(div) {
  return {width: Math.max(200, div.clientWidth), height: 150};
}

// `floor`: the least top of the y axis (1 KiB for bytes, so an idle chart does not label 0.5 B).
function makeChart(id, series, valueFmt, floor = 1) {
  const div = document.getElementById(id);
  const opts = Object.assign(chartSize(div), {
    legend: {show: true, live: false},
    cursor: {drag: {x: false, y: false}},
    scales: {x: {time: true}, y: {range: (u, min, max) => [0, Math.max(max || 0, floor)]}},
    axes: [{}, {values: (u, vals) => vals.map(valueFmt), size: 60}],
    series: [{}].concat(series.map((s) => ({
      label: s.label,
      stroke: s.color,
      width: 1.5,
      value: (u, v) => (v === null || v === undefined ? '-' : valueFmt(v)),
    }))),
  });
  div.replaceChildren();
  return new uPlot(opts, [[]].concat(series.map(() => [])), div);
}

function ensureCharts() {
  if (charts.throughput || typeof uPlot === 'undefined') return;
  charts.throughput = makeChart('chart-throughput', [
    {label: 'read', color: COLORS.read}, {label: 'write', color: COLORS.write}], (v) => bytes(v),
    1024);
  charts.iops = makeChart('chart-iops', [
    {label: 'read', color: COLORS.read}, {label: 'write', color: COLORS.write}],
    (v) => num(v, v < 10 ? 1 : 0));
  charts.latency = makeChart('chart-latency', [
    {label: 'read p50', color: COLORS.read2}, {label: 'read p99', color: COLORS.read},
    {label: 'write p50', color: COLORS.write2}, {label: 'write p99', color: COLORS.write}],
    (v) => num(v, v < 10 ? 2 : 0));
  window.addEventListener('resize', () => {
    for (const c of Object.values(charts)) c.setSize(chartSize(c.root.parentElement));
  });
}

function renderIo(io) {
  ensureCharts();
  if (!charts.throughput) return;
  charts.throughput.setData([io.t, io.read_Bps, io.write_Bps]);
  charts.iops.setData([io.t, io.read_iops, io.write_iops]);
  charts.latency.setData(
      [io.t, io.read_p50_ms, io.read_p99_ms, io.write_p50_ms, io.write_p99_ms]);
  // At least the last 5 minutes on x: a history of one or two slots would otherwise be
  // stretched over years.
  const last = io.t.length > 0 ? io.t[io.t.length - 1] : Math.floor(Date.now() / 1000);
  const first = io.t.length > 0 ? io.t[0] : last;
  for (const c of Object.values(charts)) c.setScale('x', {min: Math.min(first, last - 300), max: last});
  document.getElementById('charts-note').textContent = io.t.length === 0 ?
      'No I/O history yet: the metadata leader builds it from datanode heartbeats (5 s slots, the last hour).' :
      'The last ' + age(io.t.length * io.step_ms) + ' (at most an hour) in ' + io.step_ms / 1000 +
          ' s slots, from the datanodes\' own counters.';
}

// ------------------------------------------------------------------ polling
function banner(text) {
  const b = document.getElementById('banner');
  b.hidden = !text;
  b.textContent = text || '';
}

async function getJson(path) {
  const r = await fetch(path, {cache: 'no-store'});
  const body = await r.json().catch(() => ({error: r.statusText}));
  if (!r.ok) throw new Error(body.error || r.status + ' ' + r.statusText);
  return body;
}

let statusBusy = false;
async function pollStatus() {
  if (statusBusy) return;
  statusBusy = true;
  try {
    const s = await getJson('/api/status');
    renderHeader(s);
    renderGlance(s);
    renderDatanodes(s);
    renderPools(s);
    renderPlacement(s);
    renderRepair(s);
    renderVolumes(s);
    renderMeta(s);
    document.body.dataset.loaded = 'true';
    document.body.dataset.generated = String(s.generated_ms);
    banner(s.io_error ? 'I/O history unavailable: ' + s.io_error : '');
  } catch (e) {
    banner('The metadata service did not answer: ' + e.message + ' (showing the last figures)');
  } finally {
    statusBusy = false;
  }
}

let ioBusy = false;
async function pollIo() {
  if (ioBusy) return;
  ioBusy = true;
  try {
    renderIo(await getJson('/api/io'));
  } catch (e) {
    document.getElementById('charts-note').textContent = 'I/O history unavailable: ' + e.message;
  } finally {
    ioBusy = false;
  }
}

pollStatus();
pollIo();
setInterval(pollStatus, STATUS_EVERY_MS);
setInterval(pollIo, IO_EVERY_MS);
