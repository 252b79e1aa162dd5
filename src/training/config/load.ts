// Reading configs from YAML or JSON files, `--set a.b=c` overrides, and writing the resolved
// config of a run (base and every phase) into its run folder.

import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import YAML from 'yaml';
import { writeFileAtomic } from '../../data/atomic-write.js';
import { isPlainObject } from '../../framework/index.js';
import { ConfigError, joinPath, parsePath, type ConfigIssue, type PathSegment } from '../../framework/config/errors.js';
import { MAX_CONFIG_DEPTH, RESERVED_CONFIG_KEYS, checkConfigTree, isReservedConfigKey } from '../../framework/config/tree.js';
import { MODE_PROGRESSIVE_KEYS } from './modes.js';
import { parseConfig, type ParsedConfig } from './resolve.js';

/** One whole-sentence problem with the file itself (not with a key in it). */
function fileProblem(source: string, message: string): ConfigError {
  return new ConfigError([{ path: '', expected: '', found: '', message }], source);
}

/** What a parsed document is, in words (for "expected a mapping, found …"). */
function describeDocument(value: unknown): string {
  if (Array.isArray(value)) return `a list of ${value.length} item(s)`;
  if (typeof value === 'string') return `the text ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  return `${typeof value === 'number' ? 'the number' : 'the value'} ${String(value)}`;
}

/** A YAML/JSON parser that overflowed the stack on a deeply nested document, said in words. */
function nestingMessage(message: string): string | undefined {
  return /Maximum call stack size exceeded|too much recursion/i.test(message)
    ? `nested too deeply to read (more than ${MAX_CONFIG_DEPTH} levels is never a config)`
    : undefined;
}

/**
 * Parses YAML (a superset of JSON) or JSON text; syntax errors name the line and column. The
 * document must be a mapping of keys (model, data, …), at most MAX_CONFIG_DEPTH levels deep,
 * with no reserved key (`__proto__`, …).
 */
export function parseConfigText(text: string, source = '<config>'): Record<string, unknown> {
  // Refused before parsing: the parsers recurse per level (a 20,000-deep flow document took the
  // YAML parser a second to fail on its stack) — no config is nested more than a few levels.
  if (flowDepth(text) > MAX_CONFIG_DEPTH) throw fileProblem(source, nestingMessage('Maximum call stack size exceeded')!);
  let value: unknown;
  if (extname(source).toLowerCase() === '.json') {
    try {
      value = JSON.parse(text) as unknown;
    } catch (error) {
      const msg = (error as Error).message;
      throw fileProblem(source, nestingMessage(msg) ?? `not valid JSON: ${msg}`);
    }
  } else {
    try {
      const doc = YAML.parseDocument(text, { uniqueKeys: true, prettyErrors: true });
      if (doc.errors.length > 0) {
        throw new ConfigError(
          doc.errors.map((e) => ({ path: '', expected: '', found: '', message: nestingMessage(e.message) ?? `not valid YAML: ${e.message.split('\n')[0]}` })),
          source,
        );
      }
      value = doc.toJS() as unknown;
    } catch (error) {
      if (error instanceof ConfigError) throw error;
      const msg = (error as Error).message;
      throw fileProblem(source, nestingMessage(msg) ?? `not valid YAML: ${msg.split('\n')[0]}`);
    }
  }
  if (value === null || value === undefined) {
    throw new ConfigError([{ path: '', expected: 'a config object', found: 'an empty document' }], source);
  }
  if (!isPlainObject(value)) {
    throw fileProblem(source, `expected a mapping of config keys at the top (model:, data:, optimizer:, training:, schedule:), found ${describeDocument(value)}`);
  }
  const shape = checkConfigTree(value);
  if (shape.length > 0) throw new ConfigError(shape, source);
  return value;
}

/**
 * The deepest nesting of flow collections (`[`, `{`) outside quoted strings and comments, as a
 * cheap O(n) scan (block nesting is bounded by checkConfigTree after parsing).
 */
function flowDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"' || c === "'") {
      // Skip the quoted string (a backslash escapes in double quotes; '' in single quotes).
      for (i++; i < text.length && text[i] !== c; i++) if (c === '"' && text[i] === '\\') i++;
    } else if (c === '#' && (i === 0 || /\s/.test(text[i - 1]!))) {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '[' || c === '{') {
      if (++depth > deepest) deepest = depth;
    } else if ((c === ']' || c === '}') && depth > 0) {
      depth--;
    }
  }
  return deepest;
}

/**
 * Reads a config file's text: UTF-8 (a byte-order mark is skipped); a UTF-16 file, a binary file
 * (NUL bytes) or invalid UTF-8 is refused with what it is, before any parser sees it.
 */
export function readConfigFile(path: string): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    const why = e.code === 'EISDIR' ? 'is a folder, expected a config file (YAML or JSON)'
      : e.code === 'EACCES' || e.code === 'EPERM' ? 'cannot be read (permission denied)'
        : `cannot be read (${e.message})`;
    throw fileProblem(path, `config file ${why}`);
  }
  if (bytes.length >= 2 && ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff))) {
    throw fileProblem(path, 'the file is UTF-16 text; save it as UTF-8');
  }
  const nul = bytes.indexOf(0);
  if (nul >= 0) throw fileProblem(path, `the file is binary (a NUL byte at offset ${nul}), expected YAML or JSON text`);
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes); // drops a UTF-8 BOM
    return text;
  } catch {
    throw fileProblem(path, 'the file is not UTF-8 text (invalid UTF-8 bytes), expected YAML or JSON text');
  }
}

export interface SetOverride {
  path: PathSegment[];
  value: unknown;
  /** The text as given, for messages (`key=value` of a --set; a flag that sets a key, e.g. `--from x`, as the flag; '' for a setting the caller made itself, which messages do not name). */
  text: string;
}

/** Parses `a.b[0].c=value`; the value is read as a YAML scalar (`1e-4` → number, `true`, `null`, `[1, 2]`). */
export function parseSetOverride(text: string): SetOverride {
  const eq = text.indexOf('=');
  if (eq <= 0) {
    throw new ConfigError([{ path: '', expected: '', found: '', message: `--set ${JSON.stringify(text)}: expected key=value, e.g. optimizer.lr=3e-4` }]);
  }
  const key = text.slice(0, eq).trim();
  const path = parsePath(key);
  if (path.length === 0 || !/^[A-Za-z0-9_.\-[\]]+$/.test(key)) {
    throw new ConfigError([{ path: '', expected: '', found: '', message: `--set ${JSON.stringify(text)}: ${JSON.stringify(key)} is not a config path (letters, digits, _, - separated by '.', list items as [i])` }]);
  }
  const reserved = path.find(isReservedConfigKey);
  if (reserved !== undefined) {
    throw new ConfigError([{ path: '', expected: '', found: '', message: `--set ${JSON.stringify(text)}: '${String(reserved)}' is not a config key (the names ${RESERVED_CONFIG_KEYS.join(', ')} are reserved)` }]);
  }
  const rawValue = text.slice(eq + 1);
  let value: unknown;
  try {
    value = rawValue.trim() === '' ? '' : YAML.parse(rawValue);
  } catch (error) {
    throw new ConfigError([{ path: key, expected: '', found: '', message: `--set value ${JSON.stringify(rawValue)} is not a valid YAML value: ${(error as Error).message.split('\n')[0]}` }]);
  }
  return { path, value, text };
}

/** Applies overrides to a deep copy of `raw` (creating objects on the way; list indices must exist or be the next one). */
export function applySetOverrides(raw: unknown, overrides: readonly (string | SetOverride)[]): unknown {
  const root = raw === undefined ? {} : (structuredClone(raw) as unknown);
  if (overrides.length > 0 && !isPlainObject(root)) {
    throw new ConfigError([{ path: '', expected: 'a config object to apply --set overrides to', found: Array.isArray(root) ? 'a list' : `a ${root === null ? 'null' : typeof root}` }]);
  }
  for (const item of overrides) {
    const o = typeof item === 'string' ? parseSetOverride(item) : item;
    let node: unknown = root;
    o.path.forEach((seg, i) => {
      const last = i === o.path.length - 1;
      const here = joinPath(o.path.slice(0, i)) || '(root)';
      if (typeof seg === 'number') {
        if (!Array.isArray(node)) throw new ConfigError([{ path: here, expected: '', found: '', message: `--set ${o.text}: ${here} is not a list, cannot index it with [${seg}]` }]);
        if (seg > node.length) throw new ConfigError([{ path: here, expected: '', found: '', message: `--set ${o.text}: ${here} has ${node.length} item(s); index ${seg} is out of range` }]);
        if (last) node[seg] = o.value;
        else {
          if (node[seg] === undefined || node[seg] === null) node[seg] = typeof o.path[i + 1] === 'number' ? [] : {};
          node = node[seg];
        }
      } else {
        if (!isPlainObject(node)) throw new ConfigError([{ path: here, expected: '', found: '', message: `--set ${o.text}: ${here} is not an object, cannot set '${seg}' in it` }]);
        if (last) node[seg] = o.value;
        else {
          if (node[seg] === undefined || node[seg] === null) node[seg] = typeof o.path[i + 1] === 'number' ? [] : {};
          node = node[seg];
        }
      }
    });
  }
  return root;
}

export interface LoadConfigOptions {
  /** `--set` overrides (or overrides a flag made, named by their text), applied in order after the file is read. */
  set?: readonly (string | SetOverride)[];
}

/** Reads, overrides and validates a config file. */
export function loadConfig(path: string, options: LoadConfigOptions = {}): ParsedConfig {
  if (!existsSync(path)) throw new ConfigError([{ path: '', expected: '', found: '', message: `config file ${path} does not exist` }]);
  const raw = parseConfigText(readConfigFile(path), path);
  const overrides = (options.set ?? []).map((o) => (typeof o === 'string' ? parseSetOverride(o) : o));
  const merged = applySetOverrides(raw, overrides);
  try {
    const parsed = parseConfig(merged, { source: path });
    // What is said about the run later (the memory check's refusal, plan's header) names the
    // overrides too (describeConfigSource): the file alone is not what was asked for.
    const named = overrides.filter((o) => o.text !== '');
    if (named.length > 0) parsed.overrides = named.map(overrideText);
    return parsed;
  } catch (error) {
    if (error instanceof ConfigError && overrides.length > 0) throw blameOverrides(error, overrides, path);
    throw error;
  }
}

/** An override as the user wrote it: a flag's own text, or `--set a.b=c`. */
function overrideText(o: SetOverride): string {
  return o.text.startsWith('--') ? o.text : `--set ${o.text}`;
}

/** True when one of the two config paths is the other or lies inside it. */
function related(a: string, b: string): boolean {
  const inside = (x: string, y: string) => x === y || x.startsWith(`${y}.`) || x.startsWith(`${y}[`);
  return a !== '' && b !== '' && (inside(a, b) || inside(b, a));
}

/**
 * A problem at (or under, or above) a path an override set is the override's, not the file's:
 * its message names the `--set` that caused it, and when every problem is one, the error is
 * headed by the overrides instead of the file.
 */
function blameOverrides(error: ConfigError, overrides: readonly SetOverride[], path: string): ConfigError {
  let blamed = 0;
  const issues: ConfigIssue[] = error.issues.map((issue) => {
    const culprit = [...overrides].reverse().find((o) => o.text !== '' && [issue.path, ...(issue.related ?? [])].some((p) => related(p, joinPath(o.path))));
    if (!culprit) return issue;
    blamed++;
    const hint = `set by ${overrideText(culprit)}`;
    return issue.message !== undefined ? { ...issue, message: `${issue.message} (${hint})` } : { ...issue, hint: issue.hint ? `${issue.hint}; ${hint}` : hint };
  });
  return new ConfigError(issues, blamed === issues.length ? `${path} with --set` : path);
}

/** Validates a config given as an object (code-first use), with optional overrides. */
export function defineConfig(raw: unknown, options: LoadConfigOptions = {}): ParsedConfig {
  return parseConfig(options.set?.length ? applySetOverrides(raw, options.set) : raw);
}

/** The peak learning rate a resolved schedule spec holds (a warm-up's is its `after`'s). */
function scheduleLr(spec: unknown): number | undefined {
  if (!isPlainObject(spec)) return undefined;
  if (spec['kind'] === 'warmup' && isPlainObject(spec['after'])) return scheduleLr(spec['after']);
  return typeof spec['lr'] === 'number' ? spec['lr'] : undefined;
}

/**
 * The validated config as `config.yaml` holds it: defaults filled in, and loading it again gives
 * the same config (and hash). Two things parsing changes are undone so that it does: the peak
 * learning rate moves into `optimizer.lr_schedule`, but a phase's `lr_schedule` override without
 * an `lr` takes the base `optimizer.lr`, so `lr` is written too; and model.progressive's defaulted
 * direction / growth are left out under a growing `training.mode`, which sets them itself and
 * refuses them when written.
 */
function reloadableConfig(parsed: ParsedConfig): Record<string, unknown> {
  const config = JSON.parse(JSON.stringify(parsed.config)) as Record<string, unknown>;
  const optimizer = config['optimizer'];
  if (isPlainObject(optimizer) && optimizer['lr'] === undefined) {
    const lr = scheduleLr(optimizer['lr_schedule']);
    if (lr !== undefined) config['optimizer'] = { lr, ...optimizer };
  }
  const training = config['training'];
  const model = config['model'];
  if (parsed.mode && parsed.mode.kind !== 'fused' && isPlainObject(training) && training['mode'] !== undefined && isPlainObject(model) && isPlainObject(model['progressive'])) {
    for (const key of MODE_PROGRESSIVE_KEYS) delete model['progressive'][key];
  }
  return config;
}

/** File name of a phase's resolved config inside `<run_dir>/phases/`. */
export function phaseConfigFileName(index: number, name: string): string {
  return `${String(index).padStart(2, '0')}-${name.replace(/[^A-Za-z0-9._-]+/g, '_')}.yaml`;
}

/**
 * Writes `config.yaml` (the validated config, defaults filled in) and `phases/NN-name.yaml` (each
 * phase's resolved data, model and optimizer planes) into the run folder, atomically.
 */
export function writeResolvedConfigs(runDir: string, parsed: ParsedConfig): void {
  mkdirSync(join(runDir, 'phases'), { recursive: true });
  const header = `# Written by stackwise; config hash ${parsed.hash}\n`;
  writeFileAtomic(join(runDir, 'config.yaml'), header + YAML.stringify(reloadableConfig(parsed)));
  for (const phase of parsed.phases) {
    const body = YAML.stringify(JSON.parse(JSON.stringify(phase)));
    writeFileAtomic(join(runDir, 'phases', phaseConfigFileName(phase.index, phase.name)), `# phase ${phase.index} '${phase.name}' [${phase.start_t}, ${phase.end_t})\n${body}`);
  }
}
