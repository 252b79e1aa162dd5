/** Optional per-op timing. Kernels run synchronously, so wall time around a kernel call is the
 * time that kernel took; used by the benchmarks to split a step into GEMM and non-GEMM work. */
export interface OpTiming { calls: number; ms: number }

let active: Map<string, OpTiming> | null = null;

export function startProfiling(): void {
  active = new Map();
}

/** Stops profiling and returns the time per op name. */
export function stopProfiling(): Map<string, OpTiming> {
  const r = active ?? new Map<string, OpTiming>();
  active = null;
  return r;
}

export function profilingActive(): boolean {
  return active !== null;
}

export function recordOp(op: string, ms: number): void {
  if (!active) return;
  const e = active.get(op);
  if (e) { e.calls++; e.ms += ms; } else active.set(op, { calls: 1, ms });
}

/** The median of a list of timings (the benchmarks report medians: robust to a noisy machine). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
