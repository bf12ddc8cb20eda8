// The `tapscope flows` table's TLS CLIENT column: the client's library, how it was found, plaintext or not and why,
// and, when only the server's hook captured the exchange, that it is still readable and from where.
import { describe, expect, it } from 'vitest';
import { filterMark, flowRow } from '../../src/cli/flows-output.js';
import type { Flow, TlsSideVerdict } from '../../src/model/flow.js';

const side = (library: string, via: TlsSideVerdict['via'], plaintext: boolean, reason: string | null = null): TlsSideVerdict =>
  ({ library, via, confidence: 0.9, plaintext, reason }) as TlsSideVerdict;

function flow(client: TlsSideVerdict | null, server: TlsSideVerdict | null): Flow {
  return {
    id: 'f1', transport: 'tcp', src: { ip: '10.0.0.1', port: 40000 }, dst: { ip: '10.0.0.2', port: 443 },
    firstSeen: 1_732_620_000_123, lastSeen: 1_732_620_001_000, packets: 9, bytes: 4096,
    process: { pid: 42, comm: 'java' }, node: 'node-a', pod: null, app: 'tls', http: [],
    tls: { sni: 'api.test', alpn: [], version: null, cipher: null, ja3: null, ja3Hash: null, ja4: null, client, server },
  } as unknown as Flow;
}

const tlsColumn = (f: Flow): string => flowRow(f).at(-1)!;

describe('flowRow TLS CLIENT column', () => {
  it('says plaintext for a hooked client, and why not for one without', () => {
    expect(tlsColumn(flow(side('openssl', 'hook', true), side('openssl', 'hook', true)))).toBe('openssl/hook plaintext');
    expect(tlsColumn(flow(side('go-crypto-tls', 'process', false, 'hook attached late'), null))).toBe('go-crypto-tls/process encrypted (hook attached late)');
  });

  it('names the server hook that made an un-hooked client\'s exchange readable', () => {
    const col = tlsColumn(flow(side('java-jsse', 'process', false, 'java-jsse has no hook'), side('openssl', 'hook', true)));
    expect(col).toBe("java-jsse/process encrypted (java-jsse has no hook); plaintext from the server's openssl hook");
    expect(tlsColumn(flow(side('java-jsse', 'process', false, 'java-jsse has no hook'), side('openssl', 'fingerprint', false, 'x')))).not.toContain('server');
  });
});

describe('flowRow TLS CLIENT column with a key log', () => {
  it('says the plaintext came from the key log, and why a connection the key log could not decrypt was not', () => {
    const f = flow({ ...side('openssl', 'fingerprint', true), plaintextFrom: 'keylog' }, { ...side('unknown', 'fingerprint', true), plaintextFrom: 'keylog' });
    f.tls!.keylog = { status: 'decrypted', reason: null, records: 4 };
    expect(tlsColumn(f)).toBe('openssl/fingerprint plaintext (key log)');
    const failed = flow(side('openssl', 'process', false, 'capture ran in afpacket mode because x'), side('unknown', 'fingerprint', false, 'y'));
    failed.tls!.keylog = { status: 'failed', reason: 'server to client: a gap in the capture', records: 1 };
    expect(tlsColumn(failed)).toBe('openssl/process encrypted (capture ran in afpacket mode because x); key log: not decrypted: server to client: a gap in the capture (1 record read before)');
    // (no secrets for it: the usual case in a key log run, not repeated on every row)
    failed.tls!.keylog = { status: 'no-secrets', reason: 'the key log has no secrets for its client random (ab)', records: 0 };
    expect(tlsColumn(failed)).toBe('openssl/process encrypted (capture ran in afpacket mode because x)');
    // (a hook's plaintext is the hook's, key log or not)
    const hooked = flow(side('openssl', 'hook', true), null);
    hooked.tls!.keylog = { status: 'decrypted', reason: null, records: 2 };
    expect(tlsColumn(hooked)).toBe('openssl/hook plaintext');
  });
});

describe('flowRow CLIENT column', () => {
  it('names the client a PROXY protocol header relays for, after the load balancer\'s own end', () => {
    expect(flowRow(flow(null, null))[2]).toBe('10.0.0.1:40000');
    const lb = { ...flow(null, null), proxy: { version: 2 as const, src: { ip: '2001:db8::7', port: 51234 }, dst: { ip: '10.0.0.2', port: 443 } } };
    expect(flowRow(lb)[2]).toBe('10.0.0.1:40000 for [2001:db8::7]:51234');
    expect(flowRow({ ...lb, proxy: { version: 2, src: null, dst: null } })[2]).toBe('10.0.0.1:40000');
  });
});

describe('filterMark', () => {
  it('marks the token a filter error points at, as tshark does', () => {
    expect(filterMark({ filter: 'tls.foo == 1', position: 1, token: 'tls.foo' })).toBe('  tls.foo == 1\n  ^~~~~~~\n');
    expect(filterMark({ filter: 'a == 1 &&& b', position: 9, token: '&' })).toBe('  a == 1 &&& b\n          ^\n');
    // (past the end: the mark sits just after the last character)
    expect(filterMark({ filter: 'dst.port ==', position: 12, token: '' })).toBe('  dst.port ==\n             ^\n');
    expect(filterMark({ position: 3 })).toBe('');
    expect(filterMark({ filter: 'a\nb', position: 3 })).toBe('');
  });

  it('spans a string as written, keeps tabs, counts a character outside the BMP as one column, and stays short', () => {
    // (the token of a string is its unescaped text: "(a" is 2 characters, written 4 with its quotes)
    expect(filterMark({ filter: 'tls.sni matches "(a"', position: 17, token: '(a' })).toBe('  tls.sni matches "(a"\n                  ^~~~\n');
    expect(filterMark({ filter: 'x == "a\\"b"', position: 6, token: 'a"b' })).toBe('  x == "a\\"b"\n       ^~~~~~\n');
    expect(filterMark({ filter: 'tls\t&& foo', position: 8, token: 'foo' })).toBe('  tls\t&& foo\n     \t   ^~~\n');
    expect(filterMark({ filter: 'tls.sni == "\u{1f600}" && foo', position: 20, token: 'foo' })).toBe(`  tls.sni == "\u{1f600}" && foo\n  ${' '.repeat(18)}^~~\n`);
    const long = `tls.sni == "${'a'.repeat(100_000)}`;
    expect(filterMark({ filter: long, position: 12, token: long.slice(11) }).split('\n')[1]).toBe(`  ${' '.repeat(11)}^${'~'.repeat(119)}`);
  });
});

describe('what a flow reaches (SNI/HOST)', () => {
  it('is the server name, else the HTTP host, else the DNS name, else the database its login named', async () => {
    const { flowTarget } = await import('../../src/model/flow-target.js');
    const base = flow(null, null);
    expect(flowTarget(base)).toBe('api.test');
    expect(flowTarget({ ...base, tls: null, http: [{ method: 'GET', host: 'h.test', path: '/', status: 200 }] })).toBe('h.test');
    expect(flowTarget({ ...base, tls: null, dns: [{ id: 1, query: 'q.test', type: 'A', rcode: null, answers: [] }] })).toBe('q.test');
    const pg = { ...base, tls: null, app: 'postgres', db: { user: 'app', database: 'orders', application: null } };
    expect(flowTarget(pg)).toBe('orders as app');
    expect(flowRow(pg)[5]).toBe('orders as app');
    expect(flowTarget({ ...pg, db: { user: 'shop', database: null, application: null } })).toBe('as shop');
    expect(flowTarget({ ...base, tls: null })).toBe('');
  });
});
