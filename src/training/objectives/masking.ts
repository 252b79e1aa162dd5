/**
 * Deterministic corruption of one row. Every draw comes from a generator seeded by
 * (seed, objective tag, sample id, ratio), so a row's mask depends on nothing else: not on its
 * position in the batch, the batch size, or what was drawn before.
 */
import { rngFor, type Xoshiro128 } from '../../data/rng.js';
import { ObjectiveError } from './types.js';

/** An exact integer key of a ratio in [0, 1] (for seeding). */
export function ratioKey(r: number): number {
  return Math.round(r * 4294967296);
}

/** The generator of one row's mask: keyed by (seed, tag, sample id, ratio, extra keys…). */
export function maskRng(seed: number, tag: number, sampleId: number, ratio: number, ...extra: number[]): Xoshiro128 {
  return rngFor(seed, tag, sampleId, ratioKey(ratio), ...extra);
}

export type SelectionMode = 'exact' | 'bernoulli';

/**
 * Chooses positions among `eligible` (indices into the row) at ratio r:
 * - 'exact': the ⌈r·L⌉ positions with the smallest uniform keys (L = eligible count);
 * - 'bernoulli': each position independently with probability r.
 * Never returns an empty set when L > 0 (at least the position with the smallest key).
 * Returns a sorted list.
 */
export function selectPositions(eligible: readonly number[], r: number, mode: SelectionMode, rng: Xoshiro128): number[] {
  return selectPositionsDetailed(eligible, r, mode, rng).positions;
}

/**
 * `selectPositions`, also telling which position (if any) was added only because a Bernoulli
 * draw chose none: an estimator that weights the selected positions by 1/r must not count it,
 * or rows at small r are over-weighted (the forced position has probability (1-r)^L, not r).
 */
export function selectPositionsDetailed(eligible: readonly number[], r: number, mode: SelectionMode, rng: Xoshiro128): { positions: number[]; forced: number | null } {
  const L = eligible.length;
  if (L === 0) return { positions: [], forced: null };
  const u = new Float64Array(L);
  for (let i = 0; i < L; i++) u[i] = rng.nextFloat();
  let chosen: number[];
  let forced: number | null = null;
  if (mode === 'exact') {
    // The tolerance keeps ⌈0.15 × 20⌉ at 3 although 0.15 × 20 = 3.0000000000000004 in doubles.
    const n = Math.min(L, Math.max(1, Math.ceil(r * L - 1e-9)));
    const order = Array.from({ length: L }, (_, i) => i).sort((a, b) => u[a]! - u[b]! || a - b);
    chosen = order.slice(0, n);
  } else if (mode === 'bernoulli') {
    chosen = [];
    let best = 0;
    for (let i = 0; i < L; i++) {
      if (u[i]! < r) chosen.push(i);
      if (u[i]! < u[best]!) best = i;
    }
    if (chosen.length === 0) {
      chosen.push(best);
      forced = eligible[best]!;
    }
  } else {
    throw new ObjectiveError(`selectPositions: mode must be 'exact' or 'bernoulli', found '${String(mode)}'`);
  }
  return { positions: chosen.map((i) => eligible[i]!).sort((a, b) => a - b), forced };
}

/** Draws a token uniformly from [0, V) outside `excluded` (rejection; the set must leave one). */
export function randomToken(V: number, excluded: ReadonlySet<number>, rng: Xoshiro128): number {
  for (;;) {
    const v = rng.nextInt(V);
    if (!excluded.has(v)) return v;
  }
}

/** Positions of a row whose token is not in `special`. */
export function eligiblePositions(ids: Int32Array, offset: number, length: number, special: ReadonlySet<number>): number[] {
  const out: number[] = [];
  for (let i = 0; i < length; i++) if (!special.has(ids[offset + i]!)) out.push(i);
  return out;
}
