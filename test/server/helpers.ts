// Shared by the server tests (test/server/*.test.ts): the committed models/vilg-shapes as the model
// (3.4M parameters: a text → image of n = 2 takes under a second, a greedy caption ~0.1 s), test scenes
// from the shapes generator as PNG bytes, JSON/multipart request helpers, and a Server-Sent Events reader.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { demoScenes } from '../../src/cli/demo.js';
import { isNativeAvailable } from '../../src/engine/index.js';
import { encodePng } from '../../src/data/image.js';

/**
 * Why the server tests skip, or false. They need the native backend: on the reference backend a
 * text → image of vilg-shapes takes 10+ s (a partial decode per row several more), so the suite would
 * take many minutes — and it tests the HTTP layer, whose code is the same on either backend (the
 * reference kernels have their own tests). The worker thread inherits VILG_BACKEND from the process.
 */
export const NATIVE_SKIP: string | false = process.env['VILG_BACKEND'] === 'reference'
  ? 'VILG_BACKEND=reference: the server suite runs on the native backend only (the reference kernels make one text → image take 10+ s)'
  : isNativeAvailable() ? false : 'the native addon is not built: the server suite runs on the native backend only';

/** The committed model, from the package root (dist/test/server → ../../..). */
export const MODEL_DIR = fileURLToPath(new URL('../../../models/vilg-shapes/', import.meta.url));
/** The committed model's codebook size K (image codes), read from its config so the tests follow a retrained model. */
export const MODEL_CODES: number = (JSON.parse(readFileSync(join(MODEL_DIR, 'config.json'), 'utf8')) as { model: { numCodes: number } }).model.numCodes;
/** Where the browser test leaves its screenshot (gitignored). */
export const ARTIFACTS_DIR = fileURLToPath(new URL('../../../test-artifacts/', import.meta.url));

/** A model directory that links to vilg-shapes' files and adds a MODEL_CARD.md (for GET /v1/model). */
export function modelWithCard(card: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'vilg-serve-'));
  for (const f of ['config.json', 'model.safetensors', 'tokenizer', 'image-tokenizer']) symlinkSync(join(MODEL_DIR, f), join(dir, f));
  writeFileSync(join(dir, 'MODEL_CARD.md'), card);
  return dir;
}

export interface TestScene { id: string; png: Buffer; caption: string; question: string; answer: string }

/** The first `count` held-out shapes scenes (what `vilg demo` captions) as 32×32 PNGs. */
export async function scenes(count: number): Promise<TestScene[]> {
  return Promise.all(demoScenes(count, 32).map(async (s) => ({ id: s.id, png: await encodePng(s.rgb, 32, 32), caption: s.caption, question: s.question, answer: s.answer })));
}

/** A PNG → its raw RGB pixels and size. */
export async function pngPixels(png: Buffer | Uint8Array): Promise<{ rgb: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { rgb: data, width: info.width, height: info.height };
}

export interface Answer { status: number; headers: Headers; body: any } // eslint-disable-line @typescript-eslint/no-explicit-any

/** fetch() and parse the JSON body (or keep the text when it is not JSON). */
export async function request(url: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: unknown = text;
  try { body = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, body };
}

export const postJson = (url: string, body: unknown, init: RequestInit = {}): Promise<Answer> =>
  request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: typeof body === 'string' ? body : JSON.stringify(body), ...init });

/** multipart/form-data with an image file part (when given) and text fields. */
export function form(image: Uint8Array | null, fields: Record<string, string> = {}, filename = 'scene.png'): FormData {
  const f = new FormData();
  if (image !== null) f.append('image', new Blob([new Uint8Array(image)], { type: 'image/png' }), filename);
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  return f;
}

export interface SseEvent { event: string; data: any } // eslint-disable-line @typescript-eslint/no-explicit-any

/** Reads a text/event-stream body, calling onEvent per event; resolves with all of them at the end. */
export async function readSse(res: Response, onEvent: (e: SseEvent) => void = () => {}): Promise<SseEvent[]> {
  const out: SseEvent[] = [];
  const dec = new TextDecoder();
  let buf = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buf += dec.decode(chunk, { stream: true });
    let cut;
    while ((cut = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let event = 'message', data = '';
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      const e = { event, data: data === '' ? null : JSON.parse(data) };
      out.push(e);
      onEvent(e);
    }
  }
  return out;
}

/** Polls `probe` every 25 ms until it returns true (or fails after `ms`). */
export async function until(what: string, probe: () => Promise<boolean> | boolean, ms = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!(await probe())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A `vilg serve` child process: its URL (from the stderr banner), stdout lines, and its exit. */
export interface ServeProcess {
  readonly child: ChildProcess;
  readonly url: string;
  readonly stdout: string[];
  readonly stderr: string[];
  readonly exited: Promise<number | null>;
}

const SERVE_SCRIPT = `
const [{ commands }, { parseArgs, UsageError }] = await Promise.all([import(process.env.SERVE_JS), import(process.env.ARGS_JS)]);
try {
  const { positionals, options } = parseArgs(process.argv.slice(2), commands.serve.options);
  await commands.serve.run(positionals, options);
} catch (e) {
  if (!(e instanceof UsageError)) throw e;
  process.stderr.write('vilg serve: ' + e.message + '\\n');
  process.exitCode = 2;
}`;

/**
 * Runs the `serve` command (src/cli/commands/serve.ts) in a child process as main.ts would: parsed
 * arguments, UsageError → exit 2. Resolves once the banner with the URL is printed (or the process ended).
 */
export async function spawnServe(args: readonly string[]): Promise<ServeProcess> {
  // A script file, not `node -e`: worker threads inherit execArgv, and --input-type breaks theirs.
  const dir = mkdtempSync(join(tmpdir(), 'vilg-serve-cli-')), script = join(dir, 'serve.mjs');
  writeFileSync(script, SERVE_SCRIPT);
  const child = spawn(process.execPath, [script, ...args], {
    env: {
      ...process.env, OMP_NUM_THREADS: process.env['OMP_NUM_THREADS'] ?? '1',
      SERVE_JS: new URL('../../src/cli/commands/serve.js', import.meta.url).href, ARGS_JS: new URL('../../src/cli/args.js', import.meta.url).href,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [], stderr: string[] = [];
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => { rmSync(dir, { recursive: true, force: true }); res(code); }));
  const lines = (stream: NodeJS.ReadableStream, into: string[], onLine: (l: string) => void): void => {
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => {
      buf += d;
      let cut;
      while ((cut = buf.indexOf('\n')) >= 0) { const l = buf.slice(0, cut); buf = buf.slice(cut + 1); into.push(l); onLine(l); }
    });
  };
  const url = await new Promise<string>((resolve) => {
    lines(child.stdout!, stdout, () => {});
    lines(child.stderr!, stderr, (l) => { const m = /^vilg serve: (http:\/\/\S+\/) /.exec(l); if (m !== null) resolve(m[1]!); });
    void exited.then(() => resolve(''));
  });
  return { child, url, stdout, stderr, exited };
}
