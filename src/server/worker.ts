// The model worker: a worker_threads Worker that loads one VilgPipeline and runs the jobs the server
// hands it (src/server/jobs.ts sends one at a time), so sampling and decoding never block the HTTP
// event loop. A job is cancelled through its AbortController: the pipeline checks the signal between
// decoding steps (runStepsAsync yields to this thread's event loop after every step, so a 'cancel'
// message is seen within one step) and throws an AbortError.
//
// The engine loads here, not in the main thread: the native addon is a Node-API module with per-
// environment state (native/memory.cc keeps its allocator in the env's instance data), so it loads in
// a worker like in the main thread. Which backend the worker got, and why the addon did not load when
// it did not, goes back in the 'ready' message; the server reports it rather than fall back silently.

import { parentPort, workerData } from 'node:worker_threads';
import type { CaptionJob, FailureKind, FromWorker, Job, JobOut, TextToImageJob, ToWorker, VqaJob } from './protocol.js';
import type { VilgPipeline } from '../models/vilg/pipeline.js';

const port = parentPort;
if (port === null) throw new Error('src/server/worker.ts runs as a worker thread (new Worker(...)), not as a script');
const post = (m: FromWorker): void => port.postMessage(m);

const { modelDir } = workerData as { modelDir: string };
const jobs = new Map<number, AbortController>();
let vilg: VilgPipeline;
let loadImageRgb: typeof import('../data/image.js').loadImageRgb;
let ImageDecodeError: typeof import('../data/image.js').ImageDecodeError;

async function start(): Promise<void> {
  const t0 = performance.now();
  const engine = await import('../engine/index.js'); // registers the native kernels when the addon loads
  const { VilgPipeline } = await import('../models/vilg/pipeline.js');
  ({ loadImageRgb, ImageDecodeError } = await import('../data/image.js'));
  vilg = await VilgPipeline.load(modelDir);
  const info = vilg.info;
  post({
    type: 'ready',
    info: {
      dir: info.dir, mode: info.mode, imageSize: info.imageSize, parameters: info.parameters, config: { ...info.config },
      backend: engine.nativeAddon() === null ? 'reference' : 'native', nativeLoadError: engine.nativeLoadError(), loadMs: performance.now() - t0,
    },
  });
}

/** Encoded bytes → RGB at the model's size; bytes that do not decode are the client's fault (415). */
async function decodeImage(bytes: Uint8Array): Promise<{ rgb: Uint8Array; width: number; height: number }> {
  const S = vilg.imageSize;
  try { return { rgb: (await loadImageRgb(bytes, { size: S })).rgb, width: S, height: S }; } catch (e) {
    if (e instanceof ImageDecodeError) throw new JobFailure('image', `the image does not decode: ${e.reason}`);
    throw e;
  }
}

const round = (ms: number): number => Math.round(ms * 10) / 10;

class JobFailure extends Error {
  constructor(readonly kind: FailureKind, message: string) { super(message); }
}

async function textToImage(id: number, job: TextToImageJob, signal: AbortSignal): Promise<JobOut> {
  // Partial decodes run one after another (each is a decoder pass), in row order, while sampling goes on.
  let chain: Promise<void> = Promise.resolve();
  const r = await vilg.textToImage(job.prompt, {
    n: job.n, topK: job.topK, topP: job.topP, temperature: job.temperature, seed: job.seed, rerank: job.rerank, signal,
    ...(job.stream ? {
      onProgress: (p) => {
        chain = chain.then(async () => {
          if (signal.aborted) return;
          const images = (await p.decode()).map((im) => im.png.toString('base64'));
          post({ type: 'progress', id, progress: { row: p.row, rows: p.rows, images } });
        });
      },
    } : {}),
  });
  await chain;
  return {
    prompt: r.prompt, tokens: r.tokens, warnings: r.warnings, ms: round(r.ms),
    images: r.images.map((im) => ({ png: im.png.toString('base64'), width: im.width, height: im.height, score: im.score })),
  };
}

async function caption(job: CaptionJob, signal: AbortSignal): Promise<JobOut> {
  const image = await decodeImage(job.image);
  signal.throwIfAborted();
  const r = await vilg.caption(image, { ...decodeOptions(job), signal });
  return { caption: r.text, logprob: r.logprob, tokens: r.tokens, ms: round(r.ms) };
}

async function vqa(job: VqaJob, signal: AbortSignal): Promise<JobOut> {
  const image = await decodeImage(job.image);
  signal.throwIfAborted();
  const r = await vilg.answer(image, job.question, { ...decodeOptions(job), signal });
  return { question: job.question, answer: r.answer, logprob: r.logprob, tokens: r.tokens, warnings: r.warnings, ms: round(r.ms) };
}

function decodeOptions(j: CaptionJob | VqaJob): { beams: number; lang: 'en' | 'zh' | 'any'; lengthPenalty: number; noRepeatNgram: number; maxLen?: number } {
  return { beams: j.beams, lang: j.lang, lengthPenalty: j.lengthPenalty, noRepeatNgram: j.noRepeatNgram, ...(j.maxLen === undefined ? {} : { maxLen: j.maxLen }) };
}

async function run(id: number, job: Job): Promise<void> {
  const ac = new AbortController();
  jobs.set(id, ac);
  try {
    const result = job.kind === 'text-to-image' ? await textToImage(id, job, ac.signal)
      : job.kind === 'caption' ? await caption(job, ac.signal) : await vqa(job, ac.signal);
    post({ type: 'done', id, result });
  } catch (e) {
    const err = e as Error;
    const kind: FailureKind = e instanceof JobFailure ? e.kind : ac.signal.aborted || err.name === 'AbortError' ? 'aborted'
      : e instanceof RangeError || e instanceof TypeError ? 'invalid' : 'internal';
    post({ type: 'failed', id, kind, message: kind === 'aborted' ? 'the job was cancelled' : err.message });
  } finally {
    jobs.delete(id);
  }
}

port.on('message', (m: ToWorker) => {
  if (m.type === 'job') void run(m.id, m.job);
  else if (m.type === 'cancel') jobs.get(m.id)?.abort();
  else if (m.type === 'close') {
    for (const ac of jobs.values()) ac.abort();
    port.close(); // lets the thread exit once the aborted job has unwound
  }
});

start().catch((e: unknown) => post({ type: 'fatal', message: e instanceof Error ? e.message : String(e) }));
