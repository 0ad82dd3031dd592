// The native backend: loads the N-API addon over oneDNN (native/, built by scripts/build-native.mjs)
// and registers its kernels as overrides. Selection:
//   VILG_BACKEND=native     the addon must load, or start-up fails with the reason;
//   VILG_BACKEND=reference  the addon is not loaded at all;
//   unset                   native when the addon loads, else reference with one warning.
// OpenMP reads OMP_NUM_THREADS when the library loads, so it is settled before the require (unset: the
// OpenMP default, one thread per core). VILG_PRIMITIVE_CACHE caps the addon's LRU primitive cache
// (default 1024 entries; 0 disables caching). Kernel outputs from 4 KiB come from the addon's output pool
// (native/pool.h: blocks stay mapped and faulted in, since fresh pages fault in at ~12 µs each on our
// VMs); VILG_POOL=0 turns it off, VILG_POOL_MAX_MB caps the memory it keeps cached (default
// min(512, RAM/8) MB). Loading the addon also tunes glibc's malloc process-wide to keep freed memory
// mapped (see native/memory.cc); VILG_MALLOC_TUNING=0 opts out.

import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { packageRoot } from '../../util/package-root.js';
import { markNativeAvailable } from '../kernels.js';
import { registerNativeKernels } from './native-kernels.js';

type F32 = Float32Array;
type U16 = Uint16Array; // bf16 bits
export interface NativeNormStats { y: F32; mean: F32; rstd: F32 }
export interface NativeNormGrads { dx: F32; dgamma: F32 | null; dbeta: F32 | null }
/** The output pool's state: bytes handed out, kept warm, mapped; requests served warm (hits) or not. */
export interface NativePoolStats {
  enabled: boolean; liveBytes: number; cachedBytes: number; mappedBytes: number; maxCachedBytes: number;
  hits: number; misses: number; evictions: number;
}

/**
 * The raw addon surface (native/*.cc). Only backends/native*.ts may call it, after validation; the addon
 * re-checks types and lengths and throws TypeError/RangeError rather than crash. Outputs are new arrays.
 * Conv dims: [N, H, W, CI, CO, KH, KW, strideH, strideW, padTop, padLeft, padBottom, padRight, OH, OW].
 */
export interface NativeAddon {
  version(): { dnnl: string; isa: string; bf16: string; threads: number };
  /** The LRU primitive cache (VILG_PRIMITIVE_CACHE entries). */
  cacheStats(): { size: number; capacity: number; hits: number; misses: number };
  setCacheCapacity(capacity: number): void;
  cacheClear(): void;
  /** Outputs from 64 KiB are allocated through fn (uninitialised memory of exactly `bytes`; every kernel overwrites all of it); it takes precedence over the pool. */
  setOutputAllocator(fn: (bytes: number) => ArrayBuffer): void;
  /** The output pool: `enabled` for this thread's outputs, `maxCachedBytes` (process-wide) caps released blocks kept warm. */
  configurePool(options: { enabled?: boolean; maxCachedBytes?: number }): void;
  poolStats(): NativePoolStats;
  /** bias: f32 [n] added to every output row, or null. */
  matmul(a: F32 | Uint16Array, b: F32 | Uint16Array, batch: number, m: number, k: number, n: number,
    transA: boolean, transB: boolean, strideA: number, strideB: number, bf16: boolean, bias: F32 | null): F32;
  /** Σ over the rows of g [rows, cols] → [cols], accumulated in double. */
  sumRows(g: F32, rows: number, cols: number): F32;
  /** Gather of x through non-negative strides (coalesced, rank ≤ 12) into a row-major [Π shape]. */
  stridedCopy(x: F32, offset: number, rank: number, shape: number[], strides: number[]): F32;
  /** One AdamW update of x, m, v in place (f32, one length), products in double as the reference. */
  adamwUpdate(x: F32, g: F32, m: F32, v: F32, b1: number, b2: number, eps: number, decay: number, stepSize: number, bc2Sqrt: number): void;
  /** out[i] = keep[i] ? x[i]·scale : 0. */
  dropout(x: F32, keep: Uint8Array, scale: number): F32;
  /** Σ x² in double (fixed chunks: independent of the thread count). */
  sumSquares(x: F32): number;
  /** out = x · c (c a double), rounded to f32. */
  scale(x: F32, c: number): F32;
  /** Per-row cross-entropy [rows] (0 at ignored rows) and log Σ exp [rows]; targets i32 [rows] in [0, cols) or ignoreIndex. */
  crossEntropy(x: F32, targets: Int32Array, rows: number, cols: number, ignoreIndex: number, labelSmoothing: number): { loss: F32; lse: F32 };
  /** dlogits [rows, cols] of the per-row losses weighted by g [rows]; zero rows where ignored. */
  crossEntropyBackward(x: F32, targets: Int32Array, lse: F32, g: F32, rows: number, cols: number, ignoreIndex: number, labelSmoothing: number): F32;
  conv2d(x: F32 | U16, w: F32 | U16, bias: F32 | null, dims: number[], bf16: boolean): F32;
  conv2dBackwardData(g: F32 | U16, w: F32 | U16, dims: number[], bf16: boolean): F32;
  conv2dBackwardWeights(x: F32 | U16, g: F32 | U16, dims: number[], withBias: boolean, bf16: boolean): { dw: F32; dbias: F32 | null };
  layerNorm(x: F32, gamma: F32 | null, beta: F32 | null, rows: number, cols: number, eps: number): NativeNormStats;
  layerNormBackward(x: F32, gamma: F32 | null, mean: F32, rstd: F32, g: F32, rows: number, cols: number, hasBeta: boolean): NativeNormGrads;
  groupNorm(x: F32, gamma: F32 | null, beta: F32 | null, n: number, p: number, c: number, groups: number, eps: number): NativeNormStats;
  groupNormBackward(x: F32, gamma: F32 | null, mean: F32, rstd: F32, g: F32, n: number, p: number, c: number, groups: number,
    hasBeta: boolean): NativeNormGrads;
  softmax(x: F32, rows: number, cols: number, log: boolean): F32;
  softmaxBackward(y: F32, g: F32, rows: number, cols: number, log: boolean): F32;
  unary(kind: string, x: F32): F32;
  unaryBackward(kind: string, x: F32, y: F32, g: F32): F32;
  /** a ∘ b → shape aShape; bShape has a's rank with each dim equal to a's or 1; negate flips the sign. */
  binary(kind: string, a: F32, aShape: number[], b: F32, bShape: number[], negate: boolean): F32;
  /** mask: 0/1 bytes [1 | BH, Sq, Sk] (maskShared: [1, Sq, Sk]) or null. */
  attention(q: F32, k: F32, v: F32, mask: Uint8Array | null, maskShared: boolean, bh: number, sq: number, sk: number,
    dh: number, dv: number, scale: number, bf16: boolean): { out: F32; probs: F32 };
  attentionBackward(q: F32, k: F32, v: F32, probs: F32, g: F32, bh: number, sq: number, sk: number, dh: number, dv: number,
    scale: number, bf16: boolean): { dq: F32; dk: F32; dv: F32 };
  /** CSR pattern rowPtr [S+1], cols [nnz] (validated, re-checked); keyValid [B, S] or null; probs [BH, nnz]. */
  sparseAttention(q: F32, k: F32, v: F32, rowPtr: Int32Array, cols: Int32Array, keyValid: Int32Array | null, b: number, h: number,
    s: number, dh: number, dv: number, scale: number, bf16: boolean): { out: F32; probs: F32 };
  sparseAttentionBackward(q: F32, k: F32, v: F32, rowPtr: Int32Array, cols: Int32Array, probs: F32, g: F32, b: number, h: number,
    s: number, dh: number, dv: number, scale: number, bf16: boolean): { dq: F32; dk: F32; dv: F32 };
  /** Inference over a KV cache: pattern rows [q0, q0 + sq) against cached keys [BH, sk, D] → out [BH, sq, dv]. */
  sparseAttentionRows(q: F32, k: F32, v: F32, rowPtr: Int32Array, cols: Int32Array, keyValid: Int32Array | null, b: number, h: number,
    sq: number, sk: number, q0: number, dh: number, dv: number, scale: number, bf16: boolean): F32;
}

const ADDON_FUNCTIONS: readonly (keyof NativeAddon)[] = [
  'version', 'cacheStats', 'setCacheCapacity', 'cacheClear', 'setOutputAllocator', 'configurePool', 'poolStats', 'matmul', 'sumRows', 'stridedCopy', 'adamwUpdate', 'dropout', 'sumSquares', 'scale', 'crossEntropy', 'crossEntropyBackward', 'conv2d', 'conv2dBackwardData',
  'conv2dBackwardWeights', 'layerNorm', 'layerNormBackward', 'groupNorm', 'groupNormBackward', 'softmax',
  'softmaxBackward', 'unary', 'unaryBackward', 'binary', 'attention', 'attentionBackward', 'sparseAttention', 'sparseAttentionBackward',
  'sparseAttentionRows',
];

let addon: NativeAddon | null = null;
let loadError: string | null = null;


/** VILG_POOL ('0' off, '1' or unset on) and VILG_POOL_MAX_MB (a non-negative integer) as pool options. */
function poolOptions(): { enabled: boolean; maxCachedBytes?: number } {
  const on = process.env['VILG_POOL'] ?? '';
  if (on !== '' && on !== '0' && on !== '1') throw new Error(`VILG_POOL must be '0' or '1', got '${on}'`);
  const mb = process.env['VILG_POOL_MAX_MB'] ?? '';
  if (mb !== '' && !/^\d+$/.test(mb)) throw new Error(`VILG_POOL_MAX_MB must be a non-negative integer, got '${mb}'`);
  return mb === '' ? { enabled: on !== '0' } : { enabled: on !== '0', maxCachedBytes: Math.min(Number(mb), 2 ** 30) * 2 ** 20 };
}

function loadAddon(): void {
  const mode = process.env['VILG_BACKEND'];
  if (mode !== undefined && mode !== '' && mode !== 'native' && mode !== 'reference') {
    throw new Error(`VILG_BACKEND must be 'native' or 'reference', got '${mode}'`);
  }
  if (mode === 'reference') return;
  const path = resolve(packageRoot(), 'build', 'Release', 'vilg_native.node');
  try {
    if (!existsSync(path)) throw new Error(`${path} does not exist (the addon was not built)`);
    const loaded = createRequire(import.meta.url)(path) as Record<string, unknown>;
    const missing = ADDON_FUNCTIONS.filter((f) => typeof loaded[f] !== 'function');
    if (missing.length > 0) throw new Error(`${path} is out of date (no ${missing.join(', ')}); run npm run build:native`);
    addon = loaded as unknown as NativeAddon;
  } catch (e) {
    loadError = (e as Error).message;
    if (mode === 'native') throw new Error(`VILG_BACKEND=native but the native addon failed to load: ${loadError}`);
    process.emitWarning(
      `ernie-vilg: native addon unavailable, using the (slow) reference backend.\n  reason: ${loadError}\n` +
      '  possible solutions: install oneDNN and a C++ toolchain (sudo apt-get install libdnnl-dev g++ make),\n' +
      '  then run `npm run build:native`; set VILG_BACKEND=reference to silence this warning.',
      { code: 'VILG_NO_NATIVE' });
    return;
  }
  const cap = process.env['VILG_PRIMITIVE_CACHE'];
  if (cap !== undefined && cap !== '') {
    if (!/^\d+$/.test(cap)) throw new Error(`VILG_PRIMITIVE_CACHE must be a non-negative integer, got '${cap}'`);
    addon.setCacheCapacity(Number(cap));
  }
  const pool = poolOptions();
  addon.configurePool(pool);
  // Without the pool: kernels overwrite their whole output, so skip the zero-fill of large ones (V8's
  // calloc). A registered allocator takes precedence over the pool, so only then.
  if (!pool.enabled) addon.setOutputAllocator((bytes) => Buffer.allocUnsafeSlow(bytes).buffer as ArrayBuffer);
  registerNativeKernels(addon);
  markNativeAvailable();
}

loadAddon();

/** The loaded addon, or null when the reference backend is in use. */
export function nativeAddon(): NativeAddon | null { return addon; }
export function nativeLoadError(): string | null { return loadError; }
