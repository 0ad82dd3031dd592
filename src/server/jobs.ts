// The model worker from the server's side: starts src/server/worker.ts, waits for its model to load,
// and runs jobs one at a time through a bounded FIFO queue. A full queue is refused at once (the route
// answers 429 with a Retry-After from the recent job times), a job whose client went away is cancelled
// (dropped from the queue, or aborted in the worker), and close() drains: waiting jobs are refused,
// the running one gets a grace period to finish before it is aborted, then the thread exits.
//
// If the worker thread dies (an exception outside a job, or it is terminated), the running job fails
// with 'internal' and a fresh worker is started for the jobs still waiting.

import { Worker } from 'node:worker_threads';
import type { FailureKind, FromWorker, Job, JobOut, ProgressOut, ToWorker, WorkerReady } from './protocol.js';

/** A job that did not produce a result: the worker's failure kind, 'queue-full' or 'closing'. */
export class JobError extends Error {
  constructor(readonly kind: FailureKind | 'queue-full' | 'closing', message: string, readonly retryAfterS = 0) {
    super(message);
    this.name = 'JobError';
  }
}

export interface JobHandle<T extends JobOut = JobOut> {
  readonly result: Promise<T>;
  /** Cancels the job: removes it from the queue, or aborts it in the worker (its result rejects with 'aborted'). */
  cancel(): void;
}

export interface QueueStats {
  /** The worker thread: 'up' (takes jobs), 'starting' (a replacement loads its model), 'dead' (a restart failed). */
  readonly worker: 'up' | 'starting' | 'dead';
  /** 1 while a job runs in the worker. */
  readonly running: number;
  readonly waiting: number;
  /** Jobs that may wait behind the running one. */
  readonly capacity: number;
  readonly done: number;
  readonly failed: number;
  readonly cancelled: number;
  readonly rejected: number;
  /** Mean of the recent job times (ms; 0 before the first job). */
  readonly meanJobMs: number;
}

interface Entry {
  readonly id: number;
  readonly job: Job;
  readonly onProgress: ((p: ProgressOut) => void) | undefined;
  readonly resolve: (r: JobOut) => void;
  readonly reject: (e: JobError) => void;
  /** Resolves when the job has settled either way. */
  readonly settled: Promise<void>;
  cancelled: boolean;
  started: number;
}

export interface ModelWorkerOptions {
  /** Jobs that may wait behind the running one (default 8). */
  readonly queueSize?: number;
}

export class ModelWorker {
  private worker!: Worker;
  /** Resolves when the current thread has exited. */
  private exited: Promise<void> = Promise.resolve();
  private readonly queue: Entry[] = [];
  private current: Entry | null = null;
  private nextId = 1;
  private closing = false;
  /** The current thread has loaded its model and takes jobs. */
  private up = false;
  /** Why no worker can run (a restart failed); jobs are refused from then on. */
  private dead: string | null = null;
  private readonly recent: number[] = [];
  private counts = { done: 0, failed: 0, cancelled: 0, rejected: 0 };
  readonly capacity: number;
  info!: WorkerReady;

  private constructor(readonly modelDir: string, o: ModelWorkerOptions) {
    const q = o.queueSize ?? 8;
    if (!Number.isInteger(q) || q < 0 || q > 1024) throw new RangeError(`queueSize must be an integer in [0, 1024], got ${String(q)}`);
    this.capacity = q;
  }

  /** Starts the worker and resolves once its model is loaded (rejects with the loader's message). */
  static async start(modelDir: string, o: ModelWorkerOptions = {}): Promise<ModelWorker> {
    const w = new ModelWorker(modelDir, o);
    w.info = await w.spawn();
    return w;
  }

  private spawn(): Promise<WorkerReady> {
    const worker = new Worker(new URL('./worker.js', import.meta.url), { workerData: { modelDir: this.modelDir } });
    this.worker = worker;
    this.up = false;
    this.exited = new Promise<void>((res) => worker.once('exit', () => res()));
    return new Promise<WorkerReady>((resolve, reject) => {
      let up = false, failed = false;
      worker.on('message', (m: FromWorker) => {
        if (m.type === 'ready') { up = this.up = true; this.info = m.info; resolve(m.info); this.pump(); } else if (m.type === 'fatal') { reject(new Error(m.message)); void worker.terminate(); }
        else this.onMessage(m);
      });
      worker.on('error', (e) => {
        if (!up) reject(e);
        else if (!failed) { failed = true; this.onExit(`the model worker failed: ${e.message}`); }
      });
      worker.on('exit', (code) => {
        if (!up) reject(new Error(`the model worker exited (code ${code}) before its model loaded`));
        else if (!failed) { failed = true; this.onExit(`the model worker exited (code ${code})`); }
      });
    });
  }

  private onExit(why: string): void {
    this.up = false;
    const cur = this.current;
    this.current = null;
    if (cur !== null) { this.counts.failed++; cur.reject(new JobError('internal', why)); }
    if (this.closing) return;
    this.spawn().catch((e: Error) => {
      this.dead = `the model worker could not be restarted: ${e.message}`;
      for (const e2 of this.queue.splice(0)) e2.reject(new JobError('internal', this.dead));
    });
  }

  private onMessage(m: Exclude<FromWorker, { type: 'ready' } | { type: 'fatal' }>): void {
    const cur = this.current;
    if (cur === null || cur.id !== m.id) return; // a late message of a job already settled
    if (m.type === 'progress') { if (!cur.cancelled) cur.onProgress?.(m.progress); return; }
    this.current = null;
    if (m.type === 'done') {
      this.counts.done++;
      this.recent.push(performance.now() - cur.started);
      if (this.recent.length > 16) this.recent.shift();
      cur.resolve(m.result);
    } else {
      if (m.kind === 'aborted') this.counts.cancelled++; else this.counts.failed++;
      cur.reject(new JobError(m.kind, m.message));
    }
    this.pump();
  }

  private pump(): void {
    if (this.current !== null || !this.up) return;
    const next = this.queue.shift();
    if (next === undefined) return;
    this.current = next;
    next.started = performance.now();
    this.send({ type: 'job', id: next.id, job: next.job });
  }

  private send(m: ToWorker): void { this.worker.postMessage(m); }

  /** Seconds until a new job would likely start: the queue ahead of it times the mean job time (≥ 1). */
  retryAfterS(): number {
    const mean = this.stats().meanJobMs || 1000;
    return Math.max(1, Math.ceil(((this.queue.length + 1) * mean) / 1000));
  }

  /** Queues a job; throws JobError('queue-full' | 'closing') when it cannot be taken. */
  submit<T extends JobOut>(job: Job, onProgress?: (p: ProgressOut) => void): JobHandle<T> {
    if (this.closing) throw new JobError('closing', 'the server is shutting down');
    if (this.dead !== null) throw new JobError('internal', this.dead);
    if (this.current !== null && this.queue.length >= this.capacity) {
      this.counts.rejected++;
      throw new JobError('queue-full', `the queue is full (${this.capacity} waiting behind the running job); retry later`, this.retryAfterS());
    }
    let resolve!: (r: JobOut) => void, reject!: (e: JobError) => void;
    const result = new Promise<JobOut>((res, rej) => { resolve = res; reject = rej; });
    const settled = result.then(() => undefined, () => undefined);
    const entry: Entry = { id: this.nextId++, job, onProgress, resolve, reject, settled, cancelled: false, started: 0 };
    this.queue.push(entry);
    this.pump();
    return {
      result: result as Promise<T>,
      cancel: () => {
        if (entry.cancelled) return;
        entry.cancelled = true;
        const at = this.queue.indexOf(entry);
        if (at >= 0) {
          this.queue.splice(at, 1);
          this.counts.cancelled++;
          reject(new JobError('aborted', 'the job was cancelled'));
        } else if (this.current === entry) this.send({ type: 'cancel', id: entry.id });
      },
    };
  }

  stats(): QueueStats {
    const mean = this.recent.length === 0 ? 0 : this.recent.reduce((a, b) => a + b, 0) / this.recent.length;
    return { worker: this.up ? 'up' : this.dead === null ? 'starting' : 'dead', running: this.current === null ? 0 : 1, waiting: this.queue.length, capacity: this.capacity, ...this.counts, meanJobMs: Math.round(mean) };
  }

  /**
   * Refuses the waiting jobs, lets the running one finish for up to graceMs (then aborts it), and
   * stops the thread. Resolves when the thread has exited.
   */
  close(graceMs = 10_000): Promise<void> {
    this.closed ??= this.drain(graceMs);
    return this.closed;
  }
  private closed: Promise<void> | null = null;

  private async drain(graceMs: number): Promise<void> {
    this.closing = true;
    for (const e of this.queue.splice(0)) e.reject(new JobError('closing', 'the server is shutting down'));
    const cur = this.current;
    const wait = (ms: number): Promise<void> => new Promise((res) => { const t = setTimeout(res, ms); void cur?.settled.then(() => { clearTimeout(t); res(); }); });
    if (cur !== null) {
      await wait(graceMs);
      if (this.current === cur) { this.send({ type: 'cancel', id: cur.id }); await wait(2000); }
    }
    const exited = this.exited;
    if (this.up) this.send({ type: 'close' }); else void this.worker.terminate();
    const t = setTimeout(() => void this.worker.terminate(), 5000); // a job that does not unwind
    await exited;
    clearTimeout(t);
    if (this.current !== null) { const c = this.current; this.current = null; c.reject(new JobError('closing', 'the server shut down before the job finished')); }
  }
}
