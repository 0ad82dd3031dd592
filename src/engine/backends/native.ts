// The native backend: loads the N-API addon over oneDNN (native/, built by scripts/build-native.mjs)
// and registers its kernels as overrides. Selection:
//   VILG_BACKEND=native     the addon must load, or start-up fails with the reason;
//   VILG_BACKEND=reference  the addon is not loaded at all;
//   unset                   native when the addon loads, else reference with one warning.
// OpenMP reads OMP_NUM_THREADS when the library loads, so it is settled before the require.

import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { markNativeAvailable } from '../kernels.js';

/** The raw addon surface (see native/addon.cc). Only backends/native*.ts may call it, after validation. */
export interface NativeAddon {
  version(): { dnnl: string; isa: string; threads: number };
  [fn: string]: unknown;
}

let addon: NativeAddon | null = null;
let loadError: string | null = null;

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return dir;
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
    addon = createRequire(import.meta.url)(path) as NativeAddon;
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
  markNativeAvailable();
}

loadAddon();

/** The loaded addon, or null when the reference backend is in use. */
export function nativeAddon(): NativeAddon | null { return addon; }
export function nativeLoadError(): string | null { return loadError; }
