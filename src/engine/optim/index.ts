// Training utilities: optimizer, gradient clipping, lr schedules, weight averaging.
export {
  AdamW, isNotMatrix, adamwStateToTensors, adamwStateFromTensors,
  type AdamWOptions, type AdamWState,
} from './adamw.js';
export * from './clip.js';
export * from './schedule.js';
export * from './ema.js';
