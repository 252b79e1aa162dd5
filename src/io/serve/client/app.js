// The page script of `stackwise serve` (served as /static/app.js; plain JavaScript, no build step).
// Three pages: the run list, a run's live page and the compare page. Data arrive as server-sent
// events (/api/stream): a run's first message holds its whole view, later ones only what changed
// (the new points of the step series, and whichever small part changed). Charts are uPlot
// (window.uPlot, /static/uplot.js). Text from run files is always set as text, never as HTML; the
// only HTML inserted is the stack timeline SVG the server draws with the run report's code.

const THEME = JSON.parse(document.getElementById('sw-theme').textContent);
const SERIES_COLORS = ['#1d4ed8', '#ea580c', '#059669', '#9333ea', '#dc2626', '#0e7490', '#ca8a04', '#db2777', '#4b5563', '#65a30d'];
const STEP_KEYS = ['step', 't', 'tokens', 'flops', 'loss', 'tokens_per_s', 'lr'];
const X_AXES = { step: 'step', t: 't', tokens: 'tokens', flops: 'training FLOPs' };

// ---- small helpers -------------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

const finite = (v) => typeof v === 'number' && Number.isFinite(v);

/** 4 significant digits with a unit prefix: 1234567 → 1.235M. */
function compact(v) {
  if (!finite(v)) return '–';
  const a = Math.abs(v);
  for (const [scale, unit] of [[1e15, 'P'], [1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']]) if (a >= scale) return `${Number((v / scale).toPrecision(4))}${unit}`;
  if (a !== 0 && a < 1e-3) return v.toExponential(2);
  return String(Number(v.toPrecision(4)));
}

function ago(iso) {
  if (!iso) return '–';
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${(s / 3600).toFixed(1)} h ago`;
  return new Date(iso).toLocaleString();
}

function badge(status) {
  return el('span', { class: `badge ${status.state}`, title: status.detail, 'data-state': status.state, text: status.state });
}

/** Exponential moving average, debiased, over the finite values (nulls stay null). */
function ema(values) {
  const n = values.filter(finite).length;
  const w = Math.min(0.98, Math.max(0, 1 - 10 / Math.max(1, n)));
  let acc = 0;
  let norm = 0;
  return values.map((v) => {
    if (!finite(v)) return null;
    acc = w * acc + (1 - w) * v;
    norm = w * norm + (1 - w);
    return acc / norm;
  });
}

function setConn(text, ok) {
  const c = document.getElementById('conn');
  c.textContent = text;
  c.className = `conn ${ok ? 'ok' : 'bad'}`;
}

/** Opens the event stream; `onRun(delta)`, `onList(entries)`. Reconnects on its own (EventSource). */
function openStream({ runs = [], list = false }, { onRun, onList, onMissing }) {
  const params = new URLSearchParams();
  if (runs.length) params.set('runs', runs.join(','));
  if (list) params.set('list', '1');
  const es = new EventSource(`/api/stream?${params}`);
  es.onopen = () => setConn('live', true);
  es.onerror = () => setConn('reconnecting…', false);
  if (onRun) es.addEventListener('run', (e) => onRun(JSON.parse(e.data)));
  if (onList) es.addEventListener('list', (e) => onList(JSON.parse(e.data)));
  if (onMissing) es.addEventListener('missing', (e) => onMissing(JSON.parse(e.data)));
  return es;
}

// ---- a run's state, kept up to date by the deltas -------------------------------------------------

function emptyCols() {
  const c = { lrs: {} };
  for (const k of STEP_KEYS) c[k] = [];
  return c;
}

function newRunState(name) {
  return { name, cols: emptyCols(), stride: 1, evals: [], phases: [], markers: [], events: [], resources: [], samples: [], summary: {}, notes: [], counts: {}, status: { state: 'running', detail: '' }, stack_svg: '' };
}

function applyDelta(state, d) {
  if (d.steps) {
    const s = d.steps;
    if (s.from === 0) state.cols = emptyCols();
    const c = state.cols;
    for (const k of STEP_KEYS) {
      c[k].length = s.from;
      for (const v of s[k]) c[k].push(v);
    }
    for (const [g, col] of Object.entries(c.lrs)) col.length = s.from;
    for (const [g, vals] of Object.entries(s.lrs)) {
      const col = (c.lrs[g] ??= new Array(s.from).fill(null));
      for (const v of vals) col.push(v);
    }
    for (const col of Object.values(c.lrs)) while (col.length < c.step.length) col.push(null);
    state.stride = s.stride;
  }
  for (const [k, v] of Object.entries(d)) if (k !== 'steps' && k !== 'name') state[k] = v;
}

// ---- charts ---------------------------------------------------------------------------------------

function chartWidth(host) {
  return Math.max(320, Math.floor(host.clientWidth || 860));
}

/** A uPlot chart that keeps its instance while the series stay the same, and follows its width. */
class Chart {
  constructor(host, { height = 260, xLabel = 't', xRange = null, yLabel = '' } = {}) {
    this.host = host;
    this.height = height;
    this.xLabel = xLabel;
    this.xRange = xRange;
    this.yLabel = yLabel;
    this.plot = null;
    this.key = '';
    this.onDraw = null;
    new ResizeObserver(() => this.plot && this.plot.setSize({ width: chartWidth(this.host), height: this.height })).observe(host);
  }

  /** series: [{label, stroke, width, dash, points, spanGaps}], data: [x, ...ys]. */
  update(series, data, { xLabel = this.xLabel, xRange = this.xRange } = {}) {
    const key = JSON.stringify([series.map((s) => s.label), xLabel, xRange]);
    if (!this.plot || key !== this.key) {
      if (this.plot) this.plot.destroy();
      this.key = key;
      const self = this;
      const axisValues = (u, splits) => splits.map((v) => compact(v));
      this.plot = new uPlot({
        width: chartWidth(this.host),
        height: this.height,
        scales: { x: { time: false, ...(xRange ? { range: () => xRange } : {}) } },
        series: [{ label: xLabel, value: (u, v) => compact(v) }, ...series.map((s) => ({ value: (u, v) => compact(v), ...s }))],
        axes: [{ label: xLabel, values: axisValues }, { label: this.yLabel, values: axisValues, size: 60 }],
        legend: { live: true },
        hooks: { draw: [(u) => self.onDraw && self.onDraw(u)] },
      }, data, this.host);
    } else {
      this.plot.setData(data);
    }
  }
}

/** Phase bands (under the lines) and model event markers (over them) as elements, so they can be hovered and found. */
function drawPhasesAndMarkers(u, phases, markers, fig) {
  for (const old of u.under.querySelectorAll('.phase-band')) old.remove();
  for (const old of u.over.querySelectorAll('.marker')) old.remove();
  const height = u.over.clientHeight;
  let bands = 0;
  phases.forEach((p, i) => {
    if (!finite(p.start_t) || !finite(p.end_t)) return;
    const left = u.valToPos(p.start_t, 'x');
    const right = u.valToPos(p.end_t, 'x');
    if (!(right > left)) return;
    u.under.append(el('div', { class: 'phase-band', 'data-phase': p.name, title: `phase ${p.name}: t ${p.start_t} – ${p.end_t}`, style: `left:${left}px;width:${right - left}px;height:${height}px;background:${THEME.phase_colors[i % THEME.phase_colors.length]}` },
      el('span', { text: p.name })));
    bands++;
  });
  let drawn = 0;
  const atX = new Map(); // events at the same place: their numbers stack downwards
  markers.forEach((m, i) => {
    if (!finite(m.t)) return;
    const x = u.valToPos(m.t, 'x');
    const slot = atX.get(Math.round(x)) ?? 0;
    atX.set(Math.round(x), slot + 1);
    const style = THEME.event_style[m.kind] || { color: '#475569' };
    u.over.append(el('div', { class: `marker ${m.kind}`, 'data-kind': m.kind, title: `${i + 1}. ${m.kind} at t ${compact(m.t)}${finite(m.step) ? `, step ${m.step}` : ''}: ${m.description}`, style: `left:${x}px;height:${height}px;border-color:${style.color}` },
      el('span', { text: String(i + 1), style: `background:${style.color};top:${slot * 15 - 1}px` })));
    drawn++;
  });
  fig.dataset.phases = String(bands);
  fig.dataset.markers = String(drawn);
  fig.dataset.growMarkers = String(markers.filter((m) => m.kind === 'grow' && finite(m.t)).length);
}

function figure(id, title, caption) {
  const plot = el('div', { class: 'plot' });
  const fig = el('figure', { id }, el('h2', { text: title }), plot, caption ? el('figcaption', { text: caption }) : null);
  return { fig, plot };
}

// ---- run list --------------------------------------------------------------------------------------

function listPage(app) {
  const selected = new Set();
  const tbody = el('tbody');
  const button = el('button', { id: 'compare-selected', disabled: true, onclick: () => { location.href = `/compare?runs=${[...selected].map(encodeURIComponent).join(',')}`; } }, 'Compare selected');
  const empty = el('p', { class: 'empty', text: 'No run folders yet: start `stackwise train` with a run folder under this one; it appears here.' });
  app.append(el('h1', { text: 'Runs' }),
    el('section', {}, el('table', { id: 'runs' }, el('thead', {}, el('tr', {}, ['', 'run', 'status', 'config', 'steps', 'best val loss', 'last update'].map((h) => el('th', { text: h })))), tbody), empty, el('p', {}, button)));
  let last = [];
  const render = () => {
    tbody.replaceChildren(...last.map((r) => el('tr', { 'data-run': r.name },
      el('td', {}, el('input', { type: 'checkbox', checked: selected.has(r.name), 'aria-label': `select ${r.name}`, onchange: (e) => { e.target.checked ? selected.add(r.name) : selected.delete(r.name); button.disabled = selected.size === 0; } })),
      el('td', { class: 'name' }, el('a', { href: `/run/${encodeURIComponent(r.name)}`, text: r.name })),
      el('td', {}, badge(r.status)),
      el('td', { class: 'config', text: r.config || '–' }),
      el('td', { class: 'num', text: `${r.steps}${r.total_steps ? ` / ${r.total_steps}` : ''}` }),
      el('td', { class: 'num', text: compact(r.best_val_loss) }),
      el('td', { class: 'num', title: r.updated || '', text: ago(r.updated) }))));
    empty.hidden = last.length > 0;
  };
  openStream({ list: true }, { onList: (entries) => { last = entries; render(); } });
  setInterval(render, 10_000); // keep "last update" fresh
}

// ---- a run's page ------------------------------------------------------------------------------------

function runPage(app, name) {
  const state = newRunState(name);
  const head = el('h1', {}, el('span', { text: name }), ' ', el('span', { id: 'status' }));
  const meta = el('p', { class: 'meta', id: 'meta' });
  const counts = el('p', { class: 'meta', id: 'counts' });
  const summary = el('div', { class: 'kv', id: 'summary' });
  const loss = figure('loss-chart', 'Loss and validation loss', 'Light: every logged step; dark: smoothed; orange points: validation loss. Bands are the phases, numbered lines the model events (hover for details).');
  const stacks = el('figure', { id: 'stack-chart' }, el('h2', { text: 'Stacks over time' }), el('div', { class: 'svg' }));
  const lr = figure('lr-chart', 'Learning rate per group', '');
  const tps = figure('tps-chart', 'Throughput (tokens/s)', '');
  const resources = el('section', { id: 'resources' }, el('h2', { text: 'Memory and cache per phase' }), el('div', { class: 'bars' }));
  const events = el('section', { id: 'events' }, el('h2', { text: 'Events' }), el('table', {}, el('thead', {}, el('tr', {}, ['t', 'step', 'kind', 'description'].map((h) => el('th', { text: h })))), el('tbody')));
  const samples = el('section', { id: 'samples', hidden: true }, el('h2', { text: 'Samples' }), el('div'));
  const files = el('p', { class: 'meta' }, 'Files: ', ...['report.html', 'config.yaml', 'metrics.jsonl'].flatMap((f, i) => [i ? ' · ' : '', el('a', { href: `/files/${encodeURIComponent(name)}/${f}`, text: f })]));
  app.append(head, meta, counts, el('section', {}, summary), loss.fig, stacks, el('div', { class: 'two' }, lr.fig, tps.fig), resources, events, samples, files);

  const lossChart = new Chart(loss.plot, { xRange: [0, 1], yLabel: 'loss' });
  lossChart.onDraw = (u) => drawPhasesAndMarkers(u, state.phases, state.markers, loss.fig);
  const lrChart = new Chart(lr.plot, { height: 200, xRange: [0, 1], yLabel: 'lr' });
  const tpsChart = new Chart(tps.plot, { height: 200, xRange: [0, 1], yLabel: 'tokens/s' });

  const render = () => {
    const c = state.cols;
    document.getElementById('status').replaceChildren(badge(state.status));
    meta.textContent = `${state.config || 'no config.yaml'} · ${state.status.detail} · updated ${ago(state.updated)}`;
    const pending = state.counts.pending_bytes ? ` · a half-written last line (${state.counts.pending_bytes} bytes) waits for its end` : '';
    counts.textContent = `${state.counts.records ?? 0} records · ${state.counts.malformed ?? 0} malformed line(s) skipped${pending}${state.stride > 1 ? ` · every ${state.stride}th step drawn` : ''}`;
    counts.dataset.malformed = String(state.counts.malformed ?? 0);
    summary.replaceChildren(...Object.entries(state.summary).map(([k, v]) => el('div', {}, el('span', { class: 'k', text: k }), el('span', { class: 'v', text: typeof v === 'number' ? compact(v) : String(v ?? '–') }))));

    // Loss: steps and evaluations on one t axis (uPlot.join merges the two x columns).
    const evalT = [];
    const evalV = [];
    for (const e of state.evals) if (finite(e.t) && finite(e.val_loss)) { evalT.push(e.t); evalV.push(e.val_loss); }
    const stepIdx = c.t.map((t, i) => i).filter((i) => finite(c.t[i]));
    const stepTable = [stepIdx.map((i) => c.t[i]), stepIdx.map((i) => c.loss[i]), ema(stepIdx.map((i) => c.loss[i]))];
    const joined = evalT.length ? uPlot.join([stepTable, [evalT, evalV]]) : [...stepTable, []];
    if (!evalT.length) joined[3] = joined[0].map(() => null);
    lossChart.update([
      { label: 'loss', stroke: '#93c5fd', width: 1, spanGaps: true },
      { label: 'loss (smoothed)', stroke: '#1d4ed8', width: 2, spanGaps: true },
      { label: 'val loss', stroke: '#ea580c', width: 2, spanGaps: true, points: { show: true, size: 7, fill: '#ea580c' } },
    ], joined);
    loss.fig.dataset.points = String(c.loss.filter(finite).length);
    loss.fig.dataset.evals = String(evalT.length);

    // Learning rate: one line per parameter group (the scheduled lr when groups were not logged).
    const groups = Object.keys(c.lrs);
    const lrSeries = groups.length ? groups.map((g, i) => ({ label: g, stroke: SERIES_COLORS[i % SERIES_COLORS.length], width: 2, spanGaps: false })) : [{ label: 'lr', stroke: '#059669', width: 2 }];
    lrChart.update(lrSeries, [c.t, ...(groups.length ? groups.map((g) => c.lrs[g]) : [c.lr])]);
    tpsChart.update([{ label: 'tokens/s', stroke: '#67e8f9', width: 1 }, { label: 'smoothed', stroke: '#0e7490', width: 2 }], [c.t, c.tokens_per_s, ema(c.tokens_per_s)]);

    const svgHost = stacks.querySelector('.svg');
    if (svgHost.dataset.svg !== state.stack_svg) {
      svgHost.dataset.svg = state.stack_svg;
      // Drawn by the server with the run report's chart code (names escaped there).
      svgHost.innerHTML = state.stack_svg || '<p class="empty">No stack snapshots recorded (a run without model events).</p>';
    }
    renderResources(resources.querySelector('.bars'), state.resources, state.phases);
    events.querySelector('tbody').replaceChildren(...state.events.map((e) => el('tr', { 'data-kind': e.kind },
      el('td', { class: 'num', text: compact(e.t) }), el('td', { class: 'num', text: e.step ?? '–' }),
      el('td', {}, el('span', { class: 'tag', style: `background:${(THEME.event_style[e.kind] || { color: '#64748b' }).color}`, text: e.kind })),
      el('td', { text: e.description }))));
    samples.hidden = state.samples.length === 0;
    samples.querySelector('div').replaceChildren(...state.samples.map((s) => el('div', { class: 'sample' },
      el('p', { class: 'meta', text: `step ${s.step ?? '–'} · t ${compact(s.t)}` }), el('pre', {}, el('b', { text: s.prompt }), s.text))));
  };
  openStream({ runs: [name] }, {
    onRun: (d) => { applyDelta(state, d); render(); },
    onMissing: () => { meta.textContent = 'This run folder is gone.'; },
  });
}

/** Per phase: weights, gradients, optimizer state and cached activations as one stacked bar (MB). */
function renderResources(host, rows, phases) {
  if (!rows.length) { host.replaceChildren(el('p', { class: 'empty', text: 'No per-phase resource records (written by progressive runs at each phase start).' })); return; }
  const parts = [['weights', 'weights_bytes', '#1d4ed8'], ['grads', 'grads_bytes', '#059669'], ['optimizer state', 'optimizer_state_bytes', '#ca8a04'], ['cached activations', 'cached_activations_memory_bytes', '#9333ea']];
  const max = Math.max(...rows.map((r) => parts.reduce((a, [, k]) => a + (r[k] || 0), 0)), 1);
  host.replaceChildren(
    el('p', { class: 'legend' }, parts.map(([label, , color]) => el('span', {}, el('i', { style: `background:${color}` }), label))),
    ...rows.map((r) => {
      const i = phases.findIndex((p) => p.name === r.phase);
      const total = parts.reduce((a, [, k]) => a + (r[k] || 0), 0);
      const cache = r.cached_activations_memory_bytes > 0 || r.cached_activations_disk_bytes > 0 || finite(r.cache_hits)
        ? ` · cache ${compact(r.cached_activations_memory_bytes || 0)}B in memory${r.cached_activations_disk_bytes ? `, ${compact(r.cached_activations_disk_bytes)}B on disk` : ''}${finite(r.cache_hits) ? `, ${compact(r.cache_hits)} hits` : ''}` : '';
      return el('div', { class: 'bar-row', 'data-phase': r.phase },
        el('span', { class: 'bar-label' }, el('i', { style: `background:${THEME.phase_colors[Math.max(0, i) % THEME.phase_colors.length]}` }), r.phase),
        el('span', { class: 'bar' }, parts.map(([label, k, color]) => (r[k] ? el('span', { title: `${label}: ${compact(r[k])}B`, style: `width:${(100 * r[k]) / max}%;background:${color}` }) : null))),
        el('span', { class: 'bar-text', text: `${compact(total)}B · ${r.stacks ?? '?'} stack${r.stacks === 1 ? '' : 's'} · ${compact(r.trainable_params)} trainable / ${compact(r.frozen_params)} frozen params · ${compact(r.train_flops_per_token)} FLOPs/token${finite(r.train_cached_flops_per_token) && r.train_cached_flops_per_token !== r.train_flops_per_token ? ` (${compact(r.train_cached_flops_per_token)} cached)` : ''}${cache}` }));
    }));
}

// ---- compare --------------------------------------------------------------------------------------------

function comparePage(app) {
  const params = new URLSearchParams(location.search);
  let chosen = (params.get('runs') || '').split(',').filter(Boolean);
  let xAxis = X_AXES[params.get('x')] ? params.get('x') : 'tokens';
  const states = new Map();
  const xSelect = el('select', { id: 'x-axis', onchange: (e) => { xAxis = e.target.value; remember(); render(); } },
    Object.entries(X_AXES).map(([k, label]) => el('option', { value: k, selected: k === xAxis, text: label })));
  const picker = el('div', { class: 'picker', id: 'run-picker' });
  const notes = el('p', { class: 'meta', id: 'compare-notes' });
  const plot = figure('compare-chart', 'Loss', 'Solid: smoothed training loss; dashed with points: validation loss. Tokens and training FLOPs put progressive and end-to-end runs on a common footing.');
  app.append(el('h1', { text: 'Compare runs' }), el('p', {}, el('label', {}, 'x axis: ', xSelect)), picker, notes, plot.fig);
  const chart = new Chart(plot.plot, { height: 360, yLabel: 'loss' });
  let stream = null;

  function remember() {
    const q = new URLSearchParams({ runs: chosen.join(','), x: xAxis });
    history.replaceState(null, '', `/compare?${q.toString().replace(/%2C/g, ',')}`);
  }
  function connect() {
    if (stream) stream.close();
    for (const n of [...states.keys()]) if (!chosen.includes(n)) states.delete(n);
    stream = openStream({ runs: chosen, list: true }, {
      onRun: (d) => {
        if (!states.has(d.name)) states.set(d.name, newRunState(d.name));
        applyDelta(states.get(d.name), d);
        render();
      },
      onList: (entries) => {
        picker.replaceChildren(...entries.map((r) => el('label', { class: 'pick' },
          el('input', { type: 'checkbox', value: r.name, checked: chosen.includes(r.name), onchange: (e) => {
            chosen = e.target.checked ? [...chosen, r.name] : chosen.filter((n) => n !== r.name);
            remember();
            connect();
            render();
          } }), ` ${r.name} `, badge(r.status))));
      },
    });
  }

  function render() {
    const tables = [];
    const series = [];
    const plotted = [];
    const missing = [];
    chosen.forEach((name, i) => {
      const s = states.get(name);
      if (!s) return;
      const color = SERIES_COLORS[i % SERIES_COLORS.length];
      const c = s.cols;
      const idx = c.step.map((_, j) => j).filter((j) => finite(c[xAxis][j]));
      if (!idx.length && c.step.length) missing.push(name);
      const smooth = ema(idx.map((j) => c.loss[j]));
      tables.push([idx.map((j) => c[xAxis][j]), smooth]);
      series.push({ label: `${name} loss`, stroke: color, width: 2, spanGaps: true });
      const ev = s.evals.filter((e) => finite(e[xAxis]) && finite(e.val_loss));
      tables.push([ev.map((e) => e[xAxis]), ev.map((e) => e.val_loss)]);
      series.push({ label: `${name} val`, stroke: color, width: 1.5, dash: [6, 4], spanGaps: true, points: { show: true, size: 6, fill: color } });
      plotted.push(`${name}:${idx.length}:${ev.length}`);
    });
    notes.textContent = missing.length ? `No ${X_AXES[xAxis]} recorded for: ${missing.join(', ')} (choose another x axis).` : chosen.length ? '' : 'Pick runs to compare.';
    plot.fig.dataset.runs = plotted.join(';');
    plot.fig.dataset.x = xAxis;
    const nonEmpty = tables.map((t) => t[0].length > 0);
    if (!tables.length || !nonEmpty.some(Boolean)) { chart.update([{ label: 'loss' }], [[], []], { xLabel: X_AXES[xAxis] }); return; }
    // uPlot.join needs x ascending in each table; an empty table still needs its column.
    const joined = uPlot.join(tables.map((t) => (t[0].length ? t : [[0], [null]])));
    chart.update(series, joined, { xLabel: X_AXES[xAxis] });
  }
  remember();
  connect();
  render();
}

const app = document.getElementById('app');
const page = document.body.dataset.page;
if (page === 'list') listPage(app);
else if (page === 'run') runPage(app, document.body.dataset.run);
else if (page === 'compare') comparePage(app);
