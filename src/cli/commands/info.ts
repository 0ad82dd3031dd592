// `vilg info`: what the engine runs on.
import type { Command } from '../command.js';

export const commands: Record<string, Command> = {
  info: {
    summary: 'show the backend in use, oneDNN version, CPU ISA, threads and the GC mode of node',
    options: {},
    async run() {
      const e = await import('../../engine/index.js');
      const addon = e.nativeAddon();
      const info = { backend: e.getBackend(), precision: e.getPrecision(), native: addon ? addon.version() : null, nativeError: e.nativeLoadError(), nativeKernels: e.nativeKernelNames(),
        // 'single-threaded' when node runs with --single-threaded-gc, as the `vilg` binary does (src/cli/main.ts says why)
        gc: process.execArgv.includes('--single-threaded-gc') ? 'single-threaded' : 'default (parallel helper threads)' };
      process.stdout.write(JSON.stringify(info, null, 2) + '\n');
    },
  },
};
