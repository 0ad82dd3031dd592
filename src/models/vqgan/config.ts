// The VQGAN image tokenizer's configuration: taming-transformers' `ddconfig` + `embed_dim`/`n_embed`
// in camelCase, the seed's commitment weight β, and the codebook-health options of our quantizer.
// Configs are frozen, fully filled objects; unknown keys and impossible combinations are errors.
// Legend: f downsampling factor, h×w token grid, K codebook size, D code dim.

/** Codebook health: the remedies for codebook collapse (few codes used). All off = taming's quantizer. */
export interface QuantizerOptions {
  /** Cosine codes (ViT-VQGAN): z and the codebook are l2-normalised before distances and lookup. */
  readonly l2Normalised: boolean;
  /** Initialise the codebook by k-means over the encoder outputs of the first training batch(es). */
  readonly kmeansInit: boolean;
  /** Training batches whose encoder outputs are pooled for the k-means initialisation. */
  readonly kmeansBatches: number;
  /** Lloyd iterations of that k-means. */
  readonly kmeansIters: number;
  /** EMA codebook updates (VQ-VAE-2); the codebook loss term is dropped and the codebook is a buffer. */
  readonly ema: boolean;
  /** EMA decay of the cluster sizes and code sums. */
  readonly emaDecay: number;
  /** Laplace smoothing ε of the EMA cluster sizes (keeps rarely used codes from dividing by ~0). */
  readonly emaEps: number;
  /** Restart codes that went unused for `deadCodeSteps` training steps from random current encoder outputs. */
  readonly deadCodeRestart: boolean;
  /** Training steps without a single use after which a code counts as dead. */
  readonly deadCodeSteps: number;
  /** Seeds the quantizer's own randomness (k-means initial centroids, dead-code restarts). */
  readonly seed: number;
}

export interface VQGANConfig {
  /** Training image size in pixels (taming: resolution); places the attention blocks. */
  readonly resolution: number;
  /** Image channels in and out (taming: in_channels = out_ch). */
  readonly inChannels: number;
  /** Base channel count (taming: ch). */
  readonly ch: number;
  /** Channel multiplier per resolution level; L levels give f = 2^(L−1) (taming: ch_mult). */
  readonly chMult: readonly number[];
  /** ResNet blocks per encoder level (the decoder has one more per level) (taming: num_res_blocks). */
  readonly numResBlocks: number;
  /** Feature-map sizes at which the levels get self-attention blocks (taming: attn_resolutions). */
  readonly attnResolutions: readonly number[];
  /** Channels of the encoder output and decoder input (taming: z_channels; double_z is false for VQ). */
  readonly zChannels: number;
  /** Code dimension D (taming: embed_dim; quant_conv maps zChannels → D). */
  readonly embedDim: number;
  /** Codebook size K (taming: n_embed). */
  readonly nEmbed: number;
  /** Dropout inside the ResNet blocks (taming: dropout). */
  readonly dropout: number;
  /** GroupNorm groups (taming hard-codes 32; tiny test configs need fewer). */
  readonly normGroups: number;
  /** Commitment weight β on ‖sg[z_emb] − E(x)‖² (NOT on the codebook term, unlike taming's legacy=True). */
  readonly beta: number;
  readonly quantizer: QuantizerOptions;
}

export const DEFAULT_QUANTIZER_OPTIONS: QuantizerOptions = Object.freeze({
  l2Normalised: false, // Euclidean codes, as taming
  kmeansInit: false, // taming: uniform(−1/K, 1/K) init
  kmeansBatches: 1, // the first batch is usually enough points (batch · h · w ≥ K)
  kmeansIters: 10, // Lloyd converges in a handful of iterations from sampled centroids
  ema: false, // taming trains the codebook by gradient (the codebook loss term)
  emaDecay: 0.99, // VQ-VAE-2 / Sonnet default
  emaEps: 1e-5, // Sonnet's Laplace ε
  deadCodeRestart: false, // taming has none
  deadCodeSteps: 100, // long enough for a code to be used on a normal batch
  seed: 0, // any fixed seed: runs are reproducible
});

/** The paper's tokenizer: 256 px, f = 8 (32×32 = 1024 tokens), 8192 codes (ERNIE-ViLG §3.1). */
const PAPER: VQGANConfig = Object.freeze({
  resolution: 256, // 256×256 centre crops
  inChannels: 3, // RGB
  ch: 128, // taming's VQGANs all use 128
  chMult: Object.freeze([1, 2, 2, 4]), // 4 levels → f = 8, as taming/LDM's f8 autoencoders
  numResBlocks: 2, // taming's default
  attnResolutions: Object.freeze([32]), // attention at the 32×32 token grid (the lowest resolution)
  zChannels: 256, // taming f8/f16 VQGANs
  embedDim: 256, // taming f8/f16 VQGANs
  nEmbed: 8192, // the paper's codebook size
  dropout: 0, // taming's default
  normGroups: 32, // taming's Normalize
  beta: 0.25, // VQ-VAE and taming's β
  quantizer: DEFAULT_QUANTIZER_OPTIONS, // plain taming quantizer, so a converted taming checkpoint loads
});

/** Small presets keep collapse in check by default: k-means init plus dead-code restarts. */
const SMALL_QUANTIZER: QuantizerOptions = Object.freeze({ ...DEFAULT_QUANTIZER_OPTIONS, kmeansInit: true, deadCodeRestart: true });

export const DEFAULT_VQGAN_CONFIG: VQGANConfig = PAPER;

/** Named presets: `paper` (the paper's size), small ones that train on two CPU cores, `tiny` for tests. */
export const VQGAN_PRESETS: Readonly<Record<string, VQGANConfig>> = Object.freeze({
  paper: PAPER,
  // 64 px, f = 8 → 8×8 tokens; channels 32/64/128/128 (4.26M parameters). ch 64 with [1, 2, 2, 4]
  // (13.0M) steps 2.8× slower on 2 cores (6.0 vs 16.7 img/s at batch 16, bf16) for the same 8×8 bottleneck.
  'emoji-64': freezeConfig({
    resolution: 64, inChannels: 3, ch: 32, chMult: [1, 2, 4, 4], numResBlocks: 1, attnResolutions: [8],
    zChannels: 64, embedDim: 64, nEmbed: 512, dropout: 0, normGroups: 32, beta: 0.25, quantizer: SMALL_QUANTIZER,
  }),
  // 32 px, f = 4 → 8×8 tokens; channels 32/64/128.
  'emoji-32': freezeConfig({
    resolution: 32, inChannels: 3, ch: 32, chMult: [1, 2, 4], numResBlocks: 1, attnResolutions: [8],
    zChannels: 64, embedDim: 64, nEmbed: 512, dropout: 0, normGroups: 32, beta: 0.25, quantizer: SMALL_QUANTIZER,
  }),
  // The synthetic shapes have few distinct parts (colours × shapes × sizes): a smaller codebook.
  'shapes-32': freezeConfig({
    resolution: 32, inChannels: 3, ch: 32, chMult: [1, 2, 4], numResBlocks: 1, attnResolutions: [8],
    zChannels: 32, embedDim: 32, nEmbed: 256, dropout: 0, normGroups: 32, beta: 0.25, quantizer: SMALL_QUANTIZER,
  }),
  // Tests and the PyTorch parity fixture (reference/vqgan.py): 16 px, f = 2 → 8×8 tokens.
  tiny: freezeConfig({
    resolution: 16, inChannels: 3, ch: 8, chMult: [1, 2], numResBlocks: 1, attnResolutions: [8],
    zChannels: 4, embedDim: 4, nEmbed: 16, dropout: 0, normGroups: 4, beta: 0.25, quantizer: DEFAULT_QUANTIZER_OPTIONS,
  }),
});

function freezeConfig(c: VQGANConfig): VQGANConfig {
  return Object.freeze({
    ...c,
    chMult: Object.freeze([...c.chMult]),
    attnResolutions: Object.freeze([...c.attnResolutions]),
    quantizer: Object.freeze({ ...c.quantizer }),
  });
}

/** A config override: any subset of fields; `quantizer` may itself be partial. */
export type VQGANConfigInput = Partial<Omit<VQGANConfig, 'quantizer'>> & { quantizer?: Partial<QuantizerOptions> };

/** The downsampling factor f = 2^(levels − 1). */
export function downsampleFactor(c: Pick<VQGANConfig, 'chMult'>): number { return 2 ** (c.chMult.length - 1); }

/** The token grid [h, w] of a training-size image. */
export function tokenGrid(c: Pick<VQGANConfig, 'chMult' | 'resolution'>): [number, number] {
  const s = c.resolution / downsampleFactor(c);
  return [s, s];
}

/** Feature-map size of each level, level 0 first (resolution, resolution/2, ...). */
export function levelResolutions(c: Pick<VQGANConfig, 'chMult' | 'resolution'>): number[] {
  return c.chMult.map((_, i) => c.resolution / 2 ** i);
}

function checkKeys(obj: object, known: object, where: string): void {
  for (const k of Object.keys(obj)) {
    if (!Object.prototype.hasOwnProperty.call(known, k)) {
      throw new RangeError(`${where}: unknown key '${k}' (known: ${Object.keys(known).join(', ')})`);
    }
  }
}

function intAtLeast(v: unknown, min: number, what: string): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new RangeError(`VQGAN config: ${what} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
}

function intList(v: unknown, what: string, allowEmpty: boolean): asserts v is number[] {
  if (!Array.isArray(v) || (!allowEmpty && v.length === 0)) throw new RangeError(`VQGAN config: ${what} must be a ${allowEmpty ? '' : 'non-empty '}list of positive integers, got ${JSON.stringify(v)}`);
  v.forEach((x, i) => intAtLeast(x, 1, `${what}[${i}]`));
}

function checkQuantizer(q: QuantizerOptions): void {
  for (const k of ['l2Normalised', 'kmeansInit', 'ema', 'deadCodeRestart'] as const) {
    if (typeof q[k] !== 'boolean') throw new RangeError(`VQGAN config: quantizer.${k} must be true or false, got ${JSON.stringify(q[k])}`);
  }
  intAtLeast(q.kmeansBatches, 1, 'quantizer.kmeansBatches');
  intAtLeast(q.kmeansIters, 0, 'quantizer.kmeansIters');
  intAtLeast(q.deadCodeSteps, 1, 'quantizer.deadCodeSteps');
  if (typeof q.seed !== 'number' || !Number.isInteger(q.seed)) throw new RangeError(`VQGAN config: quantizer.seed must be an integer, got ${JSON.stringify(q.seed)}`);
  if (typeof q.emaDecay !== 'number' || !(q.emaDecay > 0 && q.emaDecay < 1)) throw new RangeError(`VQGAN config: quantizer.emaDecay must be in (0, 1), got ${JSON.stringify(q.emaDecay)}`);
  if (typeof q.emaEps !== 'number' || !(q.emaEps > 0 && Number.isFinite(q.emaEps))) throw new RangeError(`VQGAN config: quantizer.emaEps must be a positive number, got ${JSON.stringify(q.emaEps)}`);
}

/**
 * Fills `overrides` over `base` (default: the paper preset) and checks everything; errors name the field.
 * Unknown keys (also inside `quantizer`) are errors listing the known ones.
 */
export function vqganConfig(overrides: VQGANConfigInput = {}, base: VQGANConfig = DEFAULT_VQGAN_CONFIG): VQGANConfig {
  if (overrides === null || typeof overrides !== 'object' || Array.isArray(overrides)) throw new TypeError('VQGAN config: expected an object');
  checkKeys(overrides, DEFAULT_VQGAN_CONFIG, 'VQGAN config');
  const q = overrides.quantizer ?? {};
  if (q === null || typeof q !== 'object' || Array.isArray(q)) throw new TypeError('VQGAN config: quantizer must be an object');
  checkKeys(q, DEFAULT_QUANTIZER_OPTIONS, 'VQGAN config quantizer');
  const c: VQGANConfig = { ...base, ...overrides, quantizer: { ...base.quantizer, ...q } };

  for (const k of ['resolution', 'inChannels', 'ch', 'numResBlocks', 'zChannels', 'embedDim', 'normGroups'] as const) intAtLeast(c[k], 1, k);
  intAtLeast(c.nEmbed, 2, 'nEmbed');
  intList(c.chMult, 'chMult', false);
  intList(c.attnResolutions, 'attnResolutions', true);
  if (typeof c.dropout !== 'number' || !(c.dropout >= 0 && c.dropout < 1)) throw new RangeError(`VQGAN config: dropout must be in [0, 1), got ${JSON.stringify(c.dropout)}`);
  if (typeof c.beta !== 'number' || !(c.beta >= 0 && Number.isFinite(c.beta))) throw new RangeError(`VQGAN config: beta must be a finite number ≥ 0, got ${JSON.stringify(c.beta)}`);
  checkQuantizer(c.quantizer);

  const f = downsampleFactor(c);
  if (c.resolution % f !== 0) throw new RangeError(`VQGAN config: resolution ${c.resolution} is not divisible by the downsampling factor ${f} (2^(${c.chMult.length} levels − 1))`);
  for (const m of [1, ...c.chMult]) {
    if ((c.ch * m) % c.normGroups !== 0) throw new RangeError(`VQGAN config: ${c.ch * m} channels (ch ${c.ch} × ${m}) do not split into normGroups ${c.normGroups}`);
  }
  const levels = levelResolutions(c);
  for (const r of c.attnResolutions) {
    if (!levels.includes(r)) throw new RangeError(`VQGAN config: attnResolutions ${r} matches no level (level sizes ${levels.join(', ')})`);
  }
  return freezeConfig(c);
}

/** A preset by name; unknown names list the known ones. */
export function vqganPreset(name: string): VQGANConfig {
  const p = VQGAN_PRESETS[name];
  if (p === undefined) throw new RangeError(`unknown VQGAN preset '${name}' (known: ${Object.keys(VQGAN_PRESETS).join(', ')})`);
  return p;
}

/** The config as written to config.json: every field, plain JSON. */
export function configToJson(c: VQGANConfig): Record<string, unknown> {
  return JSON.parse(JSON.stringify(c)) as Record<string, unknown>;
}

/** Parses config.json contents (an object or its text); missing fields take the paper preset's values. */
export function configFromJson(json: unknown): VQGANConfig {
  const obj: unknown = typeof json === 'string' ? JSON.parse(json) : json;
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new TypeError('VQGAN config JSON: expected an object');
  return vqganConfig(obj as VQGANConfigInput);
}
