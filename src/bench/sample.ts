// `vilg bench sample`: generation speed of a trained model against PyTorch, side by side.
//
// Cases (each with and without the KV cache): text → image greedy for N = 1 and N = 8 candidates of one
// prompt (a batch of N), and captioning one image greedy and with beam search (4 beams). The PyTorch side
// is reference/sample_torch.py's worker with the SAME weights (it reads the model directory's
// config.json and model.safetensors), the same layouts and decoding rules (docs/decoding.md), and its own
// KV cache; greedy decoding on both sides, so both do the same work and the outputs are compared.
// Sides alternate per round (ours, torch, ours, …) after an idle gap of 200 ms: OpenBLAS's worker threads
// spin ~0.1 s after a call and would steal the shared cores. PyTorch runs with OPENBLAS_CORETYPE=Cooperlake
// (Debian's OpenBLAS then uses its AVX-512 kernels) and as many threads as we use.
// tokens_per_s = generated tokens / median seconds (t2i: N·h·w codes; captions: the caption's tokens + [SEP]);
// ratio = torch_ms / ms (above 1: we are faster).

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Generator } from '../engine/random.js';
import { textRows } from '../models/vilg/batch.js';
import { runSteps, sampleImageCodes, textDecodeSteps } from '../models/vilg/generate.js';
import type { VilgPipeline } from '../models/vilg/pipeline.js';
import { median, torchAvailable } from './train.js';

export interface SampleRow {
  case: string; n: number; kv_cache: boolean; ms: number; tokens_per_s: number;
  torch_ms: number | null; torch_tokens_per_s: number | null; ratio: number | null;
  /** Whether both sides produced the same codes / tokens (null without PyTorch). */
  same_output: boolean | null;
}

export interface SampleBenchOptions {
  /** Alternating rounds per case (default 5). */
  rounds?: number;
  /** Timed repetitions per side per round (default 1). */
  reps?: number;
  torch?: boolean;
  python?: string;
  prompt?: string;
  /** Only cases whose "case n kv" contains this. */
  filter?: string;
  onRow?: (r: SampleRow) => void;
  onProgress?: (msg: string) => void;
}

interface Case { readonly name: string; readonly n: number; readonly kv: boolean; readonly kind: 't2i' | 'caption'; readonly beams: number }

export const SAMPLE_CASES: readonly Case[] = Object.freeze([true, false].flatMap((kv) => [
  { name: 't2i', n: 1, kv, kind: 't2i' as const, beams: 1 },
  { name: 't2i', n: 8, kv, kind: 't2i' as const, beams: 1 },
  { name: 'caption-greedy', n: 1, kv, kind: 'caption' as const, beams: 1 },
  { name: 'caption-beam4', n: 1, kv, kind: 'caption' as const, beams: 4 },
]));

const IDLE_GAP_MS = 200;
const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));
const round = (x: number, d = 3): number => Math.round(x * 10 ** d) / 10 ** d;

/** reference/sample_torch.py --worker, speaking JSON lines. */
class TorchWorker {
  private pending: { res: (r: Record<string, unknown>) => void; rej: (e: Error) => void }[] = [];
  private exited = false;
  private err = '';
  private constructor(private readonly proc: ChildProcess) {
    proc.stderr!.on('data', (d: Buffer) => { this.err = (this.err + d.toString()).slice(-2000); });
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      const p = this.pending.shift();
      if (p === undefined) return;
      try {
        const r = JSON.parse(l) as Record<string, unknown>;
        if (typeof r['error'] === 'string') p.rej(new Error(`torch worker: ${r['error']}`)); else p.res(r);
      } catch { p.rej(new Error(`torch worker: bad reply line ${l.slice(0, 200)}`)); }
    });
    proc.on('exit', (code) => {
      this.exited = true;
      for (const p of this.pending.splice(0)) p.rej(new Error(`torch worker exited (${String(code)}): ${this.err.trim().split('\n').pop() ?? ''}`));
    });
  }
  static start(python: string, threads: number): TorchWorker {
    const script = resolve(dirname(fileURLToPath(import.meta.url)), '../../../reference/sample_torch.py');
    if (!existsSync(script)) throw new Error(`${script} not found`);
    const proc = spawn(python, [script, '--worker'], {
      env: { ...process.env, OPENBLAS_CORETYPE: process.env['OPENBLAS_CORETYPE'] ?? 'Cooperlake', VILG_TORCH_THREADS: String(threads) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    proc.stdin!.on('error', () => undefined);
    return new TorchWorker(proc);
  }
  request(m: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (this.exited) return Promise.reject(new Error('torch worker has exited'));
    return new Promise((res, rej) => { this.pending.push({ res, rej }); this.proc.stdin!.write(`${JSON.stringify(m)}\n`); });
  }
  async close(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((res) => this.proc.once('exit', () => res()));
    this.proc.stdin!.write('{"cmd":"quit"}\n');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 2000);
    await gone;
    clearTimeout(t);
  }
}

/** Runs the cases on a loaded model; rows as they finish. */
export async function benchSample(vilg: VilgPipeline, o: SampleBenchOptions = {}): Promise<SampleRow[]> {
  const rounds = o.rounds ?? 5, reps = o.reps ?? 1;
  if (!Number.isInteger(rounds) || rounds < 1 || !Number.isInteger(reps) || reps < 1) throw new RangeError('benchSample: rounds and reps must be integers ≥ 1');
  const progress = o.onProgress ?? ((): void => undefined);
  const python = o.python ?? '/usr/bin/python3';
  const threads = Number(process.env['OMP_NUM_THREADS'] ?? cpus().length);
  const m = vilg.model, c = m.config, sp = vilg.specials, n = c.imageGrid[0] * c.imageGrid[1];
  const { ids } = vilg.encodeText(o.prompt ?? 'a small red circle', 'benchSample');
  const row1 = textRows([ids], sp, c.maxTextLen);                                     // [1, T]
  // The image to caption: the prompt's greedy image (deterministic on both sides).
  const capCodes = sampleImageCodes(m, row1, sp, { temperature: 0 });               // [1, h, w]
  let torch: TorchWorker | null = null;
  if (o.torch !== false) {
    const why = await torchAvailable(python);
    if (why !== null) progress(`bench sample: PyTorch unavailable (${why}); torch fields are null`);
    else {
      torch = TorchWorker.start(python, threads);
      const r = await torch.request({ cmd: 'setup', model_dir: resolve(vilg.dir) });
      progress(`bench sample: PyTorch worker ready (${String(r['params'])} parameters, ${String(r['threads'])} threads); ours ${threads} threads`);
    }
  }
  const rows: SampleRow[] = [];
  try {
    for (const cs of SAMPLE_CASES) {
      if (o.filter !== undefined && !`${cs.name} ${cs.n} ${cs.kv ? 'kv' : 'nokv'}`.includes(o.filter)) continue;
      const text = textRows(new Array<number[]>(cs.n).fill(ids), sp, c.maxTextLen); // [N, T]
      let out: number[] = [];
      const ours = (): number => {
        const t0 = performance.now();
        if (cs.kind === 't2i') out = [...(sampleImageCodes(m, text, sp, { temperature: 0, kvCache: cs.kv, generator: new Generator(0) }).data as Int32Array)];
        else out = runSteps(textDecodeSteps(m, capCodes, null, sp, { beams: cs.beams, kvCache: cs.kv }))[0]!.tokens;
        return performance.now() - t0;
      };
      const req = cs.kind === 't2i'
        ? { cmd: 't2i', text: [Array.from(row1.data as Int32Array)], n: cs.n, kv_cache: cs.kv, reps, warmup: 0 }
        : { cmd: 'caption', codes: Array.from(capCodes.data as Int32Array), beams: cs.beams, kv_cache: cs.kv, max_len: c.maxTextLen, reps, warmup: 0 };
      ours(); // warm-up: JIT, primitive caches, the output pool
      if (torch !== null) await torch.request({ ...req, reps: 1 });
      const ourMs: number[] = [], torchMs: number[] = [];
      let torchOut: number[] | null = null;
      for (let r = 0; r < rounds; r++) {
        await sleep(IDLE_GAP_MS);
        for (let i = 0; i < reps; i++) ourMs.push(ours());
        if (torch !== null) {
          await sleep(IDLE_GAP_MS);
          const tr = await torch.request(req);
          torchMs.push(...(tr['ms'] as number[]));
          torchOut = (cs.kind === 't2i' ? tr['codes'] : tr['tokens']) as number[];
        }
      }
      const tokens = cs.kind === 't2i' ? cs.n * n : out.length + (out.length < c.maxTextLen - 2 ? 1 : 0);
      const ms = median(ourMs), tms = torch === null ? null : median(torchMs);
      const row: SampleRow = {
        case: cs.name, n: cs.n, kv_cache: cs.kv, ms: round(ms, 2), tokens_per_s: round((tokens / ms) * 1000, 1),
        torch_ms: tms === null ? null : round(tms, 2), torch_tokens_per_s: tms === null ? null : round((tokens / tms) * 1000, 1),
        ratio: tms === null ? null : round(tms / ms, 3),
        same_output: torchOut === null ? null : torchOut.length === out.length && torchOut.every((v, i) => v === out[i]),
      };
      rows.push(row);
      o.onRow?.(row);
    }
  } finally {
    await torch?.close();
  }
  return rows;
}

/** The rows as a Markdown table. */
export function sampleMarkdown(rows: readonly SampleRow[]): string {
  const f = (x: number | null, d: number): string => (x === null ? '—' : x.toFixed(d));
  return ['| case | N | KV cache | ours ms | ours tok/s | torch ms | torch tok/s | ratio | same output |', '|---|---:|---|---:|---:|---:|---:|---:|---|',
    ...rows.map((r) => `| ${r.case} | ${r.n} | ${r.kv_cache ? 'yes' : 'no'} | ${f(r.ms, 1)} | ${f(r.tokens_per_s, 0)} | ${f(r.torch_ms, 1)} | ${f(r.torch_tokens_per_s, 0)} | ${f(r.ratio, 2)} | ${r.same_output === null ? '—' : r.same_output ? 'yes' : 'no'} |`)].join('\n');
}
