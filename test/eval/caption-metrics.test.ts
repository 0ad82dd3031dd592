// Caption metrics (pycocoevalcap's BLEU 'closest', ROUGE-L β=1.2, CIDEr-D σ=6) against values worked out by
// hand from the toolkit's formulas, plus properties and the tokenisers. The Python toolkit itself (and its
// Java tokenizer) cannot be run here, so no numbers below are copied from it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  bleuScores, captionMetrics, ciderDScores, lcsLength, numpyMean, ptbLex, rougeLScores, tokenizeCaption,
} from '../../src/eval/caption-metrics.js';

const words = (s: string): string[] => (s === '' ? [] : s.split(' '));
const close = (a: number, b: number, tol: number, what: string): void => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);
const tiny = 1e-15, small = 1e-9;

test('English tokenisation: PTB splitting, lowercasing, the toolkit\'s punctuation list', () => {
  const en = (s: string): string[] => tokenizeCaption(s, 'en');
  // Sentence punctuation is split off and dropped; the possessive is a token of its own.
  assert.deepEqual(en("A man's dog, running."), ['a', 'man', "'s", 'dog', 'running']);
  // Negation clitics the PTB way; "cannot" is two words.
  assert.deepEqual(en("Don't stop, I can't."), ['do', "n't", 'stop', 'i', 'ca', "n't"]);
  assert.deepEqual(en('You cannot win'), ['you', 'can', 'not', 'win']);
  assert.deepEqual(en("I'm sure we're fine, they'll see"), ['i', "'m", 'sure', 'we', "'re", 'fine', 'they', "'ll", 'see']);
  // Curly apostrophes become ' in clitics.
  assert.deepEqual(en('It\u2019s a dog\u2019s life, don\u2019t'), ['it', "'s", 'a', 'dog', "'s", 'life', 'do', "n't"]);
  // Hyphenated words stay whole; free-standing dashes are dropped (- and -- and em dash → --).
  assert.deepEqual(en('A black-and-white cat on a t-shirt - a 2-year-old -- fast \u2014 now'), ['a', 'black-and-white', 'cat', 'on', 'a', 't-shirt', 'a', '2-year-old', 'fast', 'now']);
  // Case.
  assert.deepEqual(en('A RED Ball'), ['a', 'red', 'ball']);
  // Quotes of every kind are dropped; a trailing possessive apostrophe too.
  assert.deepEqual(en('"Hello" \'quoted\' words and dogs\' bowls \u201Cnice\u201D'), ['hello', 'quoted', 'words', 'and', 'dogs', 'bowls', 'nice']);
  // Numbers keep their inner . , : ; ellipses go; "?!" is one token and not on the toolkit's list, so it stays.
  assert.deepEqual(en('3.5 inches, 1,000 people at 10:30... what?!'), ['3.5', 'inches', '1,000', 'people', 'at', '10:30', 'what', '?!']);
  // Abbreviations keep their period.
  assert.deepEqual(en("Mr. Smith's car on Main St. near the U.S. border, etc."), ['mr.', 'smith', "'s", 'car', 'on', 'main', 'st.', 'near', 'the', 'u.s.', 'border', 'etc.']);
  // The toolkit quirk: brackets become -LRB- etc. inside Java, are lowercased there, and so escape the
  // upper-case punctuation list.
  assert.deepEqual(ptbLex('a cat (twice)'), ['a', 'cat', '-LRB-', 'twice', '-RRB-']);
  assert.deepEqual(en('a cat (twice) {x}'), ['a', 'cat', '-lrb-', 'twice', '-rrb-', '-lcb-', 'x', '-rcb-']);
  // Symbols kept, fractions normalised, empty and all-punctuation captions give no tokens.
  assert.deepEqual(en('$5 for 50% of \u00BD cup'), ['$', '5', 'for', '50', '%', 'of', '1/2', 'cup']);
  assert.deepEqual(en(''), []);
  assert.deepEqual(en(' ... !'), []);
  // Multi-line captions are one line for the toolkit.
  assert.deepEqual(en('two\nlines'), ['two', 'lines']);
});

test('Chinese tokenisation: characters, Latin/digit runs, punctuation dropped', () => {
  const zh = (s: string): string[] => tokenizeCaption(s, 'zh');
  assert.deepEqual(zh('一只猫坐在垫子上。'), ['一', '只', '猫', '坐', '在', '垫', '子', '上']);
  assert.deepEqual(zh('穿着T恤的男孩，3D 打印 2.5 米'), ['穿', '着', 't', '恤', '的', '男', '孩', '3d', '打', '印', '2.5', '米']);
  // Full-width letters and digits are NFKC-folded; full-width punctuation and spaces dropped.
  assert.deepEqual(zh('ＡＢＣ１２３\u3000狗！'), ['abc123', '狗']);
  assert.deepEqual(zh('カタカナ'), ['カ', 'タ', 'カ', 'ナ']);
  assert.deepEqual(zh('“红色”的、圆形；'), ['红', '色', '的', '圆', '形']);
  assert.deepEqual(zh(''), []);
  assert.throws(() => tokenizeCaption('x', 'fr' as 'en'), /lang must be 'en' or 'zh'/);
  assert.throws(() => tokenizeCaption(3 as unknown as string, 'en'), /must be a string/);
});

test('BLEU: a two-image corpus derived by hand', () => {
  // Image 1: hyp "the cat sat on the mat" (6 words); refs "the cat is on the mat" (6), "there is a cat on the mat" (7).
  //   unigrams: the×2 (clip to max ref count 2), cat, sat (0), on, mat → correct 5 of 6
  //   bigrams: the cat ✓, cat sat ✗, sat on ✗, on the ✓, the mat ✓ → 3 of 5
  //   trigrams: the cat sat ✗, cat sat on ✗, sat on the ✗, on the mat ✓ → 1 of 4
  //   4-grams: none of the 3 appear in either reference → 0 of 3
  //   closest reference length to 6: 6
  // Image 2: hyp "a dog runs" (3); refs "a dog is running fast" (5), "the dog runs" (3).
  //   unigrams 3 of 3; bigrams "a dog" (ref 1) and "dog runs" (ref 2) → 2 of 2 (clipping is per n-gram
  //   against the max over references, so matches may come from different references); trigram 0 of 1;
  //   4-grams: 0 of max(0, 3−4+1) = 0. Closest reference length: 3.
  // Corpus: correct [8, 5, 1, 0], guess [9, 7, 5, 3], testlen 9, reflen 9.
  //   ratio = (9 + 1e-15)/(9 + 1e-9) is just below 1, so the toolkit applies BP = exp(1 − 1/ratio) ≈ 1 − 1.1e-10.
  //   BLEU-1 ≈ 8/9, BLEU-2 ≈ √(8/9 · 5/7) = √(40/63), BLEU-3 ≈ ∛(8/9 · 5/7 · 1/5) = ∛(8/63),
  //   BLEU-4 = (8/9 · 5/7 · 1/5 · 1e-15/(3 + 1e-9))^(1/4) ≈ 8.07e-5 — tiny but not 0, from the 1e-15 constant.
  const hyps = [words('the cat sat on the mat'), words('a dog runs')];
  const refs = [[words('the cat is on the mat'), words('there is a cat on the mat')], [words('a dog is running fast'), words('the dog runs')]];
  const r = bleuScores(hyps, refs);
  assert.deepEqual(r.correct, [8, 5, 1, 0]);
  assert.deepEqual(r.guess, [9, 7, 5, 3]);
  assert.equal(r.testLen, 9);
  assert.equal(r.refLen, 9);
  const bp = Math.exp(1 - (9 + small) / (9 + tiny));
  assert.ok(bp < 1 && 1 - bp < 2e-10);
  close(r.bleu[0]!, 8 / 9, 1e-9, 'BLEU-1');
  close(r.bleu[1]!, Math.sqrt(40 / 63), 1e-9, 'BLEU-2');
  close(r.bleu[2]!, Math.cbrt(8 / 63), 1e-9, 'BLEU-3');
  close(r.bleu[3]!, (8 / 63 * 1e-15 / 3) ** 0.25, 1e-12, 'BLEU-4');
  assert.ok(r.bleu[3]! > 8.0e-5 && r.bleu[3]! < 8.1e-5);
  // The same numbers, with the toolkit's constants written out.
  const exact = [8, 5, 1, 0].map((c, k) => (c + tiny) / ([9, 7, 5, 3][k]! + small));
  close(r.bleu[1]!, Math.sqrt(exact[0]! * exact[1]!) * bp, 1e-15, 'BLEU-2 exact');

  // Brevity penalty: image 2's hypothesis shortened to "dog runs" (closest ref length still 3).
  //   correct [5+2, 3+1, 1+0, 0] = [7, 4, 1, 0], guess [6+2, 5+1, 4+0, 3+0] = [8, 6, 4, 3],
  //   testlen 8, reflen 9 → BP = exp(1 − 9/8) = exp(−1/8).
  const short = bleuScores([hyps[0]!, words('dog runs')], refs);
  assert.deepEqual(short.correct, [7, 4, 1, 0]);
  assert.deepEqual(short.guess, [8, 6, 4, 3]);
  close(short.bleu[0]!, 7 / 8 * Math.exp(-1 / 8), 1e-9, 'BLEU-1 with BP');
  close(short.bleu[1]!, Math.sqrt(7 / 8 * 4 / 6) * Math.exp(-1 / 8), 1e-9, 'BLEU-2 with BP');
  close(short.bleu[2]!, Math.cbrt(7 / 8 * 4 / 6 * 1 / 4) * Math.exp(-1 / 8), 1e-9, 'BLEU-3 with BP');
});

test('BLEU: the closest reference length breaks ties towards the shorter reference', () => {
  // hyp "a b c x" (4) vs refs of length 3 and 5: both 1 away, the toolkit's min((|l−4|, l)) picks 3, so there
  // is no brevity penalty and BLEU-1 = 3/4 (had it picked 5, BLEU-1 would be 3/4 · exp(1 − 5/4) ≈ 0.584).
  const r = bleuScores([words('a b c x')], [[words('a b c d e'), words('a b c')]]);
  assert.equal(r.refLen, 3);
  close(r.bleu[0]!, 0.75, 1e-9, 'BLEU-1');
  // An empty hypothesis: every guess is 0, BP = exp(1 − 1/ratio) with ratio ≈ 1e-15/3 underflows to 0.
  const e = bleuScores([[]], [[words('a b c')]]);
  assert.deepEqual(e.bleu, [0, 0, 0, 0]);
});

test('ROUGE-L: LCS, β = 1.2, and the maxima taken over references separately', () => {
  assert.equal(lcsLength(words('a man is riding a bike'), words('a man riding a red bike')), 5);
  assert.equal(lcsLength(words('x y z'), words('a b')), 0);
  // hyp "a man riding a bike" (5) vs ref "a young man is riding a red bike" (8): LCS = 5 (a man riding a bike)
  //   P = 5/5 = 1, R = 5/8; F = (1 + 1.44)·P·R / (R + 1.44·P) = 2.44·0.625 / 2.065 = 1.525/2.065 ≈ 0.73850.
  const one = rougeLScores([words('a man riding a bike')], [[words('a young man is riding a red bike')]]);
  close(one.score, 1.525 / 2.065, 1e-12, 'ROUGE-L');
  close(one.score, 0.738498789, 1e-9, 'ROUGE-L literal');
  // Adding the reference "a man riding" (LCS 3: P 3/5, R 1): max P = 1 (first ref), max R = 1 (second) → F = 1.
  const two = rougeLScores([words('a man riding a bike')], [[words('a young man is riding a red bike'), words('a man riding')]]);
  assert.equal(two.score, 1);
  // No common word → 0. Corpus score is the mean over images.
  const corpus = rougeLScores([words('a man riding a bike'), words('blue sky')], [[words('a young man is riding a red bike')], [words('green grass')]]);
  assert.deepEqual(corpus.perImage, [one.score, 0]);
  close(corpus.score, one.score / 2, 1e-15, 'mean');
  // The toolkit splits on " ": an empty hypothesis is one empty token, matching an empty reference.
  assert.equal(rougeLScores([[]], [[[]]]).score, 1);
  assert.equal(rougeLScores([[]], [[words('a b')]]).score, 0);
});

test('CIDEr-D: identical captions, and a case derived by hand', () => {
  // Identical hypothesis and reference of ≥ 4 words, no n-gram shared by every image: for every n the clipped
  // dot product is ‖r‖², the cosine 1, the length penalty 1 → mean over n = 1, × 10 = 10 per image.
  const same = ['a red circle on top of a square', 'two blue squares next to each other'].map(words);
  const r = ciderDScores(same, same.map((s) => [s]));
  close(r.score, 10, 1e-12, 'identical');
  // With two-word captions there are no 3- and 4-grams: those orders score 0 and the mean over n is 2/4.
  const pair = ['blue square', 'red circle'].map(words);
  close(ciderDScores(pair, pair.map((s) => [s])).score, 5, 1e-12, 'identical, two words');

  // Corpus of N = 2 images, idf of an n-gram = log 2 − log max(1, df) = L = ln 2 for every n-gram here
  // (df = 1 for reference n-grams, 0 → max(1, 0) = 1 for n-grams only in hypotheses).
  // Image A: hyp "red red circle", ref "red circle".
  //   n=1: h = {red: 2L, circle: L}, r = {red: L, circle: L}. Clipped: min(2L, L)·L + min(L, L)·L = 2L²
  //        (unclipped it would be 3L²); ‖h‖ = √5·L, ‖r‖ = √2·L → 2/√10.
  //   n=2: h = {red red: L, red circle: L}, r = {red circle: L} → L² / (√2·L · L) = 1/√2.
  //   n=3: h = {red red circle: L}, ‖r‖ = 0 → 0 (left unnormalised). n=4: nothing → 0.
  //   Gaussian penalty on bigram counts: δ = 2 − 1 = 1 → exp(−1/(2·6²)) = exp(−1/72).
  //   CIDEr-D(A) = 10 · (2/√10 + 1/√2) · exp(−1/72) / 4 ≈ 3.3027.
  // Image B: hyp = ref = "blue square" → 10 · (1 + 1 + 0 + 0)/4 = 5.
  const hyps = [words('red red circle'), words('blue square')];
  const refs = [[words('red circle')], [words('blue square')]];
  const c = ciderDScores(hyps, refs);
  const a = 10 * (2 / Math.sqrt(10) + 1 / Math.sqrt(2)) * Math.exp(-1 / 72) / 4;
  close(c.perImage[0]!, a, 1e-12, 'image A');
  close(c.perImage[0]!, 3.30271, 1e-5, 'image A literal');
  close(c.perImage[1]!, 5, 1e-12, 'image B');
  close(c.score, (a + 5) / 2, 1e-12, 'corpus');
  // Several references: similarities are summed over references and divided by their number. Give A a second
  // reference "green circle" (df and idf unchanged: both references belong to one image, idf stays L):
  //   n=1: r = {green: L, circle: L} → only "circle" is shared: L² / (√5·L · √2·L) = 1/√10;
  //   n=2: r = {green circle: L} shares nothing with h → 0; δ = 2 − 1 = 1 again.
  //   CIDEr-D(A) = 10 · [(2/√10 + 1/√2) + (1/√10 + 0)] · exp(−1/72) / 4 / 2.
  // Give B a duplicate reference: [1, 1, 0, 0] twice, / 2 → still 5.
  const c2 = ciderDScores(hyps, [[words('red circle'), words('green circle')], [words('blue square'), words('blue square')]]);
  close(c2.perImage[0]!, 10 * (3 / Math.sqrt(10) + 1 / Math.sqrt(2)) * Math.exp(-1 / 72) / 4 / 2, 1e-12, 'image A, two refs');
  close(c2.perImage[1]!, 5, 1e-12, 'image B, two refs');
  // A one-image corpus: log N = 0, every weight is 0 → 0, as in the toolkit.
  assert.equal(ciderDScores([words('a b c d')], [[words('a b c d')]]).score, 0);
});

test('captionMetrics: perfect match, an extra word, order invariance, Map or object', () => {
  const refs = {
    img1: ['A red circle on top of a blue square.', 'A blue square below a red circle.'],
    img2: ['Two green triangles side by side.', 'A pair of green triangles.'],
    img3: ['A small yellow star in the corner.', 'A yellow star, small, near the corner.'],
  };
  const perfect = Object.fromEntries(Object.entries(refs).map(([k, v]) => [k, v[0]!]));
  const p = captionMetrics(perfect, refs, 'en');
  assert.equal(p.images, 3);
  for (const b of [p.bleu1, p.bleu2, p.bleu3, p.bleu4]) assert.ok(b < 1 && 1 - b < 1e-9, `perfect BLEU ${b}`); // 1 − O(1e-10): the toolkit's smoothing constants
  assert.equal(p.rougeL, 1);
  assert.ok(p.ciderD > 0);
  // One extra word that appears in no reference lowers every score.
  const worse = captionMetrics({ ...perfect, img2: 'Two green triangles side by side zebra.' }, refs, 'en');
  for (const k of ['bleu1', 'bleu2', 'bleu3', 'bleu4', 'rougeL', 'ciderD'] as const) assert.ok(worse[k] < p[k], `${k}: ${worse[k]} vs ${p[k]}`);
  // Images are scored in id order, so the order of the input does not matter; Map and object agree.
  const hyps = { img3: 'a star in a corner', img1: 'a circle and a square', img2: 'green triangles' };
  const forward = captionMetrics(hyps, refs, 'en');
  const reversed = captionMetrics(new Map(Object.entries(hyps).reverse()), new Map(Object.entries(refs).reverse()), 'en');
  assert.deepEqual(reversed, forward);
  assert.ok(forward.bleu1 > 0 && forward.bleu1 < 1 && forward.rougeL > 0 && forward.rougeL < 1);
});

test('captionMetrics in Chinese, derived by hand', () => {
  // Image 1: hyp 红色的圆 [红 色 的 圆], ref 红色的圆形。 [红 色 的 圆 形] (the full stop is dropped).
  // Image 2: hyp 蓝色方块 [蓝 色 方 块], ref 蓝色的方块 [蓝 色 的 方 块].
  //   BLEU: unigrams 4/4 + 4/4; bigrams 红色 色的 的圆 3/3 + 蓝色 ✓ 色方 ✗ 方块 ✓ 2/3 → p1 = 8/8, p2 = 5/6;
  //   testlen 8, reflen 10 → BP = exp(1 − 10/8) = exp(−1/4).
  //   ROUGE-L: LCS 4 in both: P = 1, R = 4/5 → F = 2.44·0.8/(0.8 + 1.44) = 61/70 for each image.
  const m = captionMetrics({ a: '红色的圆', b: '蓝色方块' }, { a: ['红色的圆形。'], b: ['蓝色的方块'] }, 'zh');
  close(m.bleu1, Math.exp(-0.25), 1e-9, 'BLEU-1');
  close(m.bleu2, Math.sqrt(5 / 6) * Math.exp(-0.25), 1e-9, 'BLEU-2');
  close(m.rougeL, 61 / 70, 1e-12, 'ROUGE-L');
  assert.equal(m.images, 2);
});

test('input errors', () => {
  const refs = { a: ['a cat'], b: ['a dog'] };
  assert.throws(() => captionMetrics({ a: 'a cat' }, refs, 'en'), /same images; no hypothesis for "b"/);
  assert.throws(() => captionMetrics({ a: 'x', b: 'y', c: 'z' }, refs, 'en'), /no references for "c"/);
  assert.throws(() => captionMetrics({ a: 'x', b: 'y' }, { a: ['a cat'], b: [] }, 'en'), /image "b" has no references/);
  assert.throws(() => captionMetrics({ a: 'x', b: 'y' }, { a: ['a cat'], b: ['  '] }, 'en'), /reference 0 of image "b" is empty/);
  assert.throws(() => captionMetrics({ a: 'x', b: 'y' }, { a: ['a cat'], b: 'a dog' as unknown as string[] }, 'en'), /must be an array of strings/);
  assert.throws(() => captionMetrics({ a: 'x', b: 7 as unknown as string }, refs, 'en'), /hypothesis for image "b" must be a string/);
  assert.throws(() => captionMetrics({}, {}, 'en'), /no hypotheses/);
  assert.throws(() => captionMetrics({ a: 'x', b: 'y' }, refs, 'de' as 'en'), /lang must be 'en' or 'zh'/);
  assert.throws(() => captionMetrics([] as unknown as Record<string, string>, refs, 'en'), /must be a Map or an object/);
  assert.throws(() => bleuScores([['a']], []), /one hypothesis and one reference list per image/);
  assert.throws(() => ciderDScores([['a']], [[]]), /image 0 has no references/);
  assert.throws(() => rougeLScores([['a']], [[['a']]], 0), /beta must be a positive number/);
  // An empty hypothesis is a legitimate (zero-scoring) output, not an error.
  const empty = captionMetrics({ a: '', b: 'a dog' }, refs, 'en');
  assert.ok(empty.bleu1 > 0 && empty.rougeL === 0.5);
});

test('numpy-style mean', () => {
  assert.equal(numpyMean([1, 2, 3]), 2);
  const v = Array.from({ length: 300 }, (_, i) => 0.1 * (i % 7) + 1e-3 * i);
  close(numpyMean(v), v.reduce((s, x) => s + x, 0) / v.length, 1e-13, 'pairwise vs sequential');
});
