/**
 * The comparison page of `stackwise compare` (compare.html): a progressive run against the same
 * final model trained end to end for equal estimated training FLOPs, over several seeds — the
 * validation curves of both against cumulative FLOPs for every seed, the final validation losses
 * with their spread, and the verdict. Self-contained like the run report (inline CSS and SVG).
 */
import { xyLineChart } from './charts.js';
import { reportHead } from './html.js';
import { escapeXml, formatValue } from './svg.js';

export const COMPARE_VARIANTS = ['progressive', 'end_to_end'] as const;
export type CompareVariant = (typeof COMPARE_VARIANTS)[number];

/** One validation evaluation of a compared run. */
export interface ComparePoint {
  /** Steps completed when it ran. */
  step: number;
  /** Estimated training FLOPs spent by then. */
  flops: number;
  /** Mean cross-entropy per scored validation token (nats). */
  val_loss: number;
}

export interface CompareRun {
  variant: CompareVariant;
  seed: number;
  run_dir: string;
  steps: number;
  flops: number;
  tokens: number;
  wall_s: number;
  final_val_loss: number | null;
  curve: ComparePoint[];
  /** The run's phases in FLOPs (a progressive run's growth stages). */
  phases: { name: string; flops_start: number; flops_end: number }[];
}

/** How sure the comparison is: progressive − end to end final validation loss over the seeds. */
export interface CompareVerdict {
  seeds: number;
  /** Per seed, progressive − end to end (nats; negative: progressive is better). */
  differences: number[];
  mean_difference: number | null;
  /** Standard error of the mean difference (null with one seed). */
  standard_error: number | null;
  /** Paired t statistic and its degrees of freedom (null with one seed). */
  t: number | null;
  df: number | null;
  /** 95% confidence interval of the mean difference (null with one seed). */
  interval95: [number, number] | null;
  /** Which is better with 95% confidence, or null when the interval includes 0 / one seed. */
  better: CompareVariant | null;
  text: string;
}

export interface CompareReportData {
  name: string;
  config: string;
  generated_at: string;
  progressive_steps: number;
  end_to_end_steps: number;
  /** Training FLOPs per token of the final model trained end to end / as the progressive run's last phase trained it (the steps of equal FLOPs divide by it). */
  cost_ratio: number;
  /** End-to-end FLOPs / progressive FLOPs, per seed. */
  flops_ratios: number[];
  runs: CompareRun[];
  verdict: CompareVerdict;
}

export const VARIANT_LABEL: Record<CompareVariant, string> = { progressive: 'progressive', end_to_end: 'end to end' };
const VARIANT_COLOR: Record<CompareVariant, string> = { progressive: '#1d4ed8', end_to_end: '#ea580c' };

function mean(v: number[]): number {
  return v.reduce((a, b) => a + b, 0) / v.length;
}

function sd(v: number[]): number | null {
  if (v.length < 2) return null;
  const m = mean(v);
  return Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / (v.length - 1));
}

/** The validation curves of both runs of one seed against training FLOPs (standalone: an SVG file). */
export function compareSeedChart(data: CompareReportData, seed: number, standalone = false): string {
  const runs = data.runs.filter((r) => r.seed === seed);
  const prog = runs.find((r) => r.variant === 'progressive');
  const subtitle = runs.map((r) => `${VARIANT_LABEL[r.variant]} ${formatValue(r.final_val_loss)}`).join(' · ');
  return xyLineChart({
    id: `seed-${seed}`,
    title: `Validation loss against training FLOPs, seed ${seed}`,
    subtitle: subtitle ? `final: ${subtitle}` : '',
    xLabel: 'training FLOPs (estimated)',
    yLabel: 'validation loss (nats)',
    series: runs.map((r) => ({ label: `${VARIANT_LABEL[r.variant]} (${r.steps} steps)`, color: VARIANT_COLOR[r.variant], markers: true, points: r.curve.map((p) => ({ x: p.flops, y: p.val_loss })) })),
    ...(prog ? { bands: prog.phases.map((p) => ({ name: `${p.name} (progressive)`, x0: p.flops_start, x1: p.flops_end })) } : {}),
    emptyText: 'no validation loss recorded (the config has no validation split?)',
  }, standalone);
}

function finalLossTable(data: CompareReportData): string {
  const seeds = [...new Set(data.runs.map((r) => r.seed))].sort((a, b) => a - b);
  const final = (v: CompareVariant, s: number) => data.runs.find((r) => r.variant === v && r.seed === s)?.final_val_loss ?? null;
  const rows = seeds.map((s, i) => {
    const p = final('progressive', s);
    const e = final('end_to_end', s);
    return `<tr><td>${s}</td><td class="num">${formatValue(p)}</td><td class="num">${formatValue(e)}</td><td class="num">${formatValue(data.verdict.differences[i] ?? null)}</td></tr>`;
  });
  const col = (v: CompareVariant) => seeds.map((s) => final(v, s)).filter((x): x is number => x !== null && Number.isFinite(x));
  const spread = (v: number[]) => (v.length === 0 ? '–' : `${formatValue(mean(v))}${sd(v) !== null ? ` ± ${formatValue(sd(v))}` : ''}`);
  rows.push(`<tr><th>mean ± sd</th><th class="num">${spread(col('progressive'))}</th><th class="num">${spread(col('end_to_end'))}</th><th class="num">${spread(data.verdict.differences)}</th></tr>`);
  return `<table><thead><tr><th>seed</th><th class="num">progressive</th><th class="num">end to end</th><th class="num">progressive − end to end</th></tr></thead><tbody>${rows.join('')}</tbody></table>`;
}

function runTable(data: CompareReportData): string {
  const rows = data.runs.map((r) => `<tr><td>${r.seed}</td><td>${escapeXml(VARIANT_LABEL[r.variant])}</td><td class="num">${r.steps}</td><td class="num">${formatValue(r.flops)}</td><td class="num">${formatValue(r.tokens)}</td><td class="num">${formatValue(Math.round(r.wall_s * 10) / 10)}</td><td>${escapeXml(r.run_dir)}</td></tr>`);
  return `<div style="overflow-x:auto"><table><thead><tr><th>seed</th><th>run</th><th class="num">steps</th><th class="num">FLOPs</th><th class="num">tokens</th><th class="num">wall s</th><th>run folder</th></tr></thead><tbody>${rows.join('')}</tbody></table></div>`;
}

/** The whole comparison page. */
export function renderCompareHtml(data: CompareReportData): string {
  const seeds = [...new Set(data.runs.map((r) => r.seed))].sort((a, b) => a - b);
  const figures = seeds.map((s) => `<figure id="fig-seed-${s}">${compareSeedChart(data, s)}<figcaption>${escapeXml(`Seed ${s}: validation loss of both runs against their cumulative estimated training FLOPs; shaded: the progressive run's phases.`)}</figcaption></figure>`);
  const ratios = data.flops_ratios.map((r) => formatValue(r)).join(', ');
  const title = `Progressive vs end to end: ${data.name}`;
  return `${reportHead(title)}
<body>
<main>
<h1>${escapeXml(title)}</h1>
<p class="meta">Generated ${escapeXml(data.generated_at)} · config ${escapeXml(data.config)} · progressive ${data.progressive_steps} steps, end to end (the final model from step 0, one phase) ${data.end_to_end_steps} steps for the same estimated training FLOPs (end to end / progressive: ${escapeXml(ratios)})</p>
<section id="verdict"><h2>Verdict</h2><p>${escapeXml(data.verdict.text)}</p></section>
<section id="final-losses"><h2>Final validation loss (nats per token)</h2>${finalLossTable(data)}</section>
${figures.join('\n')}
<section id="runs"><h2>Runs</h2>${runTable(data)}</section>
</main>
<footer>stackwise compare · self-contained: no scripts, no external resources</footer>
</body>
</html>
`;
}
