// The filter's `matches` engine (src/filter/regex.ts): the same answers as JavaScript's RegExp with the `i` flag, on
// generated patterns and texts, and linear time on the patterns that make a backtracking engine run for ever.
import { describe, expect, it } from 'vitest';
import { UnsupportedRegex, linearRegex } from '../../src/filter/regex.js';

/** A small seeded generator (mulberry32): the same cases every run. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// (letters of both cases, with ſ and the Kelvin sign, whose uppercase the `i` flag's rules treat apart; digits, "_",
// spaces and line breaks for \d \w \s . and \b; é/É beyond ASCII)
const TEXT_UNITS = ['a', 'b', 'A', 'B', 'k', 'K', 's', 'S', '\u017f', '\u212a', '\u00e9', '\u00c9', '1', '7', '_', ' ', '\n', '\r', '-', '.', '\u2028', '\u00a0'];
const ATOMS = ['a', 'b', 'A', 'k', 's', '\u017f', '\u212a', '\u00e9', '1', '-', '.', '\\d', '\\D', '\\w', '\\W', '\\s', '\\S', '\\.', '\\-', '\\x41', '\\u00c9', '\\n',
  '[ab]', '[^ab]', '[a-c]', '[A-Z]', '[^a-z]', '[\\w-]', '[\\d.]', '[a-]', '[]', '[^]', '[\\s\\S]', '[k-s]', '[\\u017f]', '[\u00e0-\u00ff]', '{', '}', ']', '_'];
const ASSERTIONS = ['^', '$', '\\b', '\\B'];
const QUANTIFIERS = ['*', '+', '?', '{2}', '{1,3}', '{0,}', '{2,}', '*?', '+?', '??', '{0,2}?'];

function pattern(r: () => number, depth: number): string {
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
  const term = (): string => {
    const x = r();
    if (x < 0.12) return pick(ASSERTIONS);
    const atom = x < 0.35 && depth > 0 ? `(${r() < 0.5 ? '?:' : ''}${pattern(r, depth - 1)})` : pick(ATOMS);
    return r() < 0.4 ? atom + pick(QUANTIFIERS) : atom;
  };
  const seq = (): string => Array.from({ length: 1 + Math.floor(r() * 3) }, term).join('');
  const alts = r() < 0.25 ? 2 + Math.floor(r() * 2) : 1;
  return Array.from({ length: alts }, seq).join('|');
}

/** `count` generated patterns, each on 5 generated texts: where linearRegex and RegExp (with `i` or, case-sensitive, without) differ. */
function differences(seed: number, count: number, caseSensitive: boolean): { diffs: string[]; compared: number } {
  const r = rng(seed);
  let compared = 0;
  const diffs: string[] = [];
  for (let i = 0; i < count; i++) {
    const p = pattern(r, 2);
    let re: RegExp;
    try {
      re = new RegExp(p, caseSensitive ? '' : 'i');
    } catch {
      continue;
    }
    const mine = linearRegex(p, { caseSensitive });
    for (let j = 0; j < 5; j++) {
      const text = Array.from({ length: Math.floor(r() * 9) }, () => TEXT_UNITS[Math.floor(r() * TEXT_UNITS.length)]).join('');
      compared++;
      if (mine.test(text) !== re.test(text)) diffs.push(`${JSON.stringify(p)} on ${JSON.stringify(text)}: RegExp ${re.test(text)}`);
    }
  }
  return { diffs: diffs.slice(0, 10), compared };
}

/** The code units (the first 5) where `^p$` as linearRegex and as RegExp differ on the unit alone. */
function unitDifferences(p: string, caseSensitive: boolean): number[] {
  const re = new RegExp(`^${p}$`, caseSensitive ? '' : 'i');
  const mine = linearRegex(`^${p}$`, { caseSensitive });
  const differ: number[] = [];
  for (let c = 0; c < 0x10000 && differ.length < 5; c++) {
    const s = String.fromCharCode(c);
    if (mine.test(s) !== re.test(s)) differ.push(c);
  }
  return differ;
}

const UNIT_PATTERNS = ['k', 'K', 's', '\u017f', '\u00e9', '\u03bc', '\u00b5', '[a-z]', '[^a-z]', '[\u00e0-\u00fe]', '\\w', '[\\W]', '\u0130', 'i', '\u0131'];

describe('linearRegex', () => {
  it('answers as RegExp with the i flag on 20,000 generated patterns and texts', () => {
    const { diffs, compared } = differences(20261129, 4000, false);
    expect(diffs).toEqual([]);
    expect(compared).toBeGreaterThan(15_000);
  });

  it('compiled case-sensitive (a filter\'s leading "(?-i)"), answers as RegExp without the i flag', () => {
    // (fewer than with `i`: the engine is the same but for folding)
    const { diffs, compared } = differences(20260411, 2000, true);
    expect(diffs).toEqual([]);
    expect(compared).toBeGreaterThan(7_500);
    for (const p of UNIT_PATTERNS) expect([p, unitDifferences(p, true)]).toEqual([p, []]);
    expect([linearRegex('^GET$', { caseSensitive: true }).test('get'), linearRegex('^GET$').test('get')]).toEqual([false, true]);
  });

  it('every code unit as RegExp /i compares it with a letter, a class and its negation', () => {
    for (const p of UNIT_PATTERNS) expect([p, unitDifferences(p, false)]).toEqual([p, []]);
  });

  it('ends at once where a backtracking engine would not: nested and overlapping repetitions, long runs', () => {
    // [pattern, a unit repeated, its count, an end]: the answer is RegExp's on a short text of the same shape
    const cases: [string, string, number, string][] = [
      ['(a+)+$', 'a', 50_000, '!'], ['^(a|a)*$', 'a', 50_000, '!'], ['(a|aa)+b', 'a', 50_000, ''], ['^(\\w+\\s?)+$', 'word ', 10_000, '!'],
      ['\\d+x', '1', 200_000, ''], ['.*a.*b.*c.*d', 'abc', 50_000, ''], ['(a+)+$', 'a', 50_000, ''], ['(x+x+)+y', 'x', 30_000, 'y'],
    ];
    for (const [p, unit, count, end] of cases) {
      const want = new RegExp(p, 'i').test(unit.repeat(3) + end);
      expect([p, linearRegex(p).test(unit.repeat(count) + end)]).toEqual([p, want]);
      // (case-sensitive, the same program without folding: as linear)
      expect([p, linearRegex(p, { caseSensitive: true }).test(unit.repeat(count) + end)]).toEqual([p, new RegExp(p).test(unit.repeat(3) + end)]);
    }
  });

  it('refuses what no automaton tests in linear time, and the rare escapes it does not take, saying which', () => {
    for (const [p, why] of [['(a)\\1', 'backreferences'], ['(?<n>a)\\k<n>', 'backreferences'], ['a(?=b)', 'lookarounds'], ['a(?!b)', 'lookarounds'],
      ['(?<=a)b', 'lookarounds'], ['(?<!a)b', 'lookarounds'], ['\\01', 'octal escapes'], ['[\\1]', 'octal escapes'], ['\\c1', '"\\c" without a letter'],
      ['(a{1000}){1000}', 'repetitions this large'], ['(?:){100000000}', 'repetitions this large'], ['((?:){1000}){1000}', 'repetitions this large'],
      ['\\1', 'octal escapes']] as const) {
      new RegExp(p, 'i');
      expect(() => linearRegex(p), p).toThrow(UnsupportedRegex);
      expect(() => linearRegex(p), p).toThrow(why);
    }
    // (a modifier group, which Node 20's engine refuses and newer ones (Electron's) take: refused, not misread)
    expect(() => linearRegex('(?i:a)')).toThrow('inline flags');
    expect(() => linearRegex('(?s:.)x>y')).toThrow('inline flags');
  });

  it('takes Annex B\'s letters and digits where no group makes them references: \\k, \\8, \\9', () => {
    for (const p of ['\\k', 'a\\8', '\\9b', '(a)\\8']) {
      for (const text of ['k', 'a8', '9b', 'a', 'x']) expect([p, text, linearRegex(p).test(text)]).toEqual([p, text, new RegExp(p, 'i').test(text)]);
    }
  });
});
