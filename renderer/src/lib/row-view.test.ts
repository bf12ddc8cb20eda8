// Display strings of flow-table rows: formatted once per flow object (memoized), with the TLS cell's
// library, plaintext mark and hover reason, and owner/host fallbacks.
import { describe, expect, it } from 'vitest';
import type { Flow } from '../../../src/model/flow.js';
import { formatTime } from './format.js';
import { rowView } from './row-view.js';

function flow(extra: Partial<Flow> = {}): Flow {
  return {
    id: 'f1', transport: 'tcp', src: { ip: '10.0.0.1', port: 40000 }, dst: { ip: 'fd00::1', port: 443 },
    firstSeen: 1_732_620_000_123, lastSeen: 1_732_620_001_000, packets: 9, bytes: 5 * 1024 * 1024,
    process: { pid: 42, comm: 'curl' }, node: 'node-a', pod: null, app: 'unknown', tls: null, http: [],
    ...extra,
  } as Flow;
}

describe('rowView', () => {
  it('formats the cells once per flow object', () => {
    const f = flow();
    const v = rowView(f);
    expect(v).toMatchObject({ time: formatTime(f.firstSeen), node: 'node-a', owner: 'curl (42)', src: '10.0.0.1:40000', dst: '[fd00::1]:443', proto: 'tcp', host: '', tls: null, tlsTitle: 'not TLS', bytes: '5.0 MiB' });
    expect(rowView(f)).toBe(v);
    expect(rowView(flow())).not.toBe(v);
  });

  it('escapes control characters and bidirectional overrides in the host, process and node', () => {
    const v = rowView(flow({
      node: 'node\u202eb', process: { pid: 7, comm: 'x\x1b[2J' } as Flow['process'], app: 'http',
      http: [{ method: 'GET', host: 'moc.elgoog\u202e.evil', path: '/', status: 200 }],
    }));
    expect([v.node, v.owner, v.host]).toEqual(['node\\u{202e}b', 'x\\x1b[2J (7)', 'moc.elgoog\\u{202e}.evil']);
  });
  it('shows the TLS library, the plaintext mark and why plaintext is missing', () => {
    const side = { library: 'openssl', via: 'hook', confidence: 0.9, plaintext: false, reason: 'process started before capture' };
    const tls = { sni: 'example.org', alpn: [], version: null, cipher: null, ja3: null, ja3Hash: null, ja4: null, client: side, server: null };
    const none = rowView(flow({ app: 'tls', tls: tls as Flow['tls'], pod: { namespace: 'shop', name: 'cart-1' } }));
    expect(none).toMatchObject({ owner: 'shop/cart-1', proto: 'tls', host: 'example.org' });
    expect(none.tls).toMatchObject({ library: 'openssl', plaintext: false });
    expect(none.tlsTitle).toBe('client openssl (via hook, 90%) — no plaintext: process started before capture');
    const captured = rowView(flow({ app: 'tls', tls: { ...tls, client: { ...side, plaintext: true, reason: null } } as Flow['tls'] }));
    expect(captured.tls?.plaintext).toBe(true);
    expect(captured.tls?.icon).not.toBe(none.tls?.icon);
    expect(captured.tlsTitle).toContain('plaintext captured');
    expect(captured.tls?.otherSide).toBe(false);
    // an un-hooked client talking to a hooked server: the exchange is readable, from the server's side only, and the
    // cell says so rather than crediting the client's library
    const java = { library: 'java-jsse', via: 'process', confidence: 0.9, plaintext: false, reason: 'java-jsse has no hook' };
    const server = { library: 'openssl', via: 'hook', confidence: 1, plaintext: true, reason: null };
    const peer = rowView(flow({ app: 'tls', tls: { ...tls, client: java, server } as Flow['tls'] }));
    expect(peer.tls).toMatchObject({ library: 'java-jsse', plaintext: true, otherSide: true });
    expect(peer.tlsTitle).toBe('client java-jsse (via process, 90%) — no plaintext: java-jsse has no hook\nserver openssl (via hook, 100%) — plaintext captured by its hook');
    expect(peer.tls?.keylog).toBe(false);
    // decrypted with a key log, no hook read it: marked as the key log's, on both sides
    const keyed = (v: typeof java) => ({ ...v, plaintext: true, plaintextFrom: 'keylog', reason: null });
    const kl = rowView(flow({ app: 'tls', tls: { ...tls, client: keyed(java), server: keyed({ ...server, via: 'fingerprint' }) } as Flow['tls'] }));
    expect(kl.tls).toMatchObject({ library: 'java-jsse', plaintext: true, otherSide: false, keylog: true });
    expect(kl.tlsTitle).toBe('client java-jsse (via process, 90%) — plaintext decrypted with the key log\nserver openssl (via fingerprint, 100%) — plaintext decrypted with the key log');
    // a hook's plaintext on one side: not the key log's mark
    expect(rowView(flow({ app: 'tls', tls: { ...tls, client: keyed(java), server } as Flow['tls'] })).tls?.keylog).toBe(false);
    const unknown = rowView(flow({ app: 'tls', tls: { ...tls, sni: null, client: null } as Flow['tls'], http: [{ method: 'GET', host: 'h.test', path: '/', status: 200 }] }));
    expect(unknown).toMatchObject({ host: 'h.test', tlsTitle: 'TLS, library not identified' });
    expect(unknown.tls?.library).toBe('unknown');
  });
});
