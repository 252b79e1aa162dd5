import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Gpt2Tokenizer, GPT2_END_OF_TEXT_ID } from '../../src/data/index.js';

const gpt2 = new Gpt2Tokenizer();

test('GPT-2 ids match the reference vocabulary', () => {
  assert.deepEqual(Array.from(gpt2.encode('Hello world')), [15496, 995]);
  assert.deepEqual(Array.from(gpt2.encode(' the')), [262]);
  assert.equal(gpt2.decode([15496, 995]), 'Hello world');
  assert.equal(gpt2.vocabSize, 50261);
});

test('special tokens: BOS = EOS = <|endoftext|>, the rest appended', () => {
  const s = gpt2.special;
  assert.equal(s.EOS, GPT2_END_OF_TEXT_ID);
  assert.equal(s.BOS, GPT2_END_OF_TEXT_ID);
  assert.deepEqual([s.PAD, s.MASK, s.CLS, s.SEP], [50257, 50258, 50259, 50260]);
  const text = 'a [MASK] b <|endoftext|> c';
  const plain = gpt2.encode(text);
  for (const id of Object.values(s)) assert.ok(!plain.includes(id), `plain text produced special id ${id}`);
  assert.equal(gpt2.decode(plain), text);
  const allowed = gpt2.encode(text, { allowSpecial: true });
  assert.ok(allowed.includes(s.MASK) && allowed.includes(GPT2_END_OF_TEXT_ID));
  assert.equal(gpt2.decode(allowed), text);
  assert.equal(gpt2.decode(allowed, { skipSpecial: true }), 'a  b  c');
});

test('GPT-2 round-trips tricky strings and refuses lone surrogates', () => {
  for (const text of ['', 'emoji 🙂👨‍👩‍👧', '東京 中文 한국어', '\u0000\t\r\n  x  ', '\uFEFFbom', 'it’s “quoted”']) {
    assert.equal(gpt2.decode(gpt2.encode(text)), text);
  }
  assert.throws(() => gpt2.encode('bad \uD83D'), /lone UTF-16 surrogate/);
  // Decoding half of a multi-byte character gives U+FFFD, never state leaking into the next call.
  const ids = gpt2.encode('’');
  assert.ok(ids.length >= 2, 'the right quote spans several byte tokens');
  assert.equal(gpt2.decode(ids.slice(0, 1)), '\uFFFD');
  assert.equal(gpt2.decode(gpt2.encode('ok')), 'ok');
  assert.throws(() => gpt2.decode([gpt2.vocabSize]), /outside/);
});
