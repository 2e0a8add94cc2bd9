// POST /v1/responses with the official `openai` npm SDK (issue 10).
// Run by tests/e2e/run.sh (DASHBRIDGE_E2E_BASE_URL, DASHBRIDGE_E2E_PYTHON) with `node --test`.
//
// The client's `fetch` tees every response body, so the exact bytes the SDK parsed are checked
// with the suite's one Responses stream checker (tests/e2e/python/responses_check.py, run as a
// CLI with the e2e venv's Python); the events the SDK yielded are checked by it too.
// Skipped, loudly, only while the gateway answers 404 on /v1/responses.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import OpenAI from 'openai';

const BASE_URL = process.env.DASHBRIDGE_E2E_BASE_URL;
const PYTHON = process.env.DASHBRIDGE_E2E_PYTHON;
if (!BASE_URL || !PYTHON) {
  throw new Error('DASHBRIDGE_E2E_BASE_URL / DASHBRIDGE_E2E_PYTHON are not set: run through tests/e2e/run.sh');
}
const CHECKER = join(dirname(fileURLToPath(import.meta.url)), '..', 'python', 'responses_check.py');

const MODEL = 'qwen-plus';
const STREAM_TEXT = 'I am Qwen, a large language model developed by Alibaba Cloud. How can I help you today?';
const STREAM_RESPONSE_USAGE = [22, 0, 18, 0, 40];
const STREAM_TOOL_CALL = ['call_8f08d2b0fc0c4d8fab7123', 'get_current_weather', '{"location": "Hangzhou"}'];
const REASONING_TEXT = 'Hello! I am Qwen, a large language model by Alibaba Cloud.';
const REASONING_CONTENT = 'Okay, the user asks who I am. I should introduce myself briefly.';
const CALL_TOOL_ID = 'call_fa4e0c1d2b3a49f8a7c6d5e4';
const CALL_TOOL_ANSWER_PREFIX = 'The tool returned: ';
const WEATHER_TOOL = {
  type: 'function',
  name: 'get_current_weather',
  description: 'Get the current weather in a city.',
  parameters: {
    type: 'object',
    properties: { location: { type: 'string', description: 'The city.' } },
    required: ['location'],
  },
  strict: false,
};

// The route probe: skip only on 404.
const probe = await fetch(`${BASE_URL}/responses`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', authorization: 'Bearer sk-client' },
  body: JSON.stringify({ model: MODEL, input: 'scenario:text probe' }),
});
await probe.arrayBuffer();
const SKIP =
  probe.status === 404 ? 'SKIP: POST /v1/responses answers 404 (no Responses route in this build)' : false;
if (SKIP) {
  console.log(`\n*** ${SKIP}: the Node Responses tests are skipped ***\n`);
}

// Every response body the SDK read, as text, in order.
const bodies = [];
async function teeFetch(url, init) {
  const resp = await fetch(url, init);
  if (!resp.body) {
    return resp;
  }
  const [mine, theirs] = resp.body.tee();
  const slot = { contentType: resp.headers.get('content-type') ?? '', text: null };
  bodies.push(slot);
  slot.done = new Response(mine).text().then((t) => {
    slot.text = t;
  });
  return new Response(theirs, { status: resp.status, statusText: resp.statusText, headers: resp.headers });
}

const client = new OpenAI({ baseURL: BASE_URL, apiKey: 'sk-client', maxRetries: 0, timeout: 30_000, fetch: teeFetch });

function check(input, args = []) {
  const r = spawnSync(PYTHON, [CHECKER, ...args], { input, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, `responses_check: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

// Checks every SSE body read since the last call; returns their final responses.
async function checkWire() {
  const taken = bodies.splice(0);
  await Promise.all(taken.map((b) => b.done));
  return taken.filter((b) => b.contentType.startsWith('text/event-stream')).map((b) => check(b.text));
}

const usageOf = (u) => [
  u.input_tokens,
  u.input_tokens_details.cached_tokens,
  u.output_tokens,
  u.output_tokens_details.reasoning_tokens,
  u.total_tokens,
];

test('responses.stream(...).finalResponse(): text', { skip: SKIP }, async () => {
  const stream = client.responses.stream({ model: MODEL, input: 'scenario:text' });
  const deltas = [];
  stream.on('response.output_text.delta', (e) => deltas.push(e.delta));
  const final = await stream.finalResponse();
  assert.equal(deltas.join(''), STREAM_TEXT);
  assert.equal(final.output_text, STREAM_TEXT);
  assert.match(final.id, /^resp_/);
  assert.equal(final.model, MODEL);
  assert.deepEqual(usageOf(final.usage), STREAM_RESPONSE_USAGE);
  const [wire] = await checkWire();
  assert.equal(wire.id, final.id);
});

test('responses.stream(...).finalResponse(): function call', { skip: SKIP }, async () => {
  const stream = client.responses.stream({ model: MODEL, input: 'scenario:tools Hangzhou?', tools: [WEATHER_TOOL] });
  const final = await stream.finalResponse();
  assert.equal(final.output.length, 1);
  const [call] = final.output;
  assert.deepEqual([call.type, call.call_id, call.name, call.arguments], ['function_call', ...STREAM_TOOL_CALL]);
  await checkWire();
});

test('raw for await over create({stream: true}) events', { skip: SKIP }, async () => {
  const events = [];
  for await (const ev of await client.responses.create({ model: MODEL, input: 'scenario:text', stream: true })) {
    events.push(ev);
  }
  const final = check(events.map((e) => JSON.stringify(e)).join('\n'), ['--events']);
  assert.equal(
    events.filter((e) => e.type === 'response.output_text.delta').map((e) => e.delta).join(''),
    STREAM_TEXT,
  );
  assert.equal(events[0].type, 'response.created');
  assert.equal(events.at(-1).type, 'response.completed');
  assert.equal(final.output[0].content[0].text, STREAM_TEXT);
  const [wire] = await checkWire();
  assert.deepEqual(wire, final);
});

test('raw for await: thinking model, reasoning then text', { skip: SKIP }, async () => {
  const events = [];
  const stream = await client.responses.create({
    model: MODEL,
    input: 'scenario:reasoning who are you?',
    reasoning: { effort: 'medium' },
    stream: true,
  });
  for await (const ev of stream) {
    events.push(ev);
  }
  const final = check(events.map((e) => JSON.stringify(e)).join('\n'), ['--events']);
  const joined = (t) => events.filter((e) => e.type === t).map((e) => e.delta).join('');
  assert.equal(joined('response.reasoning_text.delta'), REASONING_CONTENT);
  assert.equal(joined('response.output_text.delta'), REASONING_TEXT);
  assert.deepEqual(
    final.output.map((o) => o.type),
    ['reasoning', 'message'],
  );
  await checkWire();
});

test('function call round trip with function_call_output (stream helper)', { skip: SKIP }, async () => {
  const input = [{ role: 'user', content: 'Weather? scenario:call-tool get_current_weather {"location": "Hangzhou"}' }];
  const r1 = await client.responses.stream({ model: MODEL, input, tools: [WEATHER_TOOL] }).finalResponse();
  const [call] = r1.output;
  assert.deepEqual(
    [call.type, call.call_id, call.name, call.arguments],
    ['function_call', CALL_TOOL_ID, 'get_current_weather', '{"location":"Hangzhou"}'],
  );
  input.push(call, { type: 'function_call_output', call_id: call.call_id, output: 'sunny, 25°C' });
  const r2 = await client.responses.stream({ model: MODEL, input, tools: [WEATHER_TOOL] }).finalResponse();
  assert.equal(r2.output_text, `${CALL_TOOL_ANSWER_PREFIX}sunny, 25°C`);
  assert.equal((await checkWire()).length, 2);
});
