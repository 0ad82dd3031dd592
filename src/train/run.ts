// The parts every trainer shares around its own step function: the run's config file, a resumable
// data order, the non-finite guard, and the loop that ties steps, checkpoints and graceful stop together.

import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Generator } from '../engine/random.js';
import { writeFileAtomic, type JsonValue } from './checkpoint.js';
import type { StopFlag } from './signals.js';

// ---------------------------------------------------------------- non-finite guard

/** A loss term became NaN or ±Infinity; the run stops without saving over the last good checkpoint. */
export class NonFiniteLossError extends Error {
  constructor(readonly term: string, readonly value: number, readonly step: number, readonly lastCheckpoint: string | null) {
    super(`loss term '${term}' became ${String(value)} at step ${step}; ` +
      (lastCheckpoint !== null ? `the last good checkpoint is kept at ${lastCheckpoint}` : 'no checkpoint had been written yet') +
      ' (nothing was saved after it). Common causes: learning rate too high, bf16 overflow (try --precision fp32), bad input data.');
    this.name = 'NonFiniteLossError';
  }
}

/** Throws NonFiniteLossError unless `value` is a finite number. */
export function assertFinite(name: string, value: number, step: number, lastCheckpoint: string | null = null): void {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new NonFiniteLossError(name, value, step, lastCheckpoint);
}

// ---------------------------------------------------------------- run config

/** Dotted paths where two JSON values differ ('' for the root). */
export function diffJson(a: JsonValue, b: JsonValue, path = ''): string[] {
  const isObj = (v: JsonValue): v is { [k: string]: JsonValue } => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (isObj(a) && isObj(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => (k in a && k in b ? diffJson(a[k]!, b[k]!, path ? `${path}.${k}` : k) : [path ? `${path}.${k}` : k]));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [path];
}

export async function readRunConfig(runDir: string): Promise<JsonValue | null> {
  const path = join(runDir, 'config.json');
  let text: string;
  try { text = await readFile(path, 'utf8'); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  try { return JSON.parse(text) as JsonValue; } catch (e) { throw new SyntaxError(`${path} is not valid JSON (${(e as Error).message})`); }
}

/** Writes RUN/config.json atomically (creating RUN). */
export async function writeRunConfig(runDir: string, config: JsonValue): Promise<void> {
  await mkdir(runDir, { recursive: true });
  await writeFileAtomic(join(runDir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
}

/**
 * Writes the run's config, or — when the run already has one — checks that only keys listed in
 * `allowChanged` (dotted paths or their prefixes, e.g. 'train.steps') differ, then records the new
 * one. Returns the paths that changed. Resuming with another model or data config is an error.
 */
export async function ensureRunConfig(runDir: string, config: JsonValue, opts: { allowChanged?: readonly string[] } = {}): Promise<string[]> {
  const old = await readRunConfig(runDir);
  const changed = old === null ? [] : diffJson(old, config);
  const allowed = opts.allowChanged ?? [];
  const bad = changed.filter((p) => !allowed.some((a) => p === a || p.startsWith(`${a}.`)));
  if (bad.length) throw new RangeError(`${join(runDir, 'config.json')}: the run was started with a different config (${bad.join(', ')} differ); use a new output directory, or the original settings to resume`);
  if (old === null || changed.length) await writeRunConfig(runDir, config);
  return changed;
}

/**
 * The settings of a run config that no resume may change: `allowChanged` paths ('train.steps', ...) and
 * the top-level keys in `omit` (e.g. paths, so a moved run directory still resumes) removed. Trainers
 * store it in every checkpoint's state.extra.runConfig and check it on resume (checkResumeConfig).
 */
export function fixedRunConfig(config: JsonValue, allowChanged: readonly string[], omit: readonly string[] = []): JsonValue {
  const out = JSON.parse(JSON.stringify(config)) as Record<string, JsonValue>;
  for (const path of [...allowChanged, ...omit]) {
    const keys = path.split('.');
    let o: JsonValue | undefined = out;
    for (const k of keys.slice(0, -1)) o = o !== null && typeof o === 'object' && !Array.isArray(o) ? o[k] : undefined;
    if (o !== null && typeof o === 'object' && !Array.isArray(o)) delete o[keys[keys.length - 1]!];
  }
  return out;
}

/**
 * Refuses a checkpoint written by a run with other fixed settings (one a stopping process left in a
 * directory that was just cleared, a copied directory), instead of silently resuming it. Checkpoints
 * from before this check (no runConfig stored) pass.
 */
export function checkResumeConfig(where: string, checkpointDir: string, stored: JsonValue | undefined, fixed: JsonValue): void {
  const differ = stored === undefined ? [] : diffJson(stored, fixed);
  if (differ.length) throw new RangeError(`${where}: ${checkpointDir} was written by a run with other settings (${differ.join(', ')} differ); remove it or use a new output directory`);
}

// ---------------------------------------------------------------- data order

export interface DataOrderState { epoch: number; position: number }

/**
 * A shuffled pass over `n` samples per epoch, reproducible from (seed, epoch) alone, so a checkpoint
 * only needs {epoch, position}. Batches never straddle epochs: a tail shorter than the batch is
 * skipped (drop-last), so every batch has the same size.
 */
export class DataOrder {
  epoch = 0;
  position = 0;
  private perm: Int32Array | null = null;
  private permEpoch = -1;

  constructor(readonly n: number, readonly seed: number) {
    if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`DataOrder: n must be a positive integer, got ${n}`);
    if (!Number.isFinite(seed)) throw new RangeError(`DataOrder: seed must be a finite number, got ${seed}`);
  }

  /** The permutation of epoch `e` (Fisher–Yates from a generator seeded by seed and e). */
  permutation(e: number): Int32Array {
    if (this.perm !== null && this.permEpoch === e) return this.perm;
    const g = new Generator((Math.imul(this.seed | 0, 0x9e3779b1) ^ Math.imul(e + 1, 0x85ebca6b)) | 0);
    const p = new Int32Array(this.n);
    for (let i = 0; i < this.n; i++) p[i] = i;
    for (let i = this.n - 1; i > 0; i--) { const j = g.int(i + 1); const t = p[i]!; p[i] = p[j]!; p[j] = t; }
    this.perm = p; this.permEpoch = e;
    return p;
  }

  /** The sample indices of the next batch. */
  next(batchSize: number): Int32Array {
    if (!Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > this.n) throw new RangeError(`DataOrder.next: batch size must be an integer in [1, ${this.n}], got ${batchSize}`);
    if (this.position + batchSize > this.n) { this.epoch++; this.position = 0; }
    const out = this.permutation(this.epoch).slice(this.position, this.position + batchSize);
    this.position += batchSize;
    return out;
  }

  getState(): DataOrderState { return { epoch: this.epoch, position: this.position }; }

  setState(s: DataOrderState): this {
    if (!Number.isSafeInteger(s?.epoch) || s.epoch < 0 || !Number.isSafeInteger(s.position) || s.position < 0 || s.position > this.n) {
      throw new RangeError(`DataOrder.setState: expected {epoch ≥ 0, position in [0, ${this.n}]}, got ${JSON.stringify(s)}`);
    }
    this.epoch = s.epoch; this.position = s.position;
    return this;
  }
}

// ---------------------------------------------------------------- the loop

export interface TrainLoopOptions {
  /** Steps already completed (0 for a new run, the checkpoint's step on resume). */
  startStep: number;
  /** Steps to reach. */
  totalSteps: number;
  /** Save every this many steps; the loop also saves at the end and on a stop request. */
  checkpointEvery: number;
  /** The checkpoint the run resumed from, named in the non-finite error. */
  lastCheckpoint?: string | null;
  /** Polled after every step. */
  stop?: StopFlag;
  /** Runs one optimizer step (the `step`-th, 0-based) and returns its loss terms, which must be finite. */
  runStep(step: number): Record<string, number> | Promise<Record<string, number>>;
  /** After a step with finite losses: logging, previews, progress. `stepsDone` counts it. */
  afterStep?(stepsDone: number, losses: Record<string, number>): void | Promise<void>;
  /** Writes a checkpoint at `stepsDone` and returns its directory. */
  saveCheckpoint(stepsDone: number): Promise<string>;
}

export interface TrainLoopResult {
  /** Steps completed. */
  step: number;
  /** Whether the loop ended because of a stop request. */
  stopped: boolean;
  reason: string | null;
  /** The newest checkpoint written (or resumed from). */
  lastCheckpoint: string | null;
}

/**
 * Runs steps until `totalSteps` or a stop request, checkpointing every `checkpointEvery` steps and
 * once more at the end. A non-finite loss term throws NonFiniteLossError before anything is saved.
 */
export async function runTrainLoop(opts: TrainLoopOptions): Promise<TrainLoopResult> {
  const { startStep, totalSteps, checkpointEvery } = opts;
  if (!Number.isSafeInteger(startStep) || startStep < 0) throw new RangeError(`runTrainLoop: startStep must be a non-negative integer, got ${startStep}`);
  if (!Number.isSafeInteger(totalSteps) || totalSteps < 0) throw new RangeError(`runTrainLoop: totalSteps must be a non-negative integer, got ${totalSteps}`);
  if (!Number.isSafeInteger(checkpointEvery) || checkpointEvery < 1) throw new RangeError(`runTrainLoop: checkpointEvery must be a positive integer, got ${checkpointEvery}`);
  let step = startStep;
  let last = opts.lastCheckpoint ?? null;
  let unsaved = false;
  while (step < totalSteps && opts.stop?.requested !== true) {
    const losses = await opts.runStep(step);
    for (const [name, v] of Object.entries(losses)) assertFinite(name, v, step + 1, last);
    step++;
    unsaved = true;
    await opts.afterStep?.(step, losses);
    if (step % checkpointEvery === 0) { last = await opts.saveCheckpoint(step); unsaved = false; }
    // A synchronous step never reaches the event loop, where signal handlers run: without this turn,
    // Ctrl-C would only be seen at the next checkpoint's file I/O. Costs microseconds per step.
    await new Promise<void>((resolve) => { setImmediate(resolve); });
  }
  if (unsaved) last = await opts.saveCheckpoint(step);
  const stopped = step < totalSteps;
  return { step, stopped, reason: stopped ? (opts.stop?.reason ?? null) : null, lastCheckpoint: last };
}
