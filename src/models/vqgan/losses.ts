// The VQGAN's adversarial training losses, as taming-transformers' VQLPIPSWithDiscriminator defines
// them: hinge (or vanilla) discriminator loss, the generator's −mean(D(x̂)), and the adaptive weight
// λ = ‖∇_last L_rec‖ / (‖∇_last L_G‖ + 1e-4) that balances the two at the decoder's last layer.
//
// One deliberate difference from taming: taming multiplies the DISCRIMINATOR's loss by
// adopt_weight(disc_factor, step, disc_start) too, so its D sits untrained until disc_start and then
// hits the generator with random feedback. Here the discriminator trains from step 0
// (vqganDiscriminatorLoss has no step gate); only the adversarial term of the GENERATOR's loss
// switches on at discStart (adoptWeight below).
//
// Perceptual (LPIPS) loss: pluggable, off by default, and no weights ship — see PerceptualLoss.
// Legend: N batch, H×W pixels, h×w logit grid.

import { abs, add, exp, log, mul, neg, relu, sub } from '../../engine/ops/elementwise.js';
import { mean } from '../../engine/ops/reduce.js';
import { fmtShape } from '../../engine/shape.js';
import { GradNode, Tensor, edgeWanted, full, needsGrad, noGrad, postOrder } from '../../engine/tensor.js';

// ---------------------------------------------------------------- discriminator / generator losses

/** log(1 + eˣ), stable: relu(x) + log(1 + e^−|x|). (Its gradient at exactly 0 is 0, not ½.) */
export function softplus(x: Tensor): Tensor {
  return add(relu(x), log(add(exp(neg(abs(x))), 1))); // [...x.shape]
}

/** Hinge loss for D: ½·(mean(relu(1 − D(x))) + mean(relu(1 + D(x̂)))). Scalar. */
export function hingeDLoss(logitsReal: Tensor, logitsFake: Tensor): Tensor {
  const real = mean(relu(sub(1, logitsReal)));                              // [] mean(relu(1 − real))
  const fake = mean(relu(add(logitsFake, 1)));                              // [] mean(relu(1 + fake))
  return mul(add(real, fake), 0.5);                                         // []
}

/** Vanilla (non-saturating BCE) loss for D: ½·(mean(softplus(−D(x))) + mean(softplus(D(x̂)))). Scalar. */
export function vanillaDLoss(logitsReal: Tensor, logitsFake: Tensor): Tensor {
  return mul(add(mean(softplus(neg(logitsReal))), mean(softplus(logitsFake))), 0.5); // []
}

/** The generator's adversarial loss −mean(D(x̂)) (taming uses it with both D losses). Scalar. */
export function generatorAdversarialLoss(logitsFake: Tensor): Tensor {
  return neg(mean(logitsFake)); // []
}

/** taming's adopt_weight: `value` (0) before step `threshold`, `weight` from then on. */
export function adoptWeight(step: number, threshold: number, weight = 1, value = 0): number {
  return step < threshold ? value : weight;
}

// ---------------------------------------------------------------- gradient of a loss w.r.t. one tensor

/**
 * ∂loss/∂target without touching any `.grad` and without freeing the graph (PyTorch's
 * torch.autograd.grad(loss, target, retain_graph=True)). Only the part of the graph that lies on a
 * path from `loss` to `target` is differentiated: while it runs, every other tensor of the graph is
 * temporarily cut off (leaf requiresGrad off, node detached), so ops skip their gradients (a conv
 * whose weight is pruned computes no weight gradient), and everything is restored afterwards.
 * Afterwards `loss.backward()` still works and gives the usual gradients.
 */
export function gradWrt(loss: Tensor, target: Tensor): Tensor {
  if (!(loss instanceof Tensor) || !(target instanceof Tensor)) throw new TypeError('gradWrt: loss and target must be Tensors');
  if (loss.size !== 1) throw new RangeError(`gradWrt: loss must have one element, got ${fmtShape(loss.shape)}`);
  const root = loss.node;
  if (root === null) throw new Error('gradWrt: the loss has no graph (computed under noGrad, from constants, or already backpropagated)');
  if (!needsGrad(target)) throw new Error(`gradWrt: the target ${target.toString()} does not require grad`);
  const goal: GradNode | Tensor = target.node ?? target;

  // Post-order over nodes (target's own inputs are not entered); `reaches`: on some path to target.
  const order = postOrder(root, (n) => n !== goal);
  const reaches = new Set<GradNode | Tensor>([goal]);
  const leaves = new Set<Tensor>();
  for (const n of order) {
    if (n === goal) continue;
    for (const e of n.edges) {
      if (e.to instanceof Tensor) leaves.add(e.to);
      if (e.to !== null && reaches.has(e.to)) reaches.add(n);
    }
  }
  if (!reaches.has(root)) throw new Error(`gradWrt: the loss does not depend on the target ${target.toString()}`);

  const cutNodes = order.filter((n) => !reaches.has(n));
  const cutLeaves = [...leaves].filter((t) => t !== goal && t.requiresGrad);
  for (const n of cutNodes) n.cut = true;
  for (const t of cutLeaves) t.requiresGrad = false;
  try {
    const grads = new Map<GradNode | Tensor, Tensor>([[root, full(loss.shape, 1, loss.dtype)]]);
    return noGrad(() => {
      for (let k = order.length - 1; k >= 0; k--) {
        const n = order[k]!;
        if (n === goal) break; // post-order: every consumer of target comes later in `order`
        const g = grads.get(n);
        if (g === undefined || !n.live) continue;
        grads.delete(n);
        const edges = n.edges, wanted = edges.map(edgeWanted);
        const inGrads = n.run(g, wanted);
        edges.forEach((e, j) => {
          const gi = inGrads[j];
          if (gi === null || gi === undefined || e.to === null || !wanted[j] || !reaches.has(e.to)) return;
          const prev = grads.get(e.to);
          grads.set(e.to, prev === undefined ? gi : accumulate(prev, gi));
        });
      }
      const gt = grads.get(goal);
      if (gt === undefined) throw new Error('gradWrt: no gradient reached the target');
      return gt;
    });
  } finally {
    for (const n of cutNodes) n.cut = false;
    for (const t of cutLeaves) t.requiresGrad = true;
  }
}

/** a + b for gradient accumulation, in a's dtype (bf16 summed in f32, as the engine's backward does). */
function accumulate(a: Tensor, b: Tensor): Tensor {
  if (a.dtype === 'bf16' || b.dtype === 'bf16') return add(a.to('f32'), b.to('f32')).to(a.dtype);
  return add(a, b.to(a.dtype));
}

/** ‖∂loss/∂target‖₂ (Frobenius norm, accumulated in f64); see gradWrt. */
export function gradNormWrt(loss: Tensor, target: Tensor): number {
  let s = 0;
  for (const v of gradWrt(loss, target).toArray()) s += v * v;
  return Math.sqrt(s);
}

export interface AdaptiveWeightOptions {
  /** Multiplies the clamped ratio (taming: disc_weight). */
  discWeight?: number;
  /** Upper clamp of the ratio (taming: 1e4). */
  max?: number;
}

/**
 * taming's calculate_adaptive_weight: λ = clamp(‖∇_last nll‖ / (‖∇_last g‖ + 1e-4), 0, max) · discWeight,
 * as a plain number (detached by construction). `lastLayer` is the decoder's last weight (conv_out).
 */
export function adaptiveWeight(nllLoss: Tensor, gLoss: Tensor, lastLayer: Tensor, opts: AdaptiveWeightOptions = {}): number {
  const ratio = gradNormWrt(nllLoss, lastLayer) / (gradNormWrt(gLoss, lastLayer) + 1e-4);
  const clamped = Number.isNaN(ratio) ? ratio : Math.min(Math.max(ratio, 0), opts.max ?? 1e4); // NaN stays NaN: the loop's NaN check sees it
  return clamped * (opts.discWeight ?? 1);
}

// ---------------------------------------------------------------- perceptual loss (pluggable)

/**
 * A perceptual distance between images x and x̂ ([N, H, W, 3] in [−1, 1]), returning a scalar or a
 * per-image tensor (it is averaged). LPIPS is the usual choice; its weights (VGG16 + linear heads)
 * do NOT ship with ernie-vilg, so the default is `null` and perceptualWeight defaults to 0.
 */
export type PerceptualLoss = (x: Tensor, xRec: Tensor) => Tensor;

export const NO_PERCEPTUAL_LOSS_MESSAGE =
  'no perceptual loss is plugged in: ernie-vilg ships no LPIPS weights. Either set perceptualWeight to 0 ' +
  '(reconstruction + adversarial loss only), or pass a PerceptualLoss, e.g. an LPIPS built from weights you have.';

/** Runs `fn` (mean-reduced to a scalar), or throws the clear message above when none is plugged in. */
export function perceptualTerm(fn: PerceptualLoss | null, x: Tensor, xRec: Tensor): Tensor {
  if (fn === null) throw new Error(NO_PERCEPTUAL_LOSS_MESSAGE);
  const p = fn(x, xRec);
  if (!(p instanceof Tensor)) throw new TypeError('PerceptualLoss must return a Tensor');
  return p.size === 1 ? p : mean(p); // []
}

// ---------------------------------------------------------------- configuration

export type DiscLossKind = 'hinge' | 'vanilla';

export interface AdversarialLossConfig {
  /** Step from which the adversarial term enters the generator's loss (taming: disc_start). D trains from 0. */
  readonly discStart: number;
  /** Multiplies the adaptive weight λ (taming: disc_weight). */
  readonly discWeight: number;
  /** Factor on both adversarial losses once active (taming: disc_factor). */
  readonly discFactor: number;
  /** Discriminator loss (taming: disc_loss). */
  readonly discLoss: DiscLossKind;
  /** Weight of the perceptual term; > 0 needs a PerceptualLoss (taming: perceptual_weight 1.0 with LPIPS). */
  readonly perceptualWeight: number;
  /** Weight of the quantizer loss q (taming: codebook_weight). */
  readonly codebookWeight: number;
  /** Upper clamp of the adaptive weight's ratio (taming: 1e4). */
  readonly maxAdaptiveWeight: number;
}

export const DEFAULT_ADVERSARIAL_CONFIG: AdversarialLossConfig = Object.freeze({
  discStart: 5000, // small-data runs: once reconstructions are decent (taming's ImageNet configs: 250001)
  discWeight: 0.8, // taming's VQGAN configs
  discFactor: 1, // taming's default
  discLoss: 'hinge', // taming's default
  perceptualWeight: 0, // no LPIPS weights ship; plug one in and raise this (taming: 1.0)
  codebookWeight: 1, // taming's default
  maxAdaptiveWeight: 1e4, // taming's clamp
});

export const ADVERSARIAL_PRESETS: Readonly<Record<string, AdversarialLossConfig>> = Object.freeze({
  default: DEFAULT_ADVERSARIAL_CONFIG,
  'taming-imagenet': Object.freeze({ ...DEFAULT_ADVERSARIAL_CONFIG, discStart: 250001 }), // vqgan_imagenet_f16_*.yaml (minus LPIPS)
});

/** Fills defaults and checks every field; unknown keys and bad values throw, naming the field. */
export function adversarialLossConfig(partial: Partial<AdversarialLossConfig> = {}): AdversarialLossConfig {
  for (const k of Object.keys(partial)) {
    if (!(k in DEFAULT_ADVERSARIAL_CONFIG)) throw new RangeError(`adversarial loss config: unknown key '${k}' (known: ${Object.keys(DEFAULT_ADVERSARIAL_CONFIG).join(', ')})`);
  }
  const c = { ...DEFAULT_ADVERSARIAL_CONFIG, ...partial };
  if (!Number.isInteger(c.discStart) || c.discStart < 0) throw new RangeError(`adversarial loss config: discStart must be an integer ≥ 0, got ${c.discStart}`);
  for (const k of ['discWeight', 'discFactor', 'perceptualWeight', 'codebookWeight', 'maxAdaptiveWeight'] as const) {
    if (!Number.isFinite(c[k]) || c[k] < 0) throw new RangeError(`adversarial loss config: ${k} must be a finite number ≥ 0, got ${c[k]}`);
  }
  if (c.discLoss !== 'hinge' && c.discLoss !== 'vanilla') throw new RangeError(`adversarial loss config: discLoss must be 'hinge' or 'vanilla', got '${String(c.discLoss)}'`);
  return Object.freeze(c);
}

// ---------------------------------------------------------------- the combined losses

export interface GeneratorLossInput {
  /** Reconstruction loss (scalar), e.g. the seed's ‖x − x̂‖² as mseLoss(xRec, x). */
  rec: Tensor;
  /** perceptualTerm(...) when perceptualWeight > 0 (scalar); if given with weight 0 it is only logged. */
  perceptual?: Tensor | null;
  /** Quantizer loss (scalar): commitment + codebook terms. */
  q: Tensor;
  /** generatorAdversarialLoss(D(x̂)) (scalar); may be omitted before discStart to skip D's forward. */
  g?: Tensor | null;
  /** The decoder's last weight (taming: decoder.conv_out.weight), where λ balances the gradients. */
  lastLayer: Tensor;
  step: number;
  config: AdversarialLossConfig;
  /** false (validation under noGrad): λ is 0 instead of an error, as taming does in eval. */
  training?: boolean;
}

export interface GeneratorLoss {
  /** What to backpropagate: nll + λ·factor·g + codebookWeight·q. Also fills D's .grad through g: zero those before D's step. */
  loss: Tensor; // []
  // Plain numbers for logging:
  total: number; nll: number; rec: number; perceptual: number; q: number; g: number;
  /** Adaptive weight λ (0 when g is absent). */
  dWeight: number;
  /** adoptWeight(step, discStart, discFactor): 0 before discStart. */
  discFactor: number;
}

/** taming's generator objective (optimizer_idx 0), with every term returned for logging. */
export function vqganGeneratorLoss(input: GeneratorLossInput): GeneratorLoss {
  const { rec, q, lastLayer, step, config } = input;
  const perceptual = input.perceptual ?? null, g = input.g ?? null, training = input.training ?? true;
  for (const [name, t] of [['rec', rec], ['q', q], ['perceptual', perceptual], ['g', g]] as const) {
    if (t !== null && (!(t instanceof Tensor) || t.size !== 1)) throw new RangeError(`vqganGeneratorLoss: ${name} must be a scalar Tensor`);
  }
  if (config.perceptualWeight > 0 && perceptual === null) throw new Error(`vqganGeneratorLoss: perceptualWeight is ${config.perceptualWeight} but ${NO_PERCEPTUAL_LOSS_MESSAGE}`);

  const nll = config.perceptualWeight > 0 ? add(rec, mul(perceptual!, config.perceptualWeight)) : rec; // []
  const factor = adoptWeight(step, config.discStart, config.discFactor);
  let dWeight = 0;
  if (g !== null && (training || (needsGrad(nll) && needsGrad(g)))) {
    dWeight = adaptiveWeight(nll, g, lastLayer, { discWeight: config.discWeight, max: config.maxAdaptiveWeight });
  }
  let loss = add(nll, mul(q, config.codebookWeight));                     // []
  if (g !== null && factor > 0) loss = add(loss, mul(g, dWeight * factor)); // [] λ is a number: detached
  return {
    loss, total: loss.item(), nll: nll.item(), rec: rec.item(), perceptual: perceptual?.item() ?? 0, q: q.item(), g: g?.item() ?? 0,
    dWeight, discFactor: factor,
  };
}

export interface DiscriminatorLoss {
  loss: Tensor; // []
  /** Mean logits, for logging (real should rise above fake). */
  logitsReal: number; logitsFake: number;
}

/**
 * The discriminator's objective (taming's optimizer_idx 1) on D(x) and D(sg[x̂]): discFactor · D-loss,
 * from step 0 — NOT gated by discStart (see the top of this file). Detach x̂ before D's forward.
 */
export function vqganDiscriminatorLoss(logitsReal: Tensor, logitsFake: Tensor, config: AdversarialLossConfig): DiscriminatorLoss {
  const d = config.discLoss === 'hinge' ? hingeDLoss(logitsReal, logitsFake) : vanillaDLoss(logitsReal, logitsFake); // []
  return { loss: mul(d, config.discFactor), logitsReal: mean(logitsReal).item(), logitsFake: mean(logitsFake).item() };
}
