// Exact, atomic, resumable training checkpoints in a run directory.
//
//   RUN/config.json                         the run's full config (run.ts: writeRunConfig)
//   RUN/checkpoints/step-0000120/           one complete checkpoint
//       model.safetensors                   the model's state dict (parameters + buffers, as stored)
//       optimizer.safetensors               its AdamW state (adamwStateToTensors, prefix 'optim')
//       <name>.safetensors                  each extra module (e.g. 'discriminator')
//       <name>.optimizer.safetensors        each extra optimizer
//       state.json                          TrainState + RNG states + a manifest (bytes, sha256 per file)
//   RUN/checkpoints/latest                  {"step":120,"dir":"step-0000120"}, written LAST
//   RUN/checkpoints/best                    same format, optional
//
// Why this is crash-safe: a checkpoint is written into `.tmp-*`, every file fsynced, state.json (with
// the manifest) last, then the directory is renamed into place and only then `latest` is replaced
// atomically. A crash at any point leaves either the previous `latest` or the new one, never a pointer
// to a half-written directory; a directory damaged later (disk, user) fails its manifest check and
// loadLatestCheckpoint falls back to the previous complete one with a warning.

import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { getPrecision } from '../engine/kernels.js';
import { adamwStateFromTensors, adamwStateToTensors, type AdamW } from '../engine/optim/adamw.js';
import { parseSafetensors, serializeSafetensors } from '../engine/io/safetensors.js';
import type { Generator, GeneratorState } from '../engine/random.js';
import { fmtShape, sameShape } from '../engine/shape.js';
import type { Tensor } from '../engine/tensor.js';
import type { Module } from '../nn/module.js';
import { fsyncDir, writeFileAtomic, writeFileSynced as writeSynced } from '../util/atomic.js';

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

/** The best value of one tracked metric so far. */
export interface BestMetric { name: string; value: number; step: number; mode: 'min' | 'max' }

/** Everything besides tensors that a resumed run needs to continue exactly. */
export interface TrainState {
  /** Optimizer steps completed. */
  step: number;
  /** Epoch the next training sample comes from (0-based). */
  epoch: number;
  /** Samples of that epoch already consumed (data-order position). */
  dataPosition: number;
  /** Best tracked metric so far, if any. */
  best: BestMetric | null;
  /** Training wall time accumulated over all sessions, seconds. */
  wallTimeS: number;
  /** Compute precision the run trains in ('fp32' | 'bf16'); master weights are always f32. */
  precision: string;
  /** Trainer-specific JSON (schedule position, codebook statistics, ...). */
  extra: { [k: string]: JsonValue };
}

/** What is saved and restored besides the state. */
export interface CheckpointParts {
  model: Module;
  optimizer: AdamW;
  /** Further modules by name (e.g. { discriminator }), each in `<name>.safetensors`. */
  extraModules?: Readonly<Record<string, Module>>;
  /** Further optimizers by name (e.g. { discriminator: discOpt }), each in `<name>.optimizer.safetensors`. */
  extraOptimizers?: Readonly<Record<string, AdamW>>;
  /** Random generators by name; their states go to state.json and are restored on load. */
  generators?: Readonly<Record<string, Generator>>;
}

export const CHECKPOINT_DEFAULTS = Object.freeze({
  /** Complete checkpoints kept (the newest K); the one `best` points at is kept in addition. */
  keep: 3,
});

export interface SaveOptions {
  /** How many of the newest checkpoints to keep. */
  keep?: number;
  /** Also point `best` at this checkpoint. */
  best?: boolean;
  /** Test hook called at each stage ('file:<name>', 'state', 'renamed', 'latest'); throwing simulates a crash there. */
  hook?: (stage: string) => void | Promise<void>;
}

export interface LoadOptions {
  /** Where fallback warnings go (default: stderr). */
  warn?: (message: string) => void;
}

export interface LoadedCheckpoint { dir: string; state: TrainState; rng: Record<string, GeneratorState> }

/** A checkpoint's files are missing, truncated or corrupt (the message names the file). */
export class CorruptCheckpointError extends Error {
  constructor(readonly file: string, reason: string) { super(`${file}: ${reason}`); this.name = 'CorruptCheckpointError'; }
}

/** The checkpoint is intact but does not fit what the caller passes (other model, missing part). */
export class CheckpointMismatchError extends Error {
  constructor(message: string) { super(message); this.name = 'CheckpointMismatchError'; }
}

const FORMAT = 'ernie-vilg-checkpoint';
const VERSION = 1;
const NAME_RE = /^[A-Za-z][A-Za-z0-9_-]*$/;
const RESERVED = new Set(['model', 'optimizer', 'state']);
const STEP_RE = /^step-(\d+)$/;

export const stepDirName = (step: number): string => `step-${String(step).padStart(7, '0')}`;
export const checkpointsDir = (runDir: string): string => join(runDir, 'checkpoints');

interface Manifest { [file: string]: { bytes: number; sha256: string } }
interface StateFile {
  format: string; version: number; createdAt: string; state: TrainState;
  rng: Record<string, GeneratorState>; modules: string[]; optimizers: string[]; files: Manifest;
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

export { writeFileAtomic };

function checkName(kind: string, name: string): void {
  if (!NAME_RE.test(name) || RESERVED.has(name)) throw new RangeError(`${kind} name '${name}' must match ${NAME_RE} and not be one of ${[...RESERVED].join(', ')}`);
}

function checkState(s: TrainState): void {
  const nonNegInt = (k: 'step' | 'epoch' | 'dataPosition'): void => {
    if (!Number.isSafeInteger(s[k]) || s[k] < 0) throw new RangeError(`checkpoint state.${k} must be a non-negative integer, got ${String(s[k])}`);
  };
  nonNegInt('step'); nonNegInt('epoch'); nonNegInt('dataPosition');
  if (!(Number.isFinite(s.wallTimeS) && s.wallTimeS >= 0)) throw new RangeError(`checkpoint state.wallTimeS must be a finite number ≥ 0, got ${String(s.wallTimeS)}`);
  if (typeof s.precision !== 'string') throw new TypeError('checkpoint state.precision must be a string');
  if (s.extra === null || typeof s.extra !== 'object' || Array.isArray(s.extra)) throw new TypeError('checkpoint state.extra must be a JSON object');
}

/** A fresh state at step 0 (precision defaults to the engine's current one). */
export function initialTrainState(over: Partial<TrainState> = {}): TrainState {
  return { step: 0, epoch: 0, dataPosition: 0, best: null, wallTimeS: 0, precision: getPrecision(), extra: {}, ...over };
}

/** The tensors of every file of a checkpoint, by file name. */
function collectFiles(parts: CheckpointParts): Map<string, Record<string, Tensor>> {
  const files = new Map<string, Record<string, Tensor>>();
  files.set('model.safetensors', parts.model.stateDict());
  files.set('optimizer.safetensors', adamwStateToTensors(parts.optimizer.stateDict(), 'optim'));
  for (const [name, m] of Object.entries(parts.extraModules ?? {})) { checkName('extra module', name); files.set(`${name}.safetensors`, m.stateDict()); }
  for (const [name, o] of Object.entries(parts.extraOptimizers ?? {})) { checkName('extra optimizer', name); files.set(`${name}.optimizer.safetensors`, adamwStateToTensors(o.stateDict(), 'optim')); }
  return files;
}

/**
 * Saves a complete checkpoint for `state.step` and returns its directory. An existing checkpoint of
 * the same step is replaced; checkpoints newer than this step (an abandoned timeline after a resume
 * from an older one) are removed, then all but the newest `keep` (and `best`) are pruned.
 */
export async function saveCheckpoint(runDir: string, parts: CheckpointParts & { state: TrainState }, opts: SaveOptions = {}): Promise<string> {
  const keep = opts.keep ?? CHECKPOINT_DEFAULTS.keep;
  if (!Number.isInteger(keep) || keep < 1) throw new RangeError(`saveCheckpoint: keep must be a positive integer, got ${keep}`);
  checkState(parts.state);
  const hook = opts.hook ?? ((): void => undefined);
  const ckDir = checkpointsDir(runDir);
  await mkdir(ckDir, { recursive: true });
  const step = parts.state.step;
  const rng: Record<string, GeneratorState> = {};
  for (const [name, g] of Object.entries(parts.generators ?? {})) { checkName('generator', name); rng[name] = g.getState(); }
  const files = collectFiles(parts); // before any I/O: a bad part fails without touching the disk

  const tmp = join(ckDir, `.tmp-${stepDirName(step)}-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(tmp);
  try {
    const manifest: Manifest = {};
    for (const [file, tensors] of files) {
      const bytes = serializeSafetensors(tensors, { format: FORMAT });
      await writeSynced(join(tmp, file), bytes);
      manifest[file] = { bytes: bytes.length, sha256: sha256(bytes) };
      await hook(`file:${file}`);
    }
    const stateFile: StateFile = {
      format: FORMAT, version: VERSION, createdAt: new Date().toISOString(), state: parts.state, rng,
      modules: Object.keys(parts.extraModules ?? {}), optimizers: Object.keys(parts.extraOptimizers ?? {}), files: manifest,
    };
    await writeSynced(join(tmp, 'state.json'), JSON.stringify(stateFile, null, 1) + '\n');
    await hook('state');
    await fsyncDir(tmp);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  const final = join(ckDir, stepDirName(step));
  const trash = join(ckDir, `.trash-${stepDirName(step)}-${process.pid}-${randomBytes(4).toString('hex')}`);
  await rename(final, trash).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'ENOENT') throw e; });
  await rename(tmp, final);
  await fsyncDir(ckDir);
  await hook('renamed');
  const pointer = JSON.stringify({ step, dir: stepDirName(step) }) + '\n';
  await writeFileAtomic(join(ckDir, 'latest'), pointer);
  if (opts.best === true) await writeFileAtomic(join(ckDir, 'best'), pointer);
  await hook('latest');
  await prune(ckDir, step, keep);
  return final;
}

async function readPointer(ckDir: string, name: 'latest' | 'best'): Promise<{ step: number; dir: string } | null> {
  let text: string;
  try { text = await readFile(join(ckDir, name), 'utf8'); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  let p: unknown;
  try { p = JSON.parse(text); } catch { throw new CorruptCheckpointError(join(ckDir, name), 'is not valid JSON'); }
  const o = p as { step?: unknown; dir?: unknown };
  if (typeof o?.dir !== 'string' || !Number.isSafeInteger(o.step) || o.dir !== stepDirName(o.step as number)) {
    throw new CorruptCheckpointError(join(ckDir, name), `is not a {"step", "dir"} pointer: ${text.slice(0, 80)}`);
  }
  return { step: o.step as number, dir: o.dir };
}

/** Steps of the checkpoint directories present, newest first. */
export async function listCheckpointSteps(runDir: string): Promise<number[]> {
  let names: string[];
  try { names = await readdir(checkpointsDir(runDir)); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  return names.map((n) => STEP_RE.exec(n)).filter((m) => m !== null).map((m) => Number(m[1])).sort((a, b) => b - a);
}

async function prune(ckDir: string, current: number, keep: number): Promise<void> {
  const runDir = join(ckDir, '..');
  let best: { step: number } | null = null;
  try { best = await readPointer(ckDir, 'best'); } catch { best = null; }
  const steps = await listCheckpointSteps(runDir);
  const kept = new Set(steps.filter((s) => s <= current).slice(0, keep));
  if (best !== null && best.step <= current) kept.add(best.step);
  else if (best !== null) await rm(join(ckDir, 'best'), { force: true }); // it pointed into the abandoned timeline
  for (const s of steps) if (!kept.has(s)) await rm(join(ckDir, stepDirName(s)), { recursive: true, force: true });
  for (const n of await readdir(ckDir)) {
    if (n.startsWith('.trash-')) await rm(join(ckDir, n), { recursive: true, force: true });
    // Leftovers of crashed saves: only another process's (ours are removed on failure).
    else if (n.startsWith('.tmp-') && !n.includes(`-${process.pid}-`)) await rm(join(ckDir, n), { recursive: true, force: true });
  }
}

interface ReadCheckpoint { dir: string; stateFile: StateFile; tensors: Map<string, Record<string, Tensor>> }

/** Reads and verifies every file of one checkpoint directory (no model is touched). */
async function readCheckpointDir(dir: string): Promise<ReadCheckpoint> {
  const statePath = join(dir, 'state.json');
  let text: string;
  try { text = await readFile(statePath, 'utf8'); } catch (e) { throw new CorruptCheckpointError(statePath, `cannot be read (${(e as Error).message})`); }
  let sf: StateFile;
  try { sf = JSON.parse(text) as StateFile; } catch (e) { throw new CorruptCheckpointError(statePath, `is not valid JSON — truncated? (${(e as Error).message})`); }
  if (sf?.format !== FORMAT || sf.version !== VERSION) throw new CorruptCheckpointError(statePath, `is not a ${FORMAT} v${VERSION} state file`);
  if (sf.files === null || typeof sf.files !== 'object') throw new CorruptCheckpointError(statePath, 'has no file manifest');
  try { checkState(sf.state); } catch (e) { throw new CorruptCheckpointError(statePath, (e as Error).message); }
  const tensors = new Map<string, Record<string, Tensor>>();
  for (const [file, want] of Object.entries(sf.files)) {
    const path = join(dir, file);
    let bytes: Buffer;
    try { bytes = await readFile(path); } catch (e) { throw new CorruptCheckpointError(path, `cannot be read (${(e as Error).message})`); }
    if (bytes.length !== want.bytes) throw new CorruptCheckpointError(path, `has ${bytes.length} bytes, the manifest says ${want.bytes} (truncated or overwritten)`);
    if (sha256(bytes) !== want.sha256) throw new CorruptCheckpointError(path, 'does not match its sha256 in the manifest (corrupt)');
    try { tensors.set(file, parseSafetensors(bytes).tensors); } catch (e) { throw new CorruptCheckpointError(path, (e as Error).message); }
  }
  return { dir, stateFile: sf, tensors };
}

function checkModuleFits(file: string, m: Module, sd: Record<string, Tensor>): void {
  const own = new Map([...m.namedParameters(), ...m.namedBuffers()]);
  const missing = [...own.keys()].filter((n) => !(n in sd));
  const unexpected = Object.keys(sd).filter((n) => !own.has(n));
  const mis = [...own].filter(([n, t]) => sd[n] !== undefined && !sameShape(sd[n]!.shape, t.shape)).map(([n, t]) => `${n} (checkpoint ${fmtShape(sd[n]!.shape)}, model ${fmtShape(t.shape)})`);
  if (missing.length || unexpected.length || mis.length) {
    const parts = [missing.length ? `missing ${missing.join(', ')}` : '', unexpected.length ? `unexpected ${unexpected.join(', ')}` : '', mis.length ? `mis-shaped ${mis.join(', ')}` : ''].filter(Boolean);
    throw new CheckpointMismatchError(`${file} does not fit the model: ${parts.join('; ')}`);
  }
}

function checkOptimizerFits(file: string, o: AdamW, tensors: Record<string, Tensor>): ReturnType<typeof adamwStateFromTensors> {
  let st: ReturnType<typeof adamwStateFromTensors>;
  try { st = adamwStateFromTensors(tensors, 'optim'); } catch (e) { throw new CheckpointMismatchError(`${file}: ${(e as Error).message}`); }
  if (st.steps.length !== o.params.length) throw new CheckpointMismatchError(`${file} holds state for ${st.steps.length} parameters, the optimizer has ${o.params.length}`);
  st.expAvg.forEach((t, i) => {
    if (!sameShape(t.shape, o.params[i]!.shape)) throw new CheckpointMismatchError(`${file}: moment ${i} is ${fmtShape(t.shape)}, parameter ${i} is ${fmtShape(o.params[i]!.shape)}`);
  });
  return st;
}

/** Restores `parts` from a verified checkpoint; checks everything first, so a mismatch changes nothing. */
function apply(ck: ReadCheckpoint, parts: CheckpointParts): LoadedCheckpoint {
  const sf = ck.stateFile;
  const need = (file: string): Record<string, Tensor> => {
    const t = ck.tensors.get(file);
    if (t === undefined) throw new CheckpointMismatchError(`${join(ck.dir, file)} is not in this checkpoint (it holds ${[...ck.tensors.keys()].join(', ')})`);
    return t;
  };
  const mods: Array<[string, Module]> = [['model.safetensors', parts.model], ...Object.entries(parts.extraModules ?? {}).map(([n, m]): [string, Module] => [`${n}.safetensors`, m])];
  const opts: Array<[string, AdamW]> = [['optimizer.safetensors', parts.optimizer], ...Object.entries(parts.extraOptimizers ?? {}).map(([n, o]): [string, AdamW] => [`${n}.optimizer.safetensors`, o])];
  const extraFiles = [...ck.tensors.keys()].filter((f) => !mods.some(([m]) => m === f) && !opts.some(([o]) => o === f));
  if (extraFiles.length) throw new CheckpointMismatchError(`${ck.dir} also holds ${extraFiles.join(', ')}, which nothing was passed to restore`);
  for (const [f, m] of mods) checkModuleFits(join(ck.dir, f), m, need(f));
  const optStates = opts.map(([f, o]) => checkOptimizerFits(join(ck.dir, f), o, need(f)));
  const gens = parts.generators ?? {};
  const savedGens = Object.keys(sf.rng ?? {}).sort(), givenGens = Object.keys(gens).sort();
  if (savedGens.join() !== givenGens.join()) throw new CheckpointMismatchError(`${join(ck.dir, 'state.json')} has generators [${savedGens.join(', ')}] but [${givenGens.join(', ')}] were passed`);

  for (const [f, m] of mods) m.loadStateDict(need(f));
  opts.forEach(([, o], i) => o.loadStateDict(optStates[i]!));
  for (const [n, g] of Object.entries(gens)) g.setState(sf.rng[n]!);
  return { dir: ck.dir, state: sf.state, rng: sf.rng };
}

/** Loads one specific checkpoint directory; throws CorruptCheckpointError / CheckpointMismatchError. */
export async function loadCheckpoint(dir: string, parts: CheckpointParts): Promise<LoadedCheckpoint> {
  return apply(await readCheckpointDir(dir), parts);
}

/**
 * Restores the newest complete checkpoint of a run into `parts` and returns its state, or null when
 * the run has none. A checkpoint that fails verification is skipped with a warning naming the file,
 * and the previous one is tried; if none verifies the error lists every failure. Directories newer
 * than `latest` never count (their save had not finished). A mismatch (another model) is thrown at once.
 */
export async function loadLatestCheckpoint(runDir: string, parts: CheckpointParts, opts: LoadOptions = {}): Promise<LoadedCheckpoint | null> {
  const warn = opts.warn ?? ((m: string): void => { process.stderr.write(`warning: ${m}\n`); });
  const ckDir = checkpointsDir(runDir);
  const steps = await listCheckpointSteps(runDir);
  let latest: { step: number } | null = null;
  try { latest = await readPointer(ckDir, 'latest'); } catch (e) { warn(`${(e as Error).message}; looking for checkpoints by directory`); }
  if (latest === null && steps.length === 0) return null;
  let candidates = steps;
  if (latest !== null) candidates = [latest.step, ...steps.filter((s) => s < latest!.step)];
  else warn(`${join(ckDir, 'latest')} is missing or unreadable; considering every checkpoint directory`);
  const failures: string[] = [];
  for (const s of candidates) {
    let ck: ReadCheckpoint;
    try { ck = await readCheckpointDir(join(ckDir, stepDirName(s))); } catch (e) {
      if (!(e instanceof CorruptCheckpointError)) throw e;
      failures.push(e.message);
      const prev = candidates[candidates.indexOf(s) + 1];
      warn(`skipping checkpoint ${stepDirName(s)}: ${e.message}${prev !== undefined ? `; falling back to ${stepDirName(prev)}` : ''}`);
      continue;
    }
    return apply(ck, parts);
  }
  throw new CorruptCheckpointError(ckDir, `no complete checkpoint could be loaded:\n  ${failures.join('\n  ')}`);
}
