/** Byte counts for people: the one formatter of sizes (plan, inspect, the CLI, error messages). */

/** Bytes in binary units, "864.3 KiB", "2.61 GiB"; negative sizes (differences) keep their sign. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const a = Math.abs(n);
  if (a >= 2 ** 40) return `${(n / 2 ** 40).toFixed(2)} TiB`;
  if (a >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (a >= 2 ** 20) return `${(n / 2 ** 20).toFixed(2)} MiB`;
  if (a >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}
