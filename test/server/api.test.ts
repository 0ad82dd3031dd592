// The HTTP API of `vilg serve` (src/server/) over real loopback HTTP, on the committed vilg-shapes model:
// every endpoint; the streaming variant (a progress event per row with partial images whose ungenerated
// rows are grey, then the same result as the plain endpoint); every validation error (400/413/415, JSON
// {error: {status, code, message}}); a full queue (429 + Retry-After); cancellation when the client
// disconnects, both of a queued and of a running job (the worker's counters prove the job stopped);
// request logs; graceful shutdown letting the running job finish. One server serves the whole file with
// a queue of 1 (so two long jobs fill it), maxN 64 (an n = 64 job runs ~5 s: long enough to cancel),
// and small image limits (256 KiB, 1 Mpx).

import { after, before, test as nodeTest, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import sharp from 'sharp';
import { createServer, type Server } from '../../src/server/server.js';
import { VilgPipeline } from '../../src/models/vilg/pipeline.js';
import { MODEL_CODES, MODEL_DIR, NATIVE_SKIP, form, modelWithCard, pngPixels, postJson, readSse, request, scenes, until, type TestScene } from './helpers.js';

const CARD = '# vilg-shapes (test copy)\n\nA 3.4M-parameter ERNIE-ViLG trained on the shapes data set.\n';
const logs: Record<string, unknown>[] = [];
let server: Server;
let modelDir: string;
let base: string;
let scene: TestScene[];

/** Every test of this file: skipped (with the reason) off the native backend. */
const test = (name: string, fn: (t: TestContext) => Promise<void> | void): Promise<void> => nodeTest(name, { skip: NATIVE_SKIP }, fn);

before(async () => {
  if (NATIVE_SKIP !== false) return;
  modelDir = modelWithCard(CARD);
  server = await createServer({
    model: modelDir, port: 0, queueSize: 1,
    limits: { maxN: 64, maxImageBytes: 256 * 1024, maxImagePixels: 1_000_000 },
    log: (r) => logs.push(r),
  });
  base = server.url.replace(/\/$/, '');
  scene = await scenes(3);
});
after(async () => {
  if (NATIVE_SKIP !== false) return;
  await server.close();
  rmSync(modelDir, { recursive: true, force: true }); // links and the card only
});

const T2I = { prompt: 'a small red circle', n: 2, seed: 3 };
const stats = async (): Promise<{ running: number; waiting: number; done: number; failed: number; cancelled: number; rejected: number }> =>
  (await request(`${base}/healthz`)).body.queue;

/** Checks an error answer: status, JSON {error: {status, code, message}}, and the message (a regexp). */
function isError(r: { status: number; body: any }, status: number, code: string, message: RegExp, what: string): void { // eslint-disable-line @typescript-eslint/no-explicit-any
  assert.equal(r.status, status, `${what}: status (body ${JSON.stringify(r.body)})`);
  assert.equal(typeof r.body, 'object', `${what}: a JSON body`);
  assert.equal(r.body.error.status, status, what);
  assert.equal(r.body.error.code, code, what);
  assert.match(r.body.error.message, message, what);
}

test('binds loopback only, on the port the OS picked', () => {
  assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/$/);
  assert.notEqual(Number(new URL(server.url).port), 0);
});

test('GET /healthz: status, backend, queue', async () => {
  const r = await request(`${base}/healthz`);
  assert.equal(r.status, 200);
  assert.equal(r.body.status, 'ok');
  assert.equal(r.body.queue.worker, 'up');
  assert.ok(r.body.backend === 'native' || r.body.backend === 'reference');
  assert.deepEqual({ running: r.body.queue.running, waiting: r.body.queue.waiting, capacity: r.body.queue.capacity }, { running: 0, waiting: 0, capacity: 1 });
  assert.ok(r.body.memory.rss > 0);
});

test('GET /v1/model: config, size, limits and the model card', async () => {
  const r = await request(`${base}/v1/model`);
  assert.equal(r.status, 200);
  assert.equal(r.body.mode, 'end-to-end');
  assert.equal(r.body.imageSize, 32);
  assert.equal(r.body.parameters, (await VilgPipeline.load(MODEL_DIR)).info.parameters, 'the loaded model\'s own count');
  assert.deepEqual(r.body.config.imageGrid, [8, 8]);
  assert.equal(r.body.config.numCodes, MODEL_CODES);
  assert.equal(r.body.limits.maxN, 64);
  assert.equal(r.body.limits.queueSize, 1);
  assert.deepEqual(r.body.card, { file: 'MODEL_CARD.md', text: CARD });
  assert.equal(JSON.stringify(r.body).includes('/tmp/'), false, 'no server paths in the answer');
});

test('GET /: the page, self-contained, with a CSP that allows only its own script', async () => {
  const res = await fetch(`${base}/`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type')!, /^text\/html/);
  const csp = res.headers.get('content-security-policy')!;
  assert.match(csp, /script-src 'sha256-[A-Za-z0-9+/=]+'/);
  const html = await res.text();
  for (const id of ['prompt', 'grid', 'drop', 'file', 'question', 'caption-out']) assert.match(html, new RegExp(`id="${id}"`), id);
  assert.equal(/(src|href)=["']?(https?:)?\/\//i.test(html), false, 'nothing loaded from another origin');
  assert.match(html, /\/v1\/text-to-image\/stream/);
});

test('POST /v1/text-to-image: n PNGs with rerank scores, best first, the same for the same seed', async () => {
  const a = await postJson(`${base}/v1/text-to-image`, { ...T2I, rerank: true, topK: 32, topP: 0.95, temperature: 0.9 });
  assert.equal(a.status, 200, JSON.stringify(a.body));
  assert.equal(a.body.prompt, T2I.prompt);
  assert.deepEqual(a.body.tokens, ['a', 'small', 'red', 'circle']);
  assert.deepEqual(a.body.warnings, []);
  assert.equal(a.body.images.length, 2);
  for (const im of a.body.images) {
    const px = await pngPixels(Buffer.from(im.png, 'base64'));
    assert.deepEqual([px.width, px.height, im.width, im.height], [32, 32, 32, 32]);
    assert.ok(typeof im.score === 'number' && im.score < 0, 'a log-probability');
  }
  assert.ok(a.body.images[0].score >= a.body.images[1].score, 'best first');
  const b = await postJson(`${base}/v1/text-to-image`, { ...T2I, rerank: true, topK: 32, topP: 0.95, temperature: 0.9 });
  assert.deepEqual(b.body.images, a.body.images, 'same seed and options, same images');
  const c = await postJson(`${base}/v1/text-to-image`, { ...T2I, seed: 4 });
  assert.notDeepEqual(c.body.images.map((i: { png: string }) => i.png), a.body.images.map((i: { png: string }) => i.png));
  assert.equal(c.body.images[0].score, null, 'no score without rerank');
});

test('POST /v1/text-to-image/stream: queued, a progress event per row with grey ungenerated rows, then the plain result', async () => {
  const res = await fetch(`${base}/v1/text-to-image/stream`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(T2I) });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type')!, /^text\/event-stream/);
  const events = await readSse(res);
  assert.deepEqual(events.map((e) => e.event), ['queued', ...new Array(8).fill('progress'), 'result']);
  assert.deepEqual(events[0]!.data, { position: 0, running: 1 });
  const progress = events.slice(1, 9).map((e) => e.data);
  assert.deepEqual(progress.map((p) => [p.row, p.rows, p.images.length]), [1, 2, 3, 4, 5, 6, 7, 8].map((r) => [r, 8, 2]));
  // Row r of codes covers pixel rows [4r, 4r + 4): after row 2, pixel rows 8.. are grey (128).
  const p2 = await pngPixels(Buffer.from(progress[1].images[0], 'base64'));
  assert.ok(p2.rgb.subarray(8 * 32 * 3).every((v) => v === 128), 'rows not generated yet are grey');
  assert.ok(p2.rgb.subarray(0, 8 * 32 * 3).some((v) => v !== 128), 'generated rows are drawn');
  const plain = await postJson(`${base}/v1/text-to-image`, T2I);
  const result = events[9]!.data;
  assert.deepEqual(result.images, plain.body.images, 'the streamed result is the plain one');
  assert.deepEqual(progress[7].images, plain.body.images.map((i: { png: string }) => i.png), 'the last partial is the finished image');
});

test('text-to-image: validation errors are 400/413/415 with clear JSON messages', async () => {
  const url = `${base}/v1/text-to-image`;
  const cases: [unknown, RegExp][] = [
    [{}, /prompt is required/],
    [{ prompt: '' }, /prompt must not be empty/],
    [{ prompt: '   ' }, /prompt must not be empty/],
    [{ prompt: 'x'.repeat(501) }, /501 characters long; at most 500/],
    [{ prompt: 42 }, /prompt must be a string/],
    [{ ...T2I, n: 0 }, /n must be an integer in \[1, 64\], got 0/],
    [{ ...T2I, n: 65 }, /n must be an integer in \[1, 64\], got 65/],
    [{ ...T2I, n: 1.5 }, /n must be an integer/],
    [{ ...T2I, n: '2' }, /n must be an integer .* got "2"/],
    [{ ...T2I, topK: -1 }, new RegExp(`topK must be an integer in \\[0, ${MODEL_CODES}\\]`)],
    [{ ...T2I, topK: MODEL_CODES + 1 }, new RegExp(`topK must be an integer in \\[0, ${MODEL_CODES}\\]`)],
    [{ ...T2I, topP: 0 }, /topP must be a number in \(0, 1\]/],
    [{ ...T2I, topP: 1.5 }, /topP must be a number in \(0, 1\]/],
    [{ ...T2I, temperature: -0.1 }, /temperature must be a number in \[0, 10\]/],
    [{ ...T2I, temperature: 11 }, /temperature must be a number in \[0, 10\]/],
    [{ ...T2I, seed: -1 }, /seed must be an integer in \[0, 2147483647\]/],
    [{ ...T2I, seed: 2 ** 31 }, /seed must be an integer/],
    [{ ...T2I, rerank: 'yes' }, /rerank must be true or false/],
    [{ ...T2I, steps: 10, out: '/tmp/x' }, /unknown field\(s\) steps, out \(known: prompt, n, topK/],
    [[T2I], /the body must be a JSON object/],
    ['"a prompt"', /the body must be a JSON object/],
  ];
  for (const [body, message] of cases) isError(await postJson(url, body), 400, 'invalid_request', message, JSON.stringify(body).slice(0, 60));
  isError(await postJson(`${url}/stream`, { ...T2I, n: 0 }), 400, 'invalid_request', /n must be an integer/, 'stream: errors before the stream starts are plain JSON');
  isError(await postJson(url, '{"prompt": '), 400, 'invalid_request', /JSON/i, 'malformed JSON');
  isError(await postJson(url, '{"prompt":"a","__proto__":{"x":1}}'), 400, 'invalid_request', /not valid JSON/, '__proto__ is refused by the JSON parser');
  isError(await postJson(url, { prompt: 'a'.repeat(70_000) }), 413, 'payload_too_large', /larger than this route's limit of 65536 bytes/, 'body too large');
  isError(await request(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'a small red circle' }), 415, 'unsupported_media_type', /unsupported content type "text\/plain"/, 'text/plain');
  isError(await request(url, { method: 'POST', body: form(null, { prompt: 'a' }) }), 415, 'unsupported_media_type', /send application\/json$/, 'multipart to a JSON route');
  isError(await postJson(url, { prompt: '\u200b' }), 400, 'invalid_request', /has no tokens the model knows/, 'a prompt of no tokens (checked by the pipeline in the worker)');
  const s = await stats();
  assert.equal(s.failed, 1, 'only the no-token prompt reached the worker');
});

test('POST /v1/caption: multipart upload and JSON base64 give the same caption, with its log-probability', async () => {
  const a = await request(`${base}/v1/caption`, { method: 'POST', body: form(scene[0]!.png) });
  assert.equal(a.status, 200, JSON.stringify(a.body));
  assert.ok(typeof a.body.caption === 'string' && a.body.caption.length > 0);
  assert.ok(a.body.logprob < 0 && Number.isFinite(a.body.logprob));
  assert.ok(Array.isArray(a.body.tokens) && a.body.tokens.length > 0);
  const b = await postJson(`${base}/v1/caption`, { image: scene[0]!.png.toString('base64') });
  assert.deepEqual([b.body.caption, b.body.logprob], [a.body.caption, a.body.logprob]);
  const c = await postJson(`${base}/v1/caption`, { image: `data:image/png;base64,${scene[0]!.png.toString('base64')}`, beams: 1 });
  assert.equal(c.body.caption, a.body.caption, 'a data: URL works too');
  const en = await request(`${base}/v1/caption`, { method: 'POST', body: form(scene[0]!.png, { lang: 'en' }) });
  assert.match(en.body.caption, /^[a-z ;,.?]+$/, `lang en: ${en.body.caption}`); // the captions' punctuation is shared by both languages
  const zh = await postJson(`${base}/v1/caption`, { image: scene[0]!.png.toString('base64'), lang: 'zh' });
  assert.ok(zh.body.caption.length > 0 && !/[A-Za-z]/.test(zh.body.caption), `lang zh: ${zh.body.caption}`);
  const beam = await request(`${base}/v1/caption`, { method: 'POST', body: form(scene[1]!.png, { beams: '3', lang: 'en', lengthPenalty: '0.5', noRepeatNgram: '3', maxLen: '20' }) });
  assert.equal(beam.status, 200, JSON.stringify(beam.body));
  assert.match(beam.body.caption, /^[a-z ]+$/);
  const jpeg = await sharp(scene[0]!.png).jpeg({ quality: 95 }).toBuffer();
  const j = await request(`${base}/v1/caption`, { method: 'POST', body: form(jpeg, {}, 'scene.jpg') });
  assert.equal(j.status, 200, 'JPEG accepted');
  assert.ok(j.body.caption.length > 0);
});

test('POST /v1/vqa: multipart and JSON give the same answer', async () => {
  const q = scene[0]!.question;
  const a = await request(`${base}/v1/vqa`, { method: 'POST', body: form(scene[0]!.png, { question: q }) });
  assert.equal(a.status, 200, JSON.stringify(a.body));
  assert.equal(a.body.question, q);
  assert.ok(typeof a.body.answer === 'string' && a.body.answer.length > 0);
  assert.ok(a.body.logprob <= 0);
  const b = await postJson(`${base}/v1/vqa`, { image: scene[0]!.png.toString('base64'), question: q, beams: 2 });
  assert.equal(b.status, 200);
  assert.equal(typeof b.body.answer, 'string');
  const c = await postJson(`${base}/v1/vqa`, { image: scene[0]!.png.toString('base64'), question: q });
  assert.deepEqual([c.body.answer, c.body.logprob], [a.body.answer, a.body.logprob]);
});

test('caption and vqa: validation errors, image limits, and no way to name a file', async () => {
  const png = scene[0]!.png, b64 = png.toString('base64');
  const cap = `${base}/v1/caption`, vqa = `${base}/v1/vqa`;
  const noise = await sharp(Buffer.from(Array.from({ length: 320 * 320 * 3 }, (_, i) => (i * 2654435761) >>> 24)), { raw: { width: 320, height: 320, channels: 3 } }).png({ compressionLevel: 0 }).toBuffer();
  assert.ok(noise.length > 256 * 1024);
  const huge = await sharp({ create: { width: 1100, height: 1000, channels: 3, background: '#c33' } }).png().toBuffer();
  assert.ok(huge.length < 256 * 1024);
  const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32"><image href="file:///etc/passwd"/></svg>');
  const truncated = png.subarray(0, 60); // a PNG header and a cut-off IDAT
  const two = form(png); two.append('image', new Blob([new Uint8Array(png)], { type: 'image/png' }), 'b.png');

  const cases: [string, RequestInit, number, string, RegExp][] = [
    ['JSON without image', { body: JSON.stringify({ beams: 2 }), headers: { 'content-type': 'application/json' } }, 400, 'invalid_request', /image is required/],
    ['multipart without image', { body: form(null, { beams: '2' }) }, 400, 'invalid_request', /image is required \(a file field named image\)/],
    ['image as a text field', { body: form(null, { image: b64 }) }, 400, 'invalid_request', /image must be a file/],
    ['a file under another name', { body: (() => { const f = new FormData(); f.append('picture', new Blob([new Uint8Array(png)]), 'a.png'); return f; })() }, 400, 'invalid_request', /unknown file field picture/],
    ['unknown JSON field', { body: JSON.stringify({ image: b64, path: '/etc/passwd' }), headers: { 'content-type': 'application/json' } }, 400, 'invalid_request', /unknown field\(s\) path/],
    ['unknown form field', { body: form(png, { temperature: '1' }) }, 400, 'invalid_request', /unknown field\(s\) temperature/],
    ['beams 0', { body: form(png, { beams: '0' }) }, 400, 'invalid_request', /beams must be an integer in \[1, 8\], got 0/],
    ['beams 9', { body: JSON.stringify({ image: b64, beams: 9 }), headers: { 'content-type': 'application/json' } }, 400, 'invalid_request', /beams must be an integer in \[1, 8\]/],
    ['beams not a number', { body: form(png, { beams: 'two' }) }, 400, 'invalid_request', /beams must be an integer .* got "two"/],
    ['lang fr', { body: form(png, { lang: 'fr' }) }, 400, 'invalid_request', /lang must be one of en, zh, any/],
    ['maxLen 2', { body: form(png, { maxLen: '2' }) }, 400, 'invalid_request', /maxLen must be an integer in \[3, 32\]/],
    ['lengthPenalty -1', { body: form(png, { lengthPenalty: '-1' }) }, 400, 'invalid_request', /lengthPenalty must be a number in \[0, 10\]/],
    ['a field twice', { body: form(png, { beams: '1' }) }, 400, 'invalid_request', /field beams given twice/],
    ['not base64', { body: JSON.stringify({ image: '../../etc/passwd' }), headers: { 'content-type': 'application/json' } }, 400, 'invalid_request', /image is not valid base64/],
    ['a path that happens to be base64', { body: JSON.stringify({ image: '/etc/passwd' }), headers: { 'content-type': 'application/json' } }, 415, 'unsupported_media_type', /must be PNG, JPEG, WebP or GIF/],
    ['text bytes', { body: form(Buffer.from('hello, not an image')) }, 415, 'unsupported_media_type', /must be PNG, JPEG, WebP or GIF/],
    ['SVG', { body: form(svg, {}, 'a.svg') }, 415, 'unsupported_media_type', /must be PNG, JPEG, WebP or GIF/],
    ['a PNG cut short', { body: form(truncated) }, 415, 'unsupported_media_type', /does not decode|header does not parse/],
    ['upload over 256 KiB', { body: form(noise) }, 413, 'payload_too_large', /larger than 262144 bytes/],
    ['base64 over 256 KiB', { body: JSON.stringify({ image: noise.toString('base64') }), headers: { 'content-type': 'application/json' } }, 413, 'payload_too_large', /larger than 262144 bytes/],
    ['1100×1000 pixels', { body: form(huge) }, 413, 'payload_too_large', /1100×1000 = 1100000 pixels; at most 1000000/],
    ['two files', { body: two }, 413, 'payload_too_large', /files limit/],
    ['text/plain', { body: 'hello', headers: { 'content-type': 'text/plain' } }, 415, 'unsupported_media_type', /send application\/json or multipart\/form-data/],
  ];
  // 'a field twice' needs the same field appended twice
  (cases.find((c) => c[0] === 'a field twice')![1].body as FormData).append('beams', '2');
  for (const [what, init, status, code, message] of cases) isError(await request(cap, { method: 'POST', ...init }), status, code, message, `caption: ${what}`);
  isError(await request(vqa, { method: 'POST', body: form(png) }), 400, 'invalid_request', /question is required/, 'vqa without question');
  isError(await request(vqa, { method: 'POST', body: form(png, { question: ' ' }) }), 400, 'invalid_request', /question must not be empty/, 'vqa empty question');
  isError(await postJson(vqa, { image: b64, question: 'q'.repeat(501) }), 400, 'invalid_request', /question is 501 characters long/, 'vqa long question');
  isError(await request(vqa, { method: 'POST', body: form(huge, { question: 'what?' }) }), 413, 'payload_too_large', /pixels/, 'vqa huge image');
  const h = await request(`${base}/healthz`);
  assert.equal(h.body.status, 'ok', 'the server is still up');
});

test('a full queue answers 429 with Retry-After; disconnecting cancels a queued and a running job', async (t) => {
  const before = await stats();
  const long = { prompt: 'a big blue square', n: 64, seed: 1 }; // ~5 s of sampling on an idle core
  // A: a plain job that runs; B: a streamed one that waits behind it (queue capacity 1).
  const acA = new AbortController(), acB = new AbortController();
  t.after(() => { acA.abort(); acB.abort(); }); // a failed assertion must not leave jobs behind
  const reqA = postJson(`${base}/v1/text-to-image`, long, { signal: acA.signal }).catch((e: Error) => e);
  await until('A running', async () => (await stats()).running === 1);
  const resB = await fetch(`${base}/v1/text-to-image/stream`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(long), signal: acB.signal });
  const seenB: string[] = [];
  const streamB = readSse(resB, (e) => seenB.push(e.event)).catch((e: Error) => e);
  await until('B queued', async () => (await stats()).waiting === 1);
  const c = await postJson(`${base}/v1/text-to-image`, T2I);
  isError(c, 429, 'queue_full', /the queue is full \(1 waiting behind the running job\)/, 'C');
  assert.match(c.headers.get('retry-after') ?? '', /^[1-9]\d*$/, 'Retry-After in whole seconds');
  const cs = await postJson(`${base}/v1/text-to-image/stream`, T2I);
  isError(cs, 429, 'queue_full', /queue is full/, 'a stream request is refused the same way, before the stream starts');
  const cap = await request(`${base}/v1/caption`, { method: 'POST', body: form(scene[0]!.png) });
  assert.equal(cap.status, 429, 'captions share the queue');

  await until('B told it is queued', () => seenB.includes('queued'));
  acB.abort(); // B leaves the queue
  assert.equal((await streamB as Error).name, 'AbortError');
  await until('B dropped from the queue', async () => (await stats()).waiting === 0);
  const t0 = Date.now();
  acA.abort(); // A is aborted in the worker
  assert.equal((await reqA as Error).name, 'AbortError');
  await until('A stopped', async () => (await stats()).running === 0, 20_000);
  t.diagnostic(`the running job stopped ${Date.now() - t0} ms after the disconnect`);
  const after = await stats();
  assert.equal(after.cancelled - before.cancelled, 2, 'both jobs cancelled');
  assert.equal(after.done, before.done, 'neither finished');
  assert.equal(after.rejected - before.rejected, 3, 'three refused');
  assert.deepEqual(seenB, ['queued'], 'B never started');
  await until('the log line of the aborted request', () => logs.some((l) => l['url'] === '/v1/text-to-image' && l['aborted'] === true), 2000);
  const next = await postJson(`${base}/v1/text-to-image`, { ...T2I, n: 1 });
  assert.equal(next.status, 200, 'the worker takes the next job');
});

test('a client that disconnects from a stream cancels its running job between rows', async (t) => {
  const before = await stats();
  const ac = new AbortController();
  t.after(() => ac.abort());
  const res = await fetch(`${base}/v1/text-to-image/stream`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: 'a big blue square', n: 16, seed: 2 }), signal: ac.signal });
  let rows = 0;
  const stream = readSse(res, (e) => { if (e.event === 'progress') rows = e.data.row; }).catch((e: Error) => e);
  await until('the first row', () => rows >= 1, 60_000);
  const t0 = Date.now();
  ac.abort();
  assert.equal((await stream as Error).name, 'AbortError');
  await until('the job stopped', async () => (await stats()).running === 0, 20_000);
  t.diagnostic(`the job stopped ${Date.now() - t0} ms after the disconnect`);
  const after = await stats();
  assert.equal(after.cancelled - before.cancelled, 1);
  assert.equal(after.done, before.done);
  assert.ok(rows < 8, `stopped after row ${rows} of 8`);
});

test('404s are JSON, and every request is logged as one structured line', async () => {
  isError(await request(`${base}/v1/nothing`), 404, 'not_found', /no route GET \/v1\/nothing/, 'unknown route');
  isError(await request(`${base}/v1/text-to-image`), 404, 'not_found', /no route GET/, 'GET on a POST route');
  await until('the log line', () => logs.some((l) => l['url'] === '/v1/nothing'), 2000);
  const lines = logs.filter((l) => l['msg'] === 'request');
  assert.ok(lines.length >= 40, `${lines.length} request lines`);
  for (const l of lines) {
    assert.equal(typeof l['method'], 'string');
    assert.equal(typeof l['url'], 'string');
    assert.equal(typeof l['status'], 'number');
    assert.equal(typeof l['ms'], 'number');
    assert.ok(!Number.isNaN(Date.parse(l['time'] as string)));
  }
  const statuses = new Set(lines.map((l) => l['status']));
  for (const s of [200, 400, 404, 413, 415, 429]) assert.ok(statuses.has(s), `a logged ${s}`);
  assert.equal(logs.filter((l) => l['msg'] === 'listening').length, 1);
});

test('a worker thread that dies fails its job with a 500 and is replaced', async () => {
  const res = fetch(`${base}/v1/text-to-image`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...T2I, n: 16 }) });
  await until('the job running', async () => (await stats()).running === 1);
  await (server.worker as unknown as { worker: import('node:worker_threads').Worker }).worker.terminate();
  const r = await res;
  const body = await r.json() as { error: { code: string; message: string } };
  assert.equal(r.status, 500);
  assert.equal(body.error.code, 'internal');
  assert.match(body.error.message, /the model worker exited/);
  const next = await postJson(`${base}/v1/text-to-image`, { ...T2I, n: 1 });
  assert.equal(next.status, 200, 'a fresh worker took the next job');
  assert.equal((await request(`${base}/healthz`)).body.queue.worker, 'up');
});

test('graceful shutdown: the running job finishes, new connections are refused, the worker exits', async () => {
  const s0 = await stats();
  assert.deepEqual([s0.running, s0.waiting], [0, 0], 'idle before');
  const res = await fetch(`${base}/v1/text-to-image/stream`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...T2I, n: 4 }) });
  let closing: Promise<void> | null = null;
  const events = await readSse(res, (e) => { if (e.event === 'progress' && e.data.row === 1) closing = server.close(); });
  assert.ok(closing !== null);
  assert.equal(events.at(-1)!.event, 'result', 'the job ran to the end within the grace period');
  assert.equal(events.at(-1)!.data.images.length, 4);
  await closing;
  await assert.rejects(fetch(`${base}/healthz`), 'the listener is closed');
  assert.ok(logs.some((l) => l['msg'] === 'closed'));
  assert.equal(server.worker.stats().running, 0);
});
