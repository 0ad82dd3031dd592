// ernie-vilg: the library entry point.
export * from './engine/index.js';
export * from './nn/index.js';
export {
  VilgPipeline, type ImageInput, type GeneratedImage, type ImageProgress, type TextToImageOptions, type TextToImageResult,
  type CompleteOptions, type CaptionOptions, type CaptionResult, type AnswerResult, type ModelInfo,
} from './models/vilg/pipeline.js';
