// Hugging Face tokenizers both ways, against golden ids made by the Python `tokenizers` library
// (test/fixtures/hf-tokenizer/generate.py): our exports give the library our ids, and our import
// of a tokenizer.json gives the library's ids.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Gpt2Tokenizer,
  HfBpeTokenizer,
  loadHfTokenizer,
  loadTokenizer,
  saveTokenizer,
  tokenizerFingerprint,
  trainBpe,
  type Tokenizer,
} from '../../../src/data/index.js';
import { loadHFTokenizer, saveHFTokenizer } from '../../../src/io/hf/index.js';
import { repoRoot } from '../support.js';

const FIXTURES = join(repoRoot(), 'test', 'fixtures', 'hf-tokenizer');
interface Golden {
  texts: string[];
  hf_trained: { ids: number[][]; decoded: string[] };
  ours_bpe: { tokenizer_sha256: string; ids: number[][] };
  ours_gpt2: { tokenizer_sha256: string; ids: number[][] };
}
const golden = JSON.parse(readFileSync(join(FIXTURES, 'golden.json'), 'utf8')) as Golden;
const corpusLines = readFileSync(join(FIXTURES, 'corpus.txt'), 'utf8').split('\n');
/** As export-ours.mjs trains it. */
const ourBpe = trainBpe(corpusLines, { vocabSize: 400 });

function exported(tokenizer: Tokenizer): string {
  const dir = mkdtempSync(join(tmpdir(), 'sw-hf-tok-'));
  const files = saveHFTokenizer(tokenizer, dir, { modelMaxLength: 1024 });
  assert.deepEqual(files.sort(), ['special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json']);
  return dir;
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function assertEncodes(tokenizer: Tokenizer, expected: number[][], what: string): void {
  golden.texts.forEach((text, i) => {
    assert.deepEqual(Array.from(tokenizer.encode(text, { allowSpecial: true })), expected[i], `${what}: ${JSON.stringify(text)}`);
  });
}

for (const [name, tokenizer, entry] of [
  ['our byte-level BPE', ourBpe, golden.ours_bpe],
  ['GPT-2', new Gpt2Tokenizer(), golden.ours_gpt2],
] as const) {
  test(`export of ${name}: the tokenizers library gives our ids (golden), and our import of the export does too`, () => {
    const dir = exported(tokenizer);
    // The file the golden ids were made from, byte for byte.
    assert.equal(sha256(join(dir, 'tokenizer.json')), entry.tokenizer_sha256);
    assertEncodes(tokenizer, entry.ids, `${name} (ours)`);
    const back = loadHfTokenizer(dir);
    assertEncodes(back, entry.ids, `${name} (re-imported)`);
    assert.equal(back.vocabSize, tokenizer.vocabSize);
    assert.deepEqual({ ...back.special }, { ...tokenizer.special });
    for (const ids of entry.ids) assert.equal(back.decode(ids), tokenizer.decode(ids));
    const config = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')) as Record<string, unknown>;
    assert.equal(config['tokenizer_class'], 'PreTrainedTokenizerFast');
    assert.equal(config['clean_up_tokenization_spaces'], false);
    assert.equal(config['model_max_length'], 1024);
  });
}

test('import of a tokenizer.json trained by the tokenizers library: its ids (golden) and its decoding', () => {
  const tokenizer = loadTokenizer(join(FIXTURES, 'hf-trained.tokenizer.json'));
  assert.ok(tokenizer instanceof HfBpeTokenizer);
  assertEncodes(tokenizer, golden.hf_trained.ids, 'hf-trained');
  golden.hf_trained.ids.forEach((ids, i) => assert.equal(tokenizer.decode(ids), golden.hf_trained.decoded[i]));
  // No tokenizer_config.json: the roles come from the well-known literals, pad borrows eos.
  assert.equal(tokenizer.special.EOS, 0);
  assert.equal(tokenizer.special.PAD, 1);
  assert.equal(tokenizer.special.BOS, 0); // <|endoftext|> is GPT-2's BOS too
  assert.deepEqual(tokenizer.borrowedRoles, ['MASK', 'CLS', 'SEP']);
  // Without allowSpecial a special literal is text, as with our other tokenizers.
  assert.ok(!Array.from(tokenizer.encode('a<|endoftext|>b')).includes(0));
});

test('an imported tokenizer saves in our format and loads back identical', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sw-hf-tok-'));
  const tokenizer = loadTokenizer(join(FIXTURES, 'hf-trained.tokenizer.json'));
  saveTokenizer(tokenizer, join(dir, 'saved.json'));
  const back = loadTokenizer(join(dir, 'saved.json'));
  assert.equal(tokenizerFingerprint(back), tokenizerFingerprint(tokenizer));
  assertEncodes(back, golden.hf_trained.ids, 'saved and reloaded');
  // Re-exporting an imported tokenizer writes its tokenizer.json back.
  const out = exported(tokenizer);
  assert.deepEqual(JSON.parse(readFileSync(join(out, 'tokenizer.json'), 'utf8')), JSON.parse(readFileSync(join(FIXTURES, 'hf-trained.tokenizer.json'), 'utf8')));
});

test('tokenizer_config.json names the special roles; a folder without tokenizer.json has no tokenizer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sw-hf-tok-'));
  assert.equal(loadHFTokenizer(dir), null);
  copyFileSync(join(FIXTURES, 'hf-trained.tokenizer.json'), join(dir, 'tokenizer.json'));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ bos_token: { content: '<|endoftext|>' }, pad_token: '<pad>', mask_token: '<pad>' }));
  const tokenizer = loadHFTokenizer(dir)!;
  assert.equal(tokenizer.special.BOS, 0);
  assert.equal(tokenizer.special.MASK, 1);
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ eos_token: '</s>' }));
  assert.throws(() => loadHFTokenizer(dir), /tokenizer_config.json "eos_token" is "<\/s>", which is not one of the added tokens/);
});

test('bad tokenizer.json files are refused with the field named', () => {
  const base = JSON.parse(readFileSync(join(FIXTURES, 'hf-trained.tokenizer.json'), 'utf8')) as Record<string, any>;
  const variant = (edit: (j: Record<string, any>) => void): Record<string, any> => {
    const j = structuredClone(base);
    edit(j);
    return j;
  };
  const cases: [Record<string, any>, RegExp][] = [
    [variant((j) => { j.model.type = 'WordPiece'; }), /field "model.type" is "WordPiece"; only byte-level "BPE"/],
    [variant((j) => { j.normalizer = { type: 'NFC' }; }), /field "normalizer" is \{"type":"NFC"\}/],
    [variant((j) => { j.model.merges[3] = 'zz qq'; }), /field "model.merges\[3\]" \("zz qq"\) uses "zz", which is not in model.vocab/],
    [variant((j) => { delete j.model.vocab['Ā']; }), /has no token for byte 0x00/],
    [variant((j) => { j.pre_tokenizer = { type: 'Whitespace' }; }), /field "pre_tokenizer" is \{"type":"Whitespace"\}; expected ByteLevel or Sequence\[Split, ByteLevel\]/],
    [variant((j) => { j.decoder = null; }), /field "decoder" is null; expected \{"type": "ByteLevel"\}/],
    [variant((j) => { j.added_tokens = []; }), /has no end-of-text token/],
  ];
  for (const [json, message] of cases) assert.throws(() => new HfBpeTokenizer(json, {}, 'x/tokenizer.json'), message);
});

test('Sequence[Split, ByteLevel] pre-tokenizers (LLaMA 3 style) and ignore_merges', () => {
  const base = JSON.parse(readFileSync(join(FIXTURES, 'hf-trained.tokenizer.json'), 'utf8')) as Record<string, any>;
  const json = structuredClone(base);
  json.pre_tokenizer = {
    type: 'Sequence',
    pretokenizers: [
      { type: 'Split', pattern: { Regex: "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+" }, behavior: 'Isolated', invert: false },
      { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
    ],
  };
  // The same regex as ByteLevel's own: the same ids.
  assertEncodes(new HfBpeTokenizer(json), golden.hf_trained.ids, 'Sequence[Split, ByteLevel]');
  // ignore_merges: a word that is a vocabulary entry is that entry, whatever the merges say.
  const ignoring = structuredClone(base);
  ignoring.model.ignore_merges = true;
  const tok = new HfBpeTokenizer(ignoring);
  const [word, id] = Object.entries(base.model.vocab as Record<string, number>).find(([w]) => w.length > 3 && w.startsWith('Ġ'))!;
  assert.deepEqual(Array.from(tok.encode(' ' + word.slice(1))), [id]);
});
