/**
 * Shared helpers for the `stackwise` subcommands: exit codes, error reporting (text or --json),
 * JSON output, option parsers, human-readable numbers, tables and the progress bar.
 *
 * Exit codes (the same for every subcommand):
 *   0  success
 *   1  the work failed: bad or missing input file, unsupported model, corrupt checkpoint, …
 *   2  usage error: unknown subcommand or flag, missing argument, invalid option value
 *   130 interrupted (SIGINT)
 */
import { createRequire } from 'node:module';
import { existsSync, statSync } from 'node:fs';
import { CommanderError, InvalidArgumentError } from 'commander';
import { UsageError } from '../training/run/errors.js';

export const EXIT = { ok: 0, failure: 1, usage: 2, interrupted: 130 } as const;

/** An error in how the command was called (exit code 2); the library's entry points throw it too. */
export { UsageError };

/** The exit code an error stands for. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
  if (error instanceof UsageError || error instanceof InvalidArgumentError) return EXIT.usage;
  return EXIT.failure;
}

const SYSTEM_ERRORS: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory, expected a file',
  ENOTDIR: 'not a directory',
  ENOSPC: 'no space left on device',
  EROFS: 'read-only file system',
  EEXIST: 'already exists',
};

/** A one-paragraph message for an error: system errors as "path: what happened". */
export function describeError(error: unknown): string {
  if (error instanceof Error) {
    const sys = error as NodeJS.ErrnoException;
    if (typeof sys.code === 'string' && sys.code in SYSTEM_ERRORS && typeof sys.path === 'string') {
      return `${sys.path}: ${SYSTEM_ERRORS[sys.code]}`;
    }
    return error.message;
  }
  return String(error);
}

/** The JSON object printed on stdout for a failed command run with --json. */
export interface JsonError {
  ok: false;
  command: string;
  error: { type: string; message: string; exitCode: number };
}

/** Reports an error the way every subcommand does and sets process.exitCode. Returns the code. */
export function reportError(command: string, error: unknown, opts: { json?: boolean } = {}): number {
  const code = exitCodeOf(error);
  const message = describeError(error);
  process.stderr.write(`stackwise ${command}: ${message}\n`);
  if (code === EXIT.usage) process.stderr.write(`(see \`stackwise ${command} --help\`)\n`);
  if (process.env.STACKWISE_DEBUG && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
  if (opts.json) {
    const out: JsonError = { ok: false, command, error: { type: error instanceof Error ? error.name : typeof error, message, exitCode: code } };
    printJson(out);
  }
  process.exitCode = code;
  return code;
}

/**
 * Exit code for an error commander raised while parsing (a usage error: unknown option, bad
 * choice, missing argument). Commander has printed its message on stderr; with --json on the
 * command line the JSON error object goes to stdout as well, as for every other failure.
 */
export function reportParseError(error: { exitCode: number; message: string }, argv: readonly string[]): number {
  if (error.exitCode === 0) return 0;
  const args = argv.slice(2);
  if (args.includes('--json')) {
    const command = args.find((a) => !a.startsWith('-')) ?? 'stackwise';
    const out: JsonError = { ok: false, command, error: { type: 'UsageError', message: error.message.replace(/^error: /, ''), exitCode: EXIT.usage } };
    printJson(out);
  }
  return EXIT.usage;
}

/**
 * Runs a subcommand's work and turns any error into a message on stderr (plus a JSON error
 * object on stdout with --json) and the matching exit code, without killing the process (so
 * stdout is flushed).
 */
export async function runCommand(command: string, opts: { json?: boolean }, work: () => unknown | Promise<unknown>): Promise<void> {
  try {
    await work();
  } catch (error) {
    reportError(command, error, opts);
  }
}

/** JSON.stringify that writes non-finite numbers as null (JSON has no NaN/Infinity). */
export function toJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), indent);
}

/** Prints one JSON document (one line) on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(toJson(value) + '\n');
}

// ---- option parsers (for commander's .option(flags, description, parser)) -----------------------

export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, found '${value}'`);
  return n;
}

export function parseNonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`expected a non-negative integer, found '${value}'`);
  return n;
}

/** `K` (K equal stacks) or `a,b,c` (blocks per stack). */
export function parseStacks(value: string): number | number[] {
  const parts = value.split(',').map((s) => s.trim());
  if (parts.some((p) => !/^\d+$/.test(p) || Number(p) < 1)) {
    throw new InvalidArgumentError(`expected K (a positive number of equal stacks) or a list of blocks per stack like 2,2,4; found '${value}'`);
  }
  const nums = parts.map(Number);
  return nums.length === 1 ? nums[0]! : nums;
}

/** A parser accepting one of `choices`. */
export function parseChoice<T extends string>(choices: readonly T[]): (value: string) => T {
  return (value: string) => {
    if (!(choices as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${choices.join(', ')}; found '${value}'`);
    return value as T;
  };
}

/** Checks that `path` is an existing folder (UsageError-free: a missing input is a failure, exit 1). */
export function requireFolder(path: string, what = 'folder'): void {
  if (!existsSync(path)) throw new Error(`${path}: no such ${what}`);
  if (!statSync(path).isDirectory()) throw new Error(`${path}: not a folder (expected a ${what})`);
}

/** Checks that `path` is an existing regular file. */
export function requireFile(path: string, what = 'file'): void {
  if (!existsSync(path)) throw new Error(`${path}: no such ${what}`);
  if (!statSync(path).isFile()) throw new Error(`${path}: not a regular file (expected a ${what})`);
}

// ---- human-readable numbers --------------------------------------------------------------------

/** 1234 → "1.23K", 12_345_678 → "12.35M". */
export function humanCount(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const a = Math.abs(n);
  if (a >= 1e12) return `${(n / 1e12).toFixed(2)}T`;
  if (a >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (a >= 1e3) return `${(n / 1e3).toFixed(2)}K`;
  return String(n);
}

/** Seconds as "42s", "3m 05s", "1h 02m". */
export function humanDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Width of a string in terminal columns (code points; the tree characters are one column). */
function width(s: string): number {
  return [...s].length;
}

/**
 * Left/right aligned columns. `align[i]` is 'l' or 'r' (default 'l'); trailing spaces trimmed.
 */
export function formatTable(rows: string[][], align: ('l' | 'r')[] = [], gap = '  '): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((c, i) => { widths[i] = Math.max(widths[i] ?? 0, width(c)); });
  return rows
    .map((row) => row.map((c, i) => {
      const pad = ' '.repeat((widths[i] ?? 0) - width(c));
      return align[i] === 'r' ? pad + c : c + pad;
    }).join(gap).trimEnd())
    .join('\n');
}

// ---- progress bar --------------------------------------------------------------------------------

/** The part of cli-progress we use (the package ships no types). */
interface CliProgressBar {
  start(total: number, value: number, payload?: Record<string, unknown>): void;
  update(value: number, payload?: Record<string, unknown>): void;
  setTotal(total: number): void;
  stop(): void;
}
interface CliProgressModule {
  SingleBar: new (options: Record<string, unknown>, preset?: Record<string, unknown>) => CliProgressBar;
  Presets: Record<string, Record<string, unknown>>;
}

let cliProgress: CliProgressModule | null = null;
function loadCliProgress(): CliProgressModule {
  if (!cliProgress) cliProgress = createRequire(import.meta.url)('cli-progress') as CliProgressModule;
  return cliProgress;
}

export interface ProgressMetrics {
  loss?: number;
  tokensPerSec?: number;
  /** Anything else, printed as "key value". */
  [key: string]: number | string | undefined;
}

export interface ProgressOptions {
  total: number;
  /** Printed before the bar ("train", "eval", …). */
  label?: string;
  /** Unit of the counted items (default "steps"). */
  unit?: string;
  /**
   * false: print nothing (use with --json). Default: a bar when the stream is a terminal,
   * otherwise one plain line every `logIntervalMs` (and at the end).
   */
  enabled?: boolean;
  stream?: NodeJS.WriteStream;
  logIntervalMs?: number;
}

export interface Progress {
  update(value: number, metrics?: ProgressMetrics): void;
  increment(by?: number, metrics?: ProgressMetrics): void;
  stop(): void;
}

function formatMetric(key: string, v: number | string | undefined): string {
  if (v === undefined) return '';
  if (typeof v === 'string') return `${key} ${v}`;
  if (key === 'tokensPerSec') return `${v >= 1e4 ? humanCount(Math.round(v)) : v.toFixed(0)} tok/s`;
  if (key === 'loss') return `loss ${Number.isFinite(v) ? v.toFixed(4) : String(v)}`;
  const a = Math.abs(v);
  const s = a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(2) : Number(v.toPrecision(4)).toString();
  return `${key} ${s}`;
}

function formatMetrics(m: ProgressMetrics | undefined): string {
  if (!m) return '';
  const order = ['loss', 'tokensPerSec', ...Object.keys(m).filter((k) => k !== 'loss' && k !== 'tokensPerSec')];
  return order.map((k) => formatMetric(k, m[k])).filter((s) => s).join(' | ');
}

/**
 * A progress bar with ETA, tokens/s and loss (cli-progress) on a terminal; periodic plain lines
 * elsewhere (CI logs); nothing when disabled.
 */
export function createProgress(opts: ProgressOptions): Progress {
  const stream = opts.stream ?? process.stderr;
  const label = opts.label ?? '';
  const unit = opts.unit ?? 'steps';
  let value = 0;
  let metrics: ProgressMetrics | undefined;
  if (opts.enabled === false) {
    return { update() {}, increment() {}, stop() {} };
  }
  if (!stream.isTTY) {
    const interval = opts.logIntervalMs ?? 10_000;
    const started = Date.now();
    let last = 0;
    let stopped = false;
    const line = () => {
      const elapsed = (Date.now() - started) / 1000;
      const eta = value > 0 ? (elapsed * (opts.total - value)) / value : NaN;
      const pct = opts.total > 0 ? ((100 * value) / opts.total).toFixed(1) : '0.0';
      const m = formatMetrics(metrics);
      stream.write(`${label ? label + ' ' : ''}${value}/${opts.total} ${unit} (${pct}%) | elapsed ${humanDuration(elapsed)} | ETA ${humanDuration(eta)}${m ? ' | ' + m : ''}\n`);
    };
    return {
      update(v, m) {
        value = v; if (m) metrics = m;
        const now = Date.now();
        if (now - last >= interval) { last = now; line(); }
      },
      increment(by = 1, m) { this.update(value + by, m); },
      stop() { if (!stopped) { stopped = true; line(); } },
    };
  }
  const { SingleBar, Presets } = loadCliProgress();
  const bar = new SingleBar({
    stream,
    format: `${label ? label + ' ' : ''}[{bar}] {percentage}% | {value}/{total} ${unit} | ETA {eta_formatted}{metrics}`,
    hideCursor: true,
    etaBuffer: 50,
    fps: 5,
    barsize: 30,
  }, Presets.shades_classic);
  bar.start(opts.total, 0, { metrics: '' });
  let stopped = false;
  const payload = () => { const s = formatMetrics(metrics); return { metrics: s ? ' | ' + s : '' }; };
  return {
    update(v, m) { value = v; if (m) metrics = m; bar.update(v, payload()); },
    increment(by = 1, m) { this.update(value + by, m); },
    stop() { if (!stopped) { stopped = true; bar.stop(); } },
  };
}

/** commander's collector for a repeatable option (`--set a=1 --set b=2`). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
