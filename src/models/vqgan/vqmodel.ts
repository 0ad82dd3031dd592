// The VQGAN image tokenizer: taming-transformers' VQModel (encoder, quant_conv, quantize,
// post_quant_conv, decoder) with taming's parameter names, so a converted taming checkpoint loads;
// and the model directory format (config.json + model.safetensors).
// Images are channels-last [N, H, W, 3] in [−1, 1].
// Legend: N batch, H×W pixels, h×w = H/f × W/f code grid, Z zChannels, D code dim, K codebook size.

import { mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadSafetensors, saveSafetensors } from '../../engine/io/safetensors.js';
import { Generator } from '../../engine/random.js';
import { fmtShape } from '../../engine/shape.js';
import { Tensor, noGrad } from '../../engine/tensor.js';
import { Conv2d } from '../../nn/layers.js';
import { Module, StateDictError, type LoadReport } from '../../nn/module.js';
import { configFromJson, configToJson, vqganConfig, type VQGANConfig, type VQGANConfigInput } from './config.js';
import { Decoder } from './decoder.js';
import { Encoder } from './encoder.js';
import { VectorQuantizer } from './quantizer.js';

export interface EncodeResult {
  /** [N, h, w, D] the continuous codes before quantization (quant_conv's output). */
  z: Tensor;
  /** [N, h, w, D] straight-through quantized codes (what `decode` takes). */
  zq: Tensor;
  /** i32 [N, h, w]. */
  codes: Tensor;
  /** [] codebook term ‖sg[E(x)] − z_emb‖². */
  codebookLoss: Tensor;
  /** [] commitment term ‖sg[z_emb] − E(x)‖². */
  commitmentLoss: Tensor;
  /** [] codebookLoss + β·commitmentLoss (see VectorQuantizer for EMA). */
  qLoss: Tensor;
}

export interface ForwardResult extends EncodeResult {
  /** [N, H, W, 3] the reconstruction x̂. */
  xRec: Tensor;
}

export interface VQModelOptions {
  /** Seeds the weight init (default Generator(0): construction is reproducible). */
  generator?: Generator;
  /** Seeds dropout masks (default Generator(1)). */
  dropoutGenerator?: Generator;
}

export class VQModel extends Module {
  readonly config: VQGANConfig;
  readonly encoder: Encoder;
  readonly decoder: Decoder;
  readonly quantize: VectorQuantizer;
  readonly quantConv: Conv2d;
  readonly postQuantConv: Conv2d;

  constructor(config: VQGANConfigInput = {}, opts: VQModelOptions = {}) {
    super();
    const c = vqganConfig(config);
    this.config = c;
    const g = opts.generator ?? new Generator(0);
    const eo = { generator: g, dropoutGenerator: opts.dropoutGenerator ?? new Generator(1) };
    // taming's registration order (encoder, decoder, [loss], quantize, quant_conv, post_quant_conv).
    this.encoder = this.addModule('encoder', new Encoder(c, eo));
    this.decoder = this.addModule('decoder', new Decoder(c, eo));
    this.quantize = this.addModule('quantize', new VectorQuantizer(c.nEmbed, c.embedDim, c.beta, c.quantizer, { generator: g }));
    this.quantConv = this.addModule('quant_conv', new Conv2d(c.zChannels, c.embedDim, 1, { generator: g }));
    this.postQuantConv = this.addModule('post_quant_conv', new Conv2d(c.embedDim, c.zChannels, 1, { generator: g }));
  }

  /** Image → quantized codes and the VQ loss terms (training mode also runs codebook health). */
  encode(x: Tensor): EncodeResult { // x [N, H, W, 3]
    const z = this.quantConv.forward(this.encoder.forward(x));        // [N, h, w, D]
    const q = this.quantize.forward(z);
    return { z, zq: q.zq, codes: q.codes, codebookLoss: q.codebookLoss, commitmentLoss: q.commitmentLoss, qLoss: q.loss };
  }

  /** Code vectors → image. Takes straight-through codes, or any z_emb-like [N, h, w, D] (end-to-end training). */
  decode(zq: Tensor): Tensor { // zq [N, h, w, D] → [N, f·h, f·w, 3]
    if (zq.rank !== 4 || zq.shape[3] !== this.config.embedDim) throw new RangeError(`VQModel.decode: expected [N, h, w, ${this.config.embedDim}], got ${fmtShape(zq.shape)}`);
    return this.decoder.forward(this.postQuantConv.forward(zq));      // [N, H, W, 3]
  }

  /** Code grid → image via the codebook. */
  decodeCodes(codes: Tensor): Tensor { // codes i32 [N, h, w] → [N, f·h, f·w, 3]
    if (codes.rank !== 3) throw new RangeError(`VQModel.decodeCodes: codes must be [N, h, w], got ${fmtShape(codes.shape)}`);
    return this.decode(this.quantize.lookup(codes));                  // [N, h, w, D] → [N, H, W, 3]
  }

  /** Image → code grid, with no graph and no training side effects (tokenization for the generator). */
  tokenize(x: Tensor): Tensor { // x [N, H, W, 3] → i32 [N, h, w]
    return noGrad(() => this.quantize.nearest(this.quantConv.forward(this.encoder.forward(x))));
  }

  /** Reconstruction and every loss term of the seed's VQVAE objective except ‖x − x̂‖² (the trainer's). */
  forward(x: Tensor): ForwardResult {
    const e = this.encode(x);
    return { ...e, xRec: this.decode(e.zq) };
  }

  /** Strict by default; loaded codebook weights count as initialised (no k-means over them). */
  override loadStateDict(sd: Record<string, Tensor>, opts: { strict?: boolean } = {}): LoadReport {
    const report = super.loadStateDict(sd, opts);
    if ('quantize.embedding.weight' in sd) this.quantize.markInitialised();
    return report;
  }
}

/**
 * A taming-transformers VQModel checkpoint's state dict (converted to safetensors) without what is not
 * the tokenizer: `loss.*` (discriminator, LPIPS). Returns the rest and the dropped names.
 */
export function fromTamingStateDict(sd: Record<string, Tensor>): { stateDict: Record<string, Tensor>; dropped: string[] } {
  const stateDict: Record<string, Tensor> = {}, dropped: string[] = [];
  for (const [k, v] of Object.entries(sd)) {
    if (k.startsWith('loss.')) dropped.push(k);
    else stateDict[k] = v;
  }
  return { stateDict, dropped };
}

// ---------------------------------------------------------------- model directories

export const CONFIG_FILE = 'config.json';
export const WEIGHTS_FILE = 'model.safetensors';

async function writeFileAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  try {
    const fh = await open(tmp, 'wx');
    try { await fh.writeFile(text); await fh.sync(); } finally { await fh.close(); }
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

/** Writes `dir/config.json` and `dir/model.safetensors` (each atomically; the directory is created). */
export async function saveVQModel(dir: string, model: VQModel): Promise<void> {
  await mkdir(dir, { recursive: true });
  await saveSafetensors(join(dir, WEIGHTS_FILE), model.stateDict(), { format: 'vqgan', architecture: 'taming-transformers VQModel' });
  await writeFileAtomic(join(dir, CONFIG_FILE), `${JSON.stringify(configToJson(model.config), null, 2)}\n`);
}

/** Reads a model directory written by saveVQModel (or a converted taming checkpoint); returns it in eval mode. */
export async function loadVQModel(dir: string): Promise<VQModel> {
  const isFile = async (p: string): Promise<boolean> => (await stat(p).catch(() => null))?.isFile() ?? false;
  const cfgPath = join(dir, CONFIG_FILE), wPath = join(dir, WEIGHTS_FILE);
  const what = `a VQGAN model directory holds ${CONFIG_FILE} and ${WEIGHTS_FILE}`;
  if (!(await stat(dir).catch(() => null))?.isDirectory()) throw new Error(`loadVQModel: ${dir} is not a directory (${what})`);
  if (!(await isFile(cfgPath))) throw new Error(`loadVQModel: ${cfgPath} is missing (${what})`);
  if (!(await isFile(wPath))) throw new Error(`loadVQModel: ${wPath} is missing (${what})`);
  let config: VQGANConfig;
  try {
    config = configFromJson(JSON.parse(await readFile(cfgPath, 'utf8')) as unknown);
  } catch (e) {
    throw new Error(`loadVQModel: ${cfgPath}: ${(e as Error).message}`);
  }
  const model = new VQModel(config);
  const { tensors } = await loadSafetensors(wPath);
  try {
    model.loadStateDict(fromTamingStateDict(tensors).stateDict);
  } catch (e) {
    if (e instanceof StateDictError) throw new Error(`loadVQModel: ${wPath} does not fit ${cfgPath}: ${e.message}`, { cause: e });
    throw e;
  }
  return model.eval();
}
