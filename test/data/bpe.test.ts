import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BpeTokenizer,
  FIRST_MERGE_ID,
  forEachWord,
  loadCorpus,
  rngFor,
  trainBpe,
  trainBpeWithStats,
  tokenizerFingerprint,
} from '../../src/data/index.js';
import { SMALL_CORPUS, naiveBpeMerges } from './helpers.js';

const mobyHead = loadCorpus({ kind: 'moby-dick' })
  .slice(0, 12)
  .map((doc) => doc.text);

const TRICKY_STRINGS = [
  '',
  ' ',
  'a',
  '\u0000\u0001\u0007\b\t\n\u000b\f\r\u001b\u007f',
  '   leading and trailing   ',
  '\n\n\n\t\t  \r\n',
  'emoji: 🙂👍🏽👨‍👩‍👧‍👦 🇫🇷 flags',
  'CJK: 東京都は日本の首都です。中文字符测试。한국어 텍스트',
  'combining: e\u0301 a\u0308 \u0915\u094d\u0937',
  '\uFEFFbyte order mark at the start',
  'zero\u200bwidth\u200dspace and \u00a0nbsp \u2028 line sep',
  'math 𝔸𝔹ℂ 𝑥² + 𝑦² = 𝑧²',
  "contractions: it's we'll they're I'd you've I'm don't",
  '[MASK] [PAD] [BOS] [EOS] [CLS] [SEP] <|endoftext|>',
  'x'.repeat(5000),
  ' '.repeat(3000) + 'end',
  '🙂'.repeat(500),
  'ab'.repeat(2000),
];

test('training reaches the requested vocabulary and is deterministic', () => {
  const a = trainBpe(mobyHead, { vocabSize: 600 });
  const b = trainBpe(mobyHead, { vocabSize: 600 });
  assert.equal(a.vocabSize, 600);
  assert.deepEqual(a.toJSON(), b.toJSON());
  assert.equal(tokenizerFingerprint(a), tokenizerFingerprint(b));
  // Document order does not matter: counts are sums and ties break on ids.
  const reversed = trainBpe([...mobyHead].reverse(), { vocabSize: 600 });
  assert.deepEqual(reversed.toJSON(), a.toJSON());
});

test('incremental training matches a full-recount reference trainer', () => {
  const counts = new Map<string, number>();
  for (const text of [...SMALL_CORPUS, ...mobyHead.slice(0, 3)]) {
    forEachWord(text, (word) => counts.set(word, (counts.get(word) ?? 0) + 1));
  }
  const corpus = [...SMALL_CORPUS, ...mobyHead.slice(0, 3)];
  const trained = trainBpe(corpus, { vocabSize: FIRST_MERGE_ID + 300 });
  const expected = naiveBpeMerges(counts, 300, FIRST_MERGE_ID);
  assert.deepEqual(trained.toJSON().merges.flat(), expected);
});

test('repeated-symbol words (aaaa, abab) are merged like the reference', () => {
  const corpus = ['aaaaaaa aaa aaaa ababab abab aaaaa', 'bbbb bb aaaa', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'];
  const counts = new Map<string, number>();
  for (const text of corpus) forEachWord(text, (word) => counts.set(word, (counts.get(word) ?? 0) + 1));
  const trained = trainBpe(corpus, { vocabSize: FIRST_MERGE_ID + 20, minPairCount: 1 });
  const expected = naiveBpeMerges(counts, 20, FIRST_MERGE_ID, 1);
  assert.deepEqual(trained.toJSON().merges.flat(), expected);
});

test('random small-alphabet corpora train exactly like the reference (overlaps, repeats)', () => {
  const rng = rngFor(99);
  for (let trial = 0; trial < 25; trial++) {
    const corpus: string[] = [];
    for (let d = 0; d < 4; d++) {
      let text = '';
      for (let i = 0; i < 60; i++) text += 'aab '[rng.nextInt(4)];
      corpus.push(text);
    }
    const counts = new Map<string, number>();
    for (const text of corpus) forEachWord(text, (word) => counts.set(word, (counts.get(word) ?? 0) + 1));
    const trained = trainBpe(corpus, { vocabSize: FIRST_MERGE_ID + 40, minPairCount: 1 });
    assert.deepEqual(trained.toJSON().merges.flat(), naiveBpeMerges(counts, 40, FIRST_MERGE_ID, 1), `trial ${trial}`);
    for (const text of corpus) assert.equal(trained.decode(trained.encode(text)), text);
  }
});

test('training stops early when no pair reaches minPairCount', () => {
  const { tokenizer, stats } = trainBpeWithStats(['abc abd'], { vocabSize: 1000 });
  assert.equal(stats.merges, 1); // only "ab" occurs twice (" a" is a separate word start)
  assert.equal(tokenizer.vocabSize, FIRST_MERGE_ID + 1);
  assert.throws(() => trainBpe(['x'], { vocabSize: 100 }), /vocabSize must be/);
  assert.throws(() => trainBpe(['x'], { vocabSize: 70000 }), /vocabSize must be/);
});

test('encode -> decode round-trips tricky strings exactly', () => {
  const tokenizer = trainBpe([...SMALL_CORPUS, ...mobyHead], { vocabSize: 800 });
  for (const text of TRICKY_STRINGS) {
    const ids = tokenizer.encode(text);
    assert.ok(ids instanceof Int32Array);
    for (const id of ids) assert.ok(id >= 0 && id < tokenizer.vocabSize);
    assert.equal(tokenizer.decode(ids), text, `round trip of ${JSON.stringify(text.slice(0, 40))}`);
  }
  assert.equal(tokenizer.encode('').length, 0);
  // Compression actually happens on in-domain text.
  const sample = mobyHead[1]!;
  assert.ok(tokenizer.encode(sample).length < Buffer.byteLength(sample) / 2);
});

test('encode -> decode round-trips random byte soup decoded as UTF-8', () => {
  const tokenizer = trainBpe(SMALL_CORPUS, { vocabSize: 400, minPairCount: 1 });
  const rng = rngFor(42);
  const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  for (let trial = 0; trial < 200; trial++) {
    const bytes = new Uint8Array(1 + rng.nextInt(64));
    for (let i = 0; i < bytes.length; i++) {
      // Bias towards ASCII so words form, but include every byte value.
      bytes[i] = rng.nextFloat() < 0.6 ? 32 + rng.nextInt(95) : rng.nextInt(256);
    }
    const text = decoder.decode(bytes); // invalid sequences become U+FFFD: still a valid string
    assert.equal(tokenizer.decode(tokenizer.encode(text)), text);
  }
  // Random code points across all planes (no surrogates).
  for (let trial = 0; trial < 100; trial++) {
    let text = '';
    for (let i = 0; i < 20; i++) {
      let cp = rng.nextInt(0x110000);
      if (cp >= 0xd800 && cp <= 0xdfff) cp = 0x41;
      text += String.fromCodePoint(cp);
    }
    assert.equal(tokenizer.decode(tokenizer.encode(text)), text);
  }
});

test('the heap merge for long words equals the simple merge loop', () => {
  const tokenizer = trainBpe([...SMALL_CORPUS, ...mobyHead], { vocabSize: 700 });
  const rng = rngFor(7);
  const encoder = new TextEncoder();
  const samples = ['aaaaaaaaaaaaaa', 'abababababab', ' the thethe the', '🙂🙂🙂'];
  for (let i = 0; i < 100; i++) {
    const text = mobyHead[i % mobyHead.length]!;
    const start = rng.nextInt(text.length - 40);
    samples.push(text.slice(start, start + 1 + rng.nextInt(40)).replace(/^[\uDC00-\uDFFF]|[\uD800-\uDBFF]$/g, ''));
  }
  for (const sample of samples) {
    const bytes = encoder.encode(sample);
    assert.deepEqual(tokenizer.encodeWordBytes(bytes, true), tokenizer.encodeWordBytes(bytes, false), JSON.stringify(sample));
  }
});

test('special tokens: plain text never produces them unless allowSpecial', () => {
  const tokenizer = trainBpe(SMALL_CORPUS, { vocabSize: 350 });
  const special = tokenizer.special;
  assert.deepEqual(Object.keys(special), ['PAD', 'MASK', 'BOS', 'EOS', 'CLS', 'SEP']);
  assert.equal(new Set(Object.values(special)).size, 6);
  const text = 'fill [MASK] here [SEP] done';
  const plain = tokenizer.encode(text);
  for (const id of Object.values(special)) assert.ok(!plain.includes(id));
  assert.equal(tokenizer.decode(plain), text);
  const allowed = tokenizer.encode(text, { allowSpecial: true });
  assert.ok(allowed.includes(special.MASK) && allowed.includes(special.SEP));
  assert.equal(tokenizer.decode(allowed), text);
  assert.equal(tokenizer.decode(allowed, { skipSpecial: true }), 'fill  here  done');
  assert.equal(tokenizer.decode([special.BOS, 104, 105, special.EOS]), '[BOS]hi[EOS]');
  assert.throws(() => tokenizer.decode([tokenizer.vocabSize]), /outside/);
});

test('lone surrogates are refused with a clear error', () => {
  const tokenizer = trainBpe(SMALL_CORPUS, { vocabSize: 300 });
  assert.throws(() => tokenizer.encode('ok \uD800 bad'), /lone UTF-16 surrogate U\+D800 at index 3/);
  assert.throws(() => tokenizer.encode('\uDC00'), /surrogate/);
  assert.throws(() => trainBpe(['fine', 'bad \uDBFF'], { vocabSize: 300 }), /document 1/);
  assert.equal(tokenizer.decode(tokenizer.encode('pair 😀 ok')), 'pair 😀 ok');
});

test('a tokenizer rebuilt from its merges encodes identically', () => {
  const tokenizer = trainBpe(mobyHead, { vocabSize: 500 });
  const rebuilt = new BpeTokenizer(tokenizer.toJSON().merges.flat());
  const text = mobyHead[3]!;
  assert.deepEqual(rebuilt.encode(text), tokenizer.encode(text));
  assert.throws(() => new BpeTokenizer([300, 1]), /not a byte or an earlier merge/);
  assert.throws(() => new BpeTokenizer([1, 2, 1, 2]), /repeats pair/);
  assert.throws(() => new BpeTokenizer([256, 1]), /not a byte or an earlier merge/);
});
