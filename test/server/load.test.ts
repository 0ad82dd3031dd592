// A short, bounded load test of `vilg serve` on loopback (a separate process, so its RSS is its own):
// 10 distinct shapes scenes captioned one at a time give the reference captions (even i: multipart, odd:
// JSON — the API test checks both give the same caption); then a burst of 50
// concurrent caption requests (scene i mod 10, multipart and JSON alternating) against a queue of 64.
// Every response must be a 200 whose caption and log-probability equal the reference of ITS image (the
// scenes' captions differ, so a mixed-up response shows), nothing refused, failed or lost, the event
// loop answers /healthz while 50 jobs wait, and the process's RSS comes back near its level after the
// sequential warm-up (within 64 MiB: a leak of ≥ 1.3 MiB per request would show).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NATIVE_SKIP, form, postJson, request, scenes, spawnServe, type Answer } from './helpers.js';

const MiB = 2 ** 20;

test('50 concurrent captions: no crash, every answer is its own image\'s, memory back near baseline', { skip: NATIVE_SKIP }, async (t) => {
  const p = await spawnServe(['--port', '0', '--queue', '64']);
  t.after(() => { if (p.child.exitCode === null) p.child.kill('SIGKILL'); });
  assert.notEqual(p.url, '', p.stderr.join('\n'));
  const images = await scenes(10);
  const caption = (i: number): Promise<Answer> => {
    const png = images[i % images.length]!.png;
    return i % 2 === 0 ? request(`${p.url}v1/caption`, { method: 'POST', body: form(png) }) : postJson(`${p.url}v1/caption`, { image: png.toString('base64') });
  };
  const health = async (): Promise<{ rss: number; queue: Record<string, number> }> => {
    const h = (await request(`${p.url}healthz`)).body;
    return { rss: h.memory.rss, queue: h.queue };
  };

  const ref: { caption: string; logprob: number }[] = [];
  for (let i = 0; i < images.length; i++) {
    const r = await caption(i);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    ref.push({ caption: r.body.caption, logprob: r.body.logprob });
  }
  const distinct = new Set(ref.map((r) => r.caption)).size;
  assert.ok(distinct >= 5, `the scenes' captions differ (${distinct} distinct of 10), so a mix-up would show`);
  const baseline = (await health()).rss;

  const t0 = performance.now();
  const pending = Array.from({ length: 50 }, (_, i) => caption(i));
  // While the jobs wait the HTTP thread still answers at once: the model works in the worker.
  let settled = false, peak = 0, healthMs = 0;
  const all = Promise.all(pending).finally(() => { settled = true; });
  while (!settled) {
    const h0 = performance.now();
    const waiting = (await health()).queue['waiting']!;
    if (waiting > 0) healthMs = Math.max(healthMs, performance.now() - h0);
    peak = Math.max(peak, waiting);
    await new Promise((res) => setTimeout(res, 20));
  }
  const answers = await all;
  const ms = performance.now() - t0;
  answers.forEach((r, i) => {
    assert.equal(r.status, 200, `request ${i}: ${JSON.stringify(r.body)}`);
    assert.deepEqual({ caption: r.body.caption, logprob: r.body.logprob }, ref[i % 10], `request ${i}: the caption of its own image`);
  });
  await new Promise((res) => setTimeout(res, 300));
  const after = await health();
  assert.ok(after.rss - baseline < 64 * MiB, `RSS after the burst within 64 MiB of the baseline (+${((after.rss - baseline) / MiB).toFixed(1)} MiB)`);
  t.diagnostic(`50 captions in ${ms.toFixed(0)} ms; /healthz in ≤ ${healthMs.toFixed(0)} ms with up to ${peak} waiting; RSS ${(baseline / MiB).toFixed(0)} → ${(after.rss / MiB).toFixed(0)} MiB`);
  assert.ok(peak >= 20, `the burst queued (${peak} waiting at most)`);
  assert.ok(healthMs < 1000, `/healthz answered in ${healthMs.toFixed(0)} ms during the burst`);
  assert.deepEqual([after.queue['running'], after.queue['waiting'], after.queue['failed'], after.queue['rejected'], after.queue['cancelled']], [0, 0, 0, 0, 0]);
  assert.equal(after.queue['done'], 10 + 50, 'every job done, none lost');

  p.child.kill('SIGINT');
  assert.equal(await p.exited, 0, 'SIGINT: a clean exit');
});
