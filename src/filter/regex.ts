// The filter's `matches`: a regular expression tested in time linear in the text, whatever the pattern. JavaScript's
// engine backtracks without limit: "(a+)+$", "(a|a)*$" or even "\d+x" on a long path of digits (quadratic) can run for
// minutes on text a peer chose. Here the pattern becomes a Thompson NFA whose threads step through the text together
// (as RE2 and Go's regexp do): at most (text length) x (program size) steps.
//
// Semantics are JavaScript's RegExp with the `i` flag and without `u` (what `new RegExp(p, 'i').test(s)` answers; the
// tests compare the two on generated patterns and texts): code units, Annex B's literal `{`, `}` and `]`, the `i`
// flag's Canonicalize (a character and its simple uppercase compare equal), `.` excluding line terminators, `^` and `$`
// at the text's ends only. Compiled `caseSensitive`, they are RegExp's without `i` (no Canonicalize): what a pattern
// after PCRE2's leading "(?-i)" means to Wireshark (`leadingFlags`). Not taken: backreferences (\1, \k<name>) and
// lookarounds ((?=, (?!, (?<=, (?<!), which no automaton tests in linear time, and the rarer Annex B escapes (octal \01,
// \c without a letter): `unsupported` says which. The caller first checks the pattern with `new RegExp` (for its
// syntax errors).

/** A pattern this engine does not take: why (a phrase such as "backreferences"). */
export class UnsupportedRegex extends Error {}

type Test = (c: number) => boolean;

type Node =
  | { k: 'char'; test: Test }
  | { k: 'seq'; items: Node[] }
  | { k: 'alt'; alts: Node[] }
  | { k: 'rep'; body: Node; min: number; max: number }
  | { k: 'assert'; what: Assertion };

const enum Assertion { Start, End, WordBoundary, NotWordBoundary }

/** Instructions past this are "too large": a counted repetition is written out once per count. */
const MAX_PROGRAM = 50_000;
/** Repetitions written out, past which a pattern is "too large" even when they write nothing ("(?:){100000000}") */
const MAX_COPIES = 200_000;

// ---- characters ----

/** Whether c is a line terminator (what `.` does not match). */
const lineTerminator = (c: number): boolean => c === 0x0a || c === 0x0d || c === 0x2028 || c === 0x2029;
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isWord = (c: number): boolean => (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || isDigit(c) || c === 0x5f;
const isSpace = (c: number): boolean =>
  (c >= 0x09 && c <= 0x0d) || c === 0x20 || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
  c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff;

let CANON: Uint16Array | null = null;
/** By canonical value: the code units that have it (CSR: units in GROUP_UNITS from GROUP_START[v] to GROUP_START[v + 1]). */
let GROUP_START: Uint32Array | null = null;
let GROUP_UNITS: Uint16Array | null = null;

/** ECMAScript's Canonicalize for a pattern with `i` and without `u`: the simple uppercase, unless it leaves ASCII's rules. */
function canonicalOf(c: number): number {
  const u = String.fromCharCode(c).toUpperCase();
  if (u.length !== 1) return c;
  const cu = u.charCodeAt(0);
  return c >= 128 && cu < 128 ? c : cu;
}

/** The canonical value of every code unit, and the units of each value (built on first use: ~10 ms). */
function canonTables(): Uint16Array {
  if (CANON) return CANON;
  const canon = new Uint16Array(0x10000);
  const counts = new Uint32Array(0x10001);
  for (let c = 0; c < 0x10000; c++) {
    canon[c] = canonicalOf(c);
    counts[canon[c]! + 1]!++;
  }
  for (let v = 0; v < 0x10000; v++) counts[v + 1]! += counts[v]!;
  const units = new Uint16Array(0x10000);
  const fill = counts.slice(0, 0x10000);
  for (let c = 0; c < 0x10000; c++) units[fill[canon[c]!]!++] = c;
  GROUP_START = counts;
  GROUP_UNITS = units;
  return (CANON = canon);
}

/** A set test made case-insensitive: c is in it when some unit of c's canonical value is. */
function foldSet(raw: Test): Test {
  const canon = canonTables();
  const start = GROUP_START!;
  const units = GROUP_UNITS!;
  return (c) => {
    const v = canon[c]!;
    for (let i = start[v]!; i < start[v + 1]!; i++) if (raw(units[i]!)) return true;
    return false;
  };
}

function literalTest(c: number, fold: boolean): Test {
  if (!fold) return (x) => x === c;
  const canon = canonTables();
  const want = canon[c]!;
  return (x) => canon[x] === want;
}

/**
 * PCRE2's (so Wireshark's) leading "(?i)" or "(?-i)", which JavaScript's syntax lacks: the pattern after it, and whether
 * it is case-sensitive ("(?i)" changes nothing here: a filter's patterns are case-insensitive). Taken at the very start
 * only, where it is the whole pattern's; a flag group anywhere else ("a(?-i)b", "(?s)", "(?i:b)") is UnsupportedRegex
 * (why: it would apply to part of a pattern, and the engine's one switch is the whole pattern's).
 */
export function leadingFlags(pattern: string): { pattern: string; caseSensitive: boolean } {
  const lead = /^\(\?(-?)i\)/.exec(pattern);
  const rest = lead ? pattern.slice(lead[0].length) : pattern;
  for (let i = 0; i < rest.length; i++) {
    const c = rest[i];
    if (c === '\\') {
      i++;
    } else if (c === '[') {
      // (to the class's first "]" not escaped: "[]" is an empty class, Annex B)
      for (i++; i < rest.length && rest[i] !== ']'; i++) if (rest[i] === '\\') i++;
    } else if (c === '(' && rest[i + 1] === '?' && !':=!<'.includes(rest[i + 2] ?? ':')) {
      const group = /^\(\?[^):]*[):]?/.exec(rest.slice(i))![0];
      throw new UnsupportedRegex(`inline flags ("${group}") ${lead || i > 0 ? 'past its start' : 'other than "(?i)" or "(?-i)"'}`);
    }
  }
  return { pattern: rest, caseSensitive: lead !== null && lead[1] === '-' };
}

// ---- parsing (a pattern `new RegExp(p, 'i')` accepted) ----

class Parser {
  private i = 0;
  /** the pattern has capturing groups (then \1 is a backreference; else, Annex B, an octal escape), named ones (then \k is one) */
  private readonly groups: boolean;
  private readonly named: boolean;

  /** `fold`: the `i` flag's (a letter and its other case are the same character) */
  constructor(private readonly p: string, private readonly fold: boolean) {
    // (a "(" not escaped, not in a class, not "(?" unless "(?<name>")
    const plain = p.replace(/\\./g, '').replace(/\[[^\]]*\]/g, '');
    this.named = /\(\?<[^=!]/.test(plain);
    this.groups = this.named || /\((?!\?)/.test(plain);
  }

  parse(): Node {
    const n = this.alternation();
    if (this.i < this.p.length) throw new UnsupportedRegex(`"${this.p[this.i]}" at ${this.i}`);
    return n;
  }

  private peek(): string | undefined {
    return this.p[this.i];
  }

  private alternation(): Node {
    const alts = [this.sequence()];
    while (this.peek() === '|') {
      this.i++;
      alts.push(this.sequence());
    }
    return alts.length === 1 ? alts[0]! : { k: 'alt', alts };
  }

  private sequence(): Node {
    const items: Node[] = [];
    for (let c = this.peek(); c !== undefined && c !== '|' && c !== ')'; c = this.peek()) {
      const atom = this.atom();
      // (an assertion takes no quantifier: `new RegExp` refuses "^*"; a group holding one does, as a sequence)
      items.push(atom.k === 'assert' ? atom : this.quantified(atom));
    }
    return items.length === 1 ? items[0]! : { k: 'seq', items };
  }

  /** `atom` with the quantifier that follows it, if any (a "{" that is not one is a literal, Annex B). */
  private quantified(atom: Node): Node {
    const c = this.peek();
    let min: number;
    let max: number;
    if (c === '*' || c === '+' || c === '?') {
      this.i++;
      [min, max] = c === '*' ? [0, Infinity] : c === '+' ? [1, Infinity] : [0, 1];
    } else if (c === '{') {
      const m = /^\{(\d+)(?:(,)(\d*))?\}/.exec(this.p.slice(this.i));
      if (!m) return atom;
      this.i += m[0].length;
      min = Number(m[1]);
      max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
    } else {
      return atom;
    }
    // (a lazy quantifier matches the same texts)
    if (this.peek() === '?') this.i++;
    return { k: 'rep', body: atom, min, max };
  }

  private atom(): Node {
    const c = this.p[this.i++]!;
    switch (c) {
      case '^': return { k: 'assert', what: Assertion.Start };
      case '$': return { k: 'assert', what: Assertion.End };
      case '.': return { k: 'char', test: (x) => !lineTerminator(x) };
      case '[': return { k: 'char', test: this.classBody() };
      case '(': {
        if (this.p.startsWith('?:', this.i)) this.i += 2;
        else if (/^\?<?[=!]/.test(this.p.slice(this.i))) throw new UnsupportedRegex('lookarounds');
        else if (this.peek() === '?') {
          // (a named group; anything else after "(?" is a modifier group, "(?i:", which newer engines take)
          const name = /^\?<[^>]+>/.exec(this.p.slice(this.i));
          if (!name) throw new UnsupportedRegex('inline flags ("(?i:")');
          this.i += name[0].length;
        }
        const body = this.alternation();
        this.i++;
        return { k: 'seq', items: [body] };
      }
      case '\\': return this.escape();
      default: return { k: 'char', test: literalTest(c.charCodeAt(0), this.fold) };
    }
  }

  /** After "\": an assertion, a class escape or a character. */
  private escape(): Node {
    const c = this.p[this.i]!;
    if (c === 'b' || c === 'B') {
      this.i++;
      return { k: 'assert', what: c === 'b' ? Assertion.WordBoundary : Assertion.NotWordBoundary };
    }
    const set = this.classEscape();
    if (set) return { k: 'char', test: set };
    return { k: 'char', test: literalTest(this.characterEscape(false), this.fold) };
  }

  /** \d \D \w \W \s \S (their sets are closed under the `i` flag's folding), or null. */
  private classEscape(): Test | null {
    const c = this.p[this.i];
    const t = c === 'd' || c === 'D' ? isDigit : c === 'w' || c === 'W' ? isWord : c === 's' || c === 'S' ? isSpace : null;
    if (!t) return null;
    this.i++;
    return c === c!.toUpperCase() ? (x) => !t(x) : t;
  }

  /** A character escape's code unit (after "\"); `inClass`: \b is a backspace there. */
  private characterEscape(inClass: boolean): number {
    const p = this.p;
    const c = p[this.i++]!;
    switch (c) {
      case 't': return 0x09;
      case 'n': return 0x0a;
      case 'v': return 0x0b;
      case 'f': return 0x0c;
      case 'r': return 0x0d;
      case 'b': if (inClass) return 0x08; break;
      case 'c': {
        const l = p.charCodeAt(this.i);
        if ((l >= 0x41 && l <= 0x5a) || (l >= 0x61 && l <= 0x7a)) {
          this.i++;
          return l % 32;
        }
        throw new UnsupportedRegex('"\\c" without a letter');
      }
      case 'x':
      case 'u': {
        const n = c === 'x' ? 2 : 4;
        const hex = p.slice(this.i, this.i + n);
        if (hex.length === n && /^[0-9a-fA-F]+$/.test(hex)) {
          this.i += n;
          return parseInt(hex, 16);
        }
        // (Annex B: "\x" or "\u" not followed by its digits is the letter)
        return c.charCodeAt(0);
      }
      // (Annex B: without named groups, "\k" is the letter)
      case 'k': if (this.named && !inClass) throw new UnsupportedRegex('backreferences'); break;
      default:
        if (c === '0' && !isDigit(p.charCodeAt(this.i))) return 0;
        // (Annex B: \8 and \9 are the digits; \1 to \7 without groups, or in a class, octal escapes)
        if (c === '8' || c === '9') break;
        if (isDigit(c.charCodeAt(0))) throw new UnsupportedRegex(this.groups && !inClass && c !== '0' ? 'backreferences' : 'octal escapes');
    }
    // (an identity escape: the character itself)
    return c.charCodeAt(0);
  }

  /** After "[": the class's set, folded. */
  private classBody(): Test {
    const negated = this.peek() === '^';
    if (negated) this.i++;
    const parts: Test[] = [];
    const ranges: number[] = [];
    // one end of a range: a code unit, or a set (a class escape, which makes the "-" after or before it a literal)
    const end = (): number | Test => {
      const c = this.p[this.i++]!;
      if (c !== '\\') return c.charCodeAt(0);
      return this.classEscape() ?? this.characterEscape(true);
    };
    while (this.peek() !== ']') {
      if (this.peek() === undefined) throw new UnsupportedRegex('an unterminated class');
      const a = end();
      if (this.peek() === '-' && this.p[this.i + 1] !== ']' && this.p[this.i + 1] !== undefined) {
        this.i++;
        const b = end();
        if (typeof a === 'number' && typeof b === 'number') {
          ranges.push(a, b);
          continue;
        }
        // (Annex B: a class escape at either end makes the "-" a character)
        for (const x of [a, 0x2d, b]) if (typeof x === 'number') ranges.push(x, x); else parts.push(x);
        continue;
      }
      if (typeof a === 'number') ranges.push(a, a);
      else parts.push(a);
    }
    this.i++;
    const raw: Test = (c) => {
      for (let i = 0; i < ranges.length; i += 2) if (c >= ranges[i]! && c <= ranges[i + 1]!) return true;
      for (const t of parts) if (t(c)) return true;
      return false;
    };
    const set = this.fold ? foldSet(raw) : raw;
    return negated ? (c) => !set(c) : set;
  }
}

// ---- the program ----

const enum Op { Char, Split, Jump, Assert, Match }

class Program {
  private copies = 0;
  readonly op: Op[] = [];
  readonly x: number[] = [];
  readonly y: number[] = [];
  readonly test: (Test | null)[] = [];

  emit(op: Op, x = 0, y = 0, test: Test | null = null): number {
    if (this.op.length >= MAX_PROGRAM) throw new UnsupportedRegex('repetitions this large');
    this.op.push(op);
    this.x.push(x);
    this.y.push(y);
    this.test.push(test);
    return this.op.length - 1;
  }

  get next(): number {
    return this.op.length;
  }

  /** Appends n's instructions; they continue at the next instruction after them. */
  compile(n: Node): void {
    switch (n.k) {
      case 'char': this.emit(Op.Char, 0, 0, n.test); return;
      case 'assert': this.emit(Op.Assert, n.what); return;
      case 'seq': for (const item of n.items) this.compile(item); return;
      case 'alt': {
        const jumps: number[] = [];
        for (let a = 0; a < n.alts.length; a++) {
          const last = a === n.alts.length - 1;
          const split = last ? -1 : this.emit(Op.Split);
          if (split >= 0) this.x[split] = this.next;
          this.compile(n.alts[a]!);
          if (!last) {
            jumps.push(this.emit(Op.Jump));
            this.y[split] = this.next;
          }
        }
        for (const j of jumps) this.x[j] = this.next;
        return;
      }
      case 'rep': {
        this.copies += Math.min(n.max, n.min + 1);
        if (this.copies > MAX_COPIES) throw new UnsupportedRegex('repetitions this large');
        for (let r = 0; r < n.min; r++) this.compile(n.body);
        if (n.max === Infinity) {
          const split = this.emit(Op.Split);
          this.x[split] = this.next;
          this.compile(n.body);
          this.emit(Op.Jump, split);
          this.y[split] = this.next;
          return;
        }
        const splits: number[] = [];
        for (let r = n.min; r < n.max; r++) {
          const split = this.emit(Op.Split);
          this.x[split] = this.next;
          splits.push(split);
          this.compile(n.body);
        }
        for (const s of splits) this.y[s] = this.next;
      }
    }
  }
}

/** A compiled pattern: `test(text)` as `new RegExp(pattern, 'i').test(text)` answers it (without `i` when compiled
 *  case-sensitive), in linear time. */
export interface LinearRegex {
  test(text: string): boolean;
}

/**
 * Compiles `pattern` (one `new RegExp(pattern, 'i')` accepts, or `new RegExp(pattern)` with `caseSensitive`); throws
 * UnsupportedRegex for what it does not take.
 */
export function linearRegex(pattern: string, options: { caseSensitive?: boolean } = {}): LinearRegex {
  const prog = new Program();
  prog.compile(new Parser(pattern, options.caseSensitive !== true).parse());
  prog.emit(Op.Match);
  return new Matcher(prog);
}

/** The threads of a program stepping through a text together (a Pike VM that only says whether a match exists). */
class Matcher implements LinearRegex {
  private readonly op: Op[];
  private readonly x: number[];
  private readonly y: number[];
  private readonly tests: Test[];
  /** the threads at the current and next position (instruction numbers), each listed once per position (`mark`) */
  private cur: Int32Array;
  private nxt: Int32Array;
  private readonly mark: Float64Array;
  private readonly stack: Int32Array;
  /** a pattern that begins with "^": no thread starts after the text's first position */
  private readonly anchored: boolean;
  /**
   * When no assertion comes before a match's first character: the code units it can be (1), so that the positions
   * where no thread is alive and none can start are passed over without starting one; and whether the pattern
   * matches the empty text there (then it matches any text)
   */
  private readonly firstUnits: Uint8Array | null;
  private readonly matchesEmpty: boolean;
  private text = '';

  constructor(prog: Program) {
    this.op = prog.op;
    this.x = prog.x;
    this.y = prog.y;
    this.tests = prog.test.map((t) => t ?? (() => false));
    const size = prog.op.length;
    this.cur = new Int32Array(size);
    this.nxt = new Int32Array(size);
    this.mark = new Float64Array(size).fill(-1);
    this.stack = new Int32Array(size * 2 + 2);
    this.anchored = prog.op[0] === Op.Assert && prog.x[0] === Assertion.Start;
    const first = startClosure(prog);
    this.matchesEmpty = first?.matchesEmpty ?? false;
    this.firstUnits = null;
    // (past 64 instructions the table costs more to make than it saves)
    if (first && first.chars.length <= 64) {
      const units = new Uint8Array(0x10000);
      for (let c = 0; c < 0x10000; c++) if (first.chars.some((pc) => this.tests[pc]!(c))) units[c] = 1;
      this.firstUnits = units;
    }
  }

  test(text: string): boolean {
    if (this.matchesEmpty) return true;
    const n = text.length;
    const { tests, firstUnits, anchored } = this;
    this.text = text;
    // (marks hold the generation of the position they were set at: a run's generations follow the last run's)
    let gen = generation;
    generation += n + 2;
    let nc = 0;
    for (let at = 0; ; at++) {
      if (nc === 0 && firstUnits) {
        while (at < n && firstUnits[text.charCodeAt(at)] === 0) at++;
        if (at === n) return false;
      }
      if (at === 0 || !anchored) {
        nc = this.add(this.cur, nc, 0, at, gen);
        if (nc < 0) return true;
      }
      if (at === n || (nc === 0 && anchored)) return false;
      const c = text.charCodeAt(at);
      const g = gen + 1;
      const cur = this.cur;
      let nn = 0;
      for (let i = 0; i < nc; i++) {
        const pc = cur[i]!;
        if (tests[pc]!(c)) {
          nn = this.add(this.nxt, nn, pc + 1, at + 1, g);
          if (nn < 0) return true;
        }
      }
      this.cur = this.nxt;
      this.nxt = cur;
      nc = nn;
      gen = g;
    }
  }

  /**
   * Adds the thread at `start` for position `at` (generation g) to `into`, which holds `len`, following jumps, splits
   * and assertions to the Char instructions it leads to: the new length, or -1 when one reaches Match.
   */
  private add(into: Int32Array, len: number, start: number, at: number, g: number): number {
    const { op, x, y, mark, stack } = this;
    let sp = 0;
    stack[sp++] = start;
    while (sp > 0) {
      const pc = stack[--sp]!;
      if (mark[pc] === g) continue;
      mark[pc] = g;
      switch (op[pc]) {
        case Op.Char: into[len++] = pc; break;
        case Op.Jump: stack[sp++] = x[pc]!; break;
        case Op.Split: stack[sp++] = y[pc]!; stack[sp++] = x[pc]!; break;
        case Op.Assert: if (holds(x[pc]!, this.text, at)) stack[sp++] = pc + 1; break;
        case Op.Match: return -1;
      }
    }
    return len;
  }
}

/**
 * The instructions a match begins with (the Char instructions the first instruction leads to, and whether it reaches
 * Match without a character), when no assertion is on the way (which would depend on the position); else null.
 */
function startClosure(prog: Program): { chars: number[]; matchesEmpty: boolean } | null {
  const seen = new Set<number>();
  const chars: number[] = [];
  let matchesEmpty = false;
  const todo = [0];
  while (todo.length > 0) {
    const pc = todo.pop()!;
    if (seen.has(pc)) continue;
    seen.add(pc);
    switch (prog.op[pc]) {
      case Op.Char: chars.push(pc); break;
      case Op.Jump: todo.push(prog.x[pc]!); break;
      case Op.Split: todo.push(prog.x[pc]!, prog.y[pc]!); break;
      case Op.Assert: return null;
      case Op.Match: matchesEmpty = true; break;
    }
  }
  return { chars, matchesEmpty };
}

/** The generation of the next position tested (by any pattern): marks set before it are stale. */
let generation = 0;

function holds(what: Assertion, text: string, at: number): boolean {
  switch (what) {
    case Assertion.Start: return at === 0;
    case Assertion.End: return at === text.length;
    default: {
      const before = at > 0 && isWord(text.charCodeAt(at - 1));
      const after = at < text.length && isWord(text.charCodeAt(at));
      return (before !== after) === (what === Assertion.WordBoundary);
    }
  }
}
