// The ERNIE-ViLG generator: config and presets, attention patterns (UniLM + DALL-E sparse), sequence
// layouts for the three tasks, embeddings, the shared transformer, and the model with its heads,
// losses and end-to-end projection; sampling (text → image codes, captions, VQA answers).
export * from './config.js';
export * from './attention-pattern.js';
export * from './batch.js';
export * from './embeddings.js';
export * from './transformer.js';
export * from './model.js';
export * from './kv-cache.js';
export * from './generate.js';
export * from './io.js';
export * from './train.js';
export * from './pipeline.js';
