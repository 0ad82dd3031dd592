// `vilg info`: what the engine runs on.
import type { Command } from '../command.js';

export const commands: Record<string, Command> = {
  info: {
    summary: 'show the backend in use, oneDNN version, CPU ISA and threads',
    options: {},
    async run() {
      const e = await import('../../engine/index.js');
      const addon = e.nativeAddon();
      const info = { backend: e.getBackend(), precision: e.getPrecision(), native: addon ? addon.version() : null, nativeError: e.nativeLoadError(), nativeKernels: e.nativeKernelNames() };
      process.stdout.write(JSON.stringify(info, null, 2) + '\n');
    },
  },
};
