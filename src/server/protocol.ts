// The messages between the HTTP server (main thread, src/server/server.ts) and the model worker
// (src/server/worker.ts, one worker_threads Worker that owns the VilgPipeline). Requests are validated
// before they become jobs, so a job holds only checked values: text, numbers, and image bytes whose
// header was already read (a job never carries a path — nothing a request sends reaches the file system).

/** Text → image sampling, as the pipeline takes it (src/models/vilg/pipeline.ts). */
export interface TextToImageJob {
  readonly kind: 'text-to-image';
  readonly prompt: string;
  readonly n: number;
  readonly topK: number;
  readonly topP: number;
  readonly temperature: number;
  readonly seed: number;
  readonly rerank: boolean;
  /** Decode and send the partial images after every finished row of codes. */
  readonly stream: boolean;
}

/** Text decoding options shared by captioning and VQA. */
export interface DecodeParams {
  readonly beams: number;
  readonly lang: 'en' | 'zh' | 'any';
  readonly lengthPenalty: number;
  readonly noRepeatNgram: number;
  readonly maxLen?: number;
}

export interface CaptionJob extends DecodeParams {
  readonly kind: 'caption';
  /** Encoded PNG/JPEG/WebP/GIF bytes (format and pixel count checked by the server). */
  readonly image: Uint8Array;
}

export interface VqaJob extends DecodeParams {
  readonly kind: 'vqa';
  readonly image: Uint8Array;
  readonly question: string;
}

export type Job = TextToImageJob | CaptionJob | VqaJob;

/** One image of a text → image answer: PNG as base64, and its rerank score (null without rerank). */
export interface ImageOut {
  readonly png: string;
  readonly width: number;
  readonly height: number;
  readonly score: number | null;
}

export interface TextToImageOut {
  readonly prompt: string;
  readonly tokens: readonly string[];
  readonly warnings: readonly string[];
  readonly images: readonly ImageOut[];
  readonly ms: number;
}
export interface CaptionOut { readonly caption: string; readonly logprob: number; readonly tokens: readonly number[]; readonly ms: number }
export interface VqaOut { readonly question: string; readonly answer: string; readonly logprob: number; readonly tokens: readonly number[]; readonly warnings: readonly string[]; readonly ms: number }
export type JobOut = TextToImageOut | CaptionOut | VqaOut;

/** Progress of a streamed text → image job: the partial candidates (rows after `row` grey), base64 PNG. */
export interface ProgressOut { readonly row: number; readonly rows: number; readonly images: readonly string[] }

/**
 * Why a job failed: 'invalid' (the pipeline rejected a value, e.g. a prompt with no known tokens → 400),
 * 'image' (the image bytes do not decode → 415), 'aborted' (cancelled), 'internal' (anything else → 500).
 */
export type FailureKind = 'invalid' | 'image' | 'aborted' | 'internal';

/** What the worker knows about its model, sent once when it is ready. */
export interface WorkerReady {
  readonly dir: string;
  readonly mode: string;
  readonly imageSize: number;
  readonly parameters: number;
  readonly config: Readonly<Record<string, unknown>>;
  /** The kernel backend the worker's engine uses, and why the addon did not load when it did not. */
  readonly backend: 'native' | 'reference';
  readonly nativeLoadError: string | null;
  readonly loadMs: number;
}

export type ToWorker =
  | { readonly type: 'job'; readonly id: number; readonly job: Job }
  | { readonly type: 'cancel'; readonly id: number }
  | { readonly type: 'close' };

export type FromWorker =
  | { readonly type: 'ready'; readonly info: WorkerReady }
  | { readonly type: 'fatal'; readonly message: string }
  | { readonly type: 'progress'; readonly id: number; readonly progress: ProgressOut }
  | { readonly type: 'done'; readonly id: number; readonly result: JobOut }
  | { readonly type: 'failed'; readonly id: number; readonly kind: FailureKind; readonly message: string };
