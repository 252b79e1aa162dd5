/**
 * One run folder followed live: its metrics.jsonl is tailed (only new bytes are read), its records
 * are kept in memory, and the run page's view is rebuilt from them when they change.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { METRICS_FILE } from '../report/index.js';
import type { MetricsRecord } from '../metrics-jsonl.js';
import { JsonlTail } from './jsonl-tail.js';
import { readConfigSummary, runStatus, type RunConfigSummary, type RunStatus } from './run-status.js';
import { buildRunView, type RunView } from './run-view.js';

/** A view that took x ms to build is not rebuilt within VIEW_BUSY_FACTOR·x ms (≤ 10 % of a core per run). */
const VIEW_BUSY_FACTOR = 10;

export class LiveRun {
  readonly tail: JsonlTail;
  records: MetricsRecord[] = [];
  /** Bumped whenever the records change. */
  version = 0;
  /** Bumped when the file was replaced or truncated and everything was read again. */
  generation = 0;
  private config: RunConfigSummary = { text: '', total_steps: null };
  private configMtimeMs = -1;
  private view: RunView | null = null;
  private viewVersion = -1;
  private viewBuiltAt = 0;
  private viewBuildMs = 0;

  constructor(readonly name: string, readonly dir: string) {
    this.tail = new JsonlTail(join(dir, METRICS_FILE));
  }

  /** Reads what was appended since the last poll; true when the records changed. */
  poll(): boolean {
    this.refreshConfig();
    const update = this.tail.poll();
    if (update.reset) {
      this.records = [];
      this.generation++;
    }
    if (update.records.length) for (const r of update.records) this.records.push(r);
    const changed = update.reset || update.records.length > 0;
    if (changed) this.version++;
    return changed;
  }

  private refreshConfig(): void {
    let mtime = 0;
    try {
      mtime = statSync(join(this.dir, 'config.yaml')).mtimeMs;
    } catch { /* no config (yet) */ }
    if (mtime === this.configMtimeMs) return;
    this.configMtimeMs = mtime;
    this.config = readConfigSummary(this.dir);
    this.version++;
  }

  /** The run's last change: its metrics file, else its folder. */
  get lastChangeMs(): number {
    if (this.tail.mtimeMs > 0) return this.tail.mtimeMs;
    try {
      return statSync(this.dir).mtimeMs;
    } catch {
      return 0;
    }
  }

  status(nowMs: number): RunStatus {
    return runStatus(this.records, this.lastChangeMs, nowMs);
  }

  /**
   * The run page's data; rebuilt only when the records changed (the status is always current).
   * A rebuild goes through every record (hundreds of ms for 100k steps), so a run whose view is
   * slow to build is rebuilt at most once per VIEW_BUSY_FACTOR times its last build time.
   */
  currentView(nowMs: number): RunView {
    const status = this.status(nowMs);
    const due = performance.now() - this.viewBuiltAt >= VIEW_BUSY_FACTOR * this.viewBuildMs;
    if (!this.view || (this.viewVersion !== this.version && due)) {
      const started = performance.now();
      this.view = buildRunView({
        name: this.name,
        records: this.records,
        status,
        config: this.config,
        mtimeMs: this.tail.mtimeMs,
        counts: { records: this.records.length, malformed: this.tail.malformed, pending_bytes: this.tail.pendingBytes },
      });
      this.viewVersion = this.version;
      this.viewBuiltAt = performance.now();
      this.viewBuildMs = this.viewBuiltAt - started;
    } else if (this.view.status.state !== status.state || this.view.status.detail !== status.detail) {
      this.view = { ...this.view, status };
    }
    return this.view;
  }
}
