/**
 * `bench progressive`: training the last stack of an 8-stack model (issue 7's target), three
 * variants side by side — full backprop through all 8 stacks, frozen trunk, frozen trunk +
 * activation cache. Each run is its own child process (bench/progressive-child.ts) so that its
 * peak RSS is its own; the variants alternate for `rounds` rounds so that they see the same
 * machine load. Prints every child's line, then one summary line per variant (median over
 * rounds) and the ratios against full backprop.
 */
import { fileURLToPath } from 'node:url';
import { emit, median, round, runChildJson } from './stats.js';
import { SHAPE, VARIANTS, type ProgressiveVariant } from './progressive-child.js';

export interface ProgressiveBenchOptions { rounds?: number; steps?: number; threads?: number }

export function benchProgressive(opts: ProgressiveBenchOptions = {}): void {
  const rounds = opts.rounds ?? 2;
  const script = fileURLToPath(new URL('./progressive-child.js', import.meta.url));
  const runs = new Map<ProgressiveVariant, Record<string, unknown>[]>(VARIANTS.map((v) => [v, []]));
  for (let r = 0; r < rounds; r++) {
    // Odd rounds run the variants in reverse order, so that a load drift favours none of them.
    for (const variant of r % 2 ? [...VARIANTS].reverse() : VARIANTS) {
      const args = ['--expose-gc', script, variant];
      if (opts.steps) args.push('--steps', String(opts.steps));
      if (opts.threads) args.push('--threads', String(opts.threads));
      const out = runChildJson(process.execPath, args);
      if (typeof out === 'string') {
        emit({ bench: 'progressive', variant, round: r, error: out });
        continue;
      }
      const res = { ...out, round: r };
      runs.get(variant)!.push(res);
      emit(res);
    }
  }
  const summary = new Map<ProgressiveVariant, { tok: number; ms: number; rss: number }>();
  for (const v of VARIANTS) {
    const rs = runs.get(v)!;
    if (rs.length === 0) continue;
    const s = {
      tok: median(rs.map((x) => x.tokens_per_s as number)),
      ms: median(rs.map((x) => x.ms_per_step_median as number)),
      rss: median(rs.map((x) => x.peak_rss_mb as number)),
    };
    summary.set(v, s);
  }
  const full = summary.get('full');
  for (const v of VARIANTS) {
    const s = summary.get(v);
    if (!s) continue;
    emit({
      bench: 'progressive-summary', variant: v, ...SHAPE, rounds: runs.get(v)!.length,
      tokens_per_s: round(s.tok), ms_per_step: round(s.ms), peak_rss_mb: round(s.rss),
      speedup_vs_full: full ? round(s.tok / full.tok, 2) : null,
      rss_ratio_vs_full: full ? round(s.rss / full.rss, 3) : null,
    });
  }
  // Ratios within each round (the variants of one round ran back to back, under the same load).
  const perRound = (v: ProgressiveVariant, key: string) => {
    const out: number[] = [];
    for (const x of runs.get(v)!) {
      const f = runs.get('full')!.find((y) => y.round === x.round);
      if (f) out.push((x[key] as number) / (f[key] as number));
    }
    return out;
  };
  const frozen = summary.get('frozen'), cached = summary.get('cached');
  if (full && frozen && cached) {
    const speed = cached.tok / full.tok, rssF = frozen.rss / full.rss, rssC = cached.rss / full.rss;
    emit({
      bench: 'progressive-targets',
      cached_speedup_vs_full: round(speed, 2), target_speedup: 4, speedup_met: speed >= 4,
      cached_speedup_per_round: perRound('cached', 'tokens_per_s').map((x) => round(x, 2)),
      frozen_rss_ratio_per_round: perRound('frozen', 'peak_rss_mb').map((x) => round(x, 3)),
      frozen_speedup_vs_full: round(frozen.tok / full.tok, 2),
      frozen_rss_ratio_vs_full: round(rssF, 3), cached_rss_ratio_vs_full: round(rssC, 3), target_rss_ratio: 0.5, rss_met: rssF <= 0.5,
    });
  }
}
