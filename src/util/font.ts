// A built-in 5×7 bitmap font for printable ASCII (0x20–0x7E), and text drawing onto raw RGB images,
// so plots need no font files or system libraries. Legend: H×W image pixels, rows r 0..6 (top to
// bottom), columns c 0..4 (left to right); a glyph cell is 6×8 pixels (1 pixel of spacing) per scale.
//
// Each glyph is 5 column bytes in 10 hex digits (the classic HD44780-style layout): bit r of column c
// is the pixel at row r (bit 0 = top). Characters outside the table draw as '?'.

import type { RgbImage } from './png.js';

export const FONT = Object.freeze({
  /** Glyph width in font pixels. */
  width: 5,
  /** Glyph height in font pixels. */
  height: 7,
  /** Horizontal advance per character (glyph + 1 pixel gap). */
  advance: 6,
  /** Line height (glyph + 1 pixel gap). */
  lineHeight: 8,
});

const GLYPHS: Readonly<Record<string, string>> = {
  ' ': '0000000000', '!': '00005f0000', '"': '0007000700', '#': '147f147f14', '$': '242a7f2a12', '%': '2313086462',
  '&': '3649552250', "'": '0005030000', '(': '001c224100', ')': '0041221c00', '*': '082a1c2a08', '+': '08083e0808',
  ',': '0050300000', '-': '0808080808', '.': '0060600000', '/': '2010080402', '0': '3e5149453e', '1': '00427f4000',
  '2': '4261514946', '3': '2141454b31', '4': '1814127f10', '5': '2745454539', '6': '3c4a494930', '7': '0171090503',
  '8': '3649494936', '9': '064949291e', ':': '0036360000', ';': '0056360000', '<': '0008142241', '=': '1414141414',
  '>': '4122140800', '?': '0201510906', '@': '324979413e', 'A': '7e1111117e', 'B': '7f49494936', 'C': '3e41414122',
  'D': '7f4141221c', 'E': '7f49494941', 'F': '7f09090101', 'G': '3e41415132', 'H': '7f0808087f', 'I': '00417f4100',
  'J': '2040413f01', 'K': '7f08142241', 'L': '7f40404040', 'M': '7f020c027f', 'N': '7f0408107f', 'O': '3e4141413e',
  'P': '7f09090906', 'Q': '3e4151215e', 'R': '7f09192946', 'S': '4649494931', 'T': '01017f0101', 'U': '3f4040403f',
  'V': '1f2040201f', 'W': '3f4038403f', 'X': '6314081463', 'Y': '0304780403', 'Z': '6151494543', '[': '007f414100',
  '\\': '0204081020', ']': '0041417f00', '^': '0402010204', '_': '4040404040', '`': '0001020400', 'a': '2054545478',
  'b': '7f48444438', 'c': '3844444420', 'd': '384444487f', 'e': '3854545418', 'f': '087e090102', 'g': '0c5252523e',
  'h': '7f08040478', 'i': '00447d4000', 'j': '2040443d00', 'k': '7f10284400', 'l': '00417f4000', 'm': '7c04180478',
  'n': '7c08040478', 'o': '3844444438', 'p': '7c14141408', 'q': '081414147c', 'r': '7c08040408', 's': '4854545420',
  't': '043f444020', 'u': '3c4040207c', 'v': '1c2040201c', 'w': '3c4030403c', 'x': '4428102844', 'y': '0c5050503c',
  'z': '4464544c44', '{': '0008364100', '|': '00007f0000', '}': '0041360800', '~': '0804081008',
};

/** Row bitmaps [7] per code 0x20..0x7E: bit 4 of a row is column 0 (leftmost), bit 0 is column 4. */
const ROWS: readonly Uint8Array[] = (() => {
  const out: Uint8Array[] = [];
  for (let code = 0x20; code <= 0x7e; code++) {
    const hex = GLYPHS[String.fromCharCode(code)];
    if (hex === undefined || !/^[0-9a-f]{10}$/.test(hex)) throw new Error(`font: glyph table lacks or garbles ${JSON.stringify(String.fromCharCode(code))}`);
    const rows = new Uint8Array(FONT.height); // [7]
    for (let c = 0; c < FONT.width; c++) {
      const col = parseInt(hex.slice(2 * c, 2 * c + 2), 16);
      for (let r = 0; r < FONT.height; r++) if ((col >> r) & 1) rows[r]! |= 1 << (FONT.width - 1 - c);
    }
    out.push(rows);
  }
  return out;
})();

/** The 7 row bitmaps of a character (bit 4 = leftmost column); characters outside 0x20–0x7E give '?'. */
export function glyphRows(ch: string): Uint8Array {
  const code = ch.codePointAt(0);
  const i = code !== undefined && code >= 0x20 && code <= 0x7e ? code - 0x20 : '?'.charCodeAt(0) - 0x20;
  return ROWS[i]!;
}

/** Whether the pixel at (row r, column c) of a glyph is set. */
export function glyphPixel(ch: string, r: number, c: number): boolean {
  return r >= 0 && r < FONT.height && c >= 0 && c < FONT.width && ((glyphRows(ch)[r]! >> (FONT.width - 1 - c)) & 1) === 1;
}

/** Pixel width of `text` drawn at `scale` (no trailing gap); 0 for ''. */
export function textWidth(text: string, scale = 1): number {
  const n = [...text].length;
  return n === 0 ? 0 : (n * FONT.advance - 1) * scale;
}

/** Pixel height of one line of text at `scale`. */
export function textHeight(scale = 1): number {
  return FONT.height * scale;
}

export interface TextOptions {
  /** Size multiplier: each font pixel becomes a scale×scale block. */
  scale?: number;
  /** Rotate 90° counter-clockwise (reads bottom to top); (x, y) is then the bottom-left corner. */
  vertical?: boolean;
}

/**
 * Draws `text` with its top-left corner at (x, y) (bottom-left when vertical) in `color`; pixels
 * outside the image are clipped. Only set pixels are written: the background shows through.
 */
export function drawText(img: RgbImage, x: number, y: number, text: string, color: readonly [number, number, number], opts: TextOptions = {}): void {
  const s = opts.scale ?? 1;
  if (!Number.isInteger(s) || s < 1) throw new RangeError(`drawText: scale must be a positive integer, got ${s}`);
  const put = (px: number, py: number): void => {
    if (px < 0 || py < 0 || px >= img.width || py >= img.height) return;
    const o = (py * img.width + px) * 3;
    img.rgb[o] = color[0]; img.rgb[o + 1] = color[1]; img.rgb[o + 2] = color[2];
  };
  [...text].forEach((ch, k) => {
    const rows = glyphRows(ch);
    for (let r = 0; r < FONT.height; r++) {
      for (let c = 0; c < FONT.width; c++) {
        if (!((rows[r]! >> (FONT.width - 1 - c)) & 1)) continue;
        const u = (k * FONT.advance + c) * s, v = r * s; // offset along / across the text direction
        for (let dy = 0; dy < s; dy++) for (let dx = 0; dx < s; dx++) {
          if (opts.vertical) put(x + v + dy, y - (u + dx)); // rotated: text runs upwards from (x, y)
          else put(x + u + dx, y + v + dy);
        }
      }
    }
  });
}
