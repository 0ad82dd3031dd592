// The VQGAN image tokenizer: config and presets, model (encoder, quantizer, decoder), model directories,
// codebook statistics, and the adversarial part (PatchGAN discriminator, losses).
export * from './config.js';
export * from './blocks.js';
export * from './encoder.js';
export * from './decoder.js';
export * from './codebook.js';
export * from './quantizer.js';
export * from './vqmodel.js';
export * from './discriminator.js';
export * from './losses.js';
