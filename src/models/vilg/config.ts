// The ERNIE-ViLG generator's configuration: one transformer for text → image and image → text.
// Configs are frozen, fully filled objects; unknown keys and impossible combinations are errors.
// Also: the parameter count and FLOPs per token computed from a config (checked against the paper's
// ~10B for the `paper` preset), and the L-layer slice of a config.
// Legend: V text vocabulary, K image codebook size, h×w image grid, n = h·w image tokens, T text
// positions, L layers, D hidden, H heads, M = mlpRatio·D MLP width, E VQGAN code dim.

export type AttentionMode = 'sparse' | 'dense';

export interface VilgConfig {
  /** Text vocabulary V (the WordPiece tokenizer's size; the trainer takes it from the tokenizer). */
  readonly textVocab: number;
  /** Image codebook size K (the VQGAN's nEmbed); the image table has K + 1 rows, row K is [BOI]. */
  readonly numCodes: number;
  /** Image token grid [h, w] (raster order), e.g. [32, 32] for 256 px at f = 8. */
  readonly imageGrid: readonly [number, number];
  /** Longest text segment T, [CLS] and [SEP] included (size of the 1-D text position table). */
  readonly maxTextLen: number;
  /** Transformer layers L, shared by both directions. */
  readonly numLayers: number;
  /** Hidden size D. */
  readonly hidden: number;
  /** Attention heads H (D must divide by H). */
  readonly heads: number;
  /** MLP width as a multiple of D. */
  readonly mlpRatio: number;
  /** Dropout on embeddings and on both residual branches (not on attention probabilities). */
  readonly dropout: number;
  /** Pre-LN blocks (LN before each sublayer, a final LN); false = post-LN (BERT: LN after each residual add, LN on the embeddings). */
  readonly preLN: boolean;
  /** Output heads reuse the input embedding tables (transposed); each head keeps its own bias. */
  readonly tieEmbeddings: boolean;
  /** 'sparse' = DALL-E's row/column/conv schedule for image-to-image attention; 'dense' = plain UniLM masks. */
  readonly attention: AttentionMode;
  /** Side k of the conv attention window (odd). */
  readonly convKernel: number;
  /** Code dim E of the VQGAN (its embedDim): the end-to-end projection maps D → E. */
  readonly embedDim: number;
  /** Std of the normal init of embeddings and linear weights (residual outputs: initStd/√(2L), as GPT-2). */
  readonly initStd: number;
}

/** The paper (ERNIE-ViLG §3.3): 48 layers, 4096 hidden, 64 heads, 32×32 codes from an 8192-code VQGAN (~10B). */
const PAPER: VilgConfig = Object.freeze({
  textVocab: 40000, // not given in the paper; ERNIE 3.0's Chinese WordPiece vocabulary size
  numCodes: 8192, // the paper's VQGAN codebook
  imageGrid: Object.freeze([32, 32]) as readonly [number, number], // 256 px crops at f = 8 → 1024 tokens
  maxTextLen: 64, // not given in the paper; 64 text tokens (the grid32 benchmark)
  numLayers: 48, // the paper
  hidden: 4096, // the paper
  heads: 64, // the paper (head dim 64)
  mlpRatio: 4, // the standard transformer MLP (ERNIE, GPT)
  dropout: 0.1, // ERNIE/BERT's default
  preLN: true, // stable at depth without warm-up tricks
  tieEmbeddings: false, // separate heads: the paper does not say it ties them
  attention: 'sparse', // the paper uses DALL-E's sparse attention in both directions
  convKernel: 11, // DALL-E's 11×11 conv window on a 32×32 grid
  embedDim: 256, // the code dim of taming's f8 VQGANs (src/models/vqgan `paper`)
  initStd: 0.02, // BERT/GPT-2
});

/** Small presets share everything but the vocabularies and codebooks of their data sets. */
const SMALL = Object.freeze({
  imageGrid: Object.freeze([8, 8]) as readonly [number, number], // 64 px at f = 8 or 32 px at f = 4
  maxTextLen: 32, // captions of a few words ([CLS]/[SEP] and CJK characters one per token included)
  numLayers: 6, // row, column, row, row, row, conv: every sparse kind, with column once
  hidden: 256, // small enough for two CPU cores
  heads: 8, // head dim 32
  mlpRatio: 4, // standard
  dropout: 0.1, // small data sets overfit without it
  preLN: true, // as the paper preset
  tieEmbeddings: false, // as the paper preset
  attention: 'sparse' as AttentionMode, // as the paper
  convKernel: 3, // 3×3 window on an 8×8 grid (11 is most of the grid)
  initStd: 0.02, // BERT/GPT-2
});

/** Named presets: `paper`, small ones that train on two CPU cores, `tiny` for tests and the PyTorch fixtures. */
export const VILG_PRESETS: Readonly<Record<string, VilgConfig>> = Object.freeze({
  paper: PAPER,
  // data/emoji: its WordPiece tokenizer (4000 tokens) and the emoji-64 VQGAN (512 codes, D 64, 8×8 grid).
  'emoji-small': freezeConfig({ ...SMALL, textVocab: 4000, numCodes: 512, embedDim: 64 }),
  // the synthetic shapes: a closed vocabulary (a small tokenizer) and the shapes-32 VQGAN (256 codes, D 32).
  'shapes-small': freezeConfig({ ...SMALL, textVocab: 1000, numCodes: 256, embedDim: 32, numLayers: 4 }),
  // tests and reference/vilg.py: a 3×4 grid (h ≠ w catches transposed positions), 4 layers (row, column, row, conv).
  tiny: freezeConfig({
    textVocab: 24, numCodes: 16, imageGrid: [3, 4], maxTextLen: 6, numLayers: 4, hidden: 16, heads: 2, mlpRatio: 2,
    dropout: 0, preLN: true, tieEmbeddings: false, attention: 'sparse', convKernel: 3, embedDim: 4, initStd: 0.02,
  }),
});

export const DEFAULT_VILG_CONFIG: VilgConfig = PAPER;

function freezeConfig(c: VilgConfig): VilgConfig {
  return Object.freeze({ ...c, imageGrid: Object.freeze([c.imageGrid[0], c.imageGrid[1]]) as readonly [number, number] });
}

export type VilgConfigInput = Partial<VilgConfig>;

function intAtLeast(v: unknown, min: number, what: string): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw new RangeError(`ViLG config: ${what} must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
}

/**
 * Fills `overrides` over `base` (default: the paper preset) and checks everything; errors name the field.
 * Unknown keys are errors listing the known ones.
 */
export function vilgConfig(overrides: VilgConfigInput = {}, base: VilgConfig = DEFAULT_VILG_CONFIG): VilgConfig {
  if (overrides === null || typeof overrides !== 'object' || Array.isArray(overrides)) throw new TypeError('ViLG config: expected an object');
  for (const k of Object.keys(overrides)) {
    if (!Object.prototype.hasOwnProperty.call(PAPER, k)) throw new RangeError(`ViLG config: unknown key '${k}' (known: ${Object.keys(PAPER).join(', ')})`);
  }
  const c: VilgConfig = { ...base, ...overrides };
  for (const k of ['textVocab', 'maxTextLen', 'numLayers', 'hidden', 'heads', 'mlpRatio', 'embedDim'] as const) intAtLeast(c[k], 1, k);
  intAtLeast(c.numCodes, 2, 'numCodes');
  const g = c.imageGrid as unknown;
  if (!Array.isArray(g) || g.length !== 2) throw new RangeError(`ViLG config: imageGrid must be [h, w], got ${JSON.stringify(g)}`);
  intAtLeast(g[0], 1, 'imageGrid[0] (h)');
  intAtLeast(g[1], 1, 'imageGrid[1] (w)');
  if (c.hidden % c.heads !== 0) throw new RangeError(`ViLG config: hidden ${c.hidden} does not split into ${c.heads} heads`);
  if (typeof c.dropout !== 'number' || !(c.dropout >= 0 && c.dropout < 1)) throw new RangeError(`ViLG config: dropout must be in [0, 1), got ${JSON.stringify(c.dropout)}`);
  for (const k of ['preLN', 'tieEmbeddings'] as const) {
    if (typeof c[k] !== 'boolean') throw new RangeError(`ViLG config: ${k} must be true or false, got ${JSON.stringify(c[k])}`);
  }
  if (c.attention !== 'sparse' && c.attention !== 'dense') throw new RangeError(`ViLG config: attention must be 'sparse' or 'dense', got ${JSON.stringify(c.attention)}`);
  intAtLeast(c.convKernel, 1, 'convKernel');
  if (c.convKernel % 2 === 0) throw new RangeError(`ViLG config: convKernel must be odd, got ${c.convKernel}`);
  if (typeof c.initStd !== 'number' || !(c.initStd > 0 && Number.isFinite(c.initStd))) throw new RangeError(`ViLG config: initStd must be a positive number, got ${JSON.stringify(c.initStd)}`);
  return freezeConfig(c);
}

/** A preset by name; unknown names list the known ones. */
export function vilgPreset(name: string): VilgConfig {
  const p = VILG_PRESETS[name];
  if (p === undefined) throw new RangeError(`unknown ViLG preset '${name}' (known: ${Object.keys(VILG_PRESETS).join(', ')})`);
  return p;
}

/** The first `numLayers` layers of a config, everything else equal (the paper's 2-layer slice in tests). */
export function sliceLayers(c: VilgConfig, numLayers: number): VilgConfig {
  return vilgConfig({ numLayers }, c);
}

/** The config as written to config.json: every field, plain JSON. */
export function vilgConfigToJson(c: VilgConfig): Record<string, unknown> {
  return JSON.parse(JSON.stringify(c)) as Record<string, unknown>;
}

/** Parses config.json contents (an object or its text); missing fields take the paper preset's values. */
export function vilgConfigFromJson(json: unknown): VilgConfig {
  const obj: unknown = typeof json === 'string' ? JSON.parse(json) : json;
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) throw new TypeError('ViLG config JSON: expected an object');
  return vilgConfig(obj as VilgConfigInput);
}

// ---------------------------------------------------------------- size and cost

/** Image tokens n = h·w. */
export function numImageTokens(c: Pick<VilgConfig, 'imageGrid'>): number { return c.imageGrid[0] * c.imageGrid[1]; }

/** Parameters by part; `total` is what ErnieVilg.numParameters() returns for this config. */
export interface ParamCount {
  /** Token tables (V + K + 1 rows), text positions T, image rows h and columns w, 4 token types; each × D. */
  embeddings: number;
  /** L × (2 LayerNorms 4D, qkv 3D² + 3D, out proj D² + D, MLP 2DM + M + D). */
  layers: number;
  /** The final LN (pre-LN) or the embedding LN (post-LN): 2D. */
  norms: number;
  /** Text and image heads: (D + 1)(V + K) untied, V + K (biases only) tied. */
  heads: number;
  /** End-to-end projection D → E: DE + E. */
  zembProjection: number;
  total: number;
}

export function paramCount(c: VilgConfig): ParamCount {
  const D = c.hidden, M = c.mlpRatio * D, V = c.textVocab, K = c.numCodes;
  const embeddings = (V + K + 1 + c.maxTextLen + c.imageGrid[0] + c.imageGrid[1] + 4) * D;
  const layers = c.numLayers * (4 * D + 3 * D * D + 3 * D + D * D + D + 2 * D * M + M + D);
  const norms = 2 * D;
  const heads = c.tieEmbeddings ? V + K : (D + 1) * (V + K);
  const zembProjection = D * c.embedDim + c.embedDim;
  return { embeddings, layers, norms, heads, zembProjection, total: embeddings + layers + norms + heads + zembProjection };
}

/** Forward FLOPs per token (a multiply-add = 2 FLOPs) by part; training ≈ 3 × forward (backward = 2 × forward). */
export interface FlopsPerToken {
  /** 2 × the layers' matmul weights: L · 2 · (4D² + 2DM). */
  matmuls: number;
  /** Scores q·k and the weighted sum of v over `attendedKeys` keys: L · 4 · D · keys. */
  attention: number;
  /** 2 · D · classes of the head the token is scored by (image head for text → image). */
  head: number;
  forward: number;
  training: number;
}

/**
 * FLOPs per token of a text → image training sequence. opts.attendedKeys: keys a query attends to on
 * average (default: the whole t2i sequence T + 1 + n, the dense upper bound); opts.head: 'image' (default) or 'text'.
 */
export function flopsPerToken(c: VilgConfig, opts: { attendedKeys?: number; head?: 'image' | 'text' } = {}): FlopsPerToken {
  const D = c.hidden, M = c.mlpRatio * D, L = c.numLayers;
  const keys = opts.attendedKeys ?? c.maxTextLen + 1 + numImageTokens(c);
  if (!(keys > 0 && Number.isFinite(keys))) throw new RangeError(`flopsPerToken: attendedKeys must be a positive number, got ${keys}`);
  const matmuls = L * 2 * (4 * D * D + 2 * D * M);
  const attention = L * 4 * D * keys;
  const head = 2 * D * ((opts.head ?? 'image') === 'image' ? c.numCodes : c.textVocab);
  const forward = matmuls + attention + head;
  return { matmuls, attention, head, forward, training: 3 * forward };
}
