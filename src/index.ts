// ernie-vilg: the library entry point.
export * from './engine/index.js';
export * from './nn/index.js';
