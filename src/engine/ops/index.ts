// Every differentiable op of the engine. Importing this module registers all reference kernels.
export * from './matmul.js';
export * from './elementwise.js';
export * from './reduce.js';
export * from './shape.js';
export * from './softmax.js';
export * from './norm.js';
export * from './conv.js';
export * from './embedding.js';
export * from './loss.js';
export * from './select.js';
export * from './random.js';
export * from './quantize.js';
export * from './attention.js';
export * from './sparse-attention.js';
export * from './multihead.js';
export * from './mlp.js';
