// Small, fast, seedable pseudo-random generators and stable hashes.
//
// Everything random in the data layer (splits, batch sampling, masking) flows from these so
// that a run is reproducible bit for bit from its seed. They are plain 32-bit integer
// arithmetic (Math.imul, >>> 0), so results are identical on every platform and Node version.

/** One step of splitmix32: turns any 32-bit state into a well-mixed 32-bit output. */
export function splitmix32Step(state: number): { state: number; value: number } {
  const next = (state + 0x9e3779b9) >>> 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  z = (z ^ (z >>> 16)) >>> 0;
  return { state: next, value: z };
}

/** Murmur3's 32-bit finaliser: a cheap bijective mixer. */
export function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** Combines several integers (seed, step, sample id, ...) into one 32-bit seed. Order matters. */
export function combineSeeds(...parts: number[]): number {
  let h = 0x811c9dc5;
  for (const part of parts) {
    if (!Number.isFinite(part)) throw new RangeError(`combineSeeds: ${part} is not a finite number`);
    // Feed both 32-bit halves so integers up to 2^53 (e.g. large step counts) stay distinct.
    const low = part >>> 0;
    const high = Math.floor(part / 4294967296) >>> 0;
    h = mix32((h ^ low) + 0x9e3779b9);
    h = mix32((h ^ high) + 0x7f4a7c15);
  }
  return h;
}

/**
 * Stable 32-bit hash of a string under a seed (FNV-1a over UTF-16 code units, then mixed).
 * Used for anything that must not depend on array order, e.g. train/val/test assignment.
 */
export function hashString32(text: string, seed = 0): number {
  let h = (0x811c9dc5 ^ combineSeeds(seed)) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return mix32(h ^ text.length);
}

/** Serialisable state of a Xoshiro128 generator (for checkpoints and exact resume). */
export type RngState = readonly [number, number, number, number];

/**
 * xoshiro128** (Blackman & Vigna): 128-bit state, period 2^128 - 1, good statistical quality,
 * and only 32-bit integer operations, which keeps it exact in JavaScript.
 */
export class Xoshiro128 {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seed: number) {
    // Expand the seed with splitmix32, as the authors recommend; never an all-zero state.
    let state = seed >>> 0;
    const words: number[] = [];
    for (let i = 0; i < 4; i++) {
      const step = splitmix32Step(state);
      state = step.state;
      words.push(step.value);
    }
    if ((words[0]! | words[1]! | words[2]! | words[3]!) === 0) words[0] = 1;
    this.s0 = words[0]!;
    this.s1 = words[1]!;
    this.s2 = words[2]!;
    this.s3 = words[3]!;
  }

  static fromState(state: RngState): Xoshiro128 {
    const rng = new Xoshiro128(0);
    rng.setState(state);
    return rng;
  }

  getState(): RngState {
    return [this.s0, this.s1, this.s2, this.s3];
  }

  setState(state: RngState): void {
    if (state.length !== 4 || state.some((w) => !Number.isInteger(w) || w < 0 || w > 0xffffffff)) {
      throw new RangeError('Xoshiro128 state must be four unsigned 32-bit integers');
    }
    if ((state[0] | state[1] | state[2] | state[3]) === 0) {
      throw new RangeError('Xoshiro128 state must not be all zeros');
    }
    [this.s0, this.s1, this.s2, this.s3] = state;
  }

  /** Next unsigned 32-bit integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    this.s0 >>>= 0;
    this.s1 >>>= 0;
    this.s2 >>>= 0;
    this.s3 >>>= 0;
    return result;
  }

  /** Uniform float in [0, 1) with 32 bits of randomness. */
  nextFloat(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [0, n), unbiased (rejection sampling). n must be in [1, 2^32]. */
  nextInt(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > 4294967296) {
      throw new RangeError(`nextInt: bound must be an integer in [1, 2^32], got ${n}`);
    }
    // Reject the top partial bucket so every residue is equally likely.
    const limit = 4294967296 - (4294967296 % n);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /** Fisher-Yates shuffle in place; returns the same array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const tmp = items[i]!;
      items[i] = items[j]!;
      items[j] = tmp;
    }
    return items;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** A generator whose stream depends only on the given keys, e.g. rngFor(seed, step). */
export function rngFor(...keys: number[]): Xoshiro128 {
  return new Xoshiro128(combineSeeds(...keys));
}
