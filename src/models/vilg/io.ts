// Generator model directories: everything `generate` needs in one place.
//   DIR/config.json          {format, version, mode, specials, model: the VilgConfig}
//   DIR/model.safetensors    the transformer (names as reference/vilg.py)
//   DIR/tokenizer/           the WordPiece tokenizer (vocab.txt, tokenizer.json, tokenizer-config.json)
//   DIR/image-tokenizer/     the VQGAN (in end-to-end mode with the decoder trained jointly)

import { cpSync, existsSync, mkdirSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadSafetensors, saveSafetensors } from '../../engine/io/safetensors.js';
import { loadTokenizer } from '../../data/text/io.js';
import type { WordPieceTokenizer } from '../../data/text/wordpiece.js';
import { writeFileAtomic } from '../../train/checkpoint.js';
import { loadVQModel, saveVQModel, type VQModel } from '../vqgan/vqmodel.js';
import type { TextSpecials } from './batch.js';
import { vilgConfigFromJson, vilgConfigToJson } from './config.js';
import { ErnieVilg } from './model.js';

export type TrainMode = 'end-to-end' | 'two-stage';
export const VILG_MODEL_FORMAT = 'ernie-vilg-model';

export interface VilgModelBundle {
  model: ErnieVilg;
  text: WordPieceTokenizer;
  imageTokenizer: VQModel;
  mode: TrainMode;
  specials: TextSpecials;
}

/** Writes a model directory (see the top of this file); each file is written atomically. */
export async function saveVilgModel(dir: string, model: ErnieVilg, o: { text: string; reconstructor: VQModel; mode: TrainMode; specials: TextSpecials }): Promise<void> {
  await mkdir(dir, { recursive: true });
  await saveSafetensors(join(dir, 'model.safetensors'), model.stateDict(), { format: VILG_MODEL_FORMAT });
  const tokDir = join(dir, 'tokenizer');
  mkdirSync(tokDir, { recursive: true });
  if (existsSync(join(o.text, 'vocab.txt'))) {
    for (const f of ['vocab.txt', 'tokenizer.json', 'tokenizer-config.json']) if (existsSync(join(o.text, f))) cpSync(join(o.text, f), join(tokDir, f));
  } else {
    cpSync(o.text, join(tokDir, o.text.endsWith('.json') ? 'tokenizer.json' : 'vocab.txt')); // a single tokenizer file
  }
  await saveVQModel(join(dir, 'image-tokenizer'), o.reconstructor);
  const json = { format: VILG_MODEL_FORMAT, version: 1, mode: o.mode, specials: o.specials, model: vilgConfigToJson(model.config) };
  await writeFileAtomic(join(dir, 'config.json'), `${JSON.stringify(json, null, 2)}\n`);
}

/** Loads a model directory written by saveVilgModel; checks names and shapes strictly. Returns the model in eval mode. */
export async function loadVilgModel(dir: string): Promise<VilgModelBundle> {
  const cfgPath = join(dir, 'config.json');
  if (!existsSync(cfgPath)) throw new Error(`loadVilgModel: ${cfgPath} is missing (a generator model directory holds config.json, model.safetensors, tokenizer/, image-tokenizer/)`);
  let raw: { format?: unknown; version?: unknown; mode?: unknown; specials?: unknown; model?: unknown };
  try { raw = JSON.parse(await readFile(cfgPath, 'utf8')) as typeof raw; } catch (e) { throw new Error(`loadVilgModel: ${cfgPath}: ${(e as Error).message}`); }
  if (raw.format !== VILG_MODEL_FORMAT || raw.version !== 1) throw new Error(`loadVilgModel: ${cfgPath} is not a ${VILG_MODEL_FORMAT} v1 config (format ${String(raw.format)}, version ${String(raw.version)})`);
  if (raw.mode !== 'end-to-end' && raw.mode !== 'two-stage') throw new Error(`loadVilgModel: ${cfgPath}: mode must be end-to-end or two-stage, got ${String(raw.mode)}`);
  const config = vilgConfigFromJson(raw.model);
  const text = loadTokenizer(join(dir, 'tokenizer'));
  if (text.vocabSize !== config.textVocab) throw new Error(`loadVilgModel: ${dir}/tokenizer has ${text.vocabSize} tokens, the model ${config.textVocab}`);
  const imageTokenizer = await loadVQModel(join(dir, 'image-tokenizer'));
  if (imageTokenizer.config.nEmbed !== config.numCodes || imageTokenizer.config.embedDim !== config.embedDim) {
    throw new Error(`loadVilgModel: ${dir}/image-tokenizer has ${imageTokenizer.config.nEmbed} codes of dim ${imageTokenizer.config.embedDim}, the model ${config.numCodes} of dim ${config.embedDim}`);
  }
  const model = new ErnieVilg(config, { init: 'zeros' });
  const { tensors } = await loadSafetensors(join(dir, 'model.safetensors'));
  model.loadStateDict(tensors);
  model.eval();
  return { model, text, imageTokenizer, mode: raw.mode, specials: { pad: text.padId, cls: text.clsId, sep: text.sepId } };
}
