// `vilg serve` as a process (src/cli/commands/serve.ts, run as main.ts runs commands): the URL banner
// for --port 0, JSON log lines on stdout, SIGTERM while a job runs (with --grace 0 the job is cancelled,
// its client gets a 503 JSON error, the process exits 0), and the usage errors a user can hit: a missing
// model directory, a bad port, a port in use — each exits 2 with the reason and leaves no thread behind.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as netServer } from 'node:net';
import { NATIVE_SKIP, postJson, request, spawnServe, until } from './helpers.js';

test('serve --port 0: prints the URL, logs JSON lines, SIGTERM cancels the running job and exits 0', { skip: NATIVE_SKIP }, async (t) => {
  const p = await spawnServe(['--port', '0', '--grace', '0', '--queue', '2']);
  t.after(() => { if (p.child.exitCode === null) p.child.kill('SIGKILL'); });
  assert.match(p.url, /^http:\/\/127\.0\.0\.1:\d+\/$/, p.stderr.join('\n'));
  const h = await request(`${p.url}healthz`);
  assert.equal(h.status, 200);
  assert.equal(h.body.queue.capacity, 2);
  const m = await request(`${p.url}v1/model`);
  assert.equal(m.body.name, 'vilg-shapes', 'the default model is the package\'s models/vilg-shapes');
  assert.equal(m.body.limits.maxN, 16);
  const job = postJson(`${p.url}v1/text-to-image`, { prompt: 'a big blue square', n: 16, seed: 1 });
  await until('the job running', async () => (await request(`${p.url}healthz`)).body.queue.running === 1, 20_000);
  const t0 = Date.now();
  p.child.kill('SIGTERM');
  const r = await job;
  assert.equal(r.status, 503);
  assert.deepEqual(r.body.error.code, 'cancelled');
  assert.equal(await p.exited, 0);
  t.diagnostic(`exited ${Date.now() - t0} ms after SIGTERM`);
  assert.ok(p.stderr.some((l) => /SIGTERM, shutting down/.test(l)), p.stderr.join('\n'));
  const logs = p.stdout.map((l) => JSON.parse(l) as Record<string, unknown>); // every stdout line is JSON
  assert.deepEqual(logs.filter((l) => l['msg'] !== 'request').map((l) => l['msg']), ['listening', 'shutting down', 'closed']);
  const reqs = logs.filter((l) => l['msg'] === 'request');
  for (const [method, url] of [['GET', '/healthz'], ['GET', '/v1/model']]) {
    assert.ok(reqs.some((l) => l['method'] === method && l['url'] === url && l['status'] === 200), `${method} ${url} logged`);
  }
  const t2i = reqs.find((l) => l['url'] === '/v1/text-to-image')!;
  assert.equal(t2i['status'], 503);
  assert.equal(typeof t2i['ms'], 'number');
  assert.equal((logs.at(-1)!['queue'] as { cancelled: number }).cancelled, 1);
});

test('serve: usage errors exit 2 with the reason', async () => {
  const missing = await spawnServe(['--model', '/nonexistent/model', '--port', '0']);
  assert.equal(missing.url, '');
  assert.equal(await missing.exited, 2);
  assert.match(missing.stderr.join('\n'), /vilg serve: VilgPipeline\.load: \/nonexistent\/model is not a directory/);

  const port = await spawnServe(['--port', '70000']);
  assert.equal(await port.exited, 2);
  assert.match(port.stderr.join('\n'), /--port must be an integer in \[0, 65535\], got 70000/);

  const busy = netServer();
  await new Promise<void>((res) => busy.listen(0, '127.0.0.1', res));
  try {
    const taken = (busy.address() as { port: number }).port;
    const inUse = await spawnServe(['--port', String(taken)]);
    assert.equal(inUse.url, '');
    assert.equal(await inUse.exited, 2, 'exits (the model thread was closed)');
    assert.match(inUse.stderr.join('\n'), new RegExp(`port ${taken} on 127\\.0\\.0\\.1 is in use`));
  } finally { busy.close(); }
});
