// The text tokenizer: BERT/ERNIE WordPiece, its trainer, and its files (vocab.txt, tokenizer.json).
export { DEFAULT_NORMALIZER, normalizeBert, type BertNormalizerOptions } from './normalize.js';
export { preTokenizeBert, splitOnSpecials, type Segment } from './basic.js';
export { isChineseChar, isControl, isNonspacingMark, isPunctuation, isWhitespace } from './unicode.js';
export {
  BERT_SPECIAL_TOKENS, DEFAULT_WORDPIECE_CONFIG, SPECIAL_TOKEN_ORDER, WordPieceTokenizer, cleanupPiece,
  type DecodeOptions, type EncodeOptions, type Encoding, type SpecialTokens, type WordPieceConfig,
} from './wordpiece.js';
export { countWords, trainVocab, trainWordPiece, type TrainingStats, type WordPieceTrainerOptions } from './trainer.js';
export { HfJsonError, fromHfTokenizerJson, toHfTokenizerJson, type HfTokenizerJson } from './hf-json.js';
export {
  CONFIG_FILE, HF_FILE, TokenizerFileError, VOCAB_FILE, loadTokenizer, parseVocabText, saveTokenizer, vocabText,
  type TokenizerConfigFile,
} from './io.js';
