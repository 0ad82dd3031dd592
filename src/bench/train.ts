// `vilg bench train`: training steps of the ERNIE-ViLG generator against PyTorch, side by side.
//
// A step = zero grads, the joint loss L_t2i + L_i2t on the same pairs (ErnieVilg.jointLoss), backward,
// AdamW step, on random codes and text rows of the case's shapes. Tokens per step = B × (S_t2i + S_i2t);
// the row's `seq` is S_t2i + S_i2t. tokens_per_s uses the median step time; ratio = tokens_per_s /
// torch_tokens_per_s (above 1 means we train faster).
//
// Every row runs in fresh processes: ours in a forked Node child (this file with WORKER_FLAG), PyTorch in
// reference/bench_train.py, so each side's peak RSS (getrusage's maxrss, reported as-is: the runtime, the
// model, AdamW state and the activations of warm-up and timed steps, nothing subtracted) belongs to that
// row alone; ours includes the native output pool's warm blocks (capped by VILG_POOL_MAX_MB). As in
// `bench engine`, the two sides alternate rounds (ours, torch, ours, ...) after an idle gap of 200 ms,
// because OpenBLAS's worker threads spin ~0.1 s after a call and would steal the shared cores; PyTorch
// runs with OPENBLAS_CORETYPE=Cooperlake so Debian's OpenBLAS uses its AVX-512 kernels.
//
// Cases: 'small' (emoji-small, ours vs torch in fp32 and bf16) and 'grid32' (a 32×32 grid with 64 text
// tokens, dense vs sparse attention, ours only: the reference has no sparse kernel, so it would only
// repeat dense). Dropout is 0 on both sides: the reference model has none, and it would add work to ours only.

import { fork, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';
import { getBackend, setPrecision, Tensor, type Precision } from '../engine/index.js';
import { AdamW } from '../engine/optim/index.js';
import { ErnieVilg } from '../models/vilg/model.js';
import { textRows } from '../models/vilg/batch.js';
import { numImageTokens, vilgConfig, vilgConfigToJson, vilgPreset, type AttentionMode, type VilgConfig, type VilgConfigInput } from '../models/vilg/config.js';

export interface TrainCase {
  /** Case name ('small', 'grid32', or a test's own). */
  readonly case: string;
  /** The preset the config comes from, or 'custom'. */
  readonly preset: string;
  /** The model (its `attention` is the row's attention mode). */
  readonly config: VilgConfig;
  readonly precision: Precision;
  readonly batch: number;
  /** Text row length T ([CLS] and [SEP] included; captions are shorter, so rows carry some padding). */
  readonly textLen: number;
  /** Whether this row has a PyTorch side. */
  readonly torch: boolean;
  /** Facts printed with the row. */
  readonly note?: string;
}

export interface TrainRow {
  case: string; preset: string; precision: Precision; attention: AttentionMode; torch_attention: string | null;
  batch: number; seq: number; ms: number; tokens_per_s: number; peak_mb: number;
  torch_ms: number | null; torch_tokens_per_s: number | null; torch_peak_mb: number | null; ratio: number | null;
  note?: string;
}

/** Special text ids of our WordPiece tokenizer (and reference/vilg.py's SPECIALS). */
const SPECIALS = Object.freeze({ pad: 0, cls: 2, sep: 3 });
/** Ids below this are specials ([PAD] [UNK] [CLS] [SEP] [MASK]); captions draw from [FIRST_WORD, V). */
const FIRST_WORD = 5;

const NO_DROPOUT = 'dropout 0 on both sides (reference/vilg.py has none)';
const SMALL = vilgConfig({ dropout: 0 }, vilgPreset('emoji-small'));
// grid32: the issue's 32×32 grid with 64 text tokens, small enough for two cores. Hidden 128 keeps the
// matmuls small next to dense attention over S ≈ 1089 (4·D·S vs 24·D² FLOPs per token and layer), so the
// attention kernel is a fair share of the step; DALL-E's 11×11 conv window as the paper preset.
const GRID32 = vilgConfig({ imageGrid: [32, 32], maxTextLen: 64, numLayers: 4, hidden: 128, heads: 4, convKernel: 11, dropout: 0 }, vilgPreset('emoji-small'));
const grid32Note = (a: AttentionMode): string => `ours only; config: emoji-small vocab (V 4000, K 512), grid 32×32, T 64, ` +
  `L 4 (${a === 'sparse' ? 'row, column, row, conv 11×11' : 'all dense'}), D 128, H 4, MLP 4×, dropout 0`;

export const DEFAULT_TRAIN_CASES: readonly TrainCase[] = Object.freeze([
  ...(['fp32', 'bf16'] as const).map((precision): TrainCase => ({
    case: 'small', preset: 'emoji-small', config: SMALL, precision, batch: 16, textLen: 16, torch: true, note: NO_DROPOUT,
  })),
  ...(['dense', 'sparse'] as const).map((attention): TrainCase => ({
    case: 'grid32', preset: 'custom', config: vilgConfig({ attention }, GRID32), precision: 'fp32', batch: 2, textLen: 64, torch: false, note: grid32Note(attention),
  })),
]);

/** Sequence positions per pair and step: S_t2i = T + 1 + n, S_i2t = n + T. */
export function stepSeq(c: Pick<VilgConfig, 'imageGrid'>, textLen: number): number {
  const n = numImageTokens(c);
  return (textLen + 1 + n) + (n + textLen);
}

/** Random pairs of a case (mulberry32, seeded): captions of T/2 .. T − 2 words and uniform codes [B·h·w]. */
export function trainData(tc: Pick<TrainCase, 'config' | 'batch' | 'textLen'>, seed = 1): { captions: number[][]; codes: number[] } {
  const { config: c, batch: B, textLen: T } = tc;
  if (!Number.isInteger(T) || T < 3 || T > c.maxTextLen) throw new RangeError(`trainData: textLen must be an integer in [3, ${c.maxTextLen}], got ${T}`);
  if (!Number.isInteger(B) || B < 1) throw new RangeError(`trainData: batch must be a positive integer, got ${B}`);
  if (c.textVocab <= FIRST_WORD) throw new RangeError(`trainData: textVocab ${c.textVocab} leaves no word ids above the specials`);
  let s = seed >>> 0;
  const rand = (): number => { // mulberry32: uniform in [0, 1)
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo)); // [lo, hi)
  const lo = Math.max(1, Math.floor(T / 2)), hi = T - 2;
  // Row 0 always fills T (so the rows have length T), the others vary and carry padding.
  const captions = Array.from({ length: B }, (_, b) => Array.from({ length: b === 0 ? hi : int(lo, hi + 1) }, () => int(FIRST_WORD, c.textVocab)));
  const codes = Array.from({ length: B * numImageTokens(c) }, () => int(0, c.numCodes));
  return { captions, codes };
}

// ---------------------------------------------------------------- the worker protocol (both sides)

interface SetupRequest {
  cmd: 'setup'; config: Record<string, unknown>; precision: Precision; mode: AttentionMode;
  captions: number[][]; text_len: number; codes: number[]; warmup: number;
}
type Request = SetupRequest | { cmd: 'time'; steps: number; warmup: number } | { cmd: 'peak' } | { cmd: 'quit' };
type Reply = Record<string, unknown>;

/** Our side of a row, in the forked child. */
class OurTrainer {
  private readonly model: ErnieVilg;
  private readonly opt: AdamW;
  private readonly pairs: { text: Tensor; codes: Tensor };

  constructor(req: SetupRequest) {
    setPrecision(req.precision); // bf16 matmul/conv/attention inputs, f32 master weights, activations and grads
    this.model = new ErnieVilg(req.config as VilgConfigInput).train();
    const c = this.model.config, [h, w] = c.imageGrid, B = req.captions.length;
    this.opt = new AdamW(this.model.parameters(), { lr: 1e-4, weightDecay: 0.01 }); // as the torch side
    this.pairs = {
      text: textRows(req.captions, SPECIALS, c.maxTextLen, req.text_len),  // i32 [B, T]
      codes: new Tensor(Int32Array.from(req.codes), [B, h, w]),             // i32 [B, h, w]
    };
  }

  /** One training step; a non-finite loss is an error (a broken step must not pass as a fast one). */
  step(): void {
    this.opt.zeroGrad();
    const { loss } = this.model.jointLoss(this.pairs, SPECIALS.pad); // [] L_t2i + L_i2t
    loss.backward();
    this.opt.step();
    const l = loss.item();
    if (!Number.isFinite(l)) throw new Error(`bench train: the loss became ${l}`);
  }

  get params(): number { return this.model.numParameters(); }
}

export const WORKER_FLAG = '--bench-train-worker';

/** The child's loop: one reply per request over the IPC channel. */
function serveWorker(): void {
  let t: OurTrainer | null = null;
  const send = (r: Reply): void => { process.send!(r); };
  process.on('message', (req: Request) => {
    try {
      if (req.cmd === 'quit') { process.disconnect(); return; }
      if (req.cmd === 'setup') {
        t = new OurTrainer(req);
        for (let i = 0; i < req.warmup; i++) t.step();
        send({ ok: true, params: t.params, backend: getBackend() });
      } else if (req.cmd === 'time') {
        if (t === null) throw new Error('time before setup');
        for (let i = 0; i < req.warmup; i++) t.step(); // untimed, as on the torch side
        const ms: number[] = [];
        for (let i = 0; i < req.steps; i++) { const t0 = process.hrtime.bigint(); t.step(); ms.push(Number(process.hrtime.bigint() - t0) / 1e6); }
        send({ ms });
      } else if (req.cmd === 'peak') {
        send({ peak_mb: process.resourceUsage().maxRSS / 1024 }); // maxRSS is in KiB
      } else {
        send({ error: `unknown cmd ${(req as { cmd: string }).cmd}` });
      }
    } catch (e) { send({ error: e instanceof Error ? e.stack ?? e.message : String(e) }); }
  });
}

if (process.argv[2] === WORKER_FLAG && process.send !== undefined && resolve(process.argv[1] ?? '') === fileURLToPath(import.meta.url)) serveWorker();

/** A worker process answering requests in order; its exit rejects what is pending, with its stderr tail. */
class Worker {
  private readonly pending: Array<{ res: (r: Reply) => void; rej: (e: Error) => void }> = [];
  private stderr = '';
  private exited = false;

  private constructor(readonly name: string, private readonly proc: ChildProcess, private readonly write: (m: Request) => void) {
    proc.stderr?.on('data', (d: Buffer) => { this.stderr = (this.stderr + d.toString()).slice(-4000); });
    proc.on('exit', (code, signal) => {
      this.exited = true;
      const why = new Error(`${name} worker exited (${signal ?? `code ${code}`})${this.stderr.trim() ? `: ${this.stderr.trim().split('\n').slice(-3).join(' | ')}` : ''}`);
      for (const p of this.pending.splice(0)) p.rej(why);
    });
    proc.on('error', (e) => { for (const p of this.pending.splice(0)) p.rej(e); });
  }

  private deliver(r: Reply): void {
    const p = this.pending.shift();
    if (p === undefined) return;
    if (r['error'] !== undefined) p.rej(new Error(`${this.name}: ${String(r['error'])}`)); else p.res(r);
  }

  /** Our side: this file, forked with the IPC channel (stdout goes to our stderr, keeping --json clean). */
  static ours(): Worker {
    // The child gets none of our node flags (a test runner's, say) but the GC one, so it times what we run.
    const execArgv = process.execArgv.filter((a) => a === '--single-threaded-gc');
    const proc = fork(fileURLToPath(import.meta.url), [WORKER_FLAG], { execArgv, stdio: ['ignore', 2, 'pipe', 'ipc'] });
    const w = new Worker('ours', proc, (m) => { proc.send(m); });
    proc.on('message', (r: Reply) => w.deliver(r));
    return w;
  }

  /** PyTorch's side: reference/bench_train.py speaking JSON lines. */
  static torch(python: string): Worker {
    const script = resolve(dirname(fileURLToPath(import.meta.url)), '../../../reference/bench_train.py');
    if (!existsSync(script)) throw new Error(`${script} not found`);
    if (!existsSync(python)) throw new Error(`${python} not found`);
    const proc = spawn(python, [script], {
      env: { ...process.env, OPENBLAS_CORETYPE: process.env['OPENBLAS_CORETYPE'] ?? 'Cooperlake' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    proc.stdin.on('error', () => undefined); // EPIPE after an exit: reported by the 'exit' handler instead
    const w = new Worker('torch', proc, (m) => { proc.stdin.write(JSON.stringify(m) + '\n'); });
    createInterface({ input: proc.stdout }).on('line', (l) => {
      let r: Reply;
      try { r = JSON.parse(l) as Reply; } catch { r = { error: `bad reply line: ${l.slice(0, 200)}` }; }
      w.deliver(r);
    });
    return w;
  }

  request(m: Request): Promise<Reply> {
    if (this.exited) return Promise.reject(new Error(`${this.name} worker has exited`));
    return new Promise((res, rej) => { this.pending.push({ res, rej }); this.write(m); });
  }

  /** Asks the worker to quit; kills it if it has not exited within a second. */
  async close(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((res) => this.proc.once('exit', () => res()));
    try { this.write({ cmd: 'quit' }); } catch { /* channel already closed */ }
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 1000);
    await gone;
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------- the bench

const IDLE_GAP_MS = 200; // see the header: OpenBLAS/OpenMP threads spin ~0.1 s after a call
const WARMUP_STEPS = 2;  // per side at setup: JIT, primitive caches, the output pool, allocator
const sleep = (ms: number): Promise<void> => new Promise((res) => setTimeout(res, ms));

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const round = (x: number, d = 3): number => Math.round(x * 10 ** d) / 10 ** d;

/** Whether python can import torch (a short subprocess). */
export async function torchAvailable(python: string): Promise<string | null> {
  if (!existsSync(python)) return `${python} not found`;
  return new Promise((res) => {
    const p = spawn(python, ['-c', 'import torch'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    p.on('error', (e) => res(e.message));
    p.on('exit', (code) => res(code === 0 ? null : err.trim().split('\n').pop() ?? `exit code ${code}`));
  });
}

export interface TrainBenchOptions {
  /** Alternating rounds per row (default 5). */
  rounds?: number;
  /** Timed steps per side per round (default 3), after one untimed step. */
  steps?: number;
  /** Untimed steps per side at setup (default 2). */
  warmup?: number;
  torch?: boolean;
  python?: string;
  /** Only rows whose "case preset precision attention" contains this. */
  filter?: string;
  onRow?: (row: TrainRow) => void;
  onProgress?: (msg: string) => void;
}

function positive(v: number, what: string, min: number): number {
  if (!Number.isInteger(v) || v < min) throw new RangeError(`benchTrain: ${what} must be an integer ≥ ${min}, got ${String(v)}`);
  return v;
}

/** Runs the cases (each row in fresh worker processes), alternating ours and torch per round. */
export async function benchTrain(cases: readonly TrainCase[] = DEFAULT_TRAIN_CASES, opts: TrainBenchOptions = {}): Promise<TrainRow[]> {
  const rounds = positive(opts.rounds ?? 5, 'rounds', 1), steps = positive(opts.steps ?? 3, 'steps', 1), warmup = positive(opts.warmup ?? WARMUP_STEPS, 'warmup', 0);
  const python = opts.python ?? '/usr/bin/python3';
  const progress = opts.onProgress ?? ((): void => undefined);
  const selected = cases.filter((c) => opts.filter === undefined || `${c.case} ${c.preset} ${c.precision} ${c.config.attention}`.includes(opts.filter));
  let torchOk = opts.torch !== false && selected.some((c) => c.torch);
  if (torchOk) {
    const why = await torchAvailable(python);
    if (why !== null) { progress(`bench train: PyTorch unavailable (${why}); torch fields are null`); torchOk = false; }
  }
  const rows: TrainRow[] = [];
  for (const [i, tc] of selected.entries()) {
    const c = tc.config, seq = stepSeq(c, tc.textLen), tokens = tc.batch * seq;
    progress(`[${i + 1}/${selected.length}] ${tc.case} ${tc.preset} ${tc.precision} ${c.attention} B ${tc.batch} × S ${seq} (${rounds} rounds × ${steps} steps)`);
    const data = trainData(tc);
    const setup: SetupRequest = {
      cmd: 'setup', config: vilgConfigToJson(c), precision: tc.precision, mode: c.attention,
      captions: data.captions, text_len: tc.textLen, codes: data.codes, warmup,
    };
    const ours = Worker.ours();
    let torch: Worker | null = null;
    try {
      const info = await ours.request(setup);
      if (torchOk && tc.torch) {
        const t = Worker.torch(python);
        try { await t.request(setup); torch = t; } catch (e) { progress(`  torch failed: ${(e as Error).message}`); await t.close(); }
      }
      const mine: number[] = [], theirs: number[] = [];
      for (let r = 0; r < rounds; r++) {
        await sleep(IDLE_GAP_MS);
        mine.push(...((await ours.request({ cmd: 'time', steps, warmup: 1 })) as { ms: number[] }).ms);
        if (torch !== null) {
          await sleep(IDLE_GAP_MS);
          theirs.push(...((await torch.request({ cmd: 'time', steps, warmup: 1 })) as { ms: number[] }).ms);
        }
      }
      const peak = (await ours.request({ cmd: 'peak' }))['peak_mb'] as number;
      const torchPeak = torch === null ? null : (await torch.request({ cmd: 'peak' }))['peak_mb'] as number;
      const ms = median(mine), torchMs = theirs.length ? median(theirs) : null;
      const torchNote = torchMs === null ? null : `torch: reference/vilg.py in float32${tc.precision === 'bf16' ? ' under autocast(bf16)' : ''}` +
        (c.attention === 'sparse' ? ', the sparse pattern as dense [S, S] masks over full attention (no sparse kernel there)' : ', dense masks');
      const note = [`ours: backend ${String(info['backend'])}, ${String(info['params'])} parameters, text rows T ${tc.textLen}`, torchNote, tc.note].filter(Boolean).join('; ');
      const row: TrainRow = {
        case: tc.case, preset: tc.preset, precision: tc.precision, attention: c.attention,
        torch_attention: torchMs === null ? null : c.attention === 'sparse' ? 'dense (sparse pattern as a mask)' : 'dense',
        batch: tc.batch, seq, ms: round(ms), tokens_per_s: round(tokens / ms * 1e3, 1), peak_mb: round(peak, 1),
        torch_ms: torchMs === null ? null : round(torchMs), torch_tokens_per_s: torchMs === null ? null : round(tokens / torchMs * 1e3, 1),
        torch_peak_mb: torchPeak === null ? null : round(torchPeak, 1), ratio: torchMs === null ? null : round(torchMs / ms),
        note,
      };
      rows.push(row);
      opts.onRow?.(row);
    } finally {
      await ours.close();
      await torch?.close();
    }
  }
  return rows;
}

/** A Markdown table of train bench rows. */
export function trainMarkdown(rows: readonly TrainRow[]): string {
  const f = (x: number | null, d = 1): string => (x === null ? '—' : x.toFixed(d));
  return [
    '| case | preset | precision | attention | torch attention | B | S | ms | tokens/s | peak MB | torch ms | torch tokens/s | torch peak MB | ratio |',
    '|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.case} | ${r.preset} | ${r.precision} | ${r.attention} | ${r.torch_attention ?? '—'} | ${r.batch} | ${r.seq} | ${f(r.ms)} | ${f(r.tokens_per_s, 0)} | ${f(r.peak_mb, 0)} | ` +
      `${f(r.torch_ms)} | ${f(r.torch_tokens_per_s, 0)} | ${f(r.torch_peak_mb, 0)} | ${f(r.ratio, 2)} |`),
  ].join('\n');
}
