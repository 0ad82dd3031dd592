// `vilg bench engine`: our kernels against PyTorch, side by side in one run.
//
// For every case both sides run in alternating rounds (ours, torch, ours, torch, ...) so machine noise
// hits both alike; each side's time is the median over all its iterations; ratio = torch_ms / ms
// (above 1 means we are faster). PyTorch runs in a worker process (reference/bench_torch.py) with
// OPENBLAS_CORETYPE=Cooperlake so Debian's OpenBLAS uses its AVX-512 kernels on this CPU.
// bf16 rows: both sides read bf16 inputs prepared beforehand; PyTorch writes bf16 outputs, we write f32
// (our mixed precision keeps activations and gradients in f32), so those rows include 2× the output bytes.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';
import { f32ArrayToBf16, Generator, getBackend, kernel, randn, type Precision } from '../engine/index.js';
import type { Conv2dDims } from '../engine/ops/conv.js';

export interface BenchCase { op: string; shape: number[]; dtype: 'f32' | 'bf16' }
export interface BenchRow {
  op: string; shape: number[]; dtype: string; ms: number; gflops: number | null;
  torch_ms: number | null; torch_gflops: number | null; ratio: number | null;
}

export const DEFAULT_CASES: readonly BenchCase[] = Object.freeze([
  ...(['f32', 'bf16'] as const).flatMap((dtype) => [
    { op: 'matmul', shape: [512, 512, 512], dtype },
    { op: 'matmul', shape: [2048, 2048, 2048], dtype },
    { op: 'matmul', shape: [2560, 256, 768], dtype },
    { op: 'matmul', shape: [2560, 1024, 256], dtype },
    // conv 3×3 64→64 on 16×64×64: [N, H, W, CI, CO, K]
    { op: 'conv2d_fwd', shape: [16, 64, 64, 64, 64, 3], dtype },
    { op: 'conv2d_bwd_data', shape: [16, 64, 64, 64, 64, 3], dtype },
    { op: 'conv2d_bwd_weights', shape: [16, 64, 64, 64, 64, 3], dtype },
  ]),
  { op: 'layer_norm_fwd', shape: [2560, 768], dtype: 'f32' },
  { op: 'layer_norm_bwd', shape: [2560, 768], dtype: 'f32' },
  { op: 'softmax_fwd', shape: [2560, 768], dtype: 'f32' },
  { op: 'softmax_bwd', shape: [2560, 768], dtype: 'f32' },
] as BenchCase[]);

/** Floating-point operations of one call (null for memory-bound ops where GFLOP/s means little). */
export function flopsOf(c: BenchCase): number | null {
  if (c.op === 'matmul') { const [m, k, n] = c.shape as [number, number, number]; return 2 * m * k * n; }
  if (c.op.startsWith('conv2d')) { const [n, h, w, ci, co, k] = c.shape as number[] as [number, number, number, number, number, number]; return 2 * n * h * w * ci * co * k * k; }
  return null;
}

/** Builds a closure that runs one call of the case on our engine's active backend. */
export function buildOurs(c: BenchCase): () => unknown {
  const g = new Generator(0);
  const r = (n: number): Float32Array => randn([n], { generator: g }).data as Float32Array;
  if (c.op === 'matmul') {
    const [m, k, n] = c.shape as [number, number, number];
    const a = r(m * k), b = r(k * n); // [M, K], [K, N]
    const dims = { batch: 1, m, k, n, transA: false, transB: false, strideA: 0, strideB: 0 };
    const mm = kernel('matmul');
    if (c.dtype === 'bf16') { const a16 = f32ArrayToBf16(a), b16 = f32ArrayToBf16(b); return () => mm(a16, b16, dims, 'bf16'); }
    return () => mm(a, b, dims, 'fp32');
  }
  if (c.op.startsWith('conv2d')) {
    const [n, h, w, ci, co, k] = c.shape as [number, number, number, number, number, number];
    const p = (k - 1) / 2;
    const d: Conv2dDims = { n, h, w, ci, co, kh: k, kw: k, strideH: 1, strideW: 1, padTop: p, padLeft: p, padBottom: p, padRight: p, oh: h, ow: w };
    const xf = r(n * h * w * ci), wf = r(co * ci * k * k), gf = r(n * h * w * co); // NHWC, OIHW, NHWC
    // bf16 rows read pre-converted bf16 tensors, as the PyTorch side does (no per-call conversion on either side)
    const bf = c.dtype === 'bf16';
    const [x, wt, gy] = bf ? [f32ArrayToBf16(xf), f32ArrayToBf16(wf), f32ArrayToBf16(gf)] : [xf, wf, gf];
    const prec: Precision = bf ? 'bf16' : 'fp32';
    if (c.op === 'conv2d_fwd') { const f = kernel('conv2d'); return () => f(x, wt, null, d, prec); }
    if (c.op === 'conv2d_bwd_data') { const f = kernel('conv2dBackwardData'); return () => f(gy, wt, d, prec); }
    const f = kernel('conv2dBackwardWeights'); return () => f(x, gy, d, false, prec);
  }
  const [rows, cols] = c.shape as [number, number];
  const x = r(rows * cols), gy = r(rows * cols);
  if (c.op.startsWith('layer_norm')) {
    const gamma = r(cols), beta = r(cols);
    const fwd = kernel('layerNorm');
    if (c.op === 'layer_norm_fwd') return () => fwd(x, gamma, beta, rows, cols, 1e-5);
    const st = fwd(x, gamma, beta, rows, cols, 1e-5);
    const bwd = kernel('layerNormBackward');
    return () => bwd(x, gamma, st.mean, st.rstd, gy, rows, cols, true);
  }
  if (c.op.startsWith('softmax')) {
    const fwd = kernel('softmax');
    if (c.op === 'softmax_fwd') return () => fwd(x, rows, cols, false);
    const y = fwd(x, rows, cols, false);
    const bwd = kernel('softmaxBackward');
    return () => bwd(y, gy, rows, cols, false);
  }
  throw new RangeError(`unknown bench op '${c.op}'`);
}

// Idle gap before each side's turn. OpenBLAS (PyTorch's f32 matmul here) keeps its worker threads spinning
// for 2^28 cycles (~0.1 s) after a call; with a 30 ms gap our 512³ f32 matmul ran 10× slower while
// PyTorch's threads still held both cores (0.84 ms alone, 8 ms right after a PyTorch turn).
const IDLE_GAP_MS = 200;
const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The PyTorch worker, or null when torch cannot be imported. */
class TorchWorker {
  private constructor(private proc: ChildProcessWithoutNullStreams, private lines: Interface, private queue: Array<(l: string) => void>) {}

  static async start(python: string): Promise<TorchWorker | null> {
    const script = resolve(dirname(fileURLToPath(import.meta.url)), '../../../reference/bench_torch.py');
    if (!existsSync(script) || !existsSync(python)) return null;
    const proc = spawn(python, [script], {
      env: { ...process.env, OPENBLAS_CORETYPE: process.env['OPENBLAS_CORETYPE'] ?? 'Cooperlake' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    proc.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const queue: Array<(l: string) => void> = [];
    const lines = createInterface({ input: proc.stdout });
    lines.on('line', (l) => queue.shift()?.(l));
    const w = new TorchWorker(proc, lines, queue);
    const alive = await new Promise<boolean>((res) => {
      proc.once('exit', () => res(false));
      w.request({ cmd: 'setup', case: { op: 'softmax_fwd', shape: [2, 2], dtype: 'f32' } }).then(() => res(true), () => res(false));
    });
    if (!alive) { process.stderr.write(`bench: PyTorch unavailable (${stderr.trim().split('\n').pop() ?? 'worker exited'}); torch fields are null\n`); return null; }
    return w;
  }

  request(msg: object): Promise<Record<string, unknown>> {
    return new Promise((res, rej) => {
      this.queue.push((l) => { const o = JSON.parse(l) as Record<string, unknown>; if (o['error']) rej(new Error(String(o['error']))); else res(o); });
      this.proc.stdin.write(JSON.stringify(msg) + '\n');
    });
  }

  close(): void { this.proc.stdin.write('{"cmd":"quit"}\n'); this.lines.close(); }
}

/** Warm-up per case: calls until this many ms have passed (at least 3, at most WARMUP_MAX_CALLS). */
const WARMUP_MS = 300;
const WARMUP_MAX_CALLS = 64;

export interface BenchOptions { rounds?: number; iters?: number; torch?: boolean; python?: string; filter?: string; onRow?: (row: BenchRow) => void; onProgress?: (msg: string) => void }

/** Runs the cases, alternating ours and torch per round; returns one row per case. */
export async function benchEngine(cases: readonly BenchCase[] = DEFAULT_CASES, opts: BenchOptions = {}): Promise<BenchRow[]> {
  const rounds = opts.rounds ?? 5, iters = opts.iters ?? 5;
  const torch = opts.torch === false ? null : await TorchWorker.start(opts.python ?? '/usr/bin/python3');
  const rows: BenchRow[] = [];
  try {
    const selected = cases.filter((c) => opts.filter === undefined || c.op.includes(opts.filter));
    for (const [i, c] of selected.entries()) {
      opts.onProgress?.(`[${i + 1}/${selected.length}] ${c.op} ${c.shape.join('×')} ${c.dtype} (${getBackend()})`);
      const fn = buildOurs(c);
      // Warm-up to steady state: JIT, oneDNN's primitive cache, and the output pool. Dropped outputs return
      // their blocks to the pool only when V8 collects them, so the first few dozen calls of a small op land
      // on fresh pages (~12 µs per 4 KiB fault here: 3 ms per 1 MiB output, more than a 512³ matmul). A
      // training loop reaches this state within its first steps; PyTorch gets the same number of calls.
      const w0 = Date.now();
      let warmCalls = 0;
      while (warmCalls < 3 || (warmCalls < WARMUP_MAX_CALLS && Date.now() - w0 < WARMUP_MS)) { fn(); warmCalls++; }
      let torchOk = torch !== null;
      if (torch) await torch.request({ cmd: 'setup', case: c }).catch((e: Error) => { torchOk = false; opts.onProgress?.(`  torch failed: ${e.message}`); });
      if (torch && torchOk) await torch.request({ cmd: 'time', iters: 1, warmup: warmCalls - 1 }).catch(() => undefined);
      const ours: number[] = [], theirs: number[] = [];
      for (let r = 0; r < rounds; r++) {
        // Each side starts its turn after an idle gap (so the other process's OpenMP threads have stopped
        // spinning on the shared cores) and one untimed call (caches and thread wake-up), same for both.
        await sleep(IDLE_GAP_MS);
        fn();
        for (let it = 0; it < iters; it++) { const t0 = process.hrtime.bigint(); fn(); ours.push(Number(process.hrtime.bigint() - t0) / 1e6); }
        if (torch && torchOk) {
          await sleep(IDLE_GAP_MS);
          theirs.push(...((await torch.request({ cmd: 'time', iters, warmup: 1 })) as { ms: number[] }).ms);
        }
      }
      const flops = flopsOf(c);
      const ms = median(ours);
      const torchMs = theirs.length ? median(theirs) : null;
      const row: BenchRow = {
        op: c.op, shape: c.shape, dtype: c.dtype, ms: round(ms), gflops: flops === null ? null : round(flops / ms / 1e6),
        torch_ms: torchMs === null ? null : round(torchMs), torch_gflops: flops === null || torchMs === null ? null : round(flops / torchMs / 1e6),
        ratio: torchMs === null ? null : round(torchMs / ms),
      };
      rows.push(row);
      opts.onRow?.(row);
    }
  } finally { torch?.close(); }
  return rows;
}

function round(x: number): number { return Math.round(x * 1000) / 1000; }

/** A Markdown table of bench rows. */
export function benchMarkdown(rows: readonly BenchRow[]): string {
  const f = (x: number | null, d = 2): string => (x === null ? '—' : x.toFixed(d));
  return ['| op | shape | dtype | ms | GFLOP/s | torch ms | torch GFLOP/s | ratio |', '|---|---|---|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.op} | ${r.shape.join('×')} | ${r.dtype} | ${f(r.ms, 3)} | ${f(r.gflops, 1)} | ${f(r.torch_ms, 3)} | ${f(r.torch_gflops, 1)} | ${f(r.ratio)} |`)].join('\n');
}
