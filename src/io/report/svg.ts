/** Small hand-written SVG toolkit for the run report: escaping, scales, nice ticks, number formats. */

/** Escapes text for XML/HTML content and attribute values (both quote styles). */
export function escapeXml(value: unknown): string {
  return String(value)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;')
    // Characters XML 1.0 forbids (C0 controls other than tab/newline/CR, lone surrogates).
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '\ufffd')
    .replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
}

/** A coordinate rounded to 0.01 px (keeps files small and deterministic). */
export function px(v: number): string {
  const r = Math.round(v * 100) / 100;
  return Object.is(r, -0) ? '0' : String(r);
}

export interface Scale {
  (v: number): number;
  domain: [number, number];
  range: [number, number];
}

export function linearScale(domain: [number, number], range: [number, number]): Scale {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  const span = d1 - d0 || 1;
  const f = ((v: number) => r0 + ((v - d0) / span) * (r1 - r0)) as Scale;
  f.domain = [d0, d1];
  f.range = [r0, r1];
  return f;
}

/** A "nice" step (1, 2 or 5 × 10^k) that splits `span` into about `count` intervals. */
export function niceStep(span: number, count: number): number {
  if (!(span > 0) || !Number.isFinite(span)) return 1;
  const raw = span / Math.max(1, count);
  const p = 10 ** Math.floor(Math.log10(raw));
  const f = raw / p;
  const nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
  return nf * p;
}

/**
 * A domain that contains [min, max] with nice ends, and its ticks. A degenerate range is widened
 * around its value; non-finite inputs give [0, 1].
 */
export function niceDomain(min: number, max: number, count = 5): { domain: [number, number]; ticks: number[]; step: number } {
  if (!Number.isFinite(min) || !Number.isFinite(max)) { min = 0; max = 1; }
  if (min > max) [min, max] = [max, min];
  if (min === max) {
    const pad = min === 0 ? 1 : Math.abs(min) * 0.1;
    min -= pad; max += pad;
  }
  const step = niceStep(max - min, count);
  const lo = clean(Math.floor(min / step + 1e-9) * step);
  const hi = clean(Math.ceil(max / step - 1e-9) * step);
  return { domain: [lo, hi], ticks: ticksIn(lo, hi, step), step };
}

/** Multiples of `step` within [lo, hi] (with a little tolerance), cleaned of float noise. */
export function ticksIn(lo: number, hi: number, step: number): number[] {
  const out: number[] = [];
  const first = Math.ceil(lo / step - 1e-9);
  const last = Math.floor(hi / step + 1e-9);
  for (let i = first; i <= last && out.length < 1000; i++) out.push(clean(i * step));
  return out;
}

function clean(v: number): number {
  return v === 0 ? 0 : Number(v.toPrecision(12));
}

/** Tick label formatter suited to ticks spaced by `step` over values up to `maxAbs`. */
export function tickFormatter(step: number, maxAbs: number): (v: number) => string {
  if (maxAbs >= 1e4) {
    const units: [number, string][] = [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']];
    const [div, suffix] = units.find(([d]) => maxAbs >= d)!;
    const decimals = Math.max(0, -Math.floor(Math.log10(step / div) + 1e-9));
    return (v) => (v === 0 ? '0' : `${(v / div).toFixed(decimals)}${suffix}`);
  }
  if (maxAbs > 0 && maxAbs < 1e-2) {
    // 0.0003 → "3e-4"; mantissa digits from the step
    const e = Math.floor(Math.log10(maxAbs));
    const decimals = Math.max(0, Math.min(6, -Math.floor(Math.log10(step / 10 ** e) + 1e-9)));
    return (v) => {
      if (v === 0) return '0';
      const s = v.toExponential(decimals);
      const [m, x] = s.split('e');
      return `${m!.includes('.') ? m!.replace(/\.?0+$/, '') : m}e${Number(x)}`;
    };
  }
  const decimals = Math.max(0, Math.min(10, -Math.floor(Math.log10(step) + 1e-9)));
  return (v) => v.toFixed(decimals);
}

/** A number for tables and tooltips: 4 significant digits, exponent for tiny/huge values. */
export function formatValue(v: number | null | undefined): string {
  if (v === null || v === undefined) return '–';
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '+∞' : '−∞';
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(3).replace(/\.?0+e/, 'e').replace('e+', 'e');
  return String(Number(v.toPrecision(5)));
}

/** Estimated width in px of `text` at `fontSize` (sans-serif, average glyph ≈ 0.58 em). */
export function textWidth(text: string, fontSize: number): number {
  let w = 0;
  for (const ch of text) w += /[il.,:;'|!1 ]/.test(ch) ? 0.32 : /[mwMW@]/.test(ch) ? 0.85 : /[A-Z]/.test(ch) ? 0.68 : 0.56;
  return w * fontSize;
}

/** Cuts `text` with an ellipsis to fit `maxWidth` px (empty string if not even one char fits). */
export function fitText(text: string, fontSize: number, maxWidth: number): string {
  if (textWidth(text, fontSize) <= maxWidth) return text;
  const chars = [...text];
  while (chars.length > 0 && textWidth(chars.join('') + '…', fontSize) > maxWidth) chars.pop();
  return chars.length === 0 ? '' : chars.join('') + '…';
}

/**
 * Polyline paths through (x, y) points, broken at non-finite values. Returns one SVG path `d`
 * string (several M…L… runs).
 */
export function pathThrough(points: [number, number][]): string {
  const parts: string[] = [];
  let open = false;
  for (const [x, y] of points) {
    if (!Number.isFinite(x) || !Number.isFinite(y)) { open = false; continue; }
    parts.push(`${open ? 'L' : 'M'}${px(x)} ${px(y)}`);
    open = true;
  }
  return parts.join('');
}

/**
 * Keeps a long series drawable: when there are more than `maxPoints` points, keeps per bucket the
 * first, min, max and last point (so spikes survive). Non-finite points are kept (they break lines).
 */
export function downsample<T>(items: T[], x: (i: T) => number, y: (i: T) => number, maxPoints: number): T[] {
  if (items.length <= maxPoints) return items;
  const buckets = Math.max(1, Math.floor(maxPoints / 4));
  const x0 = x(items[0]!);
  const x1 = x(items[items.length - 1]!);
  const span = x1 - x0 || 1;
  const out: T[] = [];
  let bucket = -1;
  let group: T[] = [];
  const flush = () => {
    if (group.length === 0) return;
    const finite = group.filter((g) => Number.isFinite(y(g)));
    const keep = new Set<T>([group[0]!, group[group.length - 1]!]);
    for (const g of group) if (!Number.isFinite(y(g))) keep.add(g);
    if (finite.length) {
      keep.add(finite.reduce((a, b) => (y(b) < y(a) ? b : a)));
      keep.add(finite.reduce((a, b) => (y(b) > y(a) ? b : a)));
    }
    for (const g of group) if (keep.has(g)) out.push(g);
    group = [];
  };
  for (const it of items) {
    const b = Math.min(buckets - 1, Math.floor(((x(it) - x0) / span) * buckets));
    if (b !== bucket) { flush(); bucket = b; }
    group.push(it);
  }
  flush();
  return out;
}

/**
 * Exponential moving average with TensorBoard's debiasing, restarted where `restart(i)` is true;
 * non-finite values are skipped (the result there is NaN, so the line breaks).
 */
export function ema(values: number[], weight: number, restart: (i: number) => boolean = () => false): number[] {
  const out: number[] = [];
  let acc = 0;
  let n = 0;
  values.forEach((v, i) => {
    if (restart(i)) { acc = 0; n = 0; }
    if (!Number.isFinite(v)) { out.push(NaN); return; }
    acc = weight * acc + (1 - weight) * v;
    n++;
    out.push(acc / (1 - weight ** n));
  });
  return out;
}

/** Smallest and largest of the values (no argument spreading: safe for very long series). */
export function extent(values: Iterable<number>): [number, number] | undefined {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) { if (v < lo) lo = v; if (v > hi) hi = v; }
  return lo <= hi ? [lo, hi] : undefined;
}
