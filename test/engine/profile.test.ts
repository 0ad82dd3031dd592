// The opt-in kernel profiler: counts and times each kernel call between startProfile and stopProfile,
// on whichever backend is active, and costs nothing once stopped (kernel() returns the raw kernel).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tensor, add, formatProfile, getBackend, kernel, matmul, profileRows, startProfile, stopProfile } from '../../src/engine/index.js';

test('startProfile / stopProfile count and time every kernel call by backend and name', () => {
  const a = new Tensor(new Float32Array([1, 2, 3, 4]), [2, 2]); // [2, 2]
  const rawMatmul = kernel('matmul');
  startProfile();
  const profiled = kernel('matmul');
  assert.notEqual(profiled, rawMatmul, 'profiling wraps the kernel');
  const c = matmul(a, a);            // [2, 2]
  matmul(c, a);                      // [2, 2]
  add(a, a);                         // [2, 2]
  assert.deepEqual(Array.from(c.data), [7, 10, 15, 22], 'the wrapper returns the kernel\'s result');
  const live = profileRows();
  const rows = stopProfile();
  assert.deepEqual(live, rows);
  const mm = rows.find((r) => r.kernel.endsWith(':matmul'));
  assert.ok(mm !== undefined, JSON.stringify(rows));
  assert.equal(mm.calls, 2);
  assert.ok(mm.ms >= 0 && Number.isFinite(mm.ms));
  const backend = getBackend();
  assert.ok(rows.every((r) => r.kernel.startsWith('native:') || r.kernel.startsWith('reference:')));
  if (backend === 'reference') assert.equal(mm.kernel, 'reference:matmul');
  assert.ok(rows.some((r) => r.calls >= 1 && r.kernel !== mm.kernel), 'add ran a kernel too');
  for (let i = 1; i < rows.length; i++) assert.ok(rows[i - 1]!.ms >= rows[i]!.ms, 'slowest first');
  // Stopped: kernels are the raw ones again, and nothing more is recorded.
  assert.equal(kernel('matmul'), rawMatmul);
  matmul(a, a);
  assert.deepEqual(profileRows(), []);
  const table = formatProfile(rows, 100);
  assert.match(table, /matmul +2 /);
  assert.match(table, /outside kernels/);
  assert.match(table, /total +100\.0 ms +100\.0%/);
});
