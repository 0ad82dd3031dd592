// ernie-vilg: the library entry point.
export * from './engine/index.js';
