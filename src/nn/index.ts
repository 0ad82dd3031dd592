// nn: modules with named parameters (PyTorch naming), state dicts, train/eval mode.
export * from './module.js';
export * from './layers.js';
