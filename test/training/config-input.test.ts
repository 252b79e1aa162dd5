// Config files and overrides that are not configs: refused with the file (or the --set) named and
// what was found, never a stack overflow, a polluted prototype or an override blamed on the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig, parseConfig } from '../../src/training/index.js';

const GOOD = [
  'model: { preset: llama, d_model: 16, n_heads: 2, n_stacks: 2, blocks_per_stack: 1 }',
  'data: { corpus: { kind: synthetic, vocab_size: 64, tokens: 2000 }, seq_len: 8, batch_size: 4 }',
  'training: { total_steps: 10 }',
].join('\n');

function withFile(name: string, content: string | Uint8Array, check: (path: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'sw-cfg-input-'));
  try {
    const path = join(dir, name);
    writeFileSync(path, content);
    check(path);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function refused(path: string, pattern: RegExp, set: string[] = ['training.progress=off']): void {
  assert.throws(() => loadConfig(path, { set }), (e: unknown) => {
    assert.ok(e instanceof ConfigError, `a ConfigError, got ${String(e)}`);
    assert.match(e.message, pattern);
    return true;
  });
}

test('a config file that is not a mapping is named as such (not blamed on an override the CLI adds)', () => {
  withFile('list.yaml', '- a\n- b\n', (p) => refused(p, /list\.yaml: .*expected a mapping of config keys at the top .*found a list of 2 item/));
  withFile('scalar.yaml', 'hello', (p) => refused(p, /scalar\.yaml: .*found the text "hello"/));
  withFile('number.json', '42', (p) => refused(p, /number\.json: .*found the number 42/));
});

test('binary, NUL, UTF-16 and invalid UTF-8 files are refused as what they are', () => {
  withFile('nul.yaml', 'm\0\0odel: 1', (p) => refused(p, /nul\.yaml: .*binary \(a NUL byte at offset 1\)/));
  withFile('u16.yaml', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(GOOD, 'utf16le')]), (p) => refused(p, /u16\.yaml: .*UTF-16 text; save it as UTF-8/));
  withFile('latin1.yaml', Buffer.from([0x61, 0x3a, 0x20, 0xe9, 0xe9, 0x0a]), (p) => refused(p, /latin1\.yaml: .*not UTF-8 text/));
  // A UTF-8 byte-order mark is fine.
  withFile('bom.yaml', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(GOOD)]), (p) => assert.equal(loadConfig(p).config.training.total_steps, 10));
});

test('a 10,000-deep document is refused by depth, never "Maximum call stack size exceeded"', () => {
  let yaml = 'x';
  for (let i = 0; i < 10_000; i++) yaml = `{a: ${yaml}}`;
  withFile('deep.yaml', `model: ${yaml}\n`, (p) => refused(p, /deep\.yaml: .*nested too deeply/));
  withFile('deep.json', '{"a":'.repeat(10_000) + '1' + '}'.repeat(10_000), (p) => refused(p, /deep\.json: .*nested too deeply to read/));
  withFile('deep-list.yaml', `model: ${'['.repeat(5000)}${']'.repeat(5000)}\n`, (p) => {
    assert.throws(() => loadConfig(p), (e: unknown) => e instanceof ConfigError && !/call stack/.test(e.message));
  });
  // In code, too.
  let obj: Record<string, unknown> = {};
  const root = obj;
  for (let i = 0; i < 10_000; i++) obj = (obj['a'] = {}) as Record<string, unknown>;
  assert.throws(() => parseConfig({ model: root, training: { total_steps: 1 } }), /nested more than 32 levels/);
});

test('__proto__, constructor and prototype keys are refused in files, in code and in --set; Object.prototype stays clean', () => {
  withFile('good.yaml', GOOD, (p) => {
    for (const bad of ['__proto__.x=1', 'model.__proto__.polluted=1', 'constructor.prototype.y=2', 'model.prototype=3']) {
      refused(p, /is not a config key \(the names __proto__, constructor, prototype are reserved\)/, [bad]);
    }
  });
  withFile('proto.yaml', `${GOOD}\noptimizer: { __proto__: { lr: 1 } }\n`, (p) => refused(p, /proto\.yaml: .*optimizer\.__proto__: '__proto__' is not a config key/));
  withFile('proto.json', '{"__proto__": {"polluted": 1}, "training": {"total_steps": 1}}', (p) => refused(p, /proto\.json: .*__proto__/));
  assert.throws(() => parseConfig(JSON.parse('{"training": {"total_steps": 1, "constructor": 1}}')), /training\.constructor: 'constructor' is not a config key/);
  assert.equal(({} as Record<string, unknown>)['x'], undefined);
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
});

test('an error in a --set value blames the override, not the file', () => {
  withFile('good.yaml', GOOD, (p) => {
    refused(p, /good\.yaml with --set: invalid config: model\.d_model: expected a number, found "abc" \(set by --set model\.d_model=abc\)/, ['model.d_model=abc']);
    refused(p, /model\.d_modl: .*did you mean 'd_model'\?; set by --set model\.d_modl=3/, ['model.d_modl=3']);
    refused(p, /good\.yaml with --set: invalid config: optimizer\.lr: expected a number, found "abc" \(set by --set optimizer\.lr=abc\)/, ['optimizer.lr=abc']);
    refused(p, /good\.yaml with --set: invalid config: model\.n_stacks: expected a number ≥ 1, found -1 \(set by --set model\.n_stacks=-1\)/, ['model.n_stacks=-1']);
    // Sizes that do not fit together: the override of either size is named, before anything is built.
    refused(p, /good\.yaml with --set: invalid config: model\.n_heads: expected a divisor of model\.d_model = 16 .*found 5 \(set by --set model\.n_heads=5\)/, ['model.n_heads=5']);
    refused(p, /good\.yaml with --set: invalid config: model\.n_heads: expected a divisor of model\.d_model = 15 .*found 2 \(set by --set model\.d_model=15\)/, ['model.d_model=15']);
    refused(p, /good\.yaml with --set: invalid config: model\.n_kv_heads: expected a divisor of model\.n_heads = 2 .*found 3 \(set by --set model\.n_kv_heads=3\)/, ['model.n_kv_heads=3']);
    // A problem in the file itself still names the file alone.
    withFile('bad.yaml', GOOD.replace('d_model: 16', 'd_model: -1'), (q) => {
      refused(q, /bad\.yaml: invalid config: model\.d_model: expected a number ≥ 1, found -1/, ['optimizer.lr=0.1']);
      assert.throws(() => loadConfig(q, { set: ['optimizer.lr=0.1'] }), (e: unknown) => !/with --set|set by/.test((e as Error).message));
    });
  });
});
