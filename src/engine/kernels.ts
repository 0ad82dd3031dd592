// Kernel registry: the one interface both backends implement.
//
// A kernel works on raw TypedArrays plus sizes and knows nothing of autograd; ops (src/engine/ops)
// wrap kernels into differentiable functions. Each op file declares the signatures of its kernels by
// augmenting `KernelMap` and registers the plain-TypeScript reference implementation next to the op.
// The native backend (backends/native.ts) overrides the kernels it accelerates; any kernel it does not
// override runs the reference implementation, so both backends always expose the full set.

// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface KernelMap {}
export type KernelName = keyof KernelMap;

export type BackendName = 'reference' | 'native';
export type Precision = 'fp32' | 'bf16';

const impls: Record<BackendName, Partial<KernelMap>> = { reference: {}, native: {} };
let current: BackendName = 'reference';
let nativeAvailable = false;
let precision: Precision = 'fp32';

/** Registers the reference (executable-spec) implementation of a kernel. */
export function defineKernel<K extends KernelName>(name: K, impl: KernelMap[K]): void {
  impls.reference[name] = impl;
}

/** Registers a native override. Called by the native backend once its addon has loaded. */
export function defineNativeKernel<K extends KernelName>(name: K, impl: KernelMap[K]): void {
  impls.native[name] = impl;
}

/** The implementation of `name` on the active backend (native falls back to reference). */
export function kernel<K extends KernelName>(name: K): KernelMap[K] {
  const impl = (current === 'native' ? impls.native[name] : undefined) ?? impls.reference[name];
  if (impl === undefined) throw new Error(`kernel '${String(name)}' is not registered (is its op module imported?)`);
  return profile === null ? impl : timed(name, impl);
}

// ---------------------------------------------------------------- opt-in profiler
// VILG_PROFILE=1 times every kernel call (wall clock, synchronous kernels) and prints a table to stderr
// at exit: where a step's time goes, by kernel, and how much is left outside kernels (JS, autograd).
// Off by default: the wrapper costs a closure call and two clock reads per kernel.

export interface KernelProfileRow { kernel: string; calls: number; ms: number }
let profile: Map<string, KernelProfileRow> | null = null;
const wrapped = new Map<unknown, unknown>();

function timed<K extends KernelName>(name: K, impl: KernelMap[K]): KernelMap[K] {
  let w = wrapped.get(impl);
  if (w === undefined) {
    const key = `${impls.native[name] === impl ? 'native' : 'reference'}:${String(name)}`, f = impl as unknown as (...a: unknown[]) => unknown;
    w = (...args: unknown[]): unknown => {
      const t0 = performance.now();
      try { return f(...args); } finally {
        const row = profile?.get(key) ?? { kernel: key, calls: 0, ms: 0 };
        row.calls++; row.ms += performance.now() - t0;
        profile?.set(key, row);
      }
    };
    wrapped.set(impl, w);
  }
  return w as KernelMap[K];
}

/** Starts (or restarts) kernel timing; `kernel()` returns timed wrappers until stopProfile(). */
export function startProfile(): void { profile = new Map(); }
/** Stops timing and returns the rows, slowest first. */
export function stopProfile(): KernelProfileRow[] {
  const rows = [...(profile?.values() ?? [])].sort((a, b) => b.ms - a.ms);
  profile = null;
  return rows;
}
/** The rows so far, slowest first (profiling continues). */
export function profileRows(): KernelProfileRow[] { return [...(profile?.values() ?? [])].sort((a, b) => b.ms - a.ms); }

/** A table of profile rows, with each kernel's share of `totalMs` (the wall time they ran inside). */
export function formatProfile(rows: readonly KernelProfileRow[], totalMs: number): string {
  const inKernels = rows.reduce((s, r) => s + r.ms, 0);
  const line = (name: string, calls: string, ms: number): string =>
    `${name.padEnd(32)} ${calls.padStart(8)} ${ms.toFixed(1).padStart(10)} ms ${(100 * ms / totalMs).toFixed(1).padStart(6)}%`;
  return [
    `${'kernel'.padEnd(32)} ${'calls'.padStart(8)} ${'time'.padStart(13)} ${'share'.padStart(7)}`,
    ...rows.map((r) => line(r.kernel, String(r.calls), r.ms)),
    line('(outside kernels: JS, autograd)', '', Math.max(0, totalMs - inKernels)),
    line('total', '', totalMs),
  ].join('\n');
}

if (typeof process !== 'undefined' && process.env['VILG_PROFILE'] === '1') {
  startProfile();
  const t0 = performance.now();
  process.on('exit', () => { process.stderr.write(`\nVILG_PROFILE kernel times (pid ${process.pid}):\n${formatProfile(profileRows(), performance.now() - t0)}\n`); });
}

/** The reference implementation, whatever the active backend (parity tests, fallbacks). */
export function referenceKernel<K extends KernelName>(name: K): KernelMap[K] {
  const impl = impls.reference[name];
  if (impl === undefined) throw new Error(`kernel '${String(name)}' is not registered`);
  return impl;
}

/** Whether `name` is registered at all (its op module has been imported). */
export function hasKernel(name: KernelName): boolean { return impls.reference[name] !== undefined; }
export function hasNativeKernel(name: KernelName): boolean { return impls.native[name] !== undefined; }
export function nativeKernelNames(): string[] { return Object.keys(impls.native); }

export function markNativeAvailable(): void { nativeAvailable = true; current = 'native'; }
export function isNativeAvailable(): boolean { return nativeAvailable; }
export function getBackend(): BackendName { return current; }

export function setBackend(name: BackendName): void {
  if (name !== 'reference' && name !== 'native') throw new RangeError(`unknown backend '${String(name)}' (use 'native' or 'reference')`);
  if (name === 'native' && !nativeAvailable) throw new Error('the native backend is not available: the addon did not load (see the warning printed at start-up)');
  current = name;
}

/** Runs `fn` on another backend, restoring the previous one afterwards. */
export function withBackend<T>(name: BackendName, fn: () => T): T {
  const prev = current;
  setBackend(name);
  try { return fn(); } finally { current = prev; }
}

/** Mixed precision: 'bf16' makes matmul/conv/attention round inputs to bf16 and accumulate in f32. */
export function getPrecision(): Precision { return precision; }
export function setPrecision(p: Precision): void {
  if (p !== 'fp32' && p !== 'bf16') throw new RangeError(`unknown precision '${String(p)}' (use 'fp32' or 'bf16')`);
  precision = p;
}
export function withPrecision<T>(p: Precision, fn: () => T): T {
  const prev = precision;
  setPrecision(p);
  try { return fn(); } finally { precision = prev; }
}
