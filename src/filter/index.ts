// The flow filter language (Wireshark-display-filter-like) over Flow fields, e.g.
//   tls.client.library == "java-jsse" && dst.port == 443
//   !tls.client.plaintext || http.status >= 500
//   ip == 10.0.0.0/8 && process.comm in {"curl" "java"} && http.host matches "^api\."
//   http.status in {500..599} ; port in {80 443 8000..8099}
// Precedence: not > and > or. A filter is compiled once into a closure tree; errors carry the 1-based
// column of the bad token. Semantics: a comparison on an absent field is false; on a list field it
// matches when any element matches; `!=` means present and no element equal; `matches` is a
// case-insensitive regular expression (case-sensitive after a leading "(?-i)", as PCRE2's), tested in linear time
// (./regex.ts); a bare field tests presence/truthiness. Strings take Wireshark's escapes (stringEscape), and an integer
// with a leading 0 is octal, as in Wireshark (numberLiteral).
import { TapscopeError } from '../errors.js';
import type { Flow } from '../model/flow.js';
import { FIELDS, PACKET_FIELDS, WIRESHARK_NAMES, suggestFields, type FieldDef, type FieldValue, type FlowColumns } from './fields.js';
import { parseIpOrCidr, type IpMatcher } from './ip.js';
import { leadingFlags, linearRegex, UnsupportedRegex, type LinearRegex } from './regex.js';

/** `matches` remembers its answers for this many values of up to MATCH_CACHE_CHARS characters */
const MATCH_CACHE_ENTRIES = 4096;
const MATCH_CACHE_CHARS = 256;

export { FIELDS, type FlowColumns } from './fields.js';

export type FlowPredicate = (flow: Flow) => boolean;
/** A predicate over the flow at position `i` of `cols` (the analyzer's arrival order); i < 0 or no cols: the object. */
export type IndexedPredicate = (flow: Flow, i: number, cols: FlowColumns | null) => boolean;
type Pred = IndexedPredicate;

type TokKind = 'word' | 'string' | 'op' | 'punct' | 'end';
interface Token {
  kind: TokKind;
  text: string;
  /** 1-based column */
  pos: number;
}

const OPS = ['===', '!==', '==', '!=', '<=', '>=', '&&', '||', '~=', '<', '>', '!', '~'];
const WORD = /[A-Za-z0-9_.:/\-*+]/;

function syntax(message: string, tok: { pos: number; text: string }): TapscopeError {
  return new TapscopeError('E_FILTER_SYNTAX', message, { position: tok.pos, token: tok.text });
}

/** Wireshark's one-letter string escapes (as C's), and the quotes and backslash escaped */
const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', '"': '"', "'": "'",
};

/**
 * The escape at src[at] (a "\" inside a string): what it stands for and where the string goes on. Wireshark 4.0's: the
 * letters above, \xh or \xhh, \o to \ooo (at most \377), \uhhhh and \Uhhhhhhhh (a code point, not a surrogate). A
 * malformed one is a syntax error marking it as written. Any other "\c" (which Wireshark refuses) stays the two
 * characters: a filter takes "\." and "\d" so, for `matches` ("^api\."). (tshark also refuses, as C does, a \u
 * below U+00A0 other than $ @ `: taken here, as the character it names.)
 */
function stringEscape(src: string, at: number): { text: string; end: number } {
  const e = src[at + 1]!;
  const simple = SIMPLE_ESCAPES[e];
  if (simple !== undefined) return { text: simple, end: at + 2 };
  const fail = (end: number, why: string): TapscopeError => {
    const written = src.slice(at, end);
    return syntax(`invalid escape "${written}" at ${at + 1} (${why})`, { pos: at + 1, text: written });
  };
  const octal = /^[0-7]{1,3}/.exec(src.slice(at + 1, at + 4));
  if (octal) {
    const end = at + 1 + octal[0].length;
    const n = parseInt(octal[0], 8);
    if (n > 0xff) throw fail(end, 'an octal escape is at most \\377');
    return { text: String.fromCharCode(n), end };
  }
  if (e === 'x' || e === 'u' || e === 'U') {
    const [least, most] = e === 'x' ? [1, 2] : e === 'u' ? [4, 4] : [8, 8];
    const hex = /^[0-9A-Fa-f]*/.exec(src.slice(at + 2, at + 2 + most))![0];
    const end = at + 2 + hex.length;
    if (hex.length < least) throw fail(end, e === 'x' ? '\\x takes one or two hex digits, as in "\\x3f"' : e === 'u' ? '\\u takes four hex digits' : '\\U takes eight hex digits');
    const n = parseInt(hex, 16);
    if (n > 0x10ffff) throw fail(end, 'past U+10FFFF, the last code point');
    if (n >= 0xd800 && n <= 0xdfff) throw fail(end, 'a surrogate half, not a character; \\U takes one past U+FFFF, as in "\\U0001f600"');
    return { text: String.fromCodePoint(n), end };
  }
  return { text: `\\${e}`, end: at + 2 };
}

function lex(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    const pos = i + 1;
    if (c === '"' || c === "'") {
      let j = i + 1;
      let text = '';
      for (;;) {
        if (j >= src.length) throw syntax(`unterminated string at ${pos}`, { pos, text: src.slice(i) });
        const d = src[j]!;
        if (d === c) break;
        if (d === '\\' && j + 1 < src.length) {
          const e = stringEscape(src, j);
          text += e.text;
          j = e.end;
          continue;
        }
        text += d;
        j++;
      }
      out.push({ kind: 'string', text, pos });
      i = j + 1;
      continue;
    }
    const op = OPS.find((o) => src.startsWith(o, i));
    if (op) {
      out.push({ kind: 'op', text: op, pos });
      i += op.length;
      continue;
    }
    if ('(){},'.includes(c)) {
      out.push({ kind: 'punct', text: c, pos });
      i++;
      continue;
    }
    if (c === '=') throw syntax(`unexpected "=" at ${pos} (use "==" to compare)`, { pos, text: '=' });
    if (c === '&' || c === '|') throw syntax(`unexpected "${c}" at ${pos} (use "${c}${c}")`, { pos, text: c });
    if (WORD.test(c)) {
      let j = i;
      while (j < src.length && WORD.test(src[j]!)) j++;
      out.push({ kind: 'word', text: src.slice(i, j), pos });
      i = j;
      continue;
    }
    // why the code point: a character outside the BMP (an emoji) is two UTF-16 units, and its first alone is no
    // character to quote; the position stays in UTF-16 units, as the callers' marks count it
    const ch = String.fromCodePoint(src.codePointAt(i)!);
    throw syntax(`unexpected "${ch}" at ${pos}`, { pos, text: ch });
  }
  out.push({ kind: 'end', text: '', pos: src.length + 1 });
  return out;
}

const COMPARE_OPS = new Set(['==', '!=', '===', '!==', '<', '<=', '>', '>=', 'contains', 'matches', 'in']);
/** Wireshark's other spellings of the comparisons (4.0's: any_eq is ==, all_ne !=, all_eq ===, any_ne !== and ~=) */
const OP_WORDS: Readonly<Record<string, string>> = {
  eq: '==', any_eq: '==', ne: '!=', all_ne: '!=', all_eq: '===', any_ne: '!==', '~=': '!==', lt: '<', le: '<=', gt: '>', ge: '>=', '~': 'matches',
};

/** parentheses and negations one inside another: far beyond any filter a person writes */
const MAX_DEPTH = 200;

class Parser {
  private i = 0;
  /** the field names the filter reads */
  readonly used = new Set<string>();
  /** parentheses and negations open around the token being read */
  private depth = 0;
  constructor(private readonly toks: Token[]) {}

  private peek(): Token {
    return this.toks[this.i]!;
  }
  private next(): Token {
    return this.toks[this.i++]!;
  }
  private isWord(t: Token, w: string): boolean {
    return t.kind === 'word' && t.text === w;
  }

  parse(): Pred {
    const p = this.or();
    const t = this.peek();
    if (t.kind !== 'end') {
      if (t.kind === 'punct' && t.text === ')') throw syntax(`unexpected ")" at ${t.pos} (no matching "(")`, t);
      throw syntax(`unexpected "${t.text}" at ${t.pos} (expected "&&", "||" or end of filter)`, t);
    }
    return p;
  }

  // (a chain of "&&" or "||" is one list tested in a loop: nested closures, one per operator, overflowed the stack when
  // tested for a chain of thousands)
  private or(): Pred {
    const terms = [this.and()];
    for (;;) {
      const t = this.peek();
      if (!((t.kind === 'op' && t.text === '||') || this.isWord(t, 'or'))) break;
      this.next();
      terms.push(this.and());
    }
    if (terms.length === 1) return terms[0]!;
    return (f, i, c) => {
      for (const p of terms) if (p(f, i, c)) return true;
      return false;
    };
  }

  private and(): Pred {
    const terms = [this.not()];
    for (;;) {
      const t = this.peek();
      if (!((t.kind === 'op' && t.text === '&&') || this.isWord(t, 'and'))) break;
      this.next();
      terms.push(this.not());
    }
    if (terms.length === 1) return terms[0]!;
    return (f, i, c) => {
      for (const p of terms) if (!p(f, i, c)) return false;
      return true;
    };
  }

  private not(): Pred {
    const t = this.peek();
    if ((t.kind === 'op' && t.text === '!') || this.isWord(t, 'not')) {
      this.next();
      this.deeper(t);
      const inner = this.not();
      this.depth--;
      return (f, i, c) => !inner(f, i, c);
    }
    return this.primary();
  }

  /** One level deeper (a "(" or a "!"): a clear error past MAX_DEPTH, where the parser's recursion would overflow the stack. */
  private deeper(t: Token): void {
    if (++this.depth > MAX_DEPTH) throw syntax(`the filter nests more than ${MAX_DEPTH} levels deep at ${t.pos} (parentheses and negations)`, t);
  }

  private primary(): Pred {
    const t = this.next();
    if (t.kind === 'punct' && t.text === '(') {
      this.deeper(t);
      const inner = this.or();
      this.depth--;
      const close = this.next();
      if (!(close.kind === 'punct' && close.text === ')')) {
        throw syntax(`expected ")" at ${close.pos} to close "(" at ${t.pos}`, close);
      }
      return inner;
    }
    if (t.kind === 'end') throw syntax(`expected a field at ${t.pos}, got end of filter`, t);
    if (t.kind !== 'word') throw syntax(`expected a field at ${t.pos}, got "${t.text}"`, t);
    // (Wireshark's name for a field reads as it; its messages keep the name as typed)
    const name = WIRESHARK_NAMES[t.text] ?? t.text;
    const def = FIELDS[name];
    if (!def) {
      const instead = PACKET_FIELDS[t.text];
      if (instead) throw syntax(`"${t.text}" is a packet's field at ${t.pos}; ${instead}`, t);
      const hint = suggestFields(t.text);
      const more = hint.length > 0 ? ` (did you mean ${hint.map((h) => `"${h}"`).join(', ')}?)` : '';
      throw syntax(`unknown field "${t.text}" at ${t.pos}${more}`, t);
    }
    this.used.add(name);
    const opTok = this.peek();
    const typed = opTok.kind === 'op' || opTok.kind === 'word' ? opTok.text : '';
    const op = OP_WORDS[typed] ?? typed;
    if (!COMPARE_OPS.has(op)) return truthy(def);
    this.next();
    if (op === 'in') return this.setMembership(t.text, def, opTok);
    const v = this.next();
    if (v.kind !== 'string' && v.kind !== 'word') {
      throw syntax(`expected value after "${op}" at ${v.pos}`, v);
    }
    // why: Wireshark compares two fields written so (`http.host == tls.sni`); read as the text "tls.sni" it matched nothing,
    // without a word. A value that is a field's dotted name is refused: quoted, it is that text
    if (v.kind === 'word' && v.text.includes('.') && (FIELDS[v.text] || WIRESHARK_NAMES[v.text])) {
      throw syntax(`"${v.text}" at ${v.pos} is a field: a filter compares a field with a value, not with another field (quote it to mean the text)`, v);
    }
    return compare(t.text, def, op, v);
  }

  private setMembership(name: string, def: FieldDef, opTok: Token): Pred {
    const open = this.next();
    if (!(open.kind === 'punct' && open.text === '{')) throw syntax(`expected "{" after "in" at ${open.pos}`, open);
    const members: Pred[] = [];
    for (;;) {
      const v = this.next();
      if (v.kind === 'punct' && v.text === '}') break;
      if (v.kind === 'punct' && v.text === ',') continue;
      if (v.kind !== 'string' && v.kind !== 'word') {
        throw syntax(v.kind === 'end' ? `missing "}" for "{" at ${open.pos}` : `expected value in set at ${v.pos}, got "${v.text}"`, v);
      }
      const range = def.type === 'number' && v.kind === 'word' ? /^(-?\d+(?:\.\d+)?)\.\.(-?\d+(?:\.\d+)?)$/.exec(v.text) : null;
      if (range) {
        const lo = numberLiteral(range[1]!);
        const hi = numberLiteral(range[2]!);
        if (lo === null || hi === null) throw syntax(`expected a range of numbers at ${v.pos}, got "${v.text}" (a leading 0 makes a number octal, as in Wireshark)`, v);
        if (lo > hi) throw syntax(`empty range "${v.text}" at ${v.pos}`, v);
        members.push(anyOf(def, '==', (x) => typeof x === 'number' && x >= lo && x <= hi));
        continue;
      }
      members.push(compare(name, def, '==', v));
    }
    if (members.length === 0) throw syntax(`empty set after "in" at ${opTok.pos}`, opTok);
    return (f, i, c) => {
      for (const m of members) if (m(f, i, c)) return true;
      return false;
    };
  }
}

/**
 * A number field's value as written, or null. As in Wireshark (4.0 reads integers as strtoul with base 0), an integer
 * with a leading 0 is octal: "017" is 15, "09" no number; "0x1f" and "0b11" are hex and binary (as JavaScript's Number
 * reads them), anything with a fraction or an exponent decimal ("0.5", "01.5").
 */
function numberLiteral(text: string): number | null {
  const octal = /^([+-]?)0([0-9]+)$/.exec(text);
  if (octal) return /^[0-7]+$/.test(octal[2]!) ? (octal[1] === '-' ? -1 : 1) * parseInt(octal[2]!, 8) : null;
  const n = Number(text);
  return text.trim() === '' || !Number.isFinite(n) ? null : n;
}

function values(def: FieldDef, f: Flow): FieldValue[] {
  const v = def.get(f);
  return Array.isArray(v) ? v : [v];
}

function truthy(def: FieldDef): Pred {
  return (f) => values(def, f).some((v) => v !== null && v !== undefined && v !== false && v !== '');
}

/** Build a predicate "any present element satisfies test"; `!=` is "present and none equal". */
function anyOf(def: FieldDef, op: string, test: (v: NonNullable<FieldValue>) => boolean): Pred {
  const onObject = anyOfObject(def, op, test);
  const cols = def.columns;
  if (!cols) return onObject;
  // why: a column read is one typed-array load; the object path chases Flow -> src/dst -> port across a
  // heap of a million flows. Column values are always present, so `!=` is "none equal".
  const [a, b] = cols;
  if (b === undefined) {
    if (op === '!=') return (f, i, c) => (c !== null && i >= 0 ? !test(c[a][i]!) : onObject(f, i, c));
    return (f, i, c) => (c !== null && i >= 0 ? test(c[a][i]!) : onObject(f, i, c));
  }
  if (op === '!=') return (f, i, c) => (c !== null && i >= 0 ? !(test(c[a][i]!) || test(c[b][i]!)) : onObject(f, i, c));
  return (f, i, c) => (c !== null && i >= 0 ? test(c[a][i]!) || test(c[b][i]!) : onObject(f, i, c));
}

function anyOfObject(def: FieldDef, op: string, test: (v: NonNullable<FieldValue>) => boolean): Pred {
  if (op === '!=') {
    return (f) => {
      let present = false;
      for (const v of values(def, f)) {
        if (v === null || v === undefined) continue;
        present = true;
        if (test(v)) return false;
      }
      return present;
    };
  }
  const some = def.some;
  if (some) {
    const guarded = (v: FieldValue): boolean => v !== null && v !== undefined && test(v);
    return (f) => some(f, guarded);
  }
  return (f) => {
    const raw = def.get(f);
    if (!Array.isArray(raw)) return raw !== null && raw !== undefined && test(raw);
    for (const v of raw) if (v !== null && v !== undefined && test(v)) return true;
    return false;
  };
}

function compare(name: string, def: FieldDef, typedOp: string, v: Token): Pred {
  // why: Wireshark 4.0's comparisons over a field's several values: `===` (all_eq) holds when values are present and every
  // one equals, `!==` (any_ne) when some present value differs; each is the equality test negated under the other
  // quantifier (== is "some equals", != "present and none equals")
  const all = typedOp === '===' || typedOp === '!==';
  const op = typedOp === '===' ? '==' : typedOp === '!==' ? '!=' : typedOp;
  const quantified: typeof anyOf = all ? (d, o, test) => anyOf(d, o === '==' ? '!=' : '==', (x) => !test(x)) : anyOf;
  const bad = (what: string): TapscopeError => syntax(`${what} at ${v.pos}`, v);
  switch (def.type) {
    case 'string': {
      const s = v.text;
      const codes = def.codes;
      // why: a coded column hands the test a number; the object path a string
      const text = codes ? (x: NonNullable<FieldValue>): string => (typeof x === 'number' ? codes[x] ?? '' : String(x)) : String;
      switch (op) {
        case '==':
        case '!=':
          return codes ? quantified(def, op, (x) => text(x) === s) : quantified(def, op, (x) => x === s);
        case 'contains':
          return quantified(def, op, (x) => text(x).includes(s));
        case 'matches': {
          // why: as in Wireshark, the pattern is the string unescaped (lex): "\x2e" is a "." matching any character, "\\."
          // a dot; an escape Wireshark's strings lack reaches the regex as written, so "\." is a dot as well
          let lead: { pattern: string; caseSensitive: boolean };
          try {
            lead = leadingFlags(s);
          } catch (e) {
            if (!(e instanceof UnsupportedRegex)) throw e;
            throw bad(`the regular expression "${s}" sets ${e.message}, which a filter does not take ("(?-i)", case-sensitive, or "(?i)" go at a pattern's very start, for all of it)`);
          }
          try {
            new RegExp(lead.pattern, lead.caseSensitive ? '' : 'i');
          } catch (e) {
            throw bad(`invalid regular expression "${s}" (${(e as Error).message.replace(/^Invalid regular expression: /, '')})`);
          }
          let re: LinearRegex;
          try {
            re = linearRegex(lead.pattern, { caseSensitive: lead.caseSensitive });
          } catch (e) {
            if (!(e instanceof UnsupportedRegex)) throw e;
            throw bad(`the regular expression "${s}" uses ${e.message}, which a filter does not take (its patterns are tested in time linear in the text, as RE2's)`);
          }
          // (many flows share a value: a host, a method; short ones are answered once)
          const answers = new Map<string, boolean>();
          return quantified(def, op, (x) => {
            const t = text(x);
            if (t.length > MATCH_CACHE_CHARS) return re.test(t);
            let r = answers.get(t);
            if (r === undefined) {
              if (answers.size >= MATCH_CACHE_ENTRIES) answers.clear();
              answers.set(t, (r = re.test(t)));
            }
            return r;
          });
        }
        default:
          throw bad(`operator "${op}" does not apply to text field "${name}"; use ==, !=, contains, matches or in`);
      }
    }
    case 'number': {
      if (op === 'contains' || op === 'matches') throw bad(`operator "${op}" does not apply to number field "${name}"`);
      const n = numberLiteral(v.text);
      if (n === null) throw bad(`expected a number for "${name}", got "${v.text}"${/^[+-]?0\d+$/.test(v.text) ? ' (a leading 0 makes it octal, as in Wireshark)' : ''}`);
      const tests: Record<string, (x: number) => boolean> = {
        '==': (x) => x === n, '!=': (x) => x === n, '<': (x) => x < n, '<=': (x) => x <= n, '>': (x) => x > n, '>=': (x) => x >= n,
      };
      const t = tests[op]!;
      return quantified(def, op, (x) => typeof x === 'number' && t(x));
    }
    case 'ip': {
      if (op !== '==' && op !== '!=') throw bad(`operator "${op}" does not apply to address field "${name}"; use ==, != or in`);
      // (Wireshark's names are of one family each, as Wireshark's fields are: ipv6.addr == 10.0.0.1 matched every IPv4 flow)
      const family = name === 'ipv6.addr' ? 6 : name === 'ip.addr' ? 4 : 0;
      if (family !== 0 && (v.text.includes(':') ? 6 : 4) !== family) {
        throw bad(`"${name}" takes an IPv${family} address, as in Wireshark ("ip" takes either), got "${v.text}"`);
      }
      const m: IpMatcher | null = parseIpOrCidr(v.text);
      if (!m) throw bad(`expected an IP address or CIDR for "${name}", got "${v.text}"`);
      return quantified(def, op, (x) => m(String(x)));
    }
    case 'bool': {
      if (op !== '==' && op !== '!=') throw bad(`operator "${op}" does not apply to yes/no field "${name}"; use == true or == false`);
      const t = v.text.toLowerCase();
      if (!['true', 'false', '1', '0', 'yes', 'no'].includes(t)) throw bad(`expected true or false for "${name}", got "${v.text}"`);
      const want = t === 'true' || t === '1' || t === 'yes';
      return quantified(def, op, (x) => x === want);
    }
  }
}

/** Compile a filter once; the returned predicate is cheap. Empty filter matches everything. */
export function compileFilter(expr: string): FlowPredicate {
  if (expr.trim() === '') return () => true;
  const p = new Parser(lex(expr)).parse();
  return (f) => p(f, -1, null);
}

/** A compiled filter and what it needs from a flow. */
export interface CompiledFilter {
  predicate: FlowPredicate;
  /** the same test, reading the analyzer's columns at the flow's arrival position where it can */
  indexed: IndexedPredicate;
  /** the fields it reads */
  fields: string[];
  /** true when a field it reads is current only on resolved flows (process, pod, TLS verdicts); when false
   *  the predicate may run over flows the analyzer has not brought up to date */
  needsResolve: boolean;
  /** true when every field it reads never changes once a flow exists: a flow's match never changes */
  stable: boolean;
}

const compiledCache = new Map<string, CompiledFilter>();
const COMPILED_CACHE_SIZE = 64;

/** compileFilter plus the fields it reads; compiled filters are cached by their text (paging re-sends it). */
export function compileFilterPlan(expr: string): CompiledFilter {
  const key = expr.trim();
  const hit = compiledCache.get(key);
  if (hit) return hit;
  let plan: CompiledFilter;
  if (key === '') plan = { predicate: () => true, indexed: () => true, fields: [], needsResolve: false, stable: true };
  else {
    const parser = new Parser(lex(expr));
    const indexed = parser.parse();
    const fields = [...parser.used];
    plan = { predicate: (f) => indexed(f, -1, null), indexed, fields, needsResolve: fields.some((f) => FIELDS[f]?.resolved === true), stable: fields.every((f) => FIELDS[f]?.stable === true) };
  }
  compiledCache.set(key, plan);
  // why: bounded; the oldest filter text goes first
  if (compiledCache.size > COMPILED_CACHE_SIZE) compiledCache.delete(compiledCache.keys().next().value as string);
  return plan;
}

/** Validate without throwing; `position` is the 1-based column of the offending token. */
export function checkFilter(expr: string): { ok: true } | { ok: false; message: string; position: number } {
  try {
    compileFilter(expr);
    return { ok: true };
  } catch (e) {
    if (e instanceof TapscopeError && e.code === 'E_FILTER_SYNTAX') {
      return { ok: false, message: e.message, position: Number(e.details?.position ?? 0) };
    }
    throw e;
  }
}

/** The filter language in a few lines and its fields, for `tapscope help filter`. */
export function filterHelp(): string {
  const width = Math.max(...Object.keys(FIELDS).map((k) => k.length));
  const fields = Object.entries(FIELDS).map(([k, d]) => `  ${k.padEnd(width)}  ${d.type.padEnd(6)}  ${d.help}`);
  return [
    'Filter: comparisons joined by && (and), || (or), ! (not), with parentheses; not > and > or.',
    '  == != < <= > >=  contains  matches (regular expression, case-insensitive, linear time: no backreferences or lookarounds)',
    '  matches "(?-i)^GET" is case-sensitive ("(?-i)" or "(?i)" at the start only)',
    '  strings take Wireshark\'s escapes: \\n \\t \\r \\a \\b \\f \\v \\\\ \\" \\xhh \\ooo \\uhhhh \\Uhhhhhhhh; matches reads the',
    '    string unescaped ("\\x2e" is any character, "\\\\." a dot, "\\\\b" a word boundary); other escapes stay for it ("\\.", "\\d")',
    '  numbers: 017 is octal (15), as in Wireshark; 0x1f hex',
    '  in {a b c}  in {500..599}',
    '  (as Wireshark spells them too: eq ne lt le gt ge, ~ for matches; and, or, not)',
    '  a bare field tests presence: tls, http, !tls.client.plaintext',
    '  addresses take CIDR: ip == 10.0.0.0/8; list fields (ip, port, tls.alpn, http.*) match == if any element does,',
    '    != if none does; === (all_eq) if all do, !== (any_ne, ~=) if any differs, as in Wireshark 4.0',
    ...wrap(`Wireshark's names work too: ${Object.entries(WIRESHARK_NAMES).map(([w, f]) => `${w} (${f})`).join(', ')}`, 110, '  ', '    '),
    'Examples:',
    '  tls.client.library == "java-jsse" && dst.port == 443',
    '  tls && !tls.client.plaintext',
    '  http.status >= 500 || http.host matches "^api\\."',
    '  process.comm in {"curl" "java"}',
    'Fields:',
    ...fields,
  ].join('\n');
}

/** `text` in lines of at most `width` characters, broken at spaces; the first line after `first`, the others after `rest`. */
function wrap(text: string, width: number, first: string, rest: string): string[] {
  const lines: string[] = [];
  let line = first;
  for (const word of text.split(' ')) {
    const lead = lines.length === 0 ? first : rest;
    if (line.length > lead.length && line.length + 1 + word.length > width) {
      lines.push(line);
      line = rest + word;
    } else {
      line += (line.length > lead.length ? ' ' : '') + word;
    }
  }
  lines.push(line);
  return lines;
}
