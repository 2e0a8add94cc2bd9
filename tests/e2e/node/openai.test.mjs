// The official `openai` npm SDK against the real dashbridge binary and the fake DashScope upstream.
// Run by tests/e2e/run.sh (which sets DASHBRIDGE_E2E_BASE_URL) with `node --test`.
// Every test asserts the exact values the fake's canned reply must turn into; they mirror
// tests/e2e/python/e2e_expected.py (same fixtures in tests/fixtures/dashscope/).

import assert from 'node:assert/strict';
import { test } from 'node:test';

import OpenAI from 'openai';

const BASE_URL = process.env.DASHBRIDGE_E2E_BASE_URL;
if (!BASE_URL) {
  throw new Error('DASHBRIDGE_E2E_BASE_URL is not set: run the suite through tests/e2e/run.sh');
}

const MODEL = 'qwen-plus';
const VL_MODEL = 'qwen3-vl-plus';

const TEXT =
  'I am Qwen, a large-scale language model developed by Alibaba Cloud. I can answer ' +
  'questions, write text, reason and write code. How can I help you?';
const TEXT_ID = 'chatcmpl-09dceb20-ae2e-999b-85f9-3c1d3b6ba1a4';
const TEXT_REQUEST_ID = '09dceb20-ae2e-999b-85f9-3c1d3b6ba1a4';

const STREAM_TEXT = 'I am Qwen, a large language model developed by Alibaba Cloud. How can I help you today?';
const STREAM_PIECES = [
  'I am',
  ' Qwen',
  ', a large language',
  ' model developed by',
  ' Alibaba Cloud.',
  ' How can I',
  ' help you today?',
];
const STREAM_ID = 'chatcmpl-d30a9914-ac97-9102-b746-ce0cb35e3fa2';

const TOOL_CALLS = [
  ['call_c2d8a3a24c4d4929b26ae2', 'get_current_weather', '{"location": "Beijing"}'],
  ['call_dc7f2f678f1944da9194cd', 'get_current_weather', '{"location": "Shanghai"}'],
];
const STREAM_TOOL_CALL = ['call_8f08d2b0fc0c4d8fab7123', 'get_current_weather', '{"location": "Hangzhou"}'];
const TOOL_RESULT_TEXT = 'Beijing is sunny today at 25°C, while Shanghai is cloudy at 22°C.';

const REASONING_TEXT = 'Hello! I am Qwen, a large language model by Alibaba Cloud.';
const REASONING_CONTENT = 'Okay, the user asks who I am. I should introduce myself briefly.';

const MIDSTREAM_TEXT = 'Here is the story';
const DROP_TEXT = 'I am Qwen, a large language';
const DROP_MESSAGE_PREFIX = 'DashScope sent an unreadable response: the upstream connection dropped mid-stream';

// scenario -> [SDK class, HTTP status, OpenAI error type, OpenAI error code, message]
const ERRORS = {
  'error-401': [
    OpenAI.AuthenticationError,
    401,
    'invalid_request_error',
    'invalid_api_key',
    'Invalid API-key provided. (DashScope code InvalidApiKey, request_id 649b2bbc-c541-9e16-9845-db7fe4fe5b2d)',
  ],
  'error-429': [
    OpenAI.RateLimitError,
    429,
    'rate_limit_exceeded',
    'rate_limit_exceeded',
    'Requests rate limit exceeded, please try again later. ' +
      '(DashScope code Throttling.RateQuota, request_id 0cbe6006-faec-9854-bf8b-c906d75c3bd8)',
  ],
  'error-400': [
    OpenAI.BadRequestError,
    400,
    'invalid_request_error',
    'content_filter',
    'Input data may contain inappropriate content. ' +
      '(DashScope code DataInspectionFailed, request_id 71689cfc-1f42-9949-86e8-9563b7f832b1)',
  ],
  'model-not-exist': [
    OpenAI.NotFoundError,
    404,
    'invalid_request_error',
    'model_not_found',
    'Model not exist. (DashScope code InvalidParameter, request_id 8c1e2f3a-4b5c-9d6e-a7f8-091a2b3c4d5e)',
  ],
};

const IMAGE_URL = 'https://images.example/dog.jpg';
// A 1x1 white PNG.
const IMAGE_DATA_URL =
  'data:image/png;base64,' +
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4//8/AAX+Av4N70a4AAAAAElFTkSuQmCC';

const WEATHER_TOOL = {
  type: 'function',
  function: {
    name: 'get_current_weather',
    description: 'Get the current weather in a city.',
    parameters: {
      type: 'object',
      properties: { location: { type: 'string', description: 'The city.' } },
      required: ['location'],
    },
  },
};

// maxRetries: 0 — the SDK must surface the gateway's answer as is (the gateway runs with
// DASHBRIDGE_UPSTREAM_RETRIES=0), and a 429 must not be retried behind our back.
const client = new OpenAI({ baseURL: BASE_URL, apiKey: 'sk-client', maxRetries: 0, timeout: 30_000 });

const user = (content) => [{ role: 'user', content }];
const triple = (u) => [u.prompt_tokens, u.completion_tokens, u.total_tokens];
const echoed = (completion) => JSON.parse(completion.choices[0].message.content);

// Iterates a stream, collecting content deltas, and returns [pieces, thrown error or null].
async function drain(stream) {
  const pieces = [];
  try {
    for await (const chunk of stream) {
      const c = chunk.choices?.[0]?.delta?.content;
      if (c) pieces.push(c);
    }
  } catch (err) {
    return [pieces, err];
  }
  return [pieces, null];
}

// 1. Non-streaming chat completion.
test('create non-stream: exact content, id, model, usage', async () => {
  const c = await client.chat.completions.create({ model: MODEL, messages: user('scenario:text who are you?') });
  assert.equal(c.id, TEXT_ID);
  assert.equal(c.object, 'chat.completion');
  assert.equal(c.model, MODEL);
  assert.equal(c.choices.length, 1);
  assert.equal(c.choices[0].finish_reason, 'stop');
  assert.equal(c.choices[0].message.role, 'assistant');
  assert.equal(c.choices[0].message.content, TEXT);
  assert.deepEqual(triple(c.usage), [22, 29, 51]);
});

// 2. stream: true with include_usage.
test('create stream: exact deltas, one stop, usage on the last chunk', async () => {
  const stream = await client.chat.completions.create({
    model: MODEL,
    messages: user('scenario:text who are you?'),
    stream: true,
    stream_options: { include_usage: true },
  });
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  const pieces = chunks.filter((ch) => ch.choices[0]?.delta?.content).map((ch) => ch.choices[0].delta.content);
  assert.deepEqual(pieces, STREAM_PIECES);
  assert.equal(pieces.join(''), STREAM_TEXT);
  const finishes = chunks.filter((ch) => ch.choices[0]?.finish_reason).map((ch) => ch.choices[0].finish_reason);
  assert.deepEqual(finishes, ['stop']);
  assert.deepEqual([...new Set(chunks.map((ch) => ch.id))], [STREAM_ID]);
  assert.deepEqual([...new Set(chunks.map((ch) => ch.model))], [MODEL]);
  const last = chunks.at(-1);
  assert.deepEqual(last.choices, []);
  assert.deepEqual(triple(last.usage), [22, 18, 40]);
  assert.ok(chunks.slice(0, -1).every((ch) => ch.usage == null));
  assert.equal(chunks[0].choices[0].delta.role, 'assistant');
});

// 3. The .stream() helper.
test('chat.completions.stream helper: final completion and content events', async () => {
  const stream = client.chat.completions.stream({ model: MODEL, messages: user('scenario:text who are you?') });
  const deltas = [];
  stream.on('content', (delta) => deltas.push(delta));
  const final = await stream.finalChatCompletion();
  assert.equal(deltas.join(''), STREAM_TEXT);
  assert.equal(final.id, STREAM_ID);
  assert.equal(final.choices[0].message.content, STREAM_TEXT);
  assert.equal(final.choices[0].finish_reason, 'stop');
  assert.equal(await stream.finalContent(), STREAM_TEXT);
});

// 4. Tools.
test('tools non-stream: two calls with exact arguments', async () => {
  const c = await client.chat.completions.create({
    model: MODEL,
    messages: user("What's the weather in Beijing and Shanghai? scenario:tools"),
    tools: [WEATHER_TOOL],
  });
  assert.equal(c.choices[0].finish_reason, 'tool_calls');
  const calls = c.choices[0].message.tool_calls.map((t) => [t.id, t.function.name, t.function.arguments]);
  assert.deepEqual(calls, TOOL_CALLS);
  assert.deepEqual(
    c.choices[0].message.tool_calls.map((t) => JSON.parse(t.function.arguments)),
    [{ location: 'Beijing' }, { location: 'Shanghai' }],
  );
  assert.deepEqual(triple(c.usage), [272, 40, 312]);
});

test('tools stream: finalChatCompletion accumulates the tool call', async () => {
  const stream = client.chat.completions.stream({
    model: MODEL,
    messages: user("What's the weather in Hangzhou? scenario:tools"),
    tools: [WEATHER_TOOL],
  });
  const done = [];
  stream.on('tool_calls.function.arguments.done', (e) => done.push([e.name, e.arguments]));
  const final = await stream.finalChatCompletion();
  assert.equal(final.choices[0].finish_reason, 'tool_calls');
  const calls = final.choices[0].message.tool_calls;
  assert.equal(calls.length, 1);
  assert.deepEqual([calls[0].id, calls[0].function.name, calls[0].function.arguments], STREAM_TOOL_CALL);
  assert.deepEqual(done, [STREAM_TOOL_CALL.slice(1)]);
});

test('tool results follow-up turn returns the answer text', async () => {
  const first = await client.chat.completions.create({
    model: MODEL,
    messages: user("What's the weather in Beijing and Shanghai? scenario:tools"),
    tools: [WEATHER_TOOL],
  });
  const assistant = first.choices[0].message;
  const results = { call_c2d8a3a24c4d4929b26ae2: 'sunny, 25°C', call_dc7f2f678f1944da9194cd: 'cloudy, 22°C' };
  const c = await client.chat.completions.create({
    model: MODEL,
    tools: [WEATHER_TOOL],
    messages: [
      { role: 'user', content: "What's the weather in Beijing and Shanghai? scenario:tool-result" },
      assistant,
      ...assistant.tool_calls.map((t) => ({ role: 'tool', tool_call_id: t.id, content: results[t.id] })),
    ],
  });
  assert.equal(c.choices[0].finish_reason, 'stop');
  assert.equal(c.choices[0].message.content, TOOL_RESULT_TEXT);
});

// 5. Images and extra body fields.
for (const [name, url] of [
  ['url', IMAGE_URL],
  ['base64 data URL', IMAGE_DATA_URL],
]) {
  test(`image by ${name} becomes a native multimodal {image} part`, async () => {
    const c = await client.chat.completions.create({
      model: VL_MODEL,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'scenario:echo describe' },
            { type: 'image_url', image_url: { url } },
          ],
        },
      ],
    });
    assert.equal(c.model, VL_MODEL);
    const native = echoed(c);
    assert.equal(native.model, VL_MODEL);
    assert.deepEqual(native.input.messages, [
      { role: 'user', content: [{ text: 'scenario:echo describe' }, { image: url }] },
    ]);
    assert.deepEqual(native.parameters, { result_format: 'message' });
  });
}

test('extra body fields reach parameters with their JSON types', async () => {
  const c = await client.chat.completions.create({
    model: MODEL,
    messages: user('scenario:echo hi'),
    // The Node SDK sends unknown body fields as they are (its equivalent of Python's extra_body).
    top_k: 5,
    enable_thinking: false,
    repetition_penalty: 1.05,
  });
  const params = echoed(c).parameters;
  assert.deepEqual(params, { enable_thinking: false, repetition_penalty: 1.05, result_format: 'message', top_k: 5 });
  assert.strictEqual(params.enable_thinking, false);
  assert.ok(c.choices[0].message.content.includes('"enable_thinking":false'));
});

// 6. Raw responses and headers.
test('withResponse: x-request-id header is the upstream request_id', async () => {
  const { data, response, request_id } = await client.chat.completions
    .create({ model: MODEL, messages: user('scenario:text who are you?') })
    .withResponse();
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('x-request-id'), TEXT_REQUEST_ID);
  assert.equal(request_id, TEXT_REQUEST_ID);
  assert.equal(response.headers.get('x-dashbridge-warning'), null);
  assert.equal(data.choices[0].message.content, TEXT);
});

test('asResponse: frequency_penalty yields an x-dashbridge-warning header', async () => {
  const response = await client.chat.completions
    .create({ model: MODEL, messages: user('scenario:text who are you?'), frequency_penalty: 0.5 })
    .asResponse();
  assert.equal(response.status, 200);
  const warning = response.headers.get('x-dashbridge-warning');
  assert.ok(warning?.includes('frequency_penalty'), `warning header: ${warning}`);
  assert.equal(warning, 'frequency_penalty dropped (no DashScope equivalent)');
  const body = await response.json();
  assert.equal(body.choices[0].message.content, TEXT);
});

// 7. Errors.
for (const [scenario, [cls, status, type, code, message]] of Object.entries(ERRORS)) {
  test(`${scenario} raises ${cls.name} (${status}, ${code})`, async () => {
    await assert.rejects(
      client.chat.completions.create({ model: MODEL, messages: user(`scenario:${scenario} hi`) }),
      (err) => {
        assert.equal(err.constructor, cls);
        assert.equal(err.status, status);
        assert.equal(err.code, code);
        assert.equal(err.type, type);
        assert.equal(err.param, null);
        assert.deepEqual(err.error, { message, type, param: null, code });
        assert.equal(err.message, `${status} ${message}`);
        return true;
      },
    );
  });
}

test('mid-stream moderation: the choice ends with content_filter, no error', async () => {
  const stream = await client.chat.completions.create({
    model: MODEL,
    messages: user('scenario:midstream-error tell me a story'),
    stream: true,
  });
  const pieces = [];
  const finishes = [];
  for await (const chunk of stream) {
    const c = chunk.choices[0];
    if (!c) continue;
    if (c.delta.content) pieces.push(c.delta.content);
    if (c.finish_reason) finishes.push(c.finish_reason);
  }
  assert.equal(pieces.join(''), MIDSTREAM_TEXT);
  assert.deepEqual(finishes, ['content_filter']);
});

test('dropped upstream stream: the iterator throws instead of ending silently', async () => {
  const stream = await client.chat.completions.create({
    model: MODEL,
    messages: user('scenario:drop who are you?'),
    stream: true,
  });
  const [pieces, err] = await drain(stream);
  assert.equal(pieces.join(''), DROP_TEXT);
  assert.ok(err instanceof OpenAI.APIError, `expected an APIError, got ${err}`);
  assert.ok(err.message.startsWith(DROP_MESSAGE_PREFIX), err.message);
  assert.equal(err.code, 'bad_upstream_response');
  assert.equal(err.type, 'server_error');
});

test('stream helper: mid-stream moderation finishes with content_filter', async () => {
  const stream = client.chat.completions.stream({
    model: MODEL,
    messages: user('scenario:midstream-error tell me a story'),
  });
  const deltas = [];
  stream.on('content', (delta) => deltas.push(delta));
  stream.on('error', () => {});
  // The helper either hands back the completion or raises its own content-filter error
  // (it does the latter when it parses the completion); both say content_filter.
  let final;
  try {
    final = await stream.finalChatCompletion();
  } catch (err) {
    assert.ok(err instanceof OpenAI.ContentFilterFinishReasonError, `${err}`);
  }
  if (final) assert.equal(final.choices[0].finish_reason, 'content_filter');
  assert.equal(deltas.join(''), MIDSTREAM_TEXT);
});

// 8. Models.
test('models.list returns OpenAI-shaped models', async () => {
  const models = [];
  for await (const m of client.models.list()) models.push(m);
  assert.ok(models.length > 0, 'the model list is empty');
  const ids = models.map((m) => m.id);
  assert.equal(new Set(ids).size, ids.length);
  assert.ok(ids.includes(MODEL));
  assert.ok(ids.includes(VL_MODEL));
  for (const m of models) {
    assert.equal(typeof m.id, 'string');
    assert.ok(m.id.length > 0);
    assert.equal(m.object, 'model');
    assert.ok(m.owned_by.startsWith('dashscope'), m.owned_by);
  }
});

// 9. Thinking.
test('thinking non-stream: one completion with reasoning_content', async () => {
  const c = await client.chat.completions.create({
    model: MODEL,
    messages: user('scenario:reasoning who are you?'),
    enable_thinking: true,
  });
  assert.equal(c.choices.length, 1);
  assert.equal(c.choices[0].message.content, REASONING_TEXT);
  assert.equal(c.choices[0].message.reasoning_content, REASONING_CONTENT);
  assert.equal(c.choices[0].finish_reason, 'stop');
  assert.deepEqual(triple(c.usage), [11, 31, 42]);
  assert.equal(c.usage.completion_tokens_details.reasoning_tokens, 15);
});

test('thinking stream: reasoning_content and content deltas stay apart', async () => {
  const stream = await client.chat.completions.create({
    model: MODEL,
    messages: user('scenario:reasoning who are you?'),
    enable_thinking: true,
    stream: true,
  });
  let reasoning = '';
  let content = '';
  for await (const ch of stream) {
    const d = ch.choices[0]?.delta ?? {};
    reasoning += d.reasoning_content ?? '';
    content += d.content ?? '';
  }
  assert.equal(reasoning, REASONING_CONTENT);
  assert.equal(content, REASONING_TEXT);
});
