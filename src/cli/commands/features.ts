// `vilg train-features`: trains the in-domain feature network of `shapes` or `emoji` (src/eval/features.ts) on a
// prepared data set's TRAIN split, reports its accuracy per head on the test split, and writes
// OUT/model.safetensors, OUT/config.json (with the training facts) and OUT/MODEL_CARD.md. `vilg eval`
// computes FD-shapes / KID-shapes (FD-emoji / KID-emoji and emoji recognition) in its feature space. Heavy modules load inside run(), so `vilg --help` stays fast.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError, intOption, requiredString, type ParsedOptions } from '../args.js';
import type { Command } from '../command.js';

const D = { epochs: 14, seed: 0, batchSize: 64, lr: 3e-3 } as const; // mirrors TRAIN_FEATURE_DEFAULTS (literal so --help loads nothing)

const int = intOption; // the shared option checks live in ../args.ts

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;

export const commands: Record<string, Command> = {
  'train-features': {
    summary: 'train the in-domain feature network for FD / KID (shapes or emoji) on a prepared data set (train split)',
    options: {
      data: { type: 'string', help: 'prepared shapes or emoji data set directory (vilg data prepare shapes|emoji ...)' },
      out: { type: 'string', help: 'output directory (model.safetensors, config.json, MODEL_CARD.md)' },
      epochs: { type: 'number', help: 'passes over the train split', default: D.epochs },
      seed: { type: 'number', help: 'seed of the weights and the data order', default: D.seed },
      'batch-size': { type: 'number', help: 'images per step', default: D.batchSize },
      lr: { type: 'number', help: 'peak AdamW learning rate (cosine-decayed to 5%)', default: D.lr },
      quiet: { type: 'boolean', help: 'no progress bar' },
    },
    async run(positionals, o) {
      if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}' (use --data DIR --out DIR)`);
      const data = requiredString(o, 'data', 'dir'), out = requiredString(o, 'out', 'dir');
      if (!existsSync(data) || !statSync(data).isDirectory()) throw new UsageError(`--data ${data}: no such directory`);
      const epochs = int(o, 'epochs', 1)!, seed = int(o, 'seed', 0)!, batchSize = int(o, 'batch-size', 1)!;
      const lr = o['lr'];
      if (typeof lr !== 'number' || !(lr > 0 && lr < 1)) throw new UsageError(`--lr must be in (0, 1), got ${String(lr)}`);
      await import('../../engine/index.js'); // loads the native backend when it is built
      const { openDataset } = await import('../../data/format.js');
      const { headAccuracy, saveFeatureNet, trainFeatureNet } = await import('../../eval/features.js');
      const { EMOJI_HEAD_WHAT, FEATURE_HEADS } = await import('../../eval/feature-labels.js');
      const { progress } = await import('../../util/progress.js');
      const { writeFileAtomic } = await import('../../util/atomic.js');
      let ds;
      try { ds = openDataset(data); } catch (e) { throw new UsageError(`--data: ${(e as Error).message}`); }
      let bar: ReturnType<typeof progress> | null = null;
      let result;
      try {
        result = trainFeatureNet(ds, {
          epochs, seed, batchSize, lr,
          onStep: (step, steps) => { bar ??= progress('train-features', steps, { silent: o['quiet'] === true }); bar.tick(1); if (step === steps) bar.done(); },
        });
      } catch (e) {
        if (e instanceof RangeError) throw new UsageError(e.message.replace(/^trainFeatureNet: /, ''));
        throw e;
      }
      const test = headAccuracy(result.net, ds, 'test');
      const train = headAccuracy(result.net, ds, 'train', 1000);
      const facts = {
        training: {
          command: `vilg train-features --data ${data} --out ${out} --epochs ${epochs} --seed ${seed} --batch-size ${batchSize} --lr ${lr}`,
          data: ds.card.name, dataCreatedBy: ds.card.createdBy, split: 'train', samples: result.samples, epochs, seed, batchSize, lr,
          steps: result.steps, seconds: Math.round(result.seconds), epochLoss: result.epochLoss.map((v) => Math.round(v * 1e4) / 1e4),
        },
        testAccuracy: Object.fromEntries(Object.entries(test).map(([k, v]) => [k, { ...v, accuracy: Math.round(v.accuracy * 1e4) / 1e4 }])),
      };
      await saveFeatureNet(result.net, out, facts);
      const cfg = result.net.config, domain = cfg.domain ?? 'shapes', name = `feat-${domain}-${cfg.imageSize}`, FD = `FD-${domain}`, KID = `KID-${domain}`;
      const what = (h: string): string => FEATURE_HEADS.find((x) => x.name === h)?.what ?? EMOJI_HEAD_WHAT[h] ?? '';
      const heads = [...cfg.heads.map((h) => h.name), 'all'];
      const card = [
        `# ${name}: the in-domain feature network of \`${domain}\``, '',
        `A small convolutional classifier of ${domain === 'shapes' ? 'shapes scenes' : 'emoji images'} (${cfg.imageSize}×${cfg.imageSize} RGB), trained by this project on the TRAIN split only and frozen.`,
        `Its ${cfg.featureDim}-d feature (the penultimate layer) is the space in which \`vilg eval\` computes **${FD}** (a Fréchet distance) and`,
        `**${KID}** (unbiased MMD², cubic polynomial kernel)${domain === 'emoji' ? ' and recognises generated emoji by retrieval' : ''}. These are *not* FID/KID: no Inception network is involved, and the`,
        'figures are comparable only with other figures computed with this very network (same weights, same data).', '',
        '## Architecture', '',
        `conv 3→${cfg.channels.join('→')} (3×3; strides 1, 2, 2, 2; GroupNorm(${cfg.groups}) + GELU each) → flatten ${cfg.imageSize / 8}×${cfg.imageSize / 8}×${cfg.channels[3]} → Linear → GELU = the ${cfg.featureDim}-d feature → one linear head per label; ${result.net.numParameters()} parameters. Inputs are RGB scaled to [−1, 1]. Code: \`src/eval/features.ts\`.`, '',
        `The feature is multiplied by a fixed scale (config.json \`featureScale\` = ${cfg.featureScale.toPrecision(6)}) set after training so that the train images' features have mean square 1 per dimension, which keeps KID's kernel (xᵀy/d + 1)³ at values of order 1.`, '',
        '## Use', '',
        `\`vilg eval\` loads it by default on ${domain} data (${cfg.imageSize}×${cfg.imageSize}) and reports ${FD} / ${KID} of real train images (the floor), tokenizer reconstructions, generated images and random codes, each against the real test images${domain === 'emoji' ? ', and top-1 / top-5 retrieval of the prompted emoji among the test emoji' : ''}. Images from outside its domain give distances that mean little. Load it with \`loadFeatureNet(dir)\` (src/eval/features.ts), which checks the config and every tensor.`, '',
        '## Training', '',
        `- command: \`${facts.training.command}\``,
        `- data: ${ds.card.name} (\`${ds.card.createdBy}\`), train split, ${result.samples} images; ${result.steps} AdamW steps (weight decay 0.01 on matrices, cosine lr), seed ${seed}`,
        `- wall time: ${Math.round(result.seconds)} s; mean loss per epoch: ${facts.training.epochLoss.join(', ')}`, '',
        '## Accuracy per head', '',
        domain === 'shapes' ? 'Objects in reading order: the single object, or the left (side by side) / upper (stacked) object of a pair first.'
          : 'The emoji of the test split are base emoji never seen in training (the data set is split by base emoji); their groups and subgroups were.', '',
        '| head | what | test | train (first 1000) |', '|---|---|---:|---:|',
        ...heads.map((h) => `| ${h} | ${h === 'all' ? 'every applicable head right' : what(h)} | ${pct(test[h]!.accuracy)} (${test[h]!.total}) | ${pct(train[h]!.accuracy)} |`), '',
        '## Licence', '',
        domain === 'shapes' ? 'Trained on CC0 synthetic data generated by ernie-vilg; the weights are released under the project\'s licence (Apache-2.0).'
          : `Trained on emoji art; the weights derive from it (see ${join(data, 'README.md')}): OpenMoji (CC BY-SA 4.0, share-alike) and Twemoji (CC-BY 4.0) graphics, CLDR names (Unicode License v3). Attribution: "All emojis designed by OpenMoji – the open-source emoji and icon project. License: CC BY-SA 4.0"; "Twemoji graphics by Twitter, Inc and other contributors, CC-BY 4.0".`, '',
      ].join('\n');
      await writeFileAtomic(join(out, 'MODEL_CARD.md'), card);
      const lines = [`trained the feature network on ${result.samples} ${ds.card.name} train images: ${result.steps} steps in ${result.seconds.toFixed(0)} s (loss ${result.epochLoss.map((v) => v.toFixed(3)).join(' → ')})`,
        `  test accuracy: ${heads.map((h) => `${h} ${pct(test[h]!.accuracy)}`).join(', ')}`,
        `  → ${join(out, 'model.safetensors')}, ${join(out, 'config.json')}, ${join(out, 'MODEL_CARD.md')}`];
      process.stdout.write(lines.join('\n') + '\n');
    },
  },
};
