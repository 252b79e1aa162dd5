/** Thrown for a progressive configuration that cannot train; `problems` has one line each. */
export class ProgressiveConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: string | readonly string[]) {
    const list = typeof problems === 'string' ? [problems] : problems;
    super(list.length === 1 ? `progressive: ${list[0]}` : `progressive (${list.length} problems):\n${list.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'ProgressiveConfigError';
    this.problems = list;
  }
}
