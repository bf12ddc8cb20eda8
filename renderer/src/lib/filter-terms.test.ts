// "Apply as filter" terms: each is valid in the core's filter language and selects the flow it came from (and
// not another), with values that need quoting; joining a term to the filter in effect.
import { describe, expect, it } from 'vitest';
import { compileFilter } from '../../../src/filter/index.js';
import type { Flow } from '../../../src/model/flow.js';
import { filterString, flowTerms, hostTerm, withTerm } from './filter-terms.js';

function flow(extra: Partial<Flow> = {}): Flow {
  return {
    id: 'f1', transport: 'tcp', src: { ip: '10.0.0.1', port: 40000 }, dst: { ip: 'fd00::1', port: 443 },
    firstSeen: 1, lastSeen: 2, packets: 9, bytes: 900, process: { pid: 42, comm: 'my "odd"\\proc' }, peerProcess: { pid: 7, comm: 'nginx' },
    node: 'node\ta', pod: { namespace: 'shop', name: 'cart-1' }, app: 'tls', seenBy: 'packets',
    tls: {
      sni: "api.o'brien.test", alpn: [], version: 'TLS 1.3', cipher: null, ja3: null, ja3Hash: null, ja4: 't13d1516h2_8daaf6152771_e5627efa2ab1',
      client: { library: 'java-jsse', via: 'process', confidence: 0.9, plaintext: false, reason: 'java-jsse has no hook', version: null },
      server: { library: 'openssl', via: 'hook', confidence: 1, plaintext: true, reason: null, version: '3.0.19' },
      sameSessionAs: 'f9',
      midstream: true,
      keylog: { status: 'decrypted', reason: null, records: 4 },
    },
    http: [{ method: 'GET', host: 'api.test\nx', path: '/', status: 200 }],
    db: { user: 'app', database: 'ord"ers', application: null },
    proxy: { version: 2, src: { ip: '2001:db8::7', port: 51234 }, dst: { ip: '203.0.113.10', port: 443 } },
    ...extra,
  } as Flow;
}

describe('filter terms of a flow', () => {
  it('each term compiles and selects its flow, not another, and excluded selects the other, not it', () => {
    const f = flow();
    const other = flow({
      id: 'f2',
      src: { ip: '10.0.0.2', port: 1 }, dst: { ip: 'fd00::2', port: 443 }, process: { pid: 1, comm: 'curl' }, peerProcess: { pid: 8, comm: 'envoy' },
      node: 'node-b', pod: { namespace: 'shop', name: 'cart-2' }, app: 'http', tls: null, http: [{ method: 'GET', host: 'other.test', path: '/', status: 200 }],
      db: { user: 'app', database: 'orders', application: null }, proxy: { version: 1, src: { ip: '2001:db8::8', port: 51234 }, dst: { ip: '203.0.113.10', port: 443 } },
    });
    const terms = [...Object.values(flowTerms(f)), hostTerm(f.http[0]!)];
    expect(terms.every((t) => t !== null)).toBe(true);
    for (const t of terms as string[]) {
      expect(compileFilter(t)(f), t).toBe(true);
      expect(compileFilter(t)(other), t).toBe(false);
      expect(compileFilter(withTerm('', t, true))(f), `not ${t}`).toBe(false);
      expect(compileFilter(withTerm('', t, true))(other), `not ${t}`).toBe(true);
    }
    // what a flow lacks offers no term
    const bare = flowTerms(flow({ pod: null, process: null, peerProcess: null, tls: null, db: undefined, proxy: undefined }));
    expect([bare.pod, bare.process, bare.peer, bare.sni, bare.ja4, bare.client, bare.server, bare.db, bare.proxy, bare.session, bare.midstream, bare.keylog])
      .toEqual(Array(12).fill(null));
    // a health check's header names no client
    expect(flowTerms(flow({ proxy: { version: 2, src: null, dst: null } })).proxy).toBeNull();
    // a login without a database named: its user
    expect(flowTerms(flow({ db: { user: 'shop', database: null, application: null } })).db).toBe('db.user == "shop"');
    expect(hostTerm({ host: null })).toBeNull();
    // an IPv4 and an IPv6 address stay bare words
    expect(flowTerms(f).src).toBe('src.ip == 10.0.0.1');
    expect(flowTerms(f).dst).toBe('dst.ip == fd00::1 && dst.port == 443');
  });

  it('quotes strings so that the filter reads back the same text', () => {
    for (const s of ['plain', 'a "quoted" word', 'back\\slash\\', "it's", 'tab\tand\nnewline', '']) {
      expect(compileFilter(`process.comm == ${filterString(s)}`)(flow({ process: { pid: 1, comm: s } })), s).toBe(true);
    }
  });
});

describe('joining a term to the filter in effect', () => {
  it('starts, narrows with &&, excludes, and keeps a term already in effect', () => {
    expect(withTerm('', 'node == "a"')).toBe('node == "a"');
    expect(withTerm('  ', 'node == "a"', true)).toBe('!(node == "a")');
    expect(withTerm('dst.port == 443', 'node == "a"')).toBe('(dst.port == 443) && node == "a"');
    expect(withTerm('a || b', 'dst.ip == 1.2.3.4 && dst.port == 80')).toBe('(a || b) && (dst.ip == 1.2.3.4 && dst.port == 80)');
    expect(withTerm('x', 'node == "a"', true)).toBe('(x) && !(node == "a")');
    expect(withTerm('node == "a"', 'node == "a"')).toBe('node == "a"');
    expect(withTerm('(x) && node == "a"', 'node == "a"')).toBe('(x) && node == "a"');
    // the joined filter still compiles
    expect(() => compileFilter(withTerm('port == 1 || tls', 'dst.ip == 1.2.3.4 && dst.port == 80', true))).not.toThrow();
  });
});
