// Reading configs from YAML or JSON files, `--set a.b=c` overrides, and writing the resolved
// config of a run (base and every phase) into its run folder.

import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import YAML from 'yaml';
import { writeFileAtomic } from '../../data/atomic-write.js';
import { isPlainObject } from '../../framework/index.js';
import { ConfigError, joinPath, parsePath, type PathSegment } from '../../framework/config/errors.js';
import { parseConfig, type ParsedConfig } from './resolve.js';

/** Parses YAML (a superset of JSON) or JSON text; syntax errors name the line and column. */
export function parseConfigText(text: string, source = '<config>'): unknown {
  if (extname(source).toLowerCase() === '.json') {
    try {
      return JSON.parse(text) as unknown;
    } catch (error) {
      throw new ConfigError([{ path: '', expected: '', found: '', message: `not valid JSON: ${(error as Error).message}` }], source);
    }
  }
  const doc = YAML.parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => ({ path: '', expected: '', found: '', message: `not valid YAML: ${e.message.split('\n')[0]}` })),
      source,
    );
  }
  const value = doc.toJS() as unknown;
  if (value === null || value === undefined) {
    throw new ConfigError([{ path: '', expected: 'a config object', found: 'an empty document' }], source);
  }
  return value;
}

export interface SetOverride {
  path: PathSegment[];
  value: unknown;
  /** The text as given, for messages. */
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
  /** `--set` overrides, applied in order after the file is read. */
  set?: readonly string[];
}

/** Reads, overrides and validates a config file. */
export function loadConfig(path: string, options: LoadConfigOptions = {}): ParsedConfig {
  if (!existsSync(path)) throw new ConfigError([{ path: '', expected: '', found: '', message: `config file ${path} does not exist` }]);
  const raw = parseConfigText(readFileSync(path, 'utf8'), path);
  return parseConfig(applySetOverrides(raw, options.set ?? []), { source: path });
}

/** Validates a config given as an object (code-first use), with optional overrides. */
export function defineConfig(raw: unknown, options: LoadConfigOptions = {}): ParsedConfig {
  return parseConfig(options.set?.length ? applySetOverrides(raw, options.set) : raw);
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
  writeFileAtomic(join(runDir, 'config.yaml'), header + YAML.stringify(JSON.parse(JSON.stringify(parsed.config))));
  for (const phase of parsed.phases) {
    const body = YAML.stringify(JSON.parse(JSON.stringify(phase)));
    writeFileAtomic(join(runDir, 'phases', phaseConfigFileName(phase.index, phase.name)), `# phase ${phase.index} '${phase.name}' [${phase.start_t}, ${phase.end_t})\n${body}`);
  }
}
