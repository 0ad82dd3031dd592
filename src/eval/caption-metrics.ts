// Caption metrics for image-to-text evaluation, as the COCO caption toolkit (pycocoevalcap, tylin/coco-caption
// master) computes them: BLEU-1..4, ROUGE-L and CIDEr-D, over a corpus of images each with one hypothesis and
// one or more references. Plain TypeScript, float64, no dependencies; each scorer follows the toolkit's
// arithmetic step by step (same constants, same order of operations, same quirks), so numbers agree with
// the Python toolkit to rounding (≈1e-15 relative; `**`/exp may differ from C's pow/exp in the last bit).
//
// Tokenisation (`tokenizeCaption`):
//  en — the toolkit runs Stanford CoreNLP 3.4.1's PTBTokenizer (-preserveLines -lowerCase) over all captions
//       and then drops the tokens in its PUNCTUATIONS list. Java is not an option here, so this file carries a
//       longest-match lexer over the subset of PTBLexer.flex rules that captions meet (same rule order and
//       JFlex longest-match/first-rule-wins semantics, trailing context counted in the match length):
//       words; clitics split as PTB does ("dog's" → dog 's, "don't" → do n't, "can't" → ca n't, "I'm" → i 'm,
//       "cannot" → can not; curly apostrophes normalised to '); hyphenated words kept whole ("t-shirt",
//       "black-and-white", "2-year-old"); numbers with . , : inside ("3.5", "1,000", "10:30"); fractions "1/2",
//       "½" → 1/2; "a/b" kept whole; abbreviations that keep their period ("mr.", "dr.", "st.", "etc.", "u.s.",
//       and — as PTBLexer's ABBREV2 — any single letter directly followed by '.', e.g. "letter a." → "a.");
//       quotes to `` '' ` '; dashes/ellipses to -- and ...; "?!"/"!!" kept as one token; $ # % & + = symbols
//       kept; | \ deleted. Then lowercase (Java's toLowerCase on the *output*, after PTB escaping) and drop
//       '' ' `` ` -LRB- -RRB- -LCB- -RCB- . ? ! , : - -- ... ; exactly as the toolkit's list is spelt.
//       Toolkit quirk reproduced on purpose: lowercasing happens inside the Java tokenizer, so brackets come
//       out as -lrb- -rrb- -lcb- -rcb- (and -lsb- -rsb-), which the toolkit's upper-case list never matches:
//       "(twice)" scores as the three tokens -lrb- twice -rrb-.
//       The rules follow PTBLexer.flex of that era (the 3.4.1 source itself was not at hand). Known differences
//       from the Java tokenizer, all rare in captions: no Americanize spelling rewrite (3.4.1's default may
//       rewrite "colour" → "color"); no escaping of / and * as \/ \*; '[' ']' map to -lsb- -rsb- and '<' '>'
//       stay as they are (versions differ here); no URL, e-mail, SGML, phone-number, or "5 1/2"-with-space
//       rules (those become ordinary tokens); APOWORD special forms ("rock 'n' roll", "y'all") are split like
//       other quotes; no splitting of "gonna"/"wanna" (later versions split them); symbols (\p{S}, incl. emoji)
//       are kept one per code point, other unknown characters deleted. Each caption is lexed on its own,
//       followed by a newline as in the toolkit's input file, so trailing-context rules see what they would.
//  zh — no tokenizer in the toolkit; we use the usual character-level scheme: NFKC (full-width → ASCII), one
//       token per Han / kana / bopomofo character, runs of other letters/digits (Latin words, "3d", "2.5")
//       as one lowercased token, one token per symbol (\p{S}); whitespace, punctuation and other characters
//       dropped.
//
// BLEU (bleu_scorer.py, option 'closest', n = 4): per hypothesis, clipped n-gram counts against the maximum
//   count over its references, guesses max(0, len − n + 1), and the reference length closest to the
//   hypothesis length (ties → the shorter reference). Corpus: BLEU-N = (∏_{k≤N} (correct_k + 1e-15) /
//   (guess_k + 1e-9))^(1/N), times exp(1 − 1/ratio) when ratio = (testlen + 1e-15)/(reflen + 1e-9) < 1 — so
//   a corpus whose lengths match exactly still gets a factor 1 − O(1e-10), and an n-gram order with no
//   matches gives a tiny non-zero BLEU rather than 0, both as in the toolkit.
// ROUGE-L (rouge.py, β = 1.2): per image, LCS with each reference; P = max_r LCS/|hyp|, R = max_r LCS/|ref|
//   (the maxima may come from different references), F = (1+β²)PR/(R + β²P), 0 if P or R is 0; corpus =
//   mean over images. The toolkit splits on " ", so an empty caption counts as one empty token.
// CIDEr-D (cider_scorer.py, n = 4, σ = 6): document frequency df(g) = number of images whose references
//   contain n-gram g (references of the evaluated corpus only); vector entries tf·(log N − log max(1, df)),
//   N = number of images; per n, Σ_g min(h_g, r_g)·r_g / (‖h‖·‖r‖) (left unnormalised, i.e. 0, when a norm is
//   0), times exp(−δ²/2σ²) where δ is the difference in *bigram* counts (the toolkit's `length`, = word
//   counts' difference for non-empty captions); summed over references, mean over n, / #references, × 10;
//   corpus = mean over images. A one-image corpus has log N = 0 and scores 0, as in the toolkit.
// Means over images follow numpy's pairwise summation. Images are scored in sorted-id order.

export type CaptionLang = 'en' | 'zh';
/** Captions keyed by image id: a Map or a plain object. */
export type CaptionTable<T> = ReadonlyMap<string, T> | Readonly<Record<string, T>>;
/** One tokenised caption. */
export type Tokens = readonly string[];

export interface CaptionScores {
  bleu1: number;
  bleu2: number;
  bleu3: number;
  bleu4: number;
  rougeL: number;
  ciderD: number;
  /** Number of images scored. */
  images: number;
}

export interface BleuResult {
  /** BLEU-1..BLEU-n, corpus level. */
  bleu: number[];
  /** Clipped n-gram matches per order, summed over the corpus. */
  correct: number[];
  /** Hypothesis n-grams per order, summed over the corpus. */
  guess: number[];
  /** Total hypothesis length (tokens). */
  testLen: number;
  /** Total effective ('closest') reference length (tokens). */
  refLen: number;
}

export interface PerImageResult {
  /** Corpus score: mean over images. */
  score: number;
  /** One score per image, in input order. */
  perImage: number[];
}

export const CAPTION_METRIC_DEFAULTS = Object.freeze({
  /** BLEU n-gram orders (bleu.py: Bleu(4)). */
  bleuN: 4,
  /** bleu_scorer.py: added to the matches so that no matches still gives a (tiny) non-zero BLEU. */
  bleuTiny: 1e-15,
  /** bleu_scorer.py: added to the guesses (and reference length) to avoid division by zero. */
  bleuSmall: 1e-9,
  /** rouge.py: recall weight β (β² = 1.44). */
  rougeBeta: 1.2,
  /** cider.py: n-gram orders 1..4. */
  ciderN: 4,
  /** cider.py: standard deviation of the Gaussian length penalty (in bigram counts). */
  ciderSigma: 6,
});

/** ptbtokenizer.py PUNCTUATIONS, spelt exactly as there (case-sensitive). */
export const PTB_DROPPED_TOKENS: ReadonlySet<string> = new Set(["''", "'", '``', '`', '-LRB-', '-RRB-', '-LCB-', '-RCB-', '.', '?', '!', ',', ':', '-', '--', '...', ';']);

// ---------------------------------------------------------------------------------------------------------
// English: a longest-match lexer over a subset of CoreNLP's PTBLexer.flex rules.

/** Case-insensitive literal (JFlex %caseless applies to literals but not to character classes). */
const ci = (s: string): string => s.replace(/[a-z]/gi, (c) => `[${c.toLowerCase()}${c.toUpperCase()}]`);
/** Alternation of words, longest first (JS alternation takes the first that matches; JFlex the longest). */
const alt = (words: string): string => words.split(' ').sort((a, b) => b.length - a.length).map((w) => (w.includes('[') ? w : ci(w))).join('|');

const WORDCH = '[\\p{L}\\p{M}\\u00AD]';
const DIG = '\\p{Nd}';
const ALNUM = '[\\p{L}\\p{M}\\p{Nd}]';
const APOS = "['\\u0092\\u2019]";
const APOSETC = "['\\u0091\\u0092\\u2018\\u2019\\u201B]";
const REDAUX = `${APOS}(?:[msdMSD]|${ci('re')}|${ci('ve')}|${ci('ll')})`;
const SWORD = '[A-Za-z\\u00AD]*[A-MO-Za-mo-z]\\u00AD*';
const SREDAUX = `[nN]${APOSETC}[tT]`;
const HYPHEN = '[-_\\u058A\\u2010\\u2011]';
const THINGPART = `(?:[dDoOlL]${APOSETC}${ALNUM})?${ALNUM}+`;
const THING = `${THINGPART}(?:${HYPHEN}${THINGPART})*`;
const ACRO = '[A-Za-z](?:\\.[A-Za-z])+';
const HTHING = `[A-Za-z0-9][A-Za-z0-9.,\\u00AD]*(?:-(?:${ACRO}\\.|[A-Za-z0-9\\u00AD]+))+`;
const NUMBER = `[-+]?(?:${DIG}*(?:[.:,\\u00AD\\u066B\\u066C]${DIG}+)+|${DIG}+)`;
const ABMONTH = 'Jan Feb Mar Apr Jun Jul Aug Sep Sept Oct Nov Dec';
const ABDAYS = 'Mon Tue Tues Wed Thu Thurs Fri';
const ABSTATE = 'Ala Ariz [A]rk Calif Colo Conn Dak Del Fla Ga [I]ll Ind Kans Kan Ky La [M]ass Md Mich Minn [M]iss Mo Mont Neb Nev Okla [O]re Pa Penn Tenn Tex Va Vt [W]ash Wisc Wis Wyo';
const ABCOMP = 'Inc Cos Co Corp Pptys Ppty Ptys Pty Ltd Plc Bancorp Dept Bhd Assn Univ Intl Sys';
const ABNUM = 'Nos No Prop Ph tel est ext sq ft';
const ABPTIT = 'Jr Sr Bros Blvd Rd Esq';
const ABTITLE = 'Mr Mrs Ms [M]iss Drs Dr Profs Prof Sens Sen Reps Rep Attys Atty Lt Col Gen Messrs Govs Gov Adm Rev Maj Sgt Cpl Pvt Mt Capt Ste St Ave Pres Lieut Hon Brig Comdr Cmdr Pfc Spc Supts Supt Det';
const ABBREV1 = `(?:${alt(`${ABMONTH} ${ABDAYS} ${ABSTATE} ${ABCOMP} ${ABNUM} ${ABPTIT} etc al seq`)}|${ci('Ed')}\\.${ci('D')}|${ci('Ph')}\\.${ci('D')})\\.`;
const ABBREV2 = `(?:${ACRO}|${alt(`${ABTITLE} vs Alex Wm Jos Cie cf TREAS Invt Elec Natl Mfg Mtg`)}|[A-Za-z])\\.`; // a.k.a is an ACRO
const QUOTECH = '[`\\u0091-\\u0094\\u2018-\\u201F\\u2039\\u203A\\u00AB\\u00BB]';

/** PTBLexer's latexQuotes(): quote characters to the LaTeX/PTB forms. */
function latexQuotes(s: string, probablyLeft: boolean): string {
  let t = probablyLeft ? s.replace(/'/g, '`').replace(/"/g, '``') : s.replace(/"/g, "''");
  t = t.replace(/[\u0091\u2018\u201B\u2039]/g, '`').replace(/[\u0092\u2019\u203A]/g, "'");
  return t.replace(/[\u0093\u201C\u00AB]/g, '``').replace(/[\u0094\u201D\u00BB]/g, "''");
}
const noSoftHyphen = (s: string): string => s.replace(/\u00AD/g, '');
const FRACTIONS: Record<string, string> = { '\u00BC': '1/4', '\u00BD': '1/2', '\u00BE': '3/4', '\u2153': '1/3', '\u2154': '2/3' };

interface LexRule {
  re: RegExp;
  /** Length of the token proper (the rest of the match is trailing context); default: the whole match. */
  take?: (m: RegExpExecArray) => number;
  /** Output token(s) for the taken text; null deletes it. */
  out: (text: string) => string | null;
}
const same = (t: string): string => t;
const g1 = (m: RegExpExecArray): number => m[1]!.length;
const rule = (src: string, out: (t: string) => string | null = same, take?: (m: RegExpExecArray) => number): LexRule => ({ re: new RegExp(src, 'uy'), out, ...(take ? { take } : {}) });

// In PTBLexer.flex order (ties in match length go to the earlier rule).
const LEX_RULES: readonly LexRule[] = [
  rule(ci('cannot'), () => 'can', () => 3), // "can" now, "not" rescanned
  rule('[\\u0096\\u0097\\u2013\\u2014\\u2015]|&(?:MD|mdash|ndash);', () => '--'),
  rule('&amp;', () => '&'),
  rule(`(${WORDCH}+)${REDAUX}`, noSoftHyphen, g1),
  rule(`(${SWORD})${SREDAUX}`, noSoftHyphen, g1),
  rule(`${WORDCH}+`, noSoftHyphen),
  rule(`(${REDAUX})[^A-Za-z]`, (t) => latexQuotes(t, false), g1),
  rule(SREDAUX, (t) => latexQuotes(t, false)),
  rule(`${DIG}{1,2}[-/]${DIG}{1,2}[-/]${DIG}{2,4}`),
  rule(NUMBER, noSoftHyphen),
  rule(`(?:${DIG}{1,4}-)?${DIG}{1,4}[/\\u2044]${DIG}{1,4}`),
  rule('[\\u00BC\\u00BD\\u00BE\\u2153-\\u215E]', (t) => FRACTIONS[t] ?? t),
  rule('-(?:RRB|LRB|RCB|LCB|RSB|LSB)-'),
  rule('[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}(?:\\\\?/[A-Za-z0-9]+(?:-[A-Za-z]+){0,2}){1,2}'),
  rule('[A-Za-z]*\\$|#'),
  rule('[\\u00A2\\u00A3\\u00A4\\u00A5\\u0080\\u20A0\\u20AC\\u060B\\u0E3F\\u20A4\\uFFE0\\uFFE1\\uFFE5\\uFFE6]', (t) => (t === '\u00A2' ? 'cents' : t === '\u00A3' ? '#' : /[\u0080\u00A4\u20A0\u20AC]/u.test(t) ? '$' : t)),
  rule(ABBREV1),
  rule(ABBREV2),
  rule(`(${ACRO})\\s`, same, g1),
  rule(`(${WORDCH}+\\.)[,;:]`, noSoftHyphen, g1),
  rule('(")[A-Za-z0-9$]', () => '``', g1),
  rule('"|&quot;', () => "''"),
  rule('\\+|[%&\\u2030\\u2031]|[~^]'),
  rule('[|\\\\\\u007F]', () => null),
  rule('\\[', () => '-LSB-'),
  rule('\\]', () => '-RSB-'),
  rule('[<>]'),
  rule('\\{', () => '-LCB-'),
  rule('\\}', () => '-RCB-'),
  rule('\\(', () => '-LRB-'),
  rule('\\)', () => '-RRB-'),
  rule('-+', (t) => (t.length >= 3 && t.length <= 4 ? '--' : t)),
  rule('\\.{3,5}|(?:\\.[ \\u00A0]){2,4}\\.|[\\u0085\\u2026]', () => '...'),
  rule('@+|#+|_+|\\*+'),
  rule('[,;:]|[?!]+|[.\\u00A1\\u00BF\\u037E\\u0589\\u061F\\u06D4\\u0700-\\u0702\\u07FA]|=|/'),
  rule(`(${HTHING}\\.)[,;:]`, noSoftHyphen, g1),
  rule(HTHING, noSoftHyphen),
  rule(`(${THING}\\.)[,;:]`, same, g1),
  rule(THING),
  rule("(')[A-Za-z][^ \\t\\n\\r\\u00A0]", () => '`', g1), // opening single quote
  rule(REDAUX, (t) => latexQuotes(t, false)),
  rule(`''|${QUOTECH}{1,2}|${APOS}`, (t) => latexQuotes(t, false)),
  rule('[\\p{S}\\uFF01-\\uFF0F\\uFF1A-\\uFF20\\uFF3B-\\uFF40\\uFF5B-\\uFF65]'),
  rule('[\\s\\u0000\\u00A0\\u200B\\u200E\\u200F\\u2028\\u2029\\uFEFF]+', () => null),
];

/** The PTB tokens of `text` before lowercasing and punctuation removal (exported for tests and debugging). */
export function ptbLex(text: string): string[] {
  const s = text.replace(/\r\n|\r|\n/g, ' ') + '\n'; // the toolkit puts one caption per line
  const out: string[] = [];
  let pos = 0;
  while (pos < s.length) {
    let best: LexRule | null = null, bestLen = 0, bestTake = 0;
    for (const r of LEX_RULES) {
      r.re.lastIndex = pos;
      const m = r.re.exec(s);
      if (m !== null && m[0].length > bestLen) { best = r; bestLen = m[0].length; bestTake = r.take ? r.take(m) : m[0].length; }
    }
    if (best === null) { pos += s.codePointAt(pos)! > 0xffff ? 2 : 1; continue; } // untokenizable: deleted
    const tok = best.out(s.slice(pos, pos + bestTake));
    if (tok !== null && tok !== '') out.push(tok);
    pos += bestTake;
  }
  return out;
}

const HAN = '[\\p{Script=Han}\\p{Script=Hiragana}\\p{Script=Katakana}\\p{Script=Bopomofo}\\u30FC]';
const ZH_TOKEN = new RegExp(`(${DIG}+(?:[.,]${DIG}+)+)|(${HAN})|((?:(?!${HAN})[\\p{L}\\p{M}\\p{N}])+)|(\\p{S})`, 'gu');

/** Tokenise one caption the way the metrics see it (see the header for both languages). */
export function tokenizeCaption(text: string, lang: CaptionLang): string[] {
  if (typeof text !== 'string') throw new TypeError(`tokenizeCaption: caption must be a string, got ${typeof text}`);
  if (lang === 'en') return ptbLex(text).map((t) => t.toLowerCase()).filter((t) => !PTB_DROPPED_TOKENS.has(t));
  if (lang === 'zh') {
    const out: string[] = [];
    for (const m of text.normalize('NFKC').matchAll(ZH_TOKEN)) out.push(m[0].toLowerCase());
    return out;
  }
  throw new RangeError(`tokenizeCaption: lang must be 'en' or 'zh', got ${String(lang)}`);
}

// ---------------------------------------------------------------------------------------------------------
// Scorers on tokenised corpora: hyps[i] is image i's hypothesis, refs[i] its references.

function checkCorpus(hyps: readonly Tokens[], refs: readonly (readonly Tokens[])[], what: string): void {
  if (!Array.isArray(hyps) || !Array.isArray(refs)) throw new TypeError(`${what}: hypotheses and references must be arrays (one entry per image)`);
  if (hyps.length === 0 || hyps.length !== refs.length) throw new RangeError(`${what}: need one hypothesis and one reference list per image, got ${hyps.length} and ${refs.length}`);
  for (let i = 0; i < refs.length; i++) {
    if (!Array.isArray(hyps[i])) throw new TypeError(`${what}: hypothesis ${i} must be an array of tokens`);
    if (!Array.isArray(refs[i]) || refs[i]!.length === 0) throw new RangeError(`${what}: image ${i} has no references`);
    for (const r of refs[i]!) if (!Array.isArray(r)) throw new TypeError(`${what}: references of image ${i} must be arrays of tokens`);
  }
}

/** n-gram counts for n = 1..maxN in the toolkit's insertion order (by n, then position); key "n:JSON(tokens)". */
function ngramCounts(words: Tokens, maxN: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let k = 1; k <= maxN; k++) {
    for (let i = 0; i + k <= words.length; i++) {
      const g = `${k}:${JSON.stringify(words.slice(i, i + k))}`;
      counts.set(g, (counts.get(g) ?? 0) + 1);
    }
  }
  return counts;
}
const ngramOrder = (key: string): number => Number.parseInt(key, 10);

/** numpy's pairwise summation (np.add.reduce on a contiguous float64 array), then / n: np.mean. */
export function numpyMean(values: readonly number[]): number {
  const pairwise = (lo: number, n: number): number => {
    if (n < 8) {
      let s = 0;
      for (let i = 0; i < n; i++) s += values[lo + i]!;
      return s;
    }
    if (n <= 128) {
      const r = [0, 1, 2, 3, 4, 5, 6, 7].map((j) => values[lo + j]!);
      let i = 8;
      for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j]! += values[lo + i + j]!;
      let s = ((r[0]! + r[1]!) + (r[2]! + r[3]!)) + ((r[4]! + r[5]!) + (r[6]! + r[7]!));
      for (; i < n; i++) s += values[lo + i]!;
      return s;
    }
    let n2 = Math.floor(n / 2);
    n2 -= n2 % 8;
    return pairwise(lo, n2) + pairwise(lo + n2, n - n2);
  };
  return (0 + pairwise(0, values.length)) / values.length;
}

/** Corpus BLEU-1..n exactly as bleu_scorer.py's compute_score(option='closest'). */
export function bleuScores(hyps: readonly Tokens[], refs: readonly (readonly Tokens[])[], n: number = CAPTION_METRIC_DEFAULTS.bleuN): BleuResult {
  checkCorpus(hyps, refs, 'bleu');
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`bleu: n must be a positive integer, got ${n}`);
  const { bleuTiny: tiny, bleuSmall: small } = CAPTION_METRIC_DEFAULTS;
  const correct = new Array<number>(n).fill(0), guess = new Array<number>(n).fill(0);
  let testLen = 0, refLen = 0;
  for (let i = 0; i < hyps.length; i++) {
    const maxCounts = new Map<string, number>(); // cook_refs
    const refLens: number[] = [];
    for (const r of refs[i]!) {
      refLens.push(r.length);
      for (const [g, c] of ngramCounts(r, n)) maxCounts.set(g, Math.max(maxCounts.get(g) ?? 0, c));
    }
    const h = hyps[i]!, tl = h.length; // cook_test
    let closest = refLens[0]!; // min((|l − testlen|, l)): nearest, ties to the shorter
    for (const l of refLens) if (Math.abs(l - tl) < Math.abs(closest - tl) || (Math.abs(l - tl) === Math.abs(closest - tl) && l < closest)) closest = l;
    testLen += tl;
    refLen += closest;
    for (let k = 1; k <= n; k++) guess[k - 1]! += Math.max(0, tl - k + 1);
    for (const [g, c] of ngramCounts(h, n)) correct[ngramOrder(g) - 1]! += Math.min(maxCounts.get(g) ?? 0, c);
  }
  const ratio = (testLen + tiny) / (refLen + small);
  const bleu: number[] = [];
  for (let nn = 1; nn <= n; nn++) {
    let b = 1;
    for (let k = 0; k < nn; k++) b *= (correct[k]! + tiny) / (guess[k]! + small);
    b = b ** (1 / nn);
    if (ratio < 1) b *= Math.exp(1 - 1 / ratio);
    bleu.push(b);
  }
  return { bleu, correct, guess, testLen, refLen };
}

/** Length of the longest common subsequence of two token lists (rouge.py's my_lcs). */
export function lcsLength(a: Tokens, b: Tokens): number {
  const [long, short] = a.length >= b.length ? [a, b] : [b, a];
  let prev = new Array<number>(short.length + 1).fill(0), cur = new Array<number>(short.length + 1).fill(0);
  for (let i = 1; i <= long.length; i++) {
    for (let j = 1; j <= short.length; j++) cur[j] = long[i - 1] === short[j - 1] ? prev[j - 1]! + 1 : Math.max(prev[j]!, cur[j - 1]!);
    [prev, cur] = [cur, prev];
  }
  return prev[short.length]!;
}

/** ROUGE-L F-measure per image and its mean, as rouge.py (beta = 1.2). */
export function rougeLScores(hyps: readonly Tokens[], refs: readonly (readonly Tokens[])[], beta: number = CAPTION_METRIC_DEFAULTS.rougeBeta): PerImageResult {
  checkCorpus(hyps, refs, 'rougeL');
  if (!(Number.isFinite(beta) && beta > 0)) throw new RangeError(`rougeL: beta must be a positive number, got ${beta}`);
  const b2 = beta ** 2;
  const split = (t: Tokens): Tokens => (t.length === 0 ? [''] : t); // str.split(" ") of "" is [""]
  const perImage = hyps.map((h, i) => {
    const c = split(h);
    let pMax = -Infinity, rMax = -Infinity;
    for (const ref of refs[i]!) {
      const r = split(ref), lcs = lcsLength(r, c);
      pMax = Math.max(pMax, lcs / c.length);
      rMax = Math.max(rMax, lcs / r.length);
    }
    return pMax !== 0 && rMax !== 0 ? ((1 + b2) * pMax * rMax) / (rMax + b2 * pMax) : 0;
  });
  return { score: numpyMean(perImage), perImage };
}

export interface CiderOptions {
  /** Largest n-gram order. */
  n?: number;
  /** Gaussian length penalty standard deviation. */
  sigma?: number;
}

/** CIDEr-D per image and its mean, as cider_scorer.py (document frequencies from this corpus's references). */
export function ciderDScores(hyps: readonly Tokens[], refs: readonly (readonly Tokens[])[], opts: CiderOptions = {}): PerImageResult {
  checkCorpus(hyps, refs, 'ciderD');
  const n = opts.n ?? CAPTION_METRIC_DEFAULTS.ciderN, sigma = opts.sigma ?? CAPTION_METRIC_DEFAULTS.ciderSigma;
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`ciderD: n must be a positive integer, got ${n}`);
  if (!(Number.isFinite(sigma) && sigma > 0)) throw new RangeError(`ciderD: sigma must be a positive number, got ${sigma}`);
  const crefs = refs.map((rs) => rs.map((r) => ngramCounts(r, n)));
  const ctest = hyps.map((h) => ngramCounts(h, n));
  const df = new Map<string, number>(); // compute_doc_freq
  for (const rs of crefs) {
    const seen = new Set<string>();
    for (const r of rs) for (const g of r.keys()) seen.add(g);
    for (const g of seen) df.set(g, (df.get(g) ?? 0) + 1);
  }
  const refLen = Math.log(crefs.length);
  const counts2vec = (cnts: Map<string, number>): { vec: Map<string, number>[]; norm: number[]; length: number } => {
    const vec = Array.from({ length: n }, () => new Map<string, number>());
    const sq = new Array<number>(n).fill(0);
    let length = 0;
    for (const [g, tf] of cnts) {
      const k = ngramOrder(g) - 1;
      const v = tf * (refLen - Math.log(Math.max(1, df.get(g) ?? 0)));
      vec[k]!.set(g, v);
      sq[k]! += v * v;
      if (k === 1) length += tf; // the toolkit's "length" counts bigrams
    }
    return { vec, norm: sq.map(Math.sqrt), length };
  };
  const penaltyDen = 2 * sigma ** 2;
  const perImage = ctest.map((test, i) => {
    const h = counts2vec(test);
    const score = new Array<number>(n).fill(0);
    for (const ref of crefs[i]!) {
      const r = counts2vec(ref);
      const delta = h.length - r.length;
      for (let k = 0; k < n; k++) {
        let val = 0;
        for (const [g, hv] of h.vec[k]!) { const rv = r.vec[k]!.get(g) ?? 0; val += Math.min(hv, rv) * rv; }
        if (h.norm[k] !== 0 && r.norm[k] !== 0) val /= h.norm[k]! * r.norm[k]!;
        val *= Math.E ** (-(delta ** 2) / penaltyDen);
        score[k]! += val;
      }
    }
    return (numpyMean(score) / crefs[i]!.length) * 10;
  });
  return { score: numpyMean(perImage), perImage };
}

// ---------------------------------------------------------------------------------------------------------

function entries<T>(table: CaptionTable<T>, what: string): Map<string, T> {
  if (table instanceof Map) return new Map(table);
  if (table === null || typeof table !== 'object' || Array.isArray(table)) throw new TypeError(`captionMetrics: ${what} must be a Map or an object keyed by image id`);
  return new Map(Object.entries(table as Record<string, T>));
}

/** BLEU-1..4, ROUGE-L and CIDEr-D of one hypothesis per image against its references (COCO caption toolkit). */
export function captionMetrics(hyps: CaptionTable<string>, refs: CaptionTable<readonly string[]>, lang: CaptionLang): CaptionScores {
  if (lang !== 'en' && lang !== 'zh') throw new RangeError(`captionMetrics: lang must be 'en' or 'zh', got ${String(lang)}`);
  const h = entries(hyps, 'hypotheses'), r = entries(refs, 'references');
  if (h.size === 0) throw new RangeError('captionMetrics: no hypotheses');
  const missing = [...h.keys()].filter((id) => !r.has(id)), extra = [...r.keys()].filter((id) => !h.has(id));
  if (missing.length > 0 || extra.length > 0) {
    const list = (ids: string[]): string => ids.slice(0, 5).map((s) => JSON.stringify(s)).join(', ') + (ids.length > 5 ? `, … (${ids.length})` : '');
    throw new RangeError(`captionMetrics: hypotheses and references must cover the same images${missing.length ? `; no references for ${list(missing)}` : ''}${extra.length ? `; no hypothesis for ${list(extra)}` : ''}`);
  }
  const ids = [...h.keys()].sort();
  const hypTok: string[][] = [], refTok: string[][][] = [];
  for (const id of ids) {
    const hyp = h.get(id), rs = r.get(id);
    if (typeof hyp !== 'string') throw new TypeError(`captionMetrics: hypothesis for image ${JSON.stringify(id)} must be a string, got ${typeof hyp}`);
    if (!Array.isArray(rs)) throw new TypeError(`captionMetrics: references for image ${JSON.stringify(id)} must be an array of strings`);
    if (rs.length === 0) throw new RangeError(`captionMetrics: image ${JSON.stringify(id)} has no references`);
    refTok.push(rs.map((s, j) => {
      if (typeof s !== 'string') throw new TypeError(`captionMetrics: reference ${j} of image ${JSON.stringify(id)} must be a string, got ${typeof s}`);
      if (s.trim() === '') throw new RangeError(`captionMetrics: reference ${j} of image ${JSON.stringify(id)} is empty`);
      return tokenizeCaption(s, lang);
    }));
    hypTok.push(tokenizeCaption(hyp, lang));
  }
  const b = bleuScores(hypTok, refTok).bleu;
  return { bleu1: b[0]!, bleu2: b[1]!, bleu3: b[2]!, bleu4: b[3]!, rougeL: rougeLScores(hypTok, refTok).score, ciderD: ciderDScores(hypTok, refTok).score, images: ids.length };
}
