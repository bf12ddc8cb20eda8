// Filter language: every operator and field kind against sample flows, precedence, list (any-match)
// semantics, IP/CIDR, errors that point at the bad token, and a 1M-flow timing printed beside a
// hand-written predicate (not gated).
import { describe, it, expect } from 'vitest';
import { compileFilter, compileFilterPlan, checkFilter, filterHelp, FIELDS } from '../../src/filter/index.js';
import { isTapscopeError } from '../../src/errors.js';
import { filterMark } from '../../src/cli/flows-output.js';
import type { Flow, TlsSideVerdict } from '../../src/model/flow.js';

function side(library: TlsSideVerdict['library'], plaintext: boolean, via: TlsSideVerdict['via'] = 'process'): TlsSideVerdict {
  return { library, via, confidence: via === 'hook' ? 1 : 0.9, plaintext, reason: plaintext ? null : `${library} has no hook`, version: null };
}

function flow(id: string, over: Partial<Flow> = {}): Flow {
  return {
    id, transport: 'tcp', src: { ip: '10.0.0.1', port: 40000 }, dst: { ip: '10.0.0.2', port: 443 },
    firstSeen: 1000, lastSeen: 3000, packets: 10, bytes: 2000, process: null, node: 'node-1', pod: null,
    app: 'unknown', tls: null, http: [], ...over,
  };
}

const flows: Flow[] = [
  flow('java', {
    app: 'tls', process: { pid: 100, comm: 'java', exe: '/usr/bin/java' }, pod: { namespace: 'shop', name: 'cart-1' },
    tls: { sni: 'api.example.com', alpn: ['h2', 'http/1.1'], version: 'TLS 1.3', cipher: 'TLS_AES_128_GCM_SHA256', ja3: '771,4865', ja3Hash: 'abc123',
      ja4: 't13d3113h2_1d947a95fc68_7e1102d2036b', client: side('java-jsse', false), server: side('openssl', true, 'hook') },
  }),
  flow('curl', {
    app: 'http', src: { ip: '10.1.2.3', port: 50000 }, dst: { ip: '192.168.1.10', port: 80 }, process: { pid: 200, comm: 'curl', exe: '/usr/bin/curl' },
    http: [{ method: 'GET', host: 'api.internal', path: '/health', status: 200 }, { method: 'POST', host: 'api.internal', path: '/order', status: 503 }],
  }),
  flow('dns', {
    transport: 'udp', app: 'dns', src: { ip: 'fd00::5', port: 5353 }, dst: { ip: '::ffff:10.9.9.9', port: 53 }, bytes: 120, packets: 2,
    dns: [{ id: 1, query: 'api.example.com', type: 'A', rcode: 'NOERROR', answers: ['A 10.0.0.2'] }, { id: 2, query: 'nope.test', type: 'AAAA', rcode: 'NXDOMAIN', answers: [] }],
  }),
  flow('gnutls', {
    app: 'tls', process: { pid: 300, comm: 'wget', exe: null }, dst: { ip: '10.0.0.2', port: 8443 },
    tls: { sni: null, alpn: [], version: 'TLS 1.2', cipher: null, ja3: null, ja3Hash: null, ja4: null, client: side('gnutls', true, 'hook'), server: null },
  }),
];

function ids(expr: string): string[] {
  const f = compileFilter(expr);
  return flows.filter(f).map((x) => x.id);
}

describe('filter matching', () => {
  const cases: [string, string[]][] = [
    ['tls.client.library == "java-jsse" && dst.port == 443', ['java']],
    ['tls.client.library == java-jsse', ['java']],
    ['!tls.client.plaintext', ['java', 'curl', 'dns']],
    ['tls && !tls.client.plaintext', ['java']],
    ['http.status >= 500', ['curl']],
    ['http.status == 200', ['curl']],
    ['http.method == "DELETE"', []],
    ['ip == 10.0.0.1', ['java', 'gnutls']],
    ['ip == 10.0.0.0/8', ['java', 'curl', 'dns', 'gnutls']],
    ['ip == 10.1.0.0/16', ['curl']],
    ['ip == 192.168.0.0/16 || ip == fd00::/8', ['curl', 'dns']],
    ['dst.ip == 10.9.9.9', ['dns']],
    ['dst.ip == ::ffff:10.9.9.0/120', ['dns']],
    ['ip == fd00::5', ['dns']],
    ['ip == fd00::/7 && !(ip == fd00::6)', ['dns']],
    ['ip in {192.168.1.10 fd00::5}', ['curl', 'dns']],
    ['ip == 0.0.0.0/0', ['java', 'curl', 'dns', 'gnutls']],
    ['src.ip != 10.0.0.1', ['curl', 'dns']],
    ['port == 443', ['java']],
    ['port in {80 53}', ['curl', 'dns']],
    ['http.status in {500..599}', ['curl']],
    ['dst.port in {1..100 8000..8999}', ['curl', 'dns', 'gnutls']],
    ['tls.sni contains "example"', ['java']],
    ['http.host matches "^api\\."', ['curl']],
    ['http.host matches "^API\\."', ['curl']],
    ['process.comm in {"curl" "java"}', ['java', 'curl']],
    ['process.comm in {"curl", java}', ['java', 'curl']],
    ['tls.alpn == "h2"', ['java']],
    ['tls.alpn != "h2"', []],
    ['tls.alpn', ['java']],
    ['tls.alpn.negotiated == h2', []],
    ['dns', ['dns']],
    ['dns.rcode == NXDOMAIN', ['dns']],
    ['dns.query contains "example" && dns.type == A', ['dns']],
    ['dns.answer matches "^A 10\\."', ['dns']],
    ['http', ['curl']],
    ['tls.server.via == hook and tls.server.plaintext', ['java']],
    ['tls.library == gnutls', ['gnutls']],
    ['tls.ja3 == abc123', ['java']],
    ['tls.ja4 contains "_1d947a95fc68_"', ['java']],
    ['transport == udp', ['dns']],
    ['bytes > 1000 and packets >= 10', ['java', 'curl', 'gnutls']],
    ['pod.namespace == shop && pod.name == "cart-1"', ['java']],
    ['process.pid < 250', ['java', 'curl']],
    ['process.exe', ['java', 'curl']],
    ['tls.client.confidence >= 0.95', ['gnutls']],
    ['tls.client.reason contains "no hook"', ['java']],
    ['duration == 2000', ['java', 'curl', 'dns', 'gnutls']],
    ['', ['java', 'curl', 'dns', 'gnutls']],
    // a transport's own ports, and bare transports, as Wireshark reads them
    ['tcp.port == 443', ['java']],
    ['tcp.port == 53', []],
    ['udp.port == 53', ['dns']],
    ['udp.port in {80 443}', []],
    ['tcp.port in {80 8443}', ['curl', 'gnutls']],
    ['tcp', ['java', 'curl', 'gnutls']],
    ['udp', ['dns']],
    ['!udp && http', ['curl']],
    // Wireshark's names for the flow's fields
    ['ip.addr == 10.0.0.1', ['java', 'gnutls']],
    ['ipv6.addr == fd00::/8', ['dns']],
    ['http.request.method == "POST"', ['curl']],
    ['http.request.uri == "/health"', ['curl']],
    ['http.response.code >= 500', ['curl']],
    ['tls.handshake.extensions_server_name == "api.example.com"', ['java']],
    ['tls.handshake.ja4 contains "_1d947a95fc68_"', ['java']],
    ['dns.qry.name == "nope.test"', ['dns']],
    // Wireshark's spellings of the comparisons
    ['port eq 443', ['java']],
    ['dst.port ne 443 and transport eq tcp', ['curl', 'gnutls']],
    ['http.status gt 500', ['curl']],
    ['http.status ge 503 && http.status le 503', ['curl']],
    ['dst.port lt 443', ['curl', 'dns']],
    ['tls.sni ~ "^api\\."', ['java']],
    ['ip.addr eq 10.0.0.0/8 and not tls', ['curl', 'dns']],
    // Wireshark 4.0's quantified comparisons over several values (curl's statuses are 200 and 503): != is "none equals",
    // ~= (any_ne, !==) "some present value differs", === (all_eq) "values present and all equal"; a flow without the field
    // matches none of them
    ['http.status != 200', []],
    ['http.status ~= 200', ['curl']],
    ['http.status any_ne 200', ['curl']],
    ['http.status !== 503', ['curl']],
    ['http.status === 200', []],
    ['http.status all_eq 200', []],
    ['http.host === "api.internal"', ['curl']],
    ['http.host all_ne "api.internal"', []],
    ['http.host any_eq "api.internal" && dst.port === 80', ['curl']],
    ['ip ~= 10.0.0.1', ['java', 'curl', 'dns', 'gnutls']],
    ['tls.client.plaintext === true', ['gnutls']],
  ];
  for (const [expr, want] of cases) it(`${expr || '(empty)'} -> ${want.join(',') || 'none'}`, () => expect(ids(expr)).toEqual(want));
});

describe('precedence: not > and > or', () => {
  it('or binds loosest', () => {
    expect(ids('app == dns || app == tls && process.comm == java')).toEqual(['java', 'dns']);
    expect(ids('(app == dns || app == tls) && process.comm == java')).toEqual(['java']);
  });
  it('not binds tightest', () => {
    expect(ids('!app == tls && transport == tcp')).toEqual(['curl']);
    expect(ids('not (app == tls && transport == tcp)')).toEqual(['curl', 'dns']);
    expect(ids('!!tls')).toEqual(['java', 'gnutls']);
  });
});

describe('errors point at the bad token', () => {
  const bad: [string, RegExp, number][] = [
    ['tls.clent.library == "openssl"', /^unknown field "tls.clent.library" at 1 \(did you mean "tls.client.library"/, 1],
    ['dst.port == 443 && tls.client.library == ', /^expected value after "==" at 42$/, 42],
    ['tls.sni == "abc', /^unterminated string at 12$/, 12],
    ['(tls && http', /^expected "\)" at 13 to close "\(" at 1$/, 13],
    ['tls && http)', /^unexpected "\)" at 12/, 12],
    ['port < "abc"', /^expected a number for "port", got "abc" at 8$/, 8],
    ['tls.sni < "a"', /operator "<" does not apply to text field "tls.sni"/, 11],
    ['http.host matches "("', /^invalid regular expression "\("/, 19],
    ['ip == 10.0.0.0/33', /expected an IP address or CIDR for "ip", got "10.0.0.0\/33" at 7/, 7],
    ['ip contains "10"', /operator "contains" does not apply to address field "ip"/, 13],
    ['tls.client.plaintext == maybe', /expected true or false/, 25],
    ['app = tls', /^unexpected "=" at 5 \(use "==" to compare\)/, 5],
    ['tls & http', /^unexpected "&" at 5 \(use "&&"\)/, 5],
    ['port in {}', /^empty set after "in" at 6$/, 6],
    ['port in {90..80}', /^empty range "90..80" at 10$/, 10],
    ['port in {80..x}', /expected a number for "port", got "80..x" at 10/, 10],
    ['port in {80', /^missing "}" for "{" at 9$/, 12],
    ['tls http', /^unexpected "http" at 5 \(expected "&&", "\|\|" or end of filter\)$/, 5],
    ['&& tls', /^expected a field at 1, got "&&"$/, 1],
    ['tls &&', /^expected a field at 7, got end of filter$/, 7],
    ['bogus', /^unknown field "bogus" at 1$/, 1],
    // a packet's field, which a flow has two of: what to use instead
    ['tls && ip.src == 10.0.0.1', /^"ip.src" is a packet's field at 8; a flow has a client and a server: src.ip is the client's address, dst.ip the server's, ip either$/, 8],
    ['tcp.dstport == 443', /^"tcp.dstport" is a packet's field at 1; .*src.port is the client's port, dst.port the server's, port \(tcp.port, udp.port\) either$/, 1],
    // (messages name a Wireshark name as typed)
    ['http.response.code == "ok"', /^expected a number for "http.response.code", got "ok" at 23$/, 23],
  ];
  for (const [expr, msg, pos] of bad) {
    it(expr, () => {
      let err: unknown;
      try {
        compileFilter(expr);
      } catch (e) {
        err = e;
      }
      expect(isTapscopeError(err, 'E_FILTER_SYNTAX')).toBe(true);
      const e = err as Error & { details: { position: number } };
      expect(e.message).toMatch(msg);
      expect(e.details.position).toBe(pos);
      expect(checkFilter(expr)).toEqual({ ok: false, message: e.message, position: pos });
    });
  }
  it('a character outside the BMP is quoted whole, at its UTF-16 position, and the CLI marks it one column wide', () => {
    // (an emoji is two UTF-16 units: the message quoted the first alone, a lone surrogate shown as "\ufffd")
    const cases: [string, number, string][] = [
      ['tls.sni contains "a" && 😀', 25, '                          ^'],
      ['tls.sni == "😀" && 😀x', 20, '                    ^'],
    ];
    for (const [expr, pos, caret] of cases) {
      let err: unknown;
      try {
        compileFilter(expr);
      } catch (e) {
        err = e;
      }
      const e = err as Error & { details: { position: number; token: string } };
      expect(e.message).toBe(`unexpected "😀" at ${pos}`);
      expect(e.details).toMatchObject({ position: pos, token: '😀' });
      expect(filterMark({ ...e.details, filter: expr })).toBe(`  ${expr}\n${caret}\n`);
    }
  });
  it('a valid filter checks ok', () => {
    expect(checkFilter('tls.sni contains "x" && port == 443')).toEqual({ ok: true });
  });
  it('nesting deeper than 200 levels is a syntax error at the first level too deep, not a stack overflow', () => {
    const parens = `${'('.repeat(20_000)}tls${')'.repeat(20_000)}`;
    expect(checkFilter(parens)).toEqual({ ok: false, message: 'the filter nests more than 200 levels deep at 201 (parentheses and negations)', position: 201 });
    expect(checkFilter(`tls && ${'!'.repeat(30_000)}http`)).toMatchObject({ ok: false, position: 208 });
    // (as deep as allowed: read, and right)
    expect(ids(`${'('.repeat(100)}${'!'.repeat(99)}app == tls${')'.repeat(100)}`)).toEqual(['curl', 'dns']);
  });
});

describe('regular expressions a backtracking engine would test for ever', () => {
  it('are tested in linear time, with the answers of a regular expression', () => {
    // (JavaScript's engine has no backtracking limit: "(a+)+$" on a host of 40 "a"s and a "!" ran for minutes; the
    // filter's engine steps through the text once, see filter-regex.test)
    const host = (h: string): Flow => ({ ...(flows[0] as Flow), http: [{ method: 'GET', host: h, path: '/', status: 200 }] });
    const nested = compileFilter('http.host matches "^(a+)+$"');
    expect(nested(host(`${'a'.repeat(40_000)}!`))).toBe(false);
    expect(nested(host('a'.repeat(40_000)))).toBe(true);
    expect(compileFilter('http.host matches "^(a|a)*$"')(host(`${'a'.repeat(40_000)}!`))).toBe(false);
    expect(ids('http.host matches "(\\w+\\.)+internal$"')).toEqual(['curl']);
    expect(ids('http.host matches "^(API|x)+\\."')).toEqual(['curl']);
  });

  it('backreferences and lookarounds are a syntax error at the expression, naming them', () => {
    // (as in Wireshark, "\1" in a string is an octal escape: the regex's backreference is written "\\1")
    expect(checkFilter('http.host matches "(a)\\\\1"')).toEqual({
      ok: false, position: 19,
      message: 'the regular expression "(a)\\1" uses backreferences, which a filter does not take (its patterns are tested in time linear in the text, as RE2\'s) at 19',
    });
    expect(checkFilter('http.host matches "a(?=b)"')).toMatchObject({ ok: false, position: 19, message: expect.stringContaining('uses lookarounds') });
  });
});

describe('fields a flow does not have, and fields as values', () => {
  it('a yes/no field of a part the flow lacks is absent: == false finds the flows that have it and say no', () => {
    expect(ids('tls.midstream == false')).toEqual(['java', 'gnutls']);
    expect(ids('tls.client == true')).toEqual(['java', 'gnutls']);
    expect(ids('tls.server == false')).toEqual(['gnutls']);
    expect(ids('http.unfinished == false')).toEqual(['curl']);
    expect(ids('proxy.tls == false')).toEqual([]);
    expect(ids('!tls.midstream')).toEqual(['java', 'curl', 'dns', 'gnutls']);
  });

  it('a field\'s name as a value is refused (Wireshark compares two fields so; it was the text, matching nothing)', () => {
    expect(checkFilter('http.host == tls.sni')).toEqual({
      ok: false, position: 14,
      message: '"tls.sni" at 14 is a field: a filter compares a field with a value, not with another field (quote it to mean the text)',
    });
    expect(ids('http.host == "tls.sni"')).toEqual([]);
    expect(ids('ip == 10.0.0.2 && app == tls')).toEqual(['java', 'gnutls']);
  });
});

describe('Wireshark\'s address names keep their family', () => {
  it('ip.addr takes IPv4, ipv6.addr IPv6, as Wireshark; ip either', () => {
    expect(ids('ipv6.addr == fd00::5')).toEqual(['dns']);
    expect(ids('ip.addr == 10.0.0.0/8')).toEqual(['java', 'curl', 'dns', 'gnutls']);
    expect(checkFilter('ipv6.addr == 10.0.0.1')).toEqual({
      ok: false, position: 14, message: '"ipv6.addr" takes an IPv6 address, as in Wireshark ("ip" takes either), got "10.0.0.1" at 14',
    });
    expect(checkFilter('ip.addr in {10.0.0.1 fd00::5}')).toMatchObject({ ok: false, message: expect.stringContaining('"ip.addr" takes an IPv4 address') });
    expect(ids('ip in {10.0.0.1 fd00::5}')).toEqual(['java', 'dns', 'gnutls']);
  });
});

describe('long chains', () => {
  it('thousands of "&&" and "||" are tested without overflowing the stack, with the same answer', () => {
    // (one closure per operator, each calling the one before, overflowed the stack when tested)
    const and = Array.from({ length: 20_000 }, (_, i) => (i % 2 ? 'transport == tcp' : 'port > 0')).join(' && ');
    expect(ids(and)).toEqual(['java', 'curl', 'gnutls']);
    const or = [...Array.from({ length: 20_000 }, () => 'app == ssh'), 'process.comm == wget'].join(' || ');
    expect(ids(or)).toEqual(['gnutls']);
    expect(ids(`${and} && (${or})`)).toEqual(['gnutls']);
  });
});

describe('field table', () => {
  it('covers every Flow field family', () => {
    for (const f of ['src.ip', 'src.port', 'dst.ip', 'dst.port', 'ip', 'port', 'transport', 'app', 'node', 'pod.namespace', 'pod.name',
      'process.pid', 'process.comm', 'process.exe', 'bytes', 'packets', 'tls', 'tls.sni', 'tls.alpn', 'tls.version', 'tls.ja3', 'tls.ja4',
      'tls.client.library', 'tls.client.via', 'tls.client.confidence', 'tls.client.plaintext', 'tls.client.reason',
      'tls.server.library', 'tls.server.via', 'tls.server.confidence', 'tls.server.plaintext', 'tls.server.reason',
      'http', 'http.method', 'http.host', 'http.path', 'http.status', 'dns', 'dns.query', 'dns.type', 'dns.rcode', 'dns.answer', 'tls.alpn.negotiated']) {
      expect(FIELDS[f], f).toBeDefined();
    }
  });
});

describe('help text', () => {
  it('lists every field, and every example in it compiles', () => {
    const help = filterHelp();
    for (const f of Object.keys(FIELDS)) expect(help).toContain(`  ${f} `);
    const examples = help.split('Examples:\n')[1]!.split('\nFields:')[0]!.split('\n').map((l) => l.trim());
    expect(examples.length).toBe(4);
    expect(help).toContain("Wireshark's names work too: ip.addr (ip), ipv6.addr (ip), http.request.method (http.method)");
    for (const e of examples) expect(checkFilter(e)).toEqual({ ok: true });
  });
});

describe('speed (printed, not gated)', () => {
  it('filters 1M flows', () => {
    // varied addresses (250k distinct), so address parsing is measured, not just its memo
    const many: Flow[] = Array.from({ length: 1_000_000 }, (_, i) => {
      const f = flows[i % flows.length]!;
      return i % 2 === 0 ? f : { ...f, src: { ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, port: f.src.port } };
    });
    const expr = 'tls.client.library == "java-jsse" && dst.port == 443 || ip == 192.168.0.0/16 && http.status >= 500';
    const t0 = performance.now();
    const pred = compileFilter(expr);
    let n = 0;
    for (const f of many) if (pred(f)) n++;
    const ours = performance.now() - t0;
    const t1 = performance.now();
    let m = 0;
    for (const f of many) {
      if ((f.tls?.client?.library === 'java-jsse' && f.dst.port === 443) || ((f.src.ip.startsWith('192.168.') || f.dst.ip.startsWith('192.168.')) && f.http.some((h) => (h.status ?? 0) >= 500))) m++;
    }
    const hand = performance.now() - t1;
    expect(n).toBe(m);
    console.log(`filter: 1M flows in ${ours.toFixed(0)} ms (hand-written predicate ${hand.toFixed(0)} ms, ratio ${(ours / hand).toFixed(1)}x)`);
  });
});

describe('compileFilterPlan', () => {
  it('says which filters need resolved flows and which never change their answer for a flow', () => {
    const table: [string, boolean, boolean][] = [
      ['dst.port == 443', false, true],
      ['ip == 10.0.0.0/8 && transport == "tcp"', false, true],
      ['tls.sni contains "x"', false, false],
      ['bytes > 100 || port == 53', false, false],
      ['process.comm == "curl"', true, false],
      ['tls.client.plaintext', true, false],
      ['!(pod.namespace == "a") && dst.port == 1', true, false],
      ['tls.library == "openssl"', true, false],
      ['', false, true],
    ];
    for (const [expr, needsResolve, stable] of table) {
      const p = compileFilterPlan(expr);
      expect({ expr, needsResolve: p.needsResolve, stable: p.stable }).toEqual({ expr, needsResolve, stable });
    }
    expect(compileFilterPlan(' dst.port == 443 ')).toBe(compileFilterPlan('dst.port == 443'));
    expect(() => compileFilterPlan('dst.port ==')).toThrow(/expected value/);
  });
});
