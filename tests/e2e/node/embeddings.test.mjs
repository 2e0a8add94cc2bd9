// The official `openai` npm SDK's default `embeddings.create` (base64 on the wire, decoded by the
// SDK) against the real dashbridge binary. The expected vector mirrors `fake_vector` in
// tests/common/fake.rs (and tests/e2e/python/embed_expected.py); every value is exact in float32.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import OpenAI from 'openai';

const BASE_URL = process.env.DASHBRIDGE_E2E_BASE_URL;
if (!BASE_URL) {
  throw new Error('DASHBRIDGE_E2E_BASE_URL is not set: run the suite through tests/e2e/run.sh');
}

function fakeVector(text, dim) {
  const cps = Array.from(text, (c) => c.codePointAt(0));
  const s = cps.reduce((a, b) => a + b, 0);
  const w = cps.reduce((a, cp, i) => a + (i + 1) * cp, 0);
  const out = [cps.length, s % 4096];
  for (let j = 2; j < dim; j++) out.push((((w + 31 * j) % 2049) - 1024) / 1024);
  return out;
}

test('default embeddings.create: base64 on the wire, floats in the SDK, 25 inputs in order', async () => {
  const bodies = [];
  const client = new OpenAI({
    baseURL: BASE_URL,
    apiKey: 'sk-client',
    maxRetries: 0,
    timeout: 30_000,
    fetch: async (url, init) => {
      bodies.push(JSON.parse(init.body));
      return fetch(url, init);
    },
  });
  const texts = Array.from({ length: 25 }, (_, i) => `node passage ${i}: 猿啸哀`);
  const resp = await client.embeddings.create({ model: 'text-embedding-v4', input: texts });
  assert.equal(bodies[0].encoding_format, 'base64');
  assert.equal(resp.model, 'text-embedding-v4');
  assert.deepEqual(
    resp.data.map((d) => d.index),
    texts.map((_, i) => i),
  );
  resp.data.forEach((d, i) => {
    assert.ok(Array.isArray(d.embedding));
    assert.deepEqual(d.embedding, fakeVector(texts[i], 1024));
  });
  const tokens = texts.reduce((a, t) => a + Array.from(t).length, 0);
  assert.equal(resp.usage.prompt_tokens, tokens);
  assert.equal(resp.usage.total_tokens, tokens);
});
