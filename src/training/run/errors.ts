/** An error in how an entry point was called (a bad option value or combination); the CLI exits with 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Progress of a long entry point (evaluation windows, probe features): the CLI draws a bar. */
export interface ProgressSink {
  update(done: number): void;
  stop(): void;
}

/** Makes a ProgressSink for `total` items of `unit` labelled `label`. */
export type ProgressFactory = (o: { total: number; label: string; unit: string }) => ProgressSink;

/** A ProgressFactory that reports nothing. */
export const noProgress: ProgressFactory = () => ({ update: () => {}, stop: () => {} });
