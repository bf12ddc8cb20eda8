// TLS side verdicts: one row per branch of decideSide (hook, process evidence with each reason for
// missing plaintext, fingerprint, unknown), and JA4 lookups against the generated fingerprint table
// and a synthetic table with shared fingerprints.
import { describe, it, expect } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import {
  decideSide, lookupJa4, buildJa4Lookup, ja4Entries, normalizeLibrary, reasonGroup, sameSessionReason,
  type CaptureContext, type ProcessTlsEvidence, type SideInput, type Ja4Entry,
} from '../../src/verdict/index.js';
import type { Flow, TlsSideVerdict } from '../../src/model/flow.js';
import { libraryBreakdown } from '../../src/flows/libraries.js';

const EBPF: CaptureContext = { mode: 'ebpf', modeReason: 'auto: BTF, ringbuf and uprobes available' };
const AFP: CaptureContext = { mode: 'afpacket', modeReason: 'the kernel has no BTF (/sys/kernel/btf/vmlinux missing)' };
const FILE: CaptureContext = { mode: null, modeReason: null };

const table = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '../../resources/fingerprints/ja4.json'), 'utf8')) as { entries: Ja4Entry[] };
const curlJa4 = table.entries.find((e) => e.client.startsWith('curl'))!.ja4;
const javaJa4 = table.entries.find((e) => e.library === 'java-jsse')!.ja4;
const gnutlsJa4 = table.entries.find((e) => e.library === 'gnutls' && lookupJa4(e.ja4)?.library === 'gnutls' && lookupJa4(e.ja4)!.confidence >= 0.8)!.ja4;

function proc(library: ProcessTlsEvidence['library'], hooks: ProcessTlsEvidence['hooks'] = [], extra: Partial<ProcessTlsEvidence> = {}): ProcessTlsEvidence {
  return { library, via: 'maps', evidence: '/usr/lib/x86_64-linux-gnu/libssl.so.3', version: '3.0', hooks, ...extra };
}
const attached = [{ library: 'openssl', path: '/usr/lib/x86_64-linux-gnu/libssl.so.3', status: 'attached' as const }];
const HELLO = 1_732_620_000_123.25;
/** an attached openssl hook that attached at `ms` */
const at = (ms: number, path = '/x/libssl.so.3'): ProcessTlsEvidence['hooks'] => [{ library: 'openssl', path, status: 'attached', attachedAt: ms }];
const input = (over: Partial<SideInput>): SideInput => ({ process: null, plaintextSeen: null, ja4: null, ...over });

type Row = [string, 'client' | 'server', SideInput, CaptureContext, Partial<TlsSideVerdict>, RegExp | null];
const rows: Row[] = [
  ['hook fired', 'client', input({ process: proc('openssl', attached), plaintextSeen: { library: 'openssl', bytes: 512 } }), EBPF,
    { library: 'openssl', via: 'hook', confidence: 1, plaintext: true, version: '3.0' }, null],
  ['hook fired, library named by file', 'server', input({ plaintextSeen: { library: 'libgnutls.so.30', bytes: 10 } }), EBPF,
    { library: 'gnutls', via: 'hook', confidence: 1, plaintext: true, version: null }, null],
  ['JSSE: no hook exists', 'client', input({ process: proc('java-jsse', [], { via: 'binary', evidence: '/usr/lib/jvm/java-17/lib/libjava.so', version: '17' }), ja4: javaJa4 }), EBPF,
    { library: 'java-jsse', via: 'process', confidence: 0.9, plaintext: false, version: '17' }, /^java-jsse has no hook/],
  ['rustls: no hook exists', 'client', input({ process: proc('rustls', [], { via: 'binary' }) }), EBPF,
    { library: 'rustls', via: 'process', plaintext: false }, /^rustls has no hook/],
  ['boringssl with an attach attempt: the attempt explains', 'server', input({ process: proc('boringssl', [{ library: 'boringssl', path: '/usr/local/bin/envoy', status: 'failed', reason: 'symbol SSL_write not found' }], { via: 'binary' }) }), EBPF,
    { library: 'boringssl', via: 'process', plaintext: false }, /^hook not attached: symbol SSL_write not found$/],
  ['JSSE in afpacket mode: the library is the reason', 'client', input({ process: proc('java-jsse', [], { via: 'binary' }) }), AFP,
    { library: 'java-jsse', via: 'process', plaintext: false }, /^java-jsse has no hook/],
  ['JSSE with an "unsupported" attach report: still "has no hook", never "hook not attached"', 'client', input({ process: proc('java-jsse', [{ library: 'java-jsse', path: '/usr/lib/jvm/java-17/bin/java', status: 'unsupported', reason: 'no native TLS symbols' }], { via: 'binary', version: '17' }) }), EBPF,
    { library: 'java-jsse', via: 'process', plaintext: false }, /^java-jsse has no hook — JSSE does its TLS in Java code.*SSLKEYLOGFILE/],
  ['rustls with a failed attach report: still "has no hook"', 'server', input({ process: proc('rustls', [{ library: 'rustls', path: '/app/srv', status: 'failed', reason: 'no symbols' }], { via: 'binary' }) }), EBPF,
    { library: 'rustls', via: 'process', plaintext: false }, /^rustls has no hook — /],
  ['schannel: no hook exists', 'client', input({ process: proc('schannel', [], { via: 'binary' }) }), FILE,
    { library: 'schannel', via: 'process', plaintext: false }, /^schannel has no hook — /],
  ['boringssl without an attach attempt', 'server', input({ process: proc('boringssl', [], { via: 'binary' }) }), EBPF,
    { library: 'boringssl', via: 'process', plaintext: false }, /^boringssl has no hook — /],
  ['DTLS in eBPF mode, plaintext the hooks could not tie: to a UDP connection (not the memory-BIO wording)', 'client',
    input({ process: proc('openssl', attached, { unattributedPlaintext: true }), dtls: true }), EBPF,
    { library: 'openssl', via: 'process', plaintext: false }, /^openssl hook read DTLS plaintext in this process that it could not tie to a UDP connection \(on a socket not connected/],
  ['DTLS in eBPF mode, the hook saw nothing: as for TLS', 'client', input({ process: proc('openssl', attached), dtls: true }), EBPF,
    { library: 'openssl', via: 'process', plaintext: false }, /^openssl hook attached but saw no reads or writes on this connection/],
  ['DTLS in eBPF mode, plaintext tied to it: captured, by hook', 'server', input({ process: proc('openssl', attached), plaintextSeen: { library: 'openssl', bytes: 40 }, dtls: true }), EBPF,
    { library: 'openssl', via: 'hook', plaintext: true, reason: null }, null],
  ['QUIC in eBPF mode, its library hooked: the hooks cannot see QUIC (not "attached but saw nothing"), the key log can', 'client',
    input({ process: proc('gnutls', [{ library: 'gnutls', path: '/usr/lib/x86_64-linux-gnu/libgnutls.so.30', status: 'attached' }]), quic: true }), EBPF,
    { library: 'gnutls', via: 'process', plaintext: false }, /^QUIC: gnutls only makes the handshake's keys, .*SSLKEYLOGFILE/],
  ['QUIC in afpacket mode: still QUIC (an eBPF capture would not read it either)', 'server', input({ process: proc('openssl'), quic: true }), AFP,
    { library: 'openssl', via: 'process', plaintext: false }, /^QUIC: openssl only makes/],
  ['QUIC with no process: that no hook reads QUIC first, then where the process is', 'client', input({ quic: true }), EBPF,
    { library: 'unknown', via: 'fingerprint', plaintext: false }, /^QUIC: its TLS library only makes the handshake's keys, .*SSLKEYLOGFILE.*; client process not on a captured node, and no ClientHello was seen$/],
  ['QUIC with no process attributed on the node, its library from its hello: the QUIC reason, then where', 'client', input({ quic: true, ja4: curlJa4, local: true }), EBPF,
    { library: 'openssl', via: 'fingerprint', confidence: 1, plaintext: false }, /^QUIC: openssl only makes the handshake's keys, .*; the client process is on the captured node but was not attributed: eBPF mode/],
  ['the process has two libraries, the hello is the other one\'s, whose hook failed: that library, and its failed hook', 'client',
    input({ process: proc('openssl', [...attached, { library: 'gnutls', path: '/usr/lib/x86_64-linux-gnu/libgnutls.so.30', status: 'failed', reason: 'uprobe on gnutls_record_send: -EINVAL' }]), ja4: gnutlsJa4 }), EBPF,
    { library: 'gnutls', via: 'process', confidence: 0.9, plaintext: false }, /^hook not attached: uprobe on gnutls_record_send: -EINVAL; this process has openssl too, and this connection's ClientHello is gnutls's \(/],
  ['a hook fired in the process (its hook list empty: read after it exited): it was attached', 'client',
    input({ process: proc('openssl', [], { via: 'hook', evidence: 'ssl_write_internal', exited: true }) }), EBPF,
    { library: 'openssl', via: 'process', plaintext: false }, /^the openssl hook fired in this process \(ssl_write_internal\) but saw no reads or writes on this connection \(it carried no application data/],
  ['process predates capture, but the handshake came after its hook attached: not "set up before the hook"', 'server',
    input({ process: proc('openssl', at(HELLO - 1700), { startedBeforeCapture: true }), handshakeAt: HELLO }), EBPF,
    { library: 'openssl', via: 'process', plaintext: false }, /^openssl hook attached but saw no reads or writes on this connection \(it carried no application data/],
  ['a capture with no helper records (tcpdump\'s): where the client runs is not known, not "not on a captured node"', 'client', input({ ja4: javaJa4 }), FILE,
    { library: 'java-jsse', via: 'fingerprint', confidence: 1, plaintext: false }, /^where the client process runs is not known: this capture has no process records \(it was not made by the tapscope helper\)$/],
  ['the server, in a capture with no helper records', 'server', input({ ja4: javaJa4 }), FILE,
    { library: 'unknown', via: 'fingerprint', confidence: 0, plaintext: false }, /^where the server process runs is not known: .*; a server's library cannot be told from the ClientHello$/],
  ['the same fingerprint verdict in a capture with helper records after one without: not the other\'s', 'client', input({ ja4: javaJa4 }), AFP,
    { library: 'java-jsse', via: 'fingerprint', confidence: 1, plaintext: false }, /^client process not on a captured node$/],
  ['DTLS in afpacket mode: the mode is the reason', 'client', input({ process: proc('openssl'), dtls: true }), AFP,
    { library: 'openssl', via: 'process', plaintext: false }, /^capture ran in afpacket mode/],
  ['afpacket mode', 'client', input({ process: proc('openssl') }), AFP,
    { library: 'openssl', via: 'process', plaintext: false }, /^capture ran in afpacket mode because the kernel has no BTF/],
  ['no hook data (file)', 'client', input({ process: proc('openssl') }), FILE,
    { library: 'openssl', via: 'process', plaintext: false }, /has no hook data/],
  ['hook failed to attach', 'client', input({ process: proc('openssl', [{ library: 'openssl', path: '/x/libssl.so.3', status: 'failed', reason: 'uprobe on SSL_write: Permission denied' }]) }), EBPF,
    { library: 'openssl', via: 'process', plaintext: false }, /^hook not attached: uprobe on SSL_write: Permission denied$/],
  ['hook unsupported', 'client', input({ process: proc('go-crypto-tls', [{ library: 'go-crypto-tls', path: '/app/server', status: 'unsupported', reason: 'stripped binary without symbols' }], { via: 'buildid', version: 'go1.19' }) }), EBPF,
    { library: 'go-crypto-tls', via: 'process', plaintext: false }, /^hook not attached: go-crypto-tls go1\.19 in \/app\/server is not supported \(stripped binary without symbols\)$/],
  ['no attach attempt recorded', 'client', input({ process: proc('nss', [], { evidence: '/usr/lib/x86_64-linux-gnu/libnss3.so' }) }), EBPF,
    { library: 'nss', via: 'process', plaintext: false }, /^no nss hook was attached for this process \(nss found in its mapped libraries: \/usr\/lib\/x86_64-linux-gnu\/libnss3\.so\)$/],
  ['hook for another library only', 'client', input({ process: proc('gnutls', attached) }), EBPF,
    { library: 'gnutls', via: 'process', plaintext: false }, /^no gnutls hook was attached/],
  ['attached, process predates capture', 'client', input({ process: proc('openssl', attached, { startedBeforeCapture: true }) }), EBPF,
    { library: 'openssl', via: 'process', plaintext: false }, /^process started before capture and the hook saw no reads or writes on this connection/],
  ['attached, process predates capture, its hooks read plaintext they could not place: that is the reason', 'client',
    input({ process: proc('openssl', attached, { startedBeforeCapture: true, unattributedPlaintext: true }) }), EBPF,
    { library: 'openssl', via: 'process', plaintext: false }, /^openssl hook read plaintext in this process that it could not tie to a connection .* not shown rather than shown on a guess$/],
  ['attached 12.4 ms after the handshake began: the late attach is the reason', 'client',
    input({ process: proc('openssl', at(HELLO + 12.4), { startedBeforeCapture: true }), handshakeAt: HELLO }), EBPF,
    { library: 'openssl', via: 'process', confidence: 0.9, plaintext: false },
    /^the openssl hook \(\/x\/libssl\.so\.3\) attached 12 ms after this connection's TLS handshake began: reads and writes made before then were not seen/],
  ['attached 2.25 s late, on the server side', 'server', input({ process: proc('openssl', at(HELLO + 2250)), handshakeAt: HELLO }), EBPF,
    { library: 'openssl', via: 'process', plaintext: false }, /^the openssl hook \(\/x\/libssl\.so\.3\) attached 2\.3 s after/],
  ['two hooks of the library, one in place before the handshake: not late', 'client',
    input({ process: proc('openssl', [...at(HELLO + 5), ...at(HELLO - 0.1, '/y/libssl.so.3')]), handshakeAt: HELLO }), EBPF,
    { library: 'openssl', via: 'process', plaintext: false }, /^openssl hook attached but saw no reads or writes on this connection/],
  ['a failed attach of another copy before the handshake does not hide the late one', 'client',
    input({ process: proc('openssl', [...at(HELLO + 5), { library: 'openssl', path: '/y/libssl.so.3', status: 'failed', reason: 'EPERM', attachedAt: HELLO - 9 }]), handshakeAt: HELLO }), EBPF,
    { library: 'openssl', via: 'process', plaintext: false }, /^the openssl hook \(\/x\/libssl\.so\.3\) attached 5\.0 ms after/],
  ['attached at the handshake itself: not late', 'client', input({ process: proc('openssl', at(HELLO)), handshakeAt: HELLO }), EBPF,
    { library: 'openssl', via: 'process', plaintext: false }, /^openssl hook attached but saw no reads or writes on this connection/],
  ['attach time unknown (earlier builds): not late', 'client', input({ process: proc('openssl', [{ ...attached[0]!, attachedAt: null }]), handshakeAt: HELLO }), EBPF,
    { library: 'openssl', via: 'process', plaintext: false }, /^openssl hook attached but saw no reads/],
  ['no handshake seen: not late', 'client', input({ process: proc('openssl', at(HELLO + 50), { startedBeforeCapture: true }) }), EBPF,
    { library: 'openssl', via: 'process', plaintext: false }, /^process started before capture and the hook saw no reads/],
  ['a late hook of another library is not this one', 'client', input({ process: proc('gnutls', at(HELLO + 50)), handshakeAt: HELLO }), EBPF,
    { library: 'gnutls', via: 'process', plaintext: false }, /^no gnutls hook was attached/],
  ['library learned from a file it opened', 'client', input({ process: proc('openssl', [], { via: 'open', evidence: '/x/libssl.so.3' }) }), EBPF,
    { library: 'openssl', via: 'process', plaintext: false }, /^no openssl hook was attached for this process \(openssl found in a library file it opened: \/x\/libssl\.so\.3\)$/],
  ['attached, saw nothing', 'server', input({ process: proc('openssl', attached) }), EBPF,
    { library: 'openssl', via: 'process', plaintext: false }, /^openssl hook attached but saw no reads or writes on this connection/],
  ['process evidence contradicted by an exact fingerprint', 'client', input({ process: proc('openssl', attached), ja4: javaJa4 }), EBPF,
    { library: 'openssl', via: 'process', confidence: 0.6, plaintext: false }, /^openssl hook attached but saw no reads.*; note: this connection's ClientHello looks like java-jsse \(java /],
  ['process evidence agreeing with the fingerprint keeps its confidence', 'client', input({ process: proc('openssl', attached), ja4: curlJa4 }), EBPF,
    { library: 'openssl', via: 'process', confidence: 0.9, plaintext: false }, /^openssl hook attached but saw no reads or writes on this connection \(/],
  ['process without TLS library: fingerprint', 'client', input({ process: proc(null, [], { evidence: '/usr/local/bin/app' }), ja4: curlJa4 }), EBPF,
    { library: 'openssl', via: 'fingerprint', confidence: 1, plaintext: false }, /^no TLS library found in the client process \(\/usr\/local\/bin\/app\)/],
  ['process gone before it was read: fingerprint, and the reason says it was not looked at', 'client', input({ process: proc(null, [], { evidence: '', exited: true }), ja4: curlJa4 }), EBPF,
    { library: 'openssl', via: 'fingerprint', confidence: 1, plaintext: false }, /^the client process had exited before its binary and libraries could be read, so its TLS library is unknown/],
  ['process gone before it was read, its executable read at its exec: only the libraries are unknown', 'client',
    input({ process: proc(null, [], { evidence: '', exited: true, readAtExec: true, exe: '/usr/bin/python3.11' }), ja4: curlJa4 }), EBPF,
    { library: 'openssl', via: 'fingerprint', confidence: 1, plaintext: false },
    /^the client process had exited before its mapped libraries could be read, and its executable \(\/usr\/bin\/python3\.11\) has no TLS of its own/],
  ['process gone, its Go executable read at its exec: the process verdict', 'client',
    input({ process: proc('go-crypto-tls', [{ library: 'go-crypto-tls', path: '/app/cli', status: 'attached' }], { via: 'buildid', evidence: '/app/cli', exited: true, readAtExec: true, exe: '/app/cli' }) }), EBPF,
    { library: 'go-crypto-tls', via: 'process', confidence: 0.9, plaintext: false }, /^go-crypto-tls hook attached but saw no reads/],
  ['process gone before it was read, no fingerprint', 'server', input({ process: proc(null, [], { evidence: '', exited: true }) }), EBPF,
    { library: 'unknown', via: 'fingerprint', confidence: 0, plaintext: false }, /^the server process had exited before its binary and libraries could be read/],
  ['not on a captured node: fingerprint', 'client', input({ ja4: javaJa4 }), EBPF,
    { library: 'java-jsse', via: 'fingerprint', confidence: 1, plaintext: false }, /^client process not on a captured node$/],
  ['not on a captured node: unknown fingerprint', 'client', input({ ja4: 't13d0101h2_000000000001_000000000001' }), EBPF,
    { library: 'unknown', via: 'fingerprint', confidence: 0, plaintext: false }, /not in the fingerprint table/],
  ['its ClientHello segment lost: said so, not "none was seen"', 'client', input({ helloLost: true }), AFP,
    { library: 'unknown', via: 'fingerprint', confidence: 0, plaintext: false }, /^client process not on a captured node, and its ClientHello was not captured \(a gap at the start of the client's stream\): no fingerprint$/],
  ['its ClientHello segment lost, its process known: the process\'s reason, and no hello to check it against', 'client', input({ process: proc('java-jsse', [], { via: 'binary' }), helloLost: true }), AFP,
    { library: 'java-jsse', via: 'process', plaintext: false }, /^java-jsse has no hook — .*; its ClientHello was not captured \(a gap at the start of the client's stream\): no fingerprint$/],
  ['not on a captured node: no hello', 'client', input({}), AFP,
    { library: 'unknown', via: 'fingerprint', confidence: 0, plaintext: false }, /no ClientHello was seen$/],
  ['server not on a captured node', 'server', input({ ja4: curlJa4 }), EBPF,
    { library: 'unknown', via: 'fingerprint', confidence: 0, plaintext: false }, /^server process not on a captured node; a server's library cannot be told from the ClientHello$/],
  // a side at an address of the captured node itself without a process: not attributed, and how the mode attributes
  ['on the captured node, not attributed (afpacket): fingerprint', 'client', input({ ja4: javaJa4, local: true }), AFP,
    { library: 'java-jsse', via: 'fingerprint', confidence: 1, plaintext: false },
    /^the client process is on the captured node but was not attributed: in afpacket mode a connection is matched to its process from \/proc \(at its SYN and every 500 ms\), and this one closed, or its process exited, before then$/],
  ['server on the captured node, not attributed (ebpf)', 'server', input({ ja4: curlJa4, local: true }), EBPF,
    { library: 'unknown', via: 'fingerprint', confidence: 0, plaintext: false },
    /^the server process is on the captured node but was not attributed: eBPF mode saw no socket event of this connection \(it was set up before the capture began, or its events were dropped\); a server's library cannot be told from the ClientHello$/],
  ['on the capturing host of a capture without process records', 'client', input({ ja4: javaJa4, local: true }), FILE,
    { library: 'java-jsse', via: 'fingerprint', confidence: 1, plaintext: false }, /^the client is on the capturing host, but this capture has no process records \(it was not made by the tapscope helper\)$/],
  // a proxy relaying another client's connection (a PROXY protocol header names that client): the hello is that client's
  ['relay on OpenSSL forwarding a Java client\'s TLS: the fingerprint\'s library, not the proxy\'s', 'client',
    input({ process: proc('openssl', attached), ja4: javaJa4, relayFor: '10.0.0.7:51234', local: true }), EBPF,
    { library: 'java-jsse', via: 'fingerprint', confidence: 1, plaintext: false },
    /^this connection relays TLS for 10\.0\.0\.7:51234 \(its PROXY protocol header names that client\): the ClientHello is that client's, and a proxy that forwards TLS as it is has no plaintext of its own — the plaintext is at the TLS's ends, that client's own connection \(when captured\) and this connection's server$/],
  ['relay whose own hook read the connection (it terminates TLS): the hook', 'client',
    input({ process: proc('openssl', attached), plaintextSeen: { library: 'openssl', bytes: 90 }, ja4: curlJa4, relayFor: '10.0.0.7:51234' }), EBPF,
    { library: 'openssl', via: 'hook', plaintext: true }, null],
  ['relay, unknown fingerprint', 'client', input({ relayFor: '[2001:db8::7]:443', ja4: 't13d0101h2_000000000001_000000000001' }), AFP,
    { library: 'unknown', via: 'fingerprint', confidence: 0, plaintext: false }, /^this connection relays TLS for \[2001:db8::7\]:443 .*; its ClientHello fingerprint \(t13d0101h2_000000000001_000000000001\) is not in the fingerprint table$/],
  ['a header on the server side is no relay of the server', 'server', input({ process: proc('openssl', attached), relayFor: '10.0.0.7:51234' }), EBPF,
    { library: 'openssl', via: 'process', plaintext: false }, /^openssl hook attached but saw no reads or writes on this connection/],
  ['server process without TLS library', 'server', input({ process: proc(null) }), EBPF,
    { library: 'unknown', via: 'fingerprint', confidence: 0, plaintext: false }, /^no TLS library found in the server process/],
];

describe('decideSide', () => {
  for (const [name, side, inp, ctx, want, reason] of rows) {
    it(name, () => {
      const v = decideSide(side, inp, ctx);
      expect(v).not.toBeNull();
      expect(v).toMatchObject(want);
      if (reason) expect(v!.reason).toMatch(reason);
      else expect(v!.reason).toBeNull();
      // a verdict without plaintext always says why
      if (!v!.plaintext) expect(v!.reason?.length ?? 0).toBeGreaterThan(10);
    });
  }
});

describe('verdicts from the fingerprint alone', () => {
  it('are shared per side and JA4, frozen, and never stand in for process or hook evidence', () => {
    const none = { process: null, plaintextSeen: null };
    const a = decideSide('client', { ...none, ja4: curlJa4 }, EBPF)!;
    expect(decideSide('client', { ...none, ja4: curlJa4 }, AFP)).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
    expect(decideSide('client', { ...none, ja4: 't13d0000h2_000000000000_000000000000' }, EBPF)).not.toBe(a);
    expect(decideSide('server', { ...none, ja4: curlJa4 }, EBPF)).not.toBe(a);
    // the server side never looks at the ClientHello: one verdict for every JA4
    expect(decideSide('server', { ...none, ja4: curlJa4 }, EBPF)).toBe(decideSide('server', { ...none, ja4: null }, EBPF));
    const hooked = decideSide('client', { process: null, plaintextSeen: { library: 'openssl', bytes: 10 }, ja4: curlJa4 }, EBPF)!;
    expect(hooked).toMatchObject({ via: 'hook', plaintext: true });
    expect(Object.isFrozen(hooked)).toBe(false);
  });
});

describe('JA4 lookup over the generated table', () => {
  it('has entries from real clients of several libraries', () => {
    const libs = new Set(ja4Entries().map((e) => e.library));
    expect(libs.size).toBeGreaterThanOrEqual(5);
    expect(ja4Entries().every((e) => e.source === 'captured')).toBe(true);
  });
  it('every entry maps back to its own library', () => {
    for (const e of ja4Entries()) expect(lookupJa4(e.ja4)?.library, e.client).toBe(e.library);
  });
  it('same cipher and extension hashes with another SNI/ALPN is a weaker match', () => {
    const [, b, c] = curlJa4.split('_');
    const m = lookupJa4(`t13i3111h1_${b}_${c}`);
    expect(m).toMatchObject({ library: 'openssl', confidence: 0.8 });
  });
  it('same a and cipher hash only is weaker still', () => {
    const [a, b] = curlJa4.split('_');
    expect(lookupJa4(`${a}_${b}_ffffffffffff`)).toMatchObject({ library: 'openssl', confidence: 0.5 });
  });
  it('unknown and malformed fingerprints give null', () => {
    expect(lookupJa4('t13d0101h2_000000000001_000000000001')).toBeNull();
    expect(lookupJa4('garbage')).toBeNull();
  });
});

describe('JA4 lookup with shared fingerprints (synthetic table)', () => {
  const e = (ja4: string, library: Ja4Entry['library'], client: string, libraryVersion: string | null = null): Ja4Entry =>
    ({ ja4, library, client, libraryVersion, source: 'test' });
  const lookup = buildJa4Lookup([
    e('t13d0101h2_aaaaaaaaaaaa_bbbbbbbbbbbb', 'openssl', 'a', '3.0'),
    e('t13d0101h2_aaaaaaaaaaaa_bbbbbbbbbbbb', 'openssl', 'b', '3.1'),
    e('t13d0101h2_aaaaaaaaaaaa_bbbbbbbbbbbb', 'boringssl', 'c'),
    e('t13d0202h2_cccccccccccc_dddddddddddd', 'gnutls', 'd', '3.7.9'),
  ]);
  it('a fingerprint shared by libraries picks the majority at lower confidence', () => {
    const m = lookup('t13d0101h2_aaaaaaaaaaaa_bbbbbbbbbbbb');
    expect(m).toMatchObject({ library: 'openssl', version: null, client: 'a, b' });
    expect(m!.confidence).toBeCloseTo(1 * (2 / 3) * 0.8, 2);
  });
  it('a unique fingerprint is certain and carries the version', () => {
    expect(lookup('t13d0202h2_cccccccccccc_dddddddddddd')).toEqual({ library: 'gnutls', version: '3.7.9', client: 'd', confidence: 1 });
  });
});

describe('normalizeLibrary', () => {
  it('maps ids and file names', () => {
    expect(normalizeLibrary('openssl')).toBe('openssl');
    expect(normalizeLibrary('libssl.so.3')).toBe('openssl');
    expect(normalizeLibrary('libgnutls.so.30')).toBe('gnutls');
    expect(normalizeLibrary('libnss3.so')).toBe('nss');
    // (NSS's libssl3 is not OpenSSL's libssl)
    expect(normalizeLibrary('libssl3.so')).toBe('nss');
    expect(normalizeLibrary('what')).toBe('unknown');
  });
});

describe('reasons as the per-library breakdown counts them', () => {
  const late = (ms: number): string => decideSide('client', input({ process: proc('openssl', at(HELLO + ms)), handshakeAt: HELLO }), EBPF)!.reason!;

  it("counts late hooks as one reason whatever their delay, and other reasons as they are", () => {
    expect(new Set([late(3.2), late(45), late(2250)].map(reasonGroup))).toEqual(new Set([
      "the openssl hook (/x/libssl.so.3) attached after this connection's TLS handshake began: reads and writes made before then were not seen, and it saw none after — reconnect while capturing",
    ]));
    const saw = decideSide('server', input({ process: proc('openssl', attached) }), EBPF)!.reason!;
    expect(reasonGroup(saw)).toBe(saw);
  });

  it('counts the legs of one TLS session (NAT\'s, a relay\'s) under their cause: the linked leg\'s reason', () => {
    const cause = decideSide('client', input({ process: proc('java-jsse', [], { via: 'binary' }) }), AFP)!.reason!;
    const legs = ['10.0.0.1:40000', '10.0.0.1:40001'].map((from, i) => sameSessionReason(`00000000000000a${i}`, from, '10.96.0.10:443', cause));
    expect(legs[0]).toBe(`the same TLS session as flow 00000000000000a0 (10.0.0.1:40000 → 10.96.0.10:443), which knows more of this side: ${cause}`);
    expect(new Set([cause, ...legs].map(reasonGroup))).toEqual(new Set([cause]));
  });

  it('counts the connections a proxy relays as one reason whatever client they relay for', () => {
    const relay = (client: string): string => decideSide('client', input({ ja4: curlJa4, relayFor: client }), EBPF)!.reason!;
    expect(new Set(['198.51.100.7:51234', '198.51.100.8:40000', '[2001:db8::7]:443'].map(relay).map(reasonGroup))).toEqual(new Set([
      "this connection relays TLS for another client (its PROXY protocol header names that client): the ClientHello is that client's, and a proxy that " +
      "forwards TLS as it is has no plaintext of its own — the plaintext is at the TLS's ends, that client's own connection (when captured) and this connection's server",
    ]));
  });

  it('gives one breakdown row per cause', () => {
    const flow = (reason: string, bytes: number): Flow => ({
      bytes, tls: { client: { library: 'openssl', via: 'process', confidence: 0.9, plaintext: false, reason, version: null }, server: null },
    }) as unknown as Flow;
    const rows = libraryBreakdown([flow(late(3.2), 10), flow(late(45), 20), flow('java-jsse has no hook — x', 5)]).sides;
    expect(rows).toEqual([{ library: 'openssl', side: 'client', flows: 3, bytes: 35, plaintextFlows: 0, reasons: {
      [reasonGroup(late(1))]: 2, 'java-jsse has no hook — x': 1,
    } }]);
  });
});
