// Filter strings, `matches` flags and integers as Wireshark (tshark 4.0.17) reads them: the string escapes (\n, \xhh,
// \ooo, \uhhhh, ...), malformed ones as a syntax error marking the escape, Tapscope's own "\." kept for the regex, what a
// decoded escape means inside `matches`, a leading "(?-i)" or "(?i)", and an integer with a leading 0 read as octal.
// (tshark's answers quoted here were checked against test/fixtures/pcapng/loopback-mix.pcapng.)
import { describe, expect, it } from 'vitest';
import { checkFilter, compileFilter } from '../../src/filter/index.js';
import { filterMark } from '../../src/cli/flows-output.js';
import { isTapscopeError } from '../../src/errors.js';
import type { Flow } from '../../src/model/flow.js';

function flow(id: string, over: Partial<Flow> = {}): Flow {
  return {
    id, transport: 'tcp', src: { ip: '10.0.0.1', port: 40000 }, dst: { ip: '10.0.0.2', port: 443 },
    firstSeen: 1000, lastSeen: 3000, packets: 10, bytes: 2000, process: null, node: 'node-1', pod: null,
    app: 'unknown', tls: null, http: [], ...over,
  };
}

/** A flow whose one HTTP exchange has this path (and host, method). */
function exchange(id: string, path: string, host = 'api.internal', method = 'GET'): Flow {
  return flow(id, { app: 'http', http: [{ method, host, path, status: 200 }] });
}

/** The ids of `flows` the filter keeps. */
function kept(expr: string, flows: Flow[]): string[] {
  const f = compileFilter(expr);
  return flows.filter(f).map((x) => x.id);
}

/** Whether `http.path == <literal>` (the literal as written in the filter) keeps a flow whose path is `path`. */
function pathEquals(literal: string, path: string): boolean {
  return compileFilter(`http.path == ${literal}`)(exchange('x', path));
}

/** The E_FILTER_SYNTAX a filter fails with: its message, position, token, and the CLI's mark under it. */
function syntaxError(expr: string): { message: string; position: number; token: string; mark: string } {
  let err: unknown;
  try {
    compileFilter(expr);
  } catch (e) {
    err = e;
  }
  expect(isTapscopeError(err, 'E_FILTER_SYNTAX'), expr).toBe(true);
  const e = err as Error & { details: { position: number; token: string } };
  expect(checkFilter(expr)).toEqual({ ok: false, message: e.message, position: e.details.position });
  return { message: e.message, position: e.details.position, token: e.details.token, mark: filterMark({ ...e.details, filter: expr }) };
}

describe('string escapes, as Wireshark decodes them', () => {
  it('the C letters: \\a \\b \\f \\n \\r \\t \\v', () => {
    const cases: [string, string][] = [
      ['"a\\ab"', 'a\x07b'], ['"a\\bb"', 'a\x08b'], ['"a\\fb"', 'a\x0cb'], ['"a\\nb"', 'a\nb'], ['"a\\rb"', 'a\rb'],
      ['"a\\tb"', 'a\tb'], ['"a\\vb"', 'a\x0bb'], ['"\\r\\n"', '\r\n'],
    ];
    for (const [literal, path] of cases) expect([literal, pathEquals(literal, path)]).toEqual([literal, true]);
    // (the escape is the character, not a backslash and a letter)
    expect(pathEquals('"a\\ab"', 'a\\ab')).toBe(false);
  });

  it('either quote and the backslash, in either kind of string', () => {
    const cases: [string, string][] = [
      ['"say \\"hi\\""', 'say "hi"'], ['"it\\\'s"', "it's"], ["'it\\'s'", "it's"], ["'say \\\"hi\\\"'", 'say "hi"'],
      ['"C:\\\\dir"', 'C:\\dir'], ['"\\\\x3f"', '\\x3f'],
    ];
    for (const [literal, path] of cases) expect([literal, pathEquals(literal, path)]).toEqual([literal, true]);
  });

  it('\\xh and \\xhh, either case: one or two hex digits, as tshark takes "\\x2"', () => {
    const cases: [string, string][] = [
      ['"\\x3f"', '?'], ['"\\x3F"', '?'], ['"/login\\x3ftoken=1"', '/login?token=1'], ['"\\x2fn"', '/n'],
      ['"\\x2g"', '\x02g'], ['"\\x41\\x42"', 'AB'], ['"\\x00"', '\0'],
    ];
    for (const [literal, path] of cases) expect([literal, pathEquals(literal, path)]).toEqual([literal, true]);
    // (two digits at most: the third is the next character)
    expect(pathEquals('"\\x2f6"', '/6')).toBe(true);
  });

  it('octal: one to three digits, up to \\377', () => {
    const cases: [string, string][] = [
      ['"\\077"', '?'], ['"\\77"', '?'], ['"\\7"', '\x07'], ['"\\0"', '\0'], ['"\\1234"', 'S4'], ['"\\0571"', '/1'], ['"\\377"', '\xff'],
    ];
    for (const [literal, path] of cases) expect([literal, pathEquals(literal, path)]).toEqual([literal, true]);
  });

  it('\\uhhhh and \\Uhhhhhhhh: a code point, outside the BMP too', () => {
    const cases: [string, string][] = [
      ['"caf\\u00e9"', 'caf\u00e9'], ['"caf\\u00E9"', 'caf\u00e9'], ['"\\u20ac1"', '\u20ac1'], ['"\\U0001F600"', '\u{1f600}'],
      ['"\\U0010ffff"', '\u{10ffff}'], ['"\\u0024"', '$'],
    ];
    for (const [literal, path] of cases) expect([literal, pathEquals(literal, path)]).toEqual([literal, true]);
  });

  it('"\\x3ftoken" in contains finds "?token" (tshark: 1 match; it was the text "\\x3ftoken")', () => {
    const flows = [exchange('token', '/login?token=abc'), exchange('plain', '/login/token')];
    expect(kept('http.path contains "\\x3ftoken"', flows)).toEqual(['token']);
    expect(kept('http.path contains "\\077token"', flows)).toEqual(['token']);
    expect(kept('http.path contains "\\u00e9"', [...flows, exchange('accent', '/caf\u00e9')])).toEqual(['accent']);
  });
});

describe('malformed escapes: E_FILTER_SYNTAX marking the escape as written', () => {
  const cases: [string, string, RegExp][] = [
    ['http.path contains "\\x"', '\\x', /^invalid escape "\\x" at 21 \(\\x takes one or two hex digits/],
    ['http.path contains "ab\\xg"', '\\x', /^invalid escape "\\x" at 23 /],
    ['http.path contains "ab\\u12"', '\\u12', /^invalid escape "\\u12" at 23 \(\\u takes four hex digits\)$/],
    ['http.path contains "\\u12g4"', '\\u12', /^invalid escape "\\u12" at 21 /],
    ['http.path contains "\\U0001F60"', '\\U0001F60', /^invalid escape "\\U0001F60" at 21 \(\\U takes eight hex digits\)$/],
    ['http.path contains "\\U00110000"', '\\U00110000', /^invalid escape "\\U00110000" at 21 \(past U\+10FFFF/],
    ['http.path contains "x\\ud800y"', '\\ud800', /^invalid escape "\\ud800" at 22 \(a surrogate half/],
    ['http.path contains "\\uDFFF"', '\\uDFFF', /^invalid escape "\\uDFFF" at 21 /],
    ['http.path contains "\\400"', '\\400', /^invalid escape "\\400" at 21 \(an octal escape is at most \\377\)$/],
    ["tls.sni == 'a\\x'", '\\x', /^invalid escape "\\x" at 14 /],
    ['http.host matches "^api\\x"', '\\x', /^invalid escape "\\x" at 24 /],
  ];
  for (const [expr, token, message] of cases) {
    it(expr, () => {
      const e = syntaxError(expr);
      expect(e.message).toMatch(message);
      expect(e.token).toBe(token);
      // (the position is the backslash's column: the CLI marks the escape, not the whole string)
      expect(expr.slice(e.position - 1, e.position - 1 + token.length)).toBe(token);
      const at = expr.indexOf(token);
      expect(e.mark).toBe(`  ${expr}\n  ${' '.repeat(at)}^${'~'.repeat(token.length - 1)}\n`);
    });
  }
});

describe('escapes inside matches: the string is unescaped first, the regex reads the rest (as Wireshark with PCRE2)', () => {
  const flows = [exchange('dot', '/', 'api.internal'), exchange('x', '/', 'apixinternal')];

  it('an escape Wireshark lacks stays for the regex ("^api\\." a dot), a decoded one is a character of the pattern ("\\x2e" any)', () => {
    expect(kept('http.host matches "^api\\.internal$"', flows)).toEqual(['dot']);
    expect(kept('http.host matches "^api\\\\.internal$"', flows)).toEqual(['dot']);
    expect(kept('http.host matches "^api\\x2einternal$"', flows)).toEqual(['dot', 'x']);
    expect(kept('http.host matches "^api\\056internal$"', flows)).toEqual(['dot', 'x']);
    // ("\x5c" is a backslash: the regex reads "\." after it)
    expect(kept('http.host matches "^api\\x5c.internal$"', flows)).toEqual(['dot']);
    expect(kept('http.host matches "^\\w+\\.\\w+$"', flows)).toEqual(['dot']);
  });

  it('"\\x3f" in matches is a "?" quantifier, as in tshark; "\\\\?" and "\\?" a question mark', () => {
    const paths = [exchange('query', '/login?token=1'), exchange('n', '/logintoken'), exchange('no-n', '/logitoken')];
    expect(kept('http.path matches "^/login\\x3ftoken"', paths)).toEqual(['n', 'no-n']);
    expect(kept('http.path matches "^/login\\\\?token"', paths)).toEqual(['query']);
    expect(kept('http.path matches "^/login\\?token"', paths)).toEqual(['query']);
    // (tshark: "quantifier does not follow a repeatable item")
    expect(syntaxError('http.path matches "\\x3ftoken"')).toMatchObject({ position: 19, message: expect.stringMatching(/^invalid regular expression "\?token" \(.*Nothing to repeat\) at 19$/) });
  });

  it('"\\b" is a backspace as in Wireshark; "\\\\b" the regex\'s word boundary', () => {
    const words = [exchange('word', '/a/token'), exchange('inside', '/atoken'), exchange('bs', '/a\btoken')];
    // (a backspace is no word character: a boundary is before "token" there too)
    expect(kept('http.path matches "\\\\btoken"', words)).toEqual(['word', 'bs']);
    expect(kept('http.path matches "\\btoken"', words)).toEqual(['bs']);
  });

  it('octal and \\u escapes are pattern characters too', () => {
    expect(kept('http.host matches "^\\u0061pi\\056"', flows)).toEqual(['dot', 'x']);
    expect(kept('http.host matches "^[\\x61-\\x61]pi\\x2a"', flows)).toEqual(['dot', 'x']);
  });
});

describe('matches: a leading (?-i) or (?i), as PCRE2 takes them', () => {
  const flows = [exchange('get', '/Index', 'API.internal', 'GET'), exchange('lower', '/index', 'api.internal', 'get')];

  it('"(?-i)" makes the whole pattern case-sensitive, classes included', () => {
    expect(kept('http.method matches "(?-i)^GET$"', flows)).toEqual(['get']);
    expect(kept('http.method matches "(?-i)^get$"', flows)).toEqual(['lower']);
    expect(kept('http.path matches "(?-i)^/[A-Z]"', flows)).toEqual(['get']);
    expect(kept('http.path matches "(?-i)^/[^A-Z]"', flows)).toEqual(['lower']);
    expect(kept('http.host matches "(?-i)^api\\."', flows)).toEqual(['lower']);
    expect(kept('http.host matches "(?-i)^(API|x)\\.internal$"', flows)).toEqual(['get']);
    // (without it, as before: case-insensitive)
    expect(kept('http.method matches "^get$"', flows)).toEqual(['get', 'lower']);
  });

  it('"(?i)" is taken and changes nothing', () => {
    expect(kept('http.method matches "(?i)^get$"', flows)).toEqual(['get', 'lower']);
    expect(kept('http.path ~ "(?i)^/INDEX$"', flows)).toEqual(['get', 'lower']);
  });

  it('flags past the start, or other flags, are refused naming them; "(?-i)" in a class is three characters', () => {
    for (const [expr, group] of [
      ['http.method matches "^(?-i)get"', '(?-i)'], ['http.method matches "g(?i)et"', '(?i)'], ['http.method matches "(?-i)(?i)get"', '(?i)'],
      ['http.method matches "(?s)get"', '(?s)'], ['http.method matches "(?i:get)"', '(?i:'], ['http.method matches "a|(?-i:b)"', '(?-i:'],
    ] as const) {
      const e = syntaxError(expr);
      expect([expr, e.position]).toEqual([expr, 21]);
      expect(e.message).toContain(`sets inline flags ("${group}")`);
      expect(e.message).toContain('which a filter does not take ("(?-i)", case-sensitive, or "(?i)" go at a pattern\'s very start');
    }
    expect(kept('http.path matches "^[(?-i)]$"', [exchange('q', '?'), exchange('other', '%')])).toEqual(['q']);
  });
});

describe('integers with a leading 0 are octal, as tshark reads them ("frame.number == 017" is frame 15)', () => {
  const flows = [flow('p15', { dst: { ip: '10.0.0.2', port: 15 } }), flow('p17', { dst: { ip: '10.0.0.2', port: 17 } }), flow('p0', { dst: { ip: '10.0.0.2', port: 0 } })];

  it('== < in, and ranges', () => {
    expect(kept('dst.port == 017', flows)).toEqual(['p15']);
    expect(kept('port == 017', flows)).toEqual(['p15']);
    expect(kept('dst.port != 017', flows)).toEqual(['p17', 'p0']);
    expect(kept('dst.port > 016', flows)).toEqual(['p15', 'p17']);
    expect(kept('dst.port in {017 021}', flows)).toEqual(['p15', 'p17']);
    expect(kept('dst.port in {015..017}', flows)).toEqual(['p15']);
    expect(kept('dst.port == 00', flows)).toEqual(['p0']);
    // (decimal, hex and fractions as before)
    expect(kept('dst.port == 17', flows)).toEqual(['p17']);
    expect(kept('dst.port == 0x0f', flows)).toEqual(['p15']);
    expect(kept('dst.port == 0', flows)).toEqual(['p0']);
    expect(kept('dst.port < 015.5', flows)).toEqual(['p15', 'p0']);
    // (a text field's value stays text)
    const named = [flow('digits', { process: { pid: 1, comm: '017', exe: null } }), flow('fifteen', { process: { pid: 1, comm: '15', exe: null } })];
    expect(kept('process.comm == 017', named)).toEqual(['digits']);
  });

  it('a leading 0 with an 8 or 9 is no number (tshark: "09" is not a valid number)', () => {
    expect(syntaxError('dst.port == 09')).toMatchObject({
      position: 13, token: '09', message: 'expected a number for "dst.port", got "09" (a leading 0 makes it octal, as in Wireshark) at 13',
    });
    expect(syntaxError('dst.port in {1 010..019}')).toMatchObject({ position: 16, token: '010..019', message: expect.stringContaining('a leading 0 makes a number octal') });
  });

});
