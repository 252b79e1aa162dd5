// A seeded, time-bounded fuzzer over config files and --set overrides. Each case mutates a valid
// config (the shipped default, every recipe, a small synthetic one) — a leaf replaced by a hostile
// value, a key removed, an unknown or reserved key added, the text truncated or given bad bytes,
// the document nested deep or turned into a list, an override with a bad path or value — and
// checks that the loader either accepts it or refuses it with a ConfigError naming a path or the
// file: never another exception, a stack overflow, a raw zod dump or a polluted Object.prototype.
// Mutations whose verdict is known (unknown or reserved key, not a mapping, binary, too deep)
// must be refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { ConfigError, loadConfig } from '../../src/training/index.js';
import { repoRoot } from '../io/support.js';
import { fuzzRng } from '../fuzz-rng.js';


const SYNTHETIC = [
  'model: { preset: llama, d_model: 16, n_heads: 2, n_stacks: 2, blocks_per_stack: 1 }',
  'data: { corpus: { kind: synthetic, vocab_size: 64, tokens: 2000 }, seq_len: 8, batch_size: 4 }',
  'training: { total_steps: 10 }',
  'schedule:',
  '  - { name: a, start_t: 0, end_t: 0.5, overrides: { model: { n_stacks: 1 } } }',
  '  - { name: b, start_t: 0.5, end_t: 1 }',
].join('\n');

const HOSTILE: unknown[] = [
  -1, 0, 0.5, 1e308, -1e308, 2 ** 53 + 2, '', 'x'.repeat(5000), 'é日本\u0000', null, true, [], {}, [1, [2, [3]]],
  { nested: { deeper: true } }, '.nan', '.inf', '-.inf', '1e9', 'NaN', '[1, 2', '{a: ', '__proto__', 'constructor',
];

/** Paths to every leaf and object of a config tree. */
function paths(value: unknown, prefix: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  if (value !== null && typeof value === 'object') {
    out.push(prefix);
    for (const [k, v] of Array.isArray(value) ? value.map((v, i) => [i, v] as const) : Object.entries(value)) paths(v, [...prefix, k], out);
  } else {
    out.push(prefix);
  }
  return out;
}

function setAt(root: unknown, path: (string | number)[], value: unknown): unknown {
  if (path.length === 0) return value;
  const copy = structuredClone(root) as Record<string | number, unknown>;
  let node = copy;
  for (const seg of path.slice(0, -1)) node = node[seg] as Record<string | number, unknown>;
  node[path.at(-1)!] = value;
  return copy;
}

function deleteAt(root: unknown, path: (string | number)[]): unknown {
  if (path.length === 0) return root;
  const copy = structuredClone(root) as Record<string | number, unknown>;
  let node = copy;
  for (const seg of path.slice(0, -1)) node = node[seg] as Record<string | number, unknown>;
  if (Array.isArray(node)) node.splice(Number(path.at(-1)), 1);
  else delete node[path.at(-1)!];
  return copy;
}

const pathText = (path: (string | number)[]) => path.map((s, i) => (typeof s === 'number' ? `[${s}]` : `${i === 0 ? '' : '.'}${s}`)).join('');

interface Case { name: string; text: string | Uint8Array; set: string[]; mustRefuse: boolean }

function mutate(base: unknown, r: (n: number) => number): Case {
  const all = paths(base);
  const objects = all.filter((p) => { let v = base as never; for (const s of p) v = (v as Record<string | number, never>)[s]; return v !== null && typeof v === 'object' && !Array.isArray(v); });
  const yaml = (v: unknown) => YAML.stringify(v);
  switch (r(10)) {
    case 0: { const p = all[r(all.length)]!; return { name: `leaf ${pathText(p)} replaced`, text: yaml(setAt(base, p, HOSTILE[r(HOSTILE.length)])), set: [], mustRefuse: p.length === 0 } ; }
    case 1: { const p = all[r(all.length)]!; return { name: `${pathText(p)} removed`, text: yaml(deleteAt(base, p)), set: [], mustRefuse: false }; }
    case 2: { const p = objects[r(objects.length)]!; const key = ['bogus_key', 'd_modle', 'lr_sched'][r(3)]!; return { name: `unknown key under ${pathText(p) || '(root)'}`, text: yaml(setAt(base, [...p, key], 1)), set: [], mustRefuse: true }; }
    case 3: { const p = objects[r(objects.length)]!; const key = ['__proto__', 'constructor', 'prototype'][r(3)]!; return { name: `reserved key under ${pathText(p) || '(root)'}`, text: yaml(base).replace(/\n$/, '') + (p.length === 0 ? `\n${key}: { polluted: 1 }\n` : ''), set: p.length === 0 ? [] : [`${pathText(p)}.${key}.polluted=1`], mustRefuse: true }; }
    case 4: { const t = yaml(base); return { name: 'text truncated', text: t.slice(0, r(t.length)), set: [], mustRefuse: false }; }
    case 5: { const b = Buffer.from(yaml(base)); b[r(b.length)] = r(256); return { name: 'a byte replaced', text: b, set: [], mustRefuse: false }; }
    case 6: { const depth = 40 + r(20_000); return { name: `nested ${depth} deep`, text: `model: ${'{a: '.repeat(depth)}1${'}'.repeat(depth)}\n`, set: [], mustRefuse: true }; }
    case 7: { const root = [['- a\n- b\n', 'a list'], ['just text', 'a scalar'], ['42', 'a number']][r(3)]!; return { name: `root is ${root[1]}`, text: root[0], set: [], mustRefuse: true }; }
    case 8: { const enc = r(2) === 0 ? Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(yaml(base), 'utf16le')]) : Buffer.from(`${yaml(base)}\u0000`); return { name: 'UTF-16 or NUL bytes', text: enc, set: [], mustRefuse: true }; }
    default: {
      const p = all.filter((x) => x.length > 0)[r(all.length - 1)] ?? ['training'];
      const value = ['abc', '-3', '1e400', '[1, {', '{}', '', '!!binary AAAA', '&a [*a]'][r(8)]!;
      return { name: `--set ${pathText(p)}=${value}`, text: yaml(base), set: [`${pathText(p)}=${value}`], mustRefuse: false };
    }
  }
}

test('fuzz: mutated configs and overrides are accepted or refused with a ConfigError naming a path (seeded, bounded)', (t) => {
  const root = repoRoot();
  const bases = [SYNTHETIC, readFileSync(join(root, 'configs', 'default.yaml'), 'utf8'),
    ...readdirSync(join(root, 'recipes')).filter((f) => f.endsWith('.yaml')).map((f) => readFileSync(join(root, 'recipes', f), 'utf8'))]
    .map((text) => YAML.parse(text) as unknown);
  const dir = mkdtempSync(join(tmpdir(), 'sw-cfg-fuzz-'));
  const r = fuzzRng(0x5eed12);
  const deadline = Date.now() + 8000;
  let cases = 0;
  let refused = 0;
  try {
    while (cases < 600 && Date.now() < deadline) {
      const c = mutate(bases[r(bases.length)], r);
      const file = join(dir, `case-${cases}.yaml`);
      writeFileSync(file, c.text);
      const what = `case ${cases} (${c.name}${c.set.length ? `; --set ${c.set.join(' ')}` : ''})`;
      const started = Date.now();
      try {
        loadConfig(file, { set: c.set });
        assert.ok(!c.mustRefuse, `${what}: must be refused`);
      } catch (e) {
        if (e instanceof assert.AssertionError) throw e;
        assert.ok(e instanceof ConfigError, `${what}: expected a ConfigError, got ${(e as Error)?.name}: ${String((e as Error)?.message).slice(0, 300)}`);
        assert.ok(e.issues.length > 0, what);
        assert.doesNotMatch(e.message, /Maximum call stack|\bat .*\.js:\d+|"code":\s*"|\[object Object\]|undefined is not|Cannot read prop/, `${what}: internal text in ${e.message.slice(0, 300)}`);
        assert.ok(e.message.startsWith(file) || e.message.startsWith('invalid config'), `${what}: the message names the file: ${e.message.slice(0, 200)}`);
        refused++;
        if (process.env.FUZZ_DEBUG) console.error(what, "=>", e.message.slice(0, 160));
      }
      if (process.env.FUZZ_DEBUG) console.error(what, Date.now() - started, 'ms');
      rmSync(file, { force: true });
      cases++;
      assert.equal(({} as Record<string, unknown>)['polluted'], undefined, `${what}: Object.prototype polluted`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  t.diagnostic(`${cases} mutated configs, ${refused} refused, ${cases - refused} accepted`);
  assert.ok(cases >= 40, `only ${cases} cases ran before the time bound`);
});
