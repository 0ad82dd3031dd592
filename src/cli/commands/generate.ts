// `vilg generate | caption | vqa | complete | demo`: the generation API (src/models/vilg/pipeline.ts) on
// the command line. The default model is the committed models/vilg-shapes (found from the package root,
// so the commands work from any directory). Heavy modules load inside run(), so `vilg --help` stays fast.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { packageRoot } from '../../util/package-root.js';
import { UsageError, type OptionSpec, type ParsedOptions } from '../args.js';
import type { Command } from '../command.js';
import type { GeneratedImage, TextToImageResult, VilgPipeline } from '../../models/vilg/pipeline.js';


export const DEFAULT_MODEL = 'models/vilg-shapes'; // relative to the package root

const MODEL: OptionSpec = {
  model: { type: 'string', help: `model directory (or a training run holding model/); default: the package's ${DEFAULT_MODEL}` },
  json: { type: 'boolean', help: 'print machine-readable JSON on stdout instead of text' },
};
const SAMPLING: OptionSpec = {
  n: { type: 'number', help: 'candidates, sampled as one batch (1..64)', default: 4, short: 'n' },
  'top-k': { type: 'number', help: 'keep the k most likely codes; 0 = off', default: 0 },
  'top-p': { type: 'number', help: 'nucleus mass in (0, 1]; 1 = off', default: 1 },
  temperature: { type: 'number', help: 'softmax temperature; 0 = greedy', default: 1 },
  seed: { type: 'number', help: 'seed of the draws (same seed, same images)', default: 0 },
  rerank: { type: 'boolean', help: 'score candidates by log P(prompt | image) and sort best first' },
  'no-cache': { type: 'boolean', help: 'decode without the KV cache (full forward per step; slower, same result)' },
  out: { type: 'string', help: 'output directory for the PNGs, sheet.png and result.json' },
};
const DECODE: OptionSpec = {
  beams: { type: 'number', help: 'beam search with this many beams (1 = greedy)', default: 1 },
  'max-len': { type: 'number', help: 'text positions including [CLS]/[SEP] (default: the model\'s maxTextLen)' },
  'length-penalty': { type: 'number', help: 'beam ranking: logprob / length^α', default: 1 },
  'no-repeat-ngram': { type: 'number', help: 'never repeat an n-gram of this size; 0 = off', default: 0 },
  lang: { type: 'string', help: 'output language: en, zh, or any (as the model likes)', default: 'any' },
};

async function openModel(o: ParsedOptions): Promise<VilgPipeline> {
  await import('../../engine/index.js'); // loads the native backend when it is built
  const { VilgPipeline } = await import('../../models/vilg/pipeline.js');
  const given = o['model'];
  if (given !== undefined && (typeof given !== 'string' || given.trim() === '')) throw new UsageError('--model needs a directory');
  const dir = typeof given === 'string' ? given : join(packageRoot(), DEFAULT_MODEL);
  try { return await VilgPipeline.load(dir); } catch (e) { throw new UsageError((e as Error).message); }
}

/** Runs a library call, turning its RangeError/TypeError (bad option values, unreadable images) into usage errors. */
async function call<T>(fn: () => Promise<T>): Promise<T> {
  try { return await fn(); } catch (e) {
    if (e instanceof RangeError || e instanceof TypeError) throw new UsageError(e.message);
    throw e;
  }
}

function num(o: ParsedOptions, name: string): number | undefined {
  const v = o[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'number') throw new UsageError(`--${name} must be a number`);
  return v;
}

function samplingOptions(o: ParsedOptions): { n: number; topK: number; topP: number; temperature: number; seed: number; rerank: boolean; kvCache: boolean } {
  return {
    n: num(o, 'n')!, topK: num(o, 'top-k')!, topP: num(o, 'top-p')!, temperature: num(o, 'temperature')!, seed: num(o, 'seed')!,
    rerank: o['rerank'] === true, kvCache: o['no-cache'] !== true,
  };
}

function decodeOptions(o: ParsedOptions): { beams: number; lengthPenalty: number; noRepeatNgram: number; lang: 'en' | 'zh' | 'any'; maxLen?: number } {
  const maxLen = num(o, 'max-len'), lang = o['lang'];
  if (lang !== 'en' && lang !== 'zh' && lang !== 'any') throw new UsageError(`--lang must be en, zh or any, got ${String(lang)}`);
  return { beams: num(o, 'beams')!, lengthPenalty: num(o, 'length-penalty')!, noRepeatNgram: num(o, 'no-repeat-ngram')!, lang, ...(maxLen === undefined ? {} : { maxLen }) };
}

/** A progress bar over the image's rows of codes (stderr; silent under --json). */
async function rowProgress(label: string, rows: number, quiet: boolean): Promise<{ onProgress: (p: { row: number }) => void; done: () => void }> {
  const { progress } = await import('../../util/progress.js');
  const bar = progress(label, rows, { silent: quiet });
  let seen = 0;
  return { onProgress: (p) => { bar.tick(p.row - seen); seen = p.row; }, done: () => bar.done() };
}

/** Writes NN.png per image, sheet.png (all candidates, best first when reranked) and result.json. */
async function writeImages(dir: string, r: TextToImageResult, settings: Record<string, unknown>): Promise<{ files: string[]; sheet: string; json: string }> {
  const { mkdir } = await import('node:fs/promises');
  const { writePng, imageGrid } = await import('../../util/png.js');
  const { writeFileAtomic } = await import('../../train/checkpoint.js');
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  for (const [i, im] of r.images.entries()) {
    const f = join(dir, `${String(i).padStart(2, '0')}.png`);
    await writePng(f, im.rgb, im.height, im.width);
    files.push(f);
  }
  const sheet = join(dir, 'sheet.png');
  const g = imageGrid(r.images.map((im) => im.rgb), { height: r.images[0]!.height, width: r.images[0]!.width, pad: 2 });
  await writePng(sheet, g.rgb, g.height, g.width);
  const json = join(dir, 'result.json');
  const doc = { ...summary(r, files), settings };
  await writeFileAtomic(json, `${JSON.stringify(doc, null, 2)}\n`);
  return { files, sheet, json };
}

function summary(r: TextToImageResult, files: string[]): Record<string, unknown> {
  return {
    prompt: r.prompt, tokens: r.tokens, warnings: r.warnings, ms: Math.round(r.ms),
    images: r.images.map((im: GeneratedImage, i) => ({ file: files[i], score: im.score, codes: [...im.codes] })),
  };
}

export const commands: Record<string, Command> = {
  generate: {
    summary: 'text → image: N candidates for a prompt (PNGs, a contact sheet, result.json)',
    positionals: '"<prompt>"',
    options: { ...MODEL, ...SAMPLING },
    async run(positionals, o) {
      if (positionals.length !== 1) throw new UsageError('give one prompt in quotes, e.g. vilg generate "a small red circle"');
      const vilg = await openModel(o);
      const s = samplingOptions(o), quiet = o['json'] === true;
      const bar = await rowProgress('generate', vilg.model.config.imageGrid[0], quiet);
      const r = await call(() => vilg.textToImage(positionals[0]!, { ...s, onProgress: bar.onProgress }));
      bar.done();
      for (const w of r.warnings) process.stderr.write(`warning: ${w}\n`);
      const out = typeof o['out'] === 'string' ? o['out'] : 'out/generate';
      const written = await writeImages(out, r, { model: vilg.dir, ...s });
      if (quiet) process.stdout.write(`${JSON.stringify({ ...summary(r, written.files), sheet: written.sheet })}\n`);
      else {
        process.stdout.write(`${r.images.length} images for "${r.prompt}" in ${(r.ms / 1000).toFixed(1)} s → ${written.sheet}\n`);
        if (s.rerank) r.images.forEach((im, i) => process.stdout.write(`  ${written.files[i]}  log P(prompt | image) = ${im.score!.toFixed(3)}\n`));
      }
    },
  },

  caption: {
    summary: 'image → text: a caption per image (greedy, or beam search with --beams)',
    positionals: '<image>...',
    options: { ...MODEL, ...DECODE },
    async run(positionals, o) {
      if (positionals.length === 0) throw new UsageError('give one or more image files');
      const vilg = await openModel(o);
      const d = decodeOptions(o), rows: Record<string, unknown>[] = [];
      const missing = positionals.find((p) => !existsSync(p));
      if (missing !== undefined) throw new UsageError(`no such file: ${missing}`);
      const { progress } = await import('../../util/progress.js');
      const bar = progress('caption', positionals.length, { silent: o['json'] === true || positionals.length < 4 });
      for (const p of positionals) {
        const r = await call(() => vilg.caption(resolve(p), d));
        rows.push({ image: p, caption: r.text, logprob: r.logprob, ms: Math.round(r.ms) });
        if (o['json'] !== true) process.stdout.write(`${p}\t${r.text}\t(log P ${r.logprob.toFixed(3)})\n`);
        bar.tick();
      }
      bar.done();
      if (o['json'] === true) process.stdout.write(`${JSON.stringify(rows)}\n`);
    },
  },

  vqa: {
    summary: 'generative VQA: the answer to a question about an image',
    positionals: '<image> "<question>"',
    options: { ...MODEL, ...DECODE },
    async run(positionals, o) {
      if (positionals.length !== 2) throw new UsageError('give an image and a question in quotes, e.g. vilg vqa scene.png "what colour is the circle?"');
      const [p, question] = positionals as [string, string];
      if (!existsSync(p)) throw new UsageError(`no such file: ${p}`);
      const vilg = await openModel(o);
      const r = await call(() => vilg.answer(resolve(p), question, decodeOptions(o)));
      for (const w of r.warnings) process.stderr.write(`warning: ${w}\n`);
      if (o['json'] === true) process.stdout.write(`${JSON.stringify({ image: p, question, answer: r.answer, logprob: r.logprob, ms: Math.round(r.ms) })}\n`);
      else process.stdout.write(`${r.answer}\n`);
    },
  },

  complete: {
    summary: 'image completion: keep an image\'s first rows of codes and generate the rest under a prompt',
    positionals: '<image> "<prompt>"',
    options: { ...MODEL, ...SAMPLING, rows: { type: 'number', help: 'rows of codes to keep (default: half the grid)' } },
    async run(positionals, o) {
      if (positionals.length !== 2) throw new UsageError('give an image and a prompt in quotes');
      const [p, prompt] = positionals as [string, string];
      if (!existsSync(p)) throw new UsageError(`no such file: ${p}`);
      const vilg = await openModel(o);
      const s = samplingOptions(o), rows = num(o, 'rows'), quiet = o['json'] === true;
      const bar = await rowProgress('complete', vilg.model.config.imageGrid[0], quiet);
      const r = await call(() => vilg.complete(resolve(p), prompt, { ...s, ...(rows === undefined ? {} : { rows }), onProgress: bar.onProgress }));
      bar.done();
      const out = typeof o['out'] === 'string' ? o['out'] : 'out/complete';
      const written = await writeImages(out, r, { model: vilg.dir, image: p, rows: rows ?? null, ...s });
      if (quiet) process.stdout.write(`${JSON.stringify({ ...summary(r, written.files), sheet: written.sheet })}\n`);
      else process.stdout.write(`${r.images.length} completions of ${p} under "${prompt}" → ${written.sheet}\n`);
    },
  },

  demo: {
    summary: 'run text→image, captioning, VQA and completion on the default model; write an HTML page of the results',
    options: {
      model: MODEL['model']!,
      out: { type: 'string', help: 'output directory (index.html and its images)', default: 'out/demo' },
      n: { type: 'number', help: 'candidates per prompt', default: 4 },
      seed: { type: 'number', help: 'seed of the draws', default: 0 },
    },
    async run(_positionals, o) {
      const vilg = await openModel(o);
      const { runDemo } = await import('../demo.js');
      const out = o['out'] as string;
      const page = await call(() => runDemo(vilg, { out, n: num(o, 'n')!, seed: num(o, 'seed')! }));
      process.stdout.write(`demo written: ${page}\n`);
    },
  },
};
