// `vilg serve`: the HTTP API and web page of src/server/server.ts for one model (default: the package's
// models/vilg-shapes, as `vilg generate`). Prints the URL once the model is loaded, logs one JSON line
// per request on stdout, and shuts down gracefully on SIGINT/SIGTERM: stop listening, refuse queued
// jobs, let the running one finish (up to --grace seconds, then cancel it), close the model worker.
// run() resolves once the server has closed, so `vilg serve` exits with status 0 after a signal.
import { join } from 'node:path';
import { UsageError, type ParsedOptions } from '../args.js';
import type { Command } from '../command.js';
import { DEFAULT_MODEL } from './generate.js';
import { packageRoot } from '../../util/package-root.js';


function int(o: ParsedOptions, name: string, lo: number, hi: number): number {
  const v = o[name];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) throw new UsageError(`--${name} must be an integer in [${lo}, ${hi}], got ${String(v)}`);
  return v;
}

export const commands: Record<string, Command> = {
  serve: {
    summary: 'HTTP API and web page for text → image, captioning and VQA (binds 127.0.0.1 unless told otherwise)',
    options: {
      model: { type: 'string', help: `model directory (or a training run holding model/); default: the package's ${DEFAULT_MODEL}` },
      host: { type: 'string', help: 'interface to bind (0.0.0.0 exposes the server to the network)', default: '127.0.0.1' },
      port: { type: 'number', help: 'port; 0 = any free port (the URL is printed)', default: 8080 },
      queue: { type: 'number', help: 'jobs that may wait behind the running one; more are refused with 429', default: 8 },
      'max-n': { type: 'number', help: 'most candidates per text → image request (1..64)', default: 16 },
      grace: { type: 'number', help: 'seconds a running job may take to finish at shutdown before it is cancelled', default: 10 },
    },
    async run(positionals, o) {
      if (positionals.length > 0) throw new UsageError(`serve takes no positionals, got ${positionals.join(' ')}`);
      const given = o['model'];
      if (given !== undefined && (typeof given !== 'string' || given.trim() === '')) throw new UsageError('--model needs a directory');
      const model = typeof given === 'string' ? given : join(packageRoot(), DEFAULT_MODEL);
      const host = o['host'];
      if (typeof host !== 'string' || host === '') throw new UsageError('--host needs an address');
      const port = int(o, 'port', 0, 65535), queueSize = int(o, 'queue', 0, 1024), maxN = int(o, 'max-n', 1, 64);
      const grace = o['grace'];
      if (typeof grace !== 'number' || !(grace >= 0)) throw new UsageError(`--grace must be a number of seconds ≥ 0, got ${String(grace)}`);
      const { createServer } = await import('../../server/server.js');
      let server;
      try {
        server = await createServer({ model, host, port, queueSize, limits: { maxN }, shutdownGraceMs: grace * 1000 });
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        if (err.code === 'EADDRINUSE') throw new UsageError(`port ${port} on ${host} is in use; pick another with --port (0 = any free port)`);
        if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND') throw new UsageError(`cannot bind ${host}: ${err.message}`);
        if (err instanceof RangeError || err instanceof TypeError || /VilgPipeline\.load/.test(err.message)) throw new UsageError(err.message);
        throw e;
      }
      process.stderr.write(`vilg serve: ${server.url} (model ${server.worker.info.dir}, ${server.worker.info.backend} backend); Ctrl-C stops\n`);
      await new Promise<void>((resolve) => {
        const stop = (signal: string): void => {
          process.off('SIGINT', onInt); process.off('SIGTERM', onTerm);
          process.stderr.write(`vilg serve: ${signal}, shutting down\n`);
          server.close().then(resolve, (e: unknown) => { process.stderr.write(`vilg serve: shutdown failed: ${(e as Error).message}\n`); process.exitCode = 1; resolve(); });
        };
        const onInt = (): void => stop('SIGINT'), onTerm = (): void => stop('SIGTERM');
        process.once('SIGINT', onInt);
        process.once('SIGTERM', onTerm);
      });
    },
  },
};
