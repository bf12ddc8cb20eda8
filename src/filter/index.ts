// The flow filter language (Wireshark-display-filter-like) over Flow fields, e.g.
//   tls.client.library == "java-jsse" && dst.port == 443
//   !tls.client.plaintext || http.status >= 500
//   ip == 10.0.0.0/8 && process.comm in {"curl" "java"} && http.host matches "^api\."
//   http.status in {500..599} ; port in {80 443 8000..8099}
// Precedence: not > and > or. A filter is compiled once into a closure tree; errors carry the 1-based
// column of the bad token. Semantics: a comparison on an absent field is false; on a list field it
// matches when any element matches; `!=` means present and no element equal; `matches` is a
// case-insensitive regular expression, tested in linear time (./regex.ts); a bare field tests presence/truthiness.
import { TapscopeError } from '../errors.js';
import type { Flow } from '../model/flow.js';
import { FIELDS, PACKET_FIELDS, WIRESHARK_NAMES, suggestFields, type FieldDef, type FieldValue, type FlowColumns } from './fields.js';
import { parseIpOrCidr, type IpMatcher } from './ip.js';
import { linearRegex, UnsupportedRegex, type LinearRegex } from './regex.js';

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

const OPS = ['==', '!=', '<=', '>=', '&&', '||', '<', '>', '!', '~'];
const WORD = /[A-Za-z0-9_.:/\-*+]/;

function syntax(message: string, tok: { pos: number; text: string }): TapscopeError {
  return new TapscopeError('E_FILTER_SYNTAX', message, { position: tok.pos, token: tok.text });
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
          const e = src[j + 1]!;
          text += e === 'n' ? '\n' : e === 't' ? '\t' : e === c || e === '\\' ? e : `\\${e}`;
          j += 2;
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
    throw syntax(`unexpected "${c}" at ${pos}`, { pos, text: c });
  }
  out.push({ kind: 'end', text: '', pos: src.length + 1 });
  return out;
}

const COMPARE_OPS = new Set(['==', '!=', '<', '<=', '>', '>=', 'contains', 'matches', 'in']);
/** Wireshark's other spellings of the comparisons */
const OP_WORDS: Readonly<Record<string, string>> = { eq: '==', ne: '!=', lt: '<', le: '<=', gt: '>', ge: '>=', '~': 'matches' };

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
        const lo = Number(range[1]);
        const hi = Number(range[2]);
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

function compare(name: string, def: FieldDef, op: string, v: Token): Pred {
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
          return codes ? anyOf(def, op, (x) => text(x) === s) : anyOf(def, op, (x) => x === s);
        case 'contains':
          return anyOf(def, op, (x) => text(x).includes(s));
        case 'matches': {
          try {
            new RegExp(s, 'i');
          } catch (e) {
            throw bad(`invalid regular expression "${s}" (${(e as Error).message.replace(/^Invalid regular expression: /, '')})`);
          }
          let re: LinearRegex;
          try {
            re = linearRegex(s);
          } catch (e) {
            if (!(e instanceof UnsupportedRegex)) throw e;
            throw bad(`the regular expression "${s}" uses ${e.message}, which a filter does not take (its patterns are tested in time linear in the text, as RE2's)`);
          }
          // (many flows share a value: a host, a method; short ones are answered once)
          const answers = new Map<string, boolean>();
          return anyOf(def, op, (x) => {
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
      const n = Number(v.text);
      if (v.text.trim() === '' || !Number.isFinite(n)) throw bad(`expected a number for "${name}", got "${v.text}"`);
      const tests: Record<string, (x: number) => boolean> = {
        '==': (x) => x === n, '!=': (x) => x === n, '<': (x) => x < n, '<=': (x) => x <= n, '>': (x) => x > n, '>=': (x) => x >= n,
      };
      const t = tests[op]!;
      return anyOf(def, op, (x) => typeof x === 'number' && t(x));
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
      return anyOf(def, op, (x) => m(String(x)));
    }
    case 'bool': {
      if (op !== '==' && op !== '!=') throw bad(`operator "${op}" does not apply to yes/no field "${name}"; use == true or == false`);
      const t = v.text.toLowerCase();
      if (!['true', 'false', '1', '0', 'yes', 'no'].includes(t)) throw bad(`expected true or false for "${name}", got "${v.text}"`);
      const want = t === 'true' || t === '1' || t === 'yes';
      return anyOf(def, op, (x) => x === want);
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
    '  in {a b c}  in {500..599}',
    '  (as Wireshark spells them too: eq ne lt le gt ge, ~ for matches; and, or, not)',
    '  a bare field tests presence: tls, http, !tls.client.plaintext',
    '  addresses take CIDR: ip == 10.0.0.0/8; list fields (ip, port, tls.alpn, http.*) match if any element does',
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
