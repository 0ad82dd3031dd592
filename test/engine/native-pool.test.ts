// The native addon's output pool (native/pool.h): kernel outputs from 4 KiB are blocks that go back to
// the pool when V8 frees their ArrayBuffer, and are handed out again already faulted in. Checks: values
// and independence of live outputs, reuse after GC, a bounded live set in a synchronous loop (no event
// loop turn needed to get blocks back), the cap and eviction, the per-thread switch, VILG_POOL /
// VILG_POOL_MAX_MB, bad options, and outputs moved out of a worker that exits. Skipped without the addon.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Worker } from 'node:worker_threads';
import { isNativeAvailable, nativeAddon } from '../../src/engine/index.js';

const addon = nativeAddon();
const skip = addon === null || !isNativeAvailable() ? 'native addon not loaded' : false;
// With VILG_POOL=0 the loader routes large outputs to its JS allocator, which takes precedence.
const skipPool = skip || (process.env['VILG_POOL'] === '0' ? 'VILG_POOL=0' : false);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as (() => void) | undefined;

const tick = (): Promise<void> => new Promise<void>((r) => setImmediate(r));

/** Collects garbage until `done()` (V8 sweeps ArrayBuffers, and so runs the pool's deleters, concurrently). */
async function collectUntil(done: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !done(); i++) {
    await tick();
    gc?.();
    if (i > 20) await new Promise<void>((r) => setTimeout(r, 5));
  }
  assert.ok(done(), `timed out waiting for: ${what}`);
}

/** x = [-2.5, -1.5, ..., ] of n elements (relu keeps the positive half). */
function ramp(n: number, shift = 0): Float32Array {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = ((i * 7 + shift) % 101) - 50.5;
  return x;
}

function assertRelu(y: Float32Array, x: Float32Array, what: string): void {
  assert.equal(y.length, x.length, `${what}: length`);
  for (let i = 0; i < x.length; i++) {
    if (y[i] !== Math.max(0, x[i]!)) assert.fail(`${what}: y[${i}] = ${y[i]}, expected ${Math.max(0, x[i]!)}`);
  }
}

const N = 64 * 1024; // 256 KiB outputs: in the pool (≥ 4 KiB)

test('pooled outputs are correct, independent while alive, and reused once collected', { skip: skipPool || (gc === undefined && 'no gc') }, async () => {
  const a = addon!;
  assert.equal(a.poolStats().enabled, true);
  const x1 = ramp(N), x2 = ramp(N, 13);
  (() => { // in a function of its own, so that nothing keeps y1 and y2 alive afterwards
    const y1 = a.unary('relu', x1), y2 = a.unary('relu', x2); // [N], [N]
    assert.notEqual(y1.buffer, y2.buffer);
    assertRelu(y1, x1, 'y1');
    assertRelu(y2, x2, 'y2');
    y1.fill(-1); // writing one live output leaves the other alone
    assertRelu(y2, x2, 'y2 after writing y1');
    assert.ok(a.poolStats().liveBytes >= 2 * N * 4);
  })();

  // Drop every output of this size; once collected, their blocks are warm in the pool.
  const before = a.poolStats();
  await collectUntil(() => a.poolStats().cachedBytes >= before.cachedBytes + 2 * N * 4, 'the two blocks return');
  const s = a.poolStats();
  const y3 = a.unary('relu', x2); // [N]
  assert.equal(a.poolStats().hits, s.hits + 1, 'served by a warm block');
  assertRelu(y3, x2, 'y3 (a reused block is overwritten in full)');
});

test('a synchronous loop gets blocks back without an event-loop turn (bounded live memory)', { skip: skipPool }, () => {
  const a = addon!;
  const x = ramp(256 * 1024); // 1 MiB outputs
  const s0 = a.poolStats();
  let peak = 0, sum = 0;
  for (let i = 0; i < 320; i++) { // 320 MiB in total, no await
    const y = a.unary('relu', x); // [256Ki]
    sum += y[i]!;
    peak = Math.max(peak, a.poolStats().liveBytes);
  }
  assert.ok(Number.isFinite(sum));
  const s1 = a.poolStats();
  assert.ok(peak < 256 * 2 ** 20, `at most ${(peak / 2 ** 20).toFixed(0)} MiB live at once (GC returns blocks as it runs)`);
  assert.ok(s1.hits - s0.hits > 100, `blocks were reused within the loop (${s1.hits - s0.hits} of 320)`);
});

test('the cap bounds the warm bytes; over it the oldest blocks go back to the OS', { skip: skipPool || (gc === undefined && 'no gc') }, async () => {
  const a = addon!;
  const cap = a.poolStats().maxCachedBytes;
  try {
    a.configurePool({ maxCachedBytes: 2 ** 20 });
    assert.ok(a.poolStats().cachedBytes <= 2 ** 20);
    const big = ramp(5 * 2 ** 20); // 20 MiB: a slab of its own
    const e0 = a.poolStats().evictions;
    let ys: Float32Array[] | null = [a.unary('relu', big), a.unary('relu', ramp(N)), a.unary('relu', ramp(N))];
    assertRelu(ys[0]!, big, 'big');
    const mapped = a.poolStats().mappedBytes;
    ys = null;
    await collectUntil(() => a.poolStats().evictions > e0, 'an eviction');
    await collectUntil(() => a.poolStats().mappedBytes <= mapped - 20 * 2 ** 20, 'the 20 MiB slab is unmapped');
    assert.ok(a.poolStats().cachedBytes <= 2 ** 20);
    a.configurePool({ maxCachedBytes: 0 });
    assert.equal(a.poolStats().cachedBytes, 0);
  } finally {
    a.configurePool({ maxCachedBytes: cap });
  }
  assert.equal(a.poolStats().maxCachedBytes, cap);
});

test('under a tiny cap, random sizes and lifetimes never hand out a live block twice', { skip: skipPool || (gc === undefined && 'no gc') }, async () => {
  const a = addon!;
  const cap = a.poolStats().maxCachedBytes;
  let seed = 7;
  const rand = (): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
  const live: { id: number; y: Float32Array }[] = [];
  const check = (e: { id: number; y: Float32Array }): void => {
    for (let i = 0; i < e.y.length; i += 97) if (e.y[i] !== -e.id) assert.fail(`output ${e.id} was overwritten at ${i}`);
  };
  try {
    a.configurePool({ maxCachedBytes: 256 * 1024 }); // evictions, cold blocks and slab drops all happen
    const e0 = a.poolStats().evictions;
    for (let id = 1; id <= 300; id++) {
      const n = 1024 + Math.floor(rand() * rand() * 200_000); // 4 KiB .. 800 KiB, mostly small
      const y = a.unary('neg', new Float32Array(n).fill(id)); // [n]
      live.push({ id, y });
      if (rand() < 0.6) live.splice(Math.floor(rand() * live.length), 1); // drop a random one
      if (id % 50 === 0) { await tick(); gc?.(); live.forEach(check); }
    }
    live.forEach(check);
    assert.ok(a.poolStats().evictions > e0, 'the cap forced evictions');
    assert.ok(a.poolStats().cachedBytes <= 256 * 1024);
  } finally {
    a.configurePool({ maxCachedBytes: cap });
  }
});

test('configurePool({ enabled: false }) sends this thread\'s outputs elsewhere; bad options throw', { skip }, () => {
  const a = addon!;
  const x = ramp(N);
  try {
    a.configurePool({ enabled: false });
    const s = a.poolStats();
    assert.equal(s.enabled, false);
    const y = a.unary('relu', x); // [N]
    assertRelu(y, x, 'pool off');
    const t = a.poolStats();
    assert.equal(t.hits + t.misses, s.hits + s.misses, 'the pool was not asked');
  } finally {
    a.configurePool({ enabled: true });
  }
  assert.equal(a.poolStats().enabled, true);
  const bad = a.configurePool as (o: unknown) => void;
  assert.throws(() => bad(null), TypeError);
  assert.throws(() => bad({ enabled: 'yes' }), TypeError);
  assert.throws(() => bad({ maxCachedBytes: '1' }), TypeError);
  assert.throws(() => bad({ maxCachedBytes: -1 }), RangeError);
  assert.throws(() => bad({ maxCachedBytes: 1.5 }), RangeError);
  assert.throws(() => (a.poolStats as (x: unknown) => unknown)(1), TypeError);
});

test('VILG_POOL=0 turns the pool off; bad VILG_POOL / VILG_POOL_MAX_MB values are rejected at load', { skip }, () => {
  const url = new URL('../../src/engine/index.js', import.meta.url).href;
  const src = `const E = await import(${JSON.stringify(url)});
    const a = E.nativeAddon();
    const y = a.unary('relu', new Float32Array(65536).fill(-3).map((v, i) => v + (i % 7)));
    const s = a.poolStats();
    console.log(JSON.stringify({ enabled: s.enabled, asked: s.hits + s.misses, cap: s.maxCachedBytes, y3: y[3], y4: y[4] }));`;
  const run = (env: Record<string, string>): string => execFileSync(process.execPath, ['--input-type=module', '-e', src], {
    env: { ...process.env, VILG_BACKEND: 'native', ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'],
  });
  // The child inherits this process's environment, so its default cap is ours.
  assert.deepEqual(JSON.parse(run({ VILG_POOL: '0' })), { enabled: false, asked: 0, cap: addon!.poolStats().maxCachedBytes, y3: 0, y4: 1 });
  assert.deepEqual(JSON.parse(run({ VILG_POOL: '1', VILG_POOL_MAX_MB: '3' })), { enabled: true, asked: 1, cap: 3 * 2 ** 20, y3: 0, y4: 1 });
  assert.throws(() => run({ VILG_POOL: 'yes' }), /VILG_POOL must be '0' or '1'/);
  assert.throws(() => run({ VILG_POOL_MAX_MB: '-5' }), /VILG_POOL_MAX_MB must be a non-negative integer/);
});

test('pooled outputs moved out of a worker outlive it; its leftovers return when it exits', { skip: skipPool || (gc === undefined && 'no gc') }, async () => {
  const a = addon!;
  const url = new URL('../../src/engine/index.js', import.meta.url).href;
  const src = `import { parentPort } from 'node:worker_threads';
    const E = await import(${JSON.stringify(url)});
    const x = new Float32Array(${N}).map((_, i) => (i % 5) - 2);
    const keep = [1, 2, 3].map(() => E.nativeAddon().unary('relu', x)); // still alive when the worker exits
    const y = E.nativeAddon().unary('relu', x);
    parentPort.postMessage({ y, kept: keep.length }, [y.buffer]);`;
  await collectUntil(() => a.poolStats().liveBytes === 0, 'no pooled output alive before the worker starts');
  const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(src)}`));
  // Listen for 'exit' from the start: a worker that posts and exits at once may emit it before a later
  // once('exit') is attached, leaving the test awaiting an event that already happened.
  const exited = new Promise((resolve) => w.once('exit', resolve));
  const msg = await new Promise<{ y: Float32Array; kept: number }>((resolve, reject) => { w.once('message', resolve); w.once('error', reject); });
  await exited;
  assert.equal(msg.kept, 3);
  const x = new Float32Array(N).map((_, i) => (i % 5) - 2);
  assertRelu(msg.y, x, 'output made in the exited worker');
  // The worker's three kept outputs went back when its isolate was torn down; the moved one is still ours.
  await collectUntil(() => a.poolStats().liveBytes === N * 4, 'the worker\'s blocks return');
  assert.equal(msg.y[4], 2);
});
