// `vilg serve`: the generation API over HTTP (fastify), and a page that uses it.
//
//   GET  /                         the page (src/server/page.ts: inline HTML/CSS/JS, no build step, no CDN)
//   GET  /healthz                  {status, queue, memory, backend} (503 while closing or when the worker is down)
//   GET  /v1/model                 the model's config and size, the server's limits, and its model card
//                                  (MODEL_CARD.md or README.md of the model directory, when there is one)
//   POST /v1/text-to-image         JSON {prompt, n, topK, topP, temperature, seed, rerank} → {images: [{png (base64), score}]}
//   POST /v1/text-to-image/stream  the same body → Server-Sent Events: 'queued', one 'progress' per finished
//                                  row of codes {row, rows, images: [partial PNG base64]}, then 'result' or 'error'
//   POST /v1/caption               multipart (file field image, text fields) or JSON {image: base64, ...} → {caption, logprob}
//   POST /v1/vqa                   the same plus question → {answer, logprob}
//
// The model lives in a worker thread (src/server/jobs.ts, worker.ts): one job at a time, a bounded queue
// (full: 429 with Retry-After), and a client that disconnects cancels its job. Errors are JSON
// {error: {status, code, message}} (validation: src/server/validate.ts). Nothing a request sends names a
// file: images come as bytes, results go back in the response, the server writes no files at all.
// sharp is imported here (by validate.ts, to read image headers) before the worker starts: sharp's docs
// ask for it to load in the main thread first, so libvips stays loaded while worker threads come and go.
// Every request is logged as one JSON line {time, id, method, url, status, ms} when its connection
// finishes with it; close() stops listening, refuses queued jobs, lets the running one finish (or
// cancels it after a grace period), and stops the worker.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import { JobError, ModelWorker } from './jobs.js';
import { PAGE_HTML, PAGE_SCRIPT } from './page.js';
import type { Job, JobOut, ProgressOut } from './protocol.js';
import { HttpError, REQUEST_LIMITS, parseImageJob, parseTextToImage, tooLarge, type ModelLimits, type RequestLimits } from './validate.js';

export interface ServerOptions {
  /** Model directory (or a training run holding model/). */
  readonly model: string;
  /** Interface to bind (default 127.0.0.1: loopback only). */
  readonly host?: string;
  /** Port (default 8080; 0 = any free port, see Server.url). */
  readonly port?: number;
  /** Jobs that may wait behind the running one (default 8). */
  readonly queueSize?: number;
  /** Request limits (defaults: REQUEST_LIMITS in src/server/validate.ts). */
  readonly limits?: Partial<RequestLimits>;
  /** How long close() lets a running job finish before it cancels it (default 10 000 ms). */
  readonly shutdownGraceMs?: number;
  /** Where log records go (default: one JSON line each on stdout). */
  readonly log?: (record: Record<string, unknown>) => void;
}

export const SERVER_DEFAULTS = Object.freeze({
  host: '127.0.0.1',
  port: 8080,
  queueSize: 8,
  shutdownGraceMs: 10_000,
});

export interface Server {
  readonly app: FastifyInstance;
  /** http://host:port/ as bound (the real port when 0 was asked for). */
  readonly url: string;
  readonly worker: ModelWorker;
  /** Graceful shutdown; resolves when the listener and the worker are closed. Idempotent. */
  close(): Promise<void>;
}

const jsonLine = (r: Record<string, unknown>): void => { process.stdout.write(`${JSON.stringify(r)}\n`); };

/** The model card: MODEL_CARD.md or README.md of the model directory (or of the run directory above it). */
function modelCard(dir: string): { file: string; text: string } | null {
  for (const d of [dir, join(dir, '..')]) {
    for (const f of ['MODEL_CARD.md', 'README.md']) {
      const p = join(d, f);
      if (existsSync(p)) return { file: f, text: readFileSync(p, 'utf8') };
    }
    if (basename(dir) !== 'model') break; // only a run directory's model/ looks one level up
  }
  return null;
}

function checkOptions(o: ServerOptions): void {
  if (typeof o.model !== 'string' || o.model === '') throw new TypeError('serve: model must be a directory path');
  if (o.port !== undefined && (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535)) throw new RangeError(`serve: port must be an integer in [0, 65535], got ${String(o.port)}`);
  if (o.host !== undefined && (typeof o.host !== 'string' || o.host === '')) throw new TypeError('serve: host must be a non-empty string');
  if (o.shutdownGraceMs !== undefined && (!Number.isFinite(o.shutdownGraceMs) || o.shutdownGraceMs < 0)) throw new RangeError('serve: shutdownGraceMs must be ≥ 0');
  for (const [k, v] of Object.entries(o.limits ?? {})) {
    if (!(k in REQUEST_LIMITS)) throw new RangeError(`serve: unknown limit ${k} (known: ${Object.keys(REQUEST_LIMITS).join(', ')})`);
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`serve: limit ${k} must be a positive integer, got ${String(v)}`);
  }
  if (o.limits?.maxN !== undefined && o.limits.maxN > 64) throw new RangeError(`serve: maxN must be at most 64 (the pipeline's limit), got ${o.limits.maxN}`);
}

/** Starts the worker (loading the model), then listens. Rejects with the loader's message when the model does not load. */
export async function createServer(o: ServerOptions): Promise<Server> {
  checkOptions(o);
  const log = o.log ?? jsonLine;
  const lim: RequestLimits = Object.freeze({ ...REQUEST_LIMITS, ...o.limits });
  const worker = await ModelWorker.start(o.model, { queueSize: o.queueSize ?? SERVER_DEFAULTS.queueSize });
  const info = worker.info;
  if (info.backend === 'reference' && process.env['VILG_BACKEND'] !== 'reference') {
    log({ time: new Date().toISOString(), level: 'warn', msg: 'the model worker runs on the slow reference backend: the native addon did not load in it', reason: info.nativeLoadError });
  }
  const model: ModelLimits = { numCodes: info.config['numCodes'] as number, maxTextLen: info.config['maxTextLen'] as number };
  const card = modelCard(info.dir);
  let closing = false;

  // JSON bodies: a text → image request is small; a caption/VQA one may carry a base64 image (4/3 of its bytes).
  const imageBodyLimit = Math.ceil((lim.maxImageBytes * 4) / 3) + 64 * 1024;
  const app = Fastify({ logger: false, bodyLimit: imageBodyLimit, return503OnClosing: true, forceCloseConnections: 'idle' });
  app.removeContentTypeParser('text/plain'); // only JSON and multipart bodies; anything else is a 415
  await app.register(multipart, {
    limits: { fileSize: lim.maxImageBytes, files: 1, fields: 8, fieldSize: 4096, parts: 9, headerPairs: 64 },
  });

  app.addHook('onRequest', async (req, reply) => {
    const t0 = performance.now();
    reply.raw.once('close', () => {
      log({
        time: new Date().toISOString(), level: 'info', msg: 'request', id: req.id, method: req.method, url: req.url,
        status: reply.raw.statusCode, ms: Math.round((performance.now() - t0) * 10) / 10,
        ...(reply.raw.writableFinished ? {} : { aborted: true }),
      });
    });
  });

  app.addHook('onSend', async (_req, reply) => { if (closing) reply.header('connection', 'close'); });

  const sendError = (reply: FastifyReply, e: HttpError): FastifyReply =>
    reply.code(e.status).headers(e.headers).type('application/json').send({ error: { status: e.status, code: e.code, message: e.message } });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    if (err instanceof HttpError) return sendError(reply, err);
    const s = err.statusCode;
    if (s !== undefined && s >= 400 && s < 500) {
      const code = s === 400 ? 'invalid_request' : s === 413 ? 'payload_too_large' : s === 415 ? 'unsupported_media_type' : 'client_error';
      const message = err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE'
        ? `unsupported content type ${JSON.stringify(req.headers['content-type'] ?? '')}: send application/json${req.url.startsWith('/v1/text-to-image') ? '' : ' or multipart/form-data'}`
        : err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' ? `the body is larger than this route's limit of ${req.routeOptions.bodyLimit ?? imageBodyLimit} bytes`
        : err.code === 'FST_REQ_FILE_TOO_LARGE' ? tooLarge(lim).message
        : err.message;
      return sendError(reply, new HttpError(s, code, message));
    }
    log({ time: new Date().toISOString(), level: 'error', msg: 'internal error', id: req.id, url: req.url, error: err.stack ?? err.message });
    return sendError(reply, new HttpError(500, 'internal', 'internal server error'));
  });
  app.setNotFoundHandler((req, reply) => sendError(reply, new HttpError(404, 'not_found', `no route ${req.method} ${req.url.split('?')[0]}`)));

  /** A failed job as the HTTP error it answers. */
  const jobHttpError = (e: unknown): HttpError => {
    if (!(e instanceof JobError)) return new HttpError(500, 'internal', (e as Error).message);
    switch (e.kind) {
      case 'queue-full': return new HttpError(429, 'queue_full', e.message, { 'retry-after': String(e.retryAfterS) });
      case 'closing': return new HttpError(503, 'shutting_down', e.message);
      case 'invalid': return new HttpError(400, 'invalid_request', e.message);
      case 'image': return new HttpError(415, 'unsupported_media_type', e.message);
      case 'aborted': return new HttpError(503, 'cancelled', e.message);
      case 'internal': return new HttpError(500, 'internal', e.message);
    }
  };

  /** Queues a job and waits for it; the job is cancelled when the client's connection closes first. */
  const runJob = async <T extends JobOut>(reply: FastifyReply, job: Job, onProgress?: (p: ProgressOut) => void): Promise<T> => {
    if (closing) throw new HttpError(503, 'shutting_down', 'the server is shutting down');
    let h;
    try { h = worker.submit<T>(job, onProgress); } catch (e) { throw jobHttpError(e); }
    const onClose = (): void => { if (!reply.raw.writableFinished) h.cancel(); };
    reply.raw.once('close', onClose);
    try { return await h.result; } catch (e) { throw jobHttpError(e); } finally { reply.raw.off('close', onClose); }
  };

  const scriptHash = createHash('sha256').update(PAGE_SCRIPT).digest('base64');
  app.get('/', async (_req, reply) => reply
    .type('text/html; charset=utf-8')
    .header('content-security-policy', `default-src 'none'; script-src 'sha256-${scriptHash}'; style-src 'unsafe-inline'; img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'none'`)
    .header('x-content-type-options', 'nosniff')
    .header('cache-control', 'no-cache')
    .send(PAGE_HTML));

  app.get('/healthz', async (_req, reply) => {
    const queue = worker.stats();
    const status = closing ? 'closing' : queue.worker === 'dead' ? 'down' : 'ok';
    if (status !== 'ok') reply.code(503);
    return { status, backend: info.backend, queue, memory: { rss: process.memoryUsage.rss(), heapUsed: process.memoryUsage().heapUsed } };
  });

  app.get('/v1/model', async () => ({
    name: basename(info.dir), mode: info.mode, imageSize: info.imageSize, parameters: info.parameters, config: info.config,
    backend: info.backend, limits: { ...lim, queueSize: worker.capacity },
    card: card === null ? null : { file: card.file, text: card.text },
  }));

  /** Multipart passes fastify's content-type check (the plugin registers it) but is not JSON. */
  const jsonOnly = (req: FastifyRequest): void => {
    if (req.isMultipart()) throw new HttpError(415, 'unsupported_media_type', `unsupported content type "multipart/form-data": send application/json`);
  };

  app.post('/v1/text-to-image', { bodyLimit: 64 * 1024 }, async (req, reply) => {
    jsonOnly(req);
    const job = parseTextToImage(req.body, lim, model, false);
    return runJob(reply, job);
  });

  app.post('/v1/text-to-image/stream', { bodyLimit: 64 * 1024 }, async (req, reply) => {
    jsonOnly(req);
    const job = parseTextToImage(req.body, lim, model, true);
    if (closing) throw new HttpError(503, 'shutting_down', 'the server is shutting down');
    const res = reply.raw;
    const event = (name: string, data: unknown): void => { if (!res.destroyed && !res.writableEnded) res.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`); };
    let h;
    try { h = worker.submit(job, (p) => event('progress', p)); } catch (e) { throw jobHttpError(e); } // 429/503 before the stream starts
    reply.hijack();
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', 'x-accel-buffering': 'no' });
    const stats = worker.stats();
    event('queued', { position: stats.waiting, running: stats.running });
    const onClose = (): void => { if (!res.writableFinished) h.cancel(); };
    res.once('close', onClose);
    try {
      event('result', await h.result);
    } catch (e) {
      const he = jobHttpError(e);
      event('error', { error: { status: he.status, code: he.code, message: he.message } });
    } finally {
      res.off('close', onClose);
      res.end();
    }
  });

  for (const kind of ['caption', 'vqa'] as const) {
    app.post(`/v1/${kind}`, async (req: FastifyRequest, reply) => {
      let job;
      if (req.isMultipart()) {
        const fieldsIn: Record<string, unknown> = {};
        let image: Uint8Array | undefined;
        for await (const part of req.parts()) {
          if (part.type === 'file') {
            if (part.fieldname !== 'image') throw new HttpError(400, 'invalid_request', `${kind}: unknown file field ${part.fieldname} (the image goes in a field named image)`);
            image = new Uint8Array(await part.toBuffer()); // 413 past maxImageBytes (multipart's fileSize limit)
          } else {
            if (Object.hasOwn(fieldsIn, part.fieldname)) throw new HttpError(400, 'invalid_request', `${kind}: field ${part.fieldname} given twice`);
            fieldsIn[part.fieldname] = part.value;
          }
        }
        if (image === undefined && fieldsIn['image'] === undefined) throw new HttpError(400, 'invalid_request', `${kind}: image is required (a file field named image)`);
        job = await parseImageJob(kind, fieldsIn, image, lim, model, true);
      } else {
        const body = req.body;
        if (body === null || typeof body !== 'object' || Array.isArray(body)) {
          throw new HttpError(400, 'invalid_request', `${kind}: send multipart/form-data with a file field named image, or a JSON object {image: base64, ...}`);
        }
        job = await parseImageJob(kind, body as Record<string, unknown>, undefined, lim, model, false);
      }
      return runJob(reply, job);
    });
  }

  try {
    await app.listen({ host: o.host ?? SERVER_DEFAULTS.host, port: o.port ?? SERVER_DEFAULTS.port });
  } catch (e) {
    await worker.close(0); // e.g. EADDRINUSE: do not leave the model thread running
    throw e;
  }
  const addr = app.server.address();
  if (addr === null || typeof addr === 'string') throw new Error('serve: the server has no TCP address');
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `http://${host}:${addr.port}/`;
  log({ time: new Date().toISOString(), level: 'info', msg: 'listening', url, model: info.dir, backend: info.backend, parameters: info.parameters, loadMs: Math.round(info.loadMs), queueSize: worker.capacity });

  let closed: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      closing = true;
      log({ time: new Date().toISOString(), level: 'info', msg: 'shutting down', queue: worker.stats() });
      const drained = worker.close(o.shutdownGraceMs ?? SERVER_DEFAULTS.shutdownGraceMs); // refuses the waiting jobs at once
      const listenerClosed = app.close(); // stops listening; waits for the connections to end
      await drained;
      // A keep-alive connection whose response ended after close() began would otherwise stay open for
      // the keep-alive timeout (72 s): close the idle ones until the listener is done.
      const sweep = setInterval(() => app.server.closeIdleConnections(), 50);
      app.server.closeIdleConnections();
      try { await listenerClosed; } finally { clearInterval(sweep); }
      log({ time: new Date().toISOString(), level: 'info', msg: 'closed', queue: worker.stats() });
    })();
    return closed;
  };
  return { app, url, worker, close };
}
