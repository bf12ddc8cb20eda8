// The filter language's field table: every Flow field a filter can name, its value type, and how to
// read it from a Flow. Array-valued fields (ip, port, tls.alpn, http.*) match when any element does.
import type { Flow, TlsSideVerdict } from '../model/flow.js';

export type FieldType = 'string' | 'number' | 'ip' | 'bool';
export type FieldValue = string | number | boolean | null | undefined;

/** Per-flow values kept in typed arrays by the analyzer, indexed by the flow's arrival position. */
export interface FlowColumns {
  srcPort: Uint16Array;
  dstPort: Uint16Array;
  bytes: Float64Array;
  packets: Float64Array;
  /** TRANSPORTS index */
  transport: Uint8Array;
}

/** transport column codes */
export const TRANSPORTS = ['tcp', 'udp'] as const;

export interface FieldDef {
  type: FieldType;
  /** one value, or a list whose elements are each compared (any-match) */
  get: (f: Flow) => FieldValue | FieldValue[];
  /** for list fields: "does any element pass", without building the list (the hot path) */
  some?: (f: Flow, test: (v: FieldValue) => boolean) => boolean;
  help: string;
  /** the value is only current after the analyzer resolved the flow (process attribution, pod, TLS verdicts) */
  resolved?: true;
  /** the value never changes once the flow exists (addresses, ports, transport, node, id, firstSeen) */
  stable?: true;
  /** fields also kept as columns (one column, or two for "either" fields): filters read those */
  columns?: [keyof FlowColumns] | [keyof FlowColumns, keyof FlowColumns];
  /** for a text field kept as a column of codes: code -> text */
  codes?: readonly string[];
}

function side(name: 'client' | 'server'): Record<string, FieldDef> {
  const v = (f: Flow): TlsSideVerdict | null | undefined => f.tls?.[name];
  return {
    // (a yes/no field of a part a flow does not have is absent, as Wireshark's fields of a layer a packet lacks: `== false`
    // finds the flows that have the part and say no, not every flow without it)
    [`tls.${name}`]: { type: 'bool', get: (f) => (f.tls ? v(f) != null : undefined), help: `a ${name}-side TLS verdict exists`, resolved: true },
    [`tls.${name}.library`]: { type: 'string', get: (f) => v(f)?.library, help: `TLS library of the ${name}`, resolved: true },
    [`tls.${name}.via`]: { type: 'string', get: (f) => v(f)?.via, help: 'hook | process | fingerprint', resolved: true },
    [`tls.${name}.confidence`]: { type: 'number', get: (f) => v(f)?.confidence, help: '0..1', resolved: true },
    [`tls.${name}.plaintext`]: { type: 'bool', get: (f) => v(f)?.plaintext, help: `plaintext of the ${name} side was captured`, resolved: true },
    [`tls.${name}.plaintextFrom`]: {
      type: 'string', get: (f) => { const s = v(f); return s?.plaintext ? (s.plaintextFrom ?? 'hook') : null; },
      help: 'where its plaintext came from: "hook" (its library\'s hook) or "keylog" (decrypted with a key log)', resolved: true,
    },
    [`tls.${name}.reason`]: { type: 'string', get: (f) => v(f)?.reason, help: 'why plaintext was not captured', resolved: true },
    [`tls.${name}.version`]: { type: 'string', get: (f) => v(f)?.version, help: 'library version', resolved: true },
  };
}

export const FIELDS: Record<string, FieldDef> = {
  id: { type: 'string', get: (f) => f.id, help: 'flow id', stable: true },
  transport: { type: 'string', columns: ['transport'], codes: TRANSPORTS, get: (f) => f.transport, help: 'tcp | udp', stable: true },
  app: { type: 'string', get: (f) => f.app, help: 'tls, http, websocket, http2, grpc, dns, ssh, quic, dtls, postgres, mysql, redis, mssql, smtp, imap, pop3, ftp, nntp, sieve, ldap, xmpp, nats, unknown' },
  node: { type: 'string', get: (f) => f.node, help: 'node or host the flow was captured on', stable: true },
  seenBy: { type: 'string', get: (f) => f.seenBy ?? 'packets', help: 'packets | hook-only (known only from decrypted TLS records, no packet captured)' },
  netns: { type: 'number', get: (f) => f.netns ?? undefined, help: 'network namespace inode of a hook-only flow from a namespace other than the capture\'s (absent otherwise)' },
  'src.ip': { type: 'ip', get: (f) => f.src.ip, help: 'client address', stable: true },
  'src.port': { type: 'number', columns: ['srcPort'], get: (f) => f.src.port, help: 'client port', stable: true },
  'dst.ip': { type: 'ip', get: (f) => f.dst.ip, help: 'server address', stable: true },
  'dst.port': { type: 'number', columns: ['dstPort'], get: (f) => f.dst.port, help: 'server port', stable: true },
  tcp: { type: 'bool', get: (f) => f.transport === 'tcp', help: 'the flow is TCP (transport == tcp)', stable: true },
  udp: { type: 'bool', get: (f) => f.transport === 'udp', help: 'the flow is UDP (transport == udp)', stable: true },
  'tcp.port': { type: 'number', get: (f) => (f.transport === 'tcp' ? [f.src.port, f.dst.port] : []), some: (f, t) => f.transport === 'tcp' && (t(f.src.port) || t(f.dst.port)), help: 'either port of a TCP flow', stable: true },
  'udp.port': { type: 'number', get: (f) => (f.transport === 'udp' ? [f.src.port, f.dst.port] : []), some: (f, t) => f.transport === 'udp' && (t(f.src.port) || t(f.dst.port)), help: 'either port of a UDP flow', stable: true },
  ip: { type: 'ip', get: (f) => [f.src.ip, f.dst.ip], some: (f, t) => t(f.src.ip) || t(f.dst.ip), help: 'either address', stable: true },
  port: { type: 'number', columns: ['srcPort', 'dstPort'], get: (f) => [f.src.port, f.dst.port], some: (f, t) => t(f.src.port) || t(f.dst.port), help: 'either port', stable: true },
  bytes: { type: 'number', columns: ['bytes'], get: (f) => f.bytes, help: 'bytes in both directions' },
  packets: { type: 'number', columns: ['packets'], get: (f) => f.packets, help: 'packets in both directions' },
  firstSeen: { type: 'number', get: (f) => f.firstSeen, help: 'ms since epoch', stable: true },
  lastSeen: { type: 'number', get: (f) => f.lastSeen, help: 'ms since epoch' },
  duration: { type: 'number', get: (f) => f.lastSeen - f.firstSeen, help: 'ms between first and last packet' },
  pod: { type: 'bool', get: (f) => f.pod != null, help: 'the flow belongs to a pod', resolved: true },
  'pod.namespace': { type: 'string', get: (f) => f.pod?.namespace, help: 'Kubernetes namespace', resolved: true },
  'pod.name': { type: 'string', get: (f) => f.pod?.name, help: 'Kubernetes pod name', resolved: true },
  'pod.workload': { type: 'string', get: (f) => f.pod?.workload, help: 'owning workload', resolved: true },
  process: { type: 'bool', get: (f) => f.process != null, help: 'the owning process is known', resolved: true },
  'process.pid': { type: 'number', get: (f) => f.process?.pid, help: 'process id', resolved: true },
  'process.comm': { type: 'string', get: (f) => f.process?.comm, help: 'process name', resolved: true },
  'process.exe': { type: 'string', get: (f) => f.process?.exe, help: 'executable path', resolved: true },
  'process.container': { type: 'string', get: (f) => f.process?.containerId, help: 'container id', resolved: true },
  'process.cgroup': { type: 'string', get: (f) => f.process?.cgroup, help: 'cgroup path', resolved: true },
  'process.side': {
    type: 'string', get: (f) => f.processSide, resolved: true,
    help: 'whose end the process owns: client, or server when only the server\'s was found (absent without a process)',
  },
  'peer.pid': { type: 'number', get: (f) => f.peerProcess?.pid, help: 'server-side process id', resolved: true },
  'peer.comm': { type: 'string', get: (f) => f.peerProcess?.comm, help: 'server-side process name', resolved: true },
  'peer.exe': { type: 'string', get: (f) => f.peerProcess?.exe, help: 'server-side executable path', resolved: true },
  tls: { type: 'bool', get: (f) => f.tls != null, help: 'the flow is TLS' },
  'tls.sni': { type: 'string', get: (f) => f.tls?.sni, help: 'server name from the ClientHello' },
  'tls.alpn': { type: 'string', get: (f) => f.tls?.alpn ?? [], some: (f, t) => f.tls?.alpn.some(t) ?? false, help: 'ALPN protocols offered' },
  'tls.alpn.negotiated': { type: 'string', get: (f) => f.tls?.negotiatedAlpn, help: 'ALPN protocol the server selected (TLS 1.2 and below)' },
  'tls.version': { type: 'string', get: (f) => f.tls?.version, help: 'negotiated version, e.g. "TLS 1.3"' },
  'tls.cipher': { type: 'string', get: (f) => f.tls?.cipher, help: 'negotiated cipher suite' },
  'tls.ja3': { type: 'string', get: (f) => [f.tls?.ja3Hash, f.tls?.ja3], help: 'JA3 hash (or full string)' },
  'tls.ja4': { type: 'string', get: (f) => f.tls?.ja4, help: 'JA4 fingerprint' },
  'tls.library': { type: 'string', get: (f) => [f.tls?.client?.library, f.tls?.server?.library], help: 'TLS library of either side', resolved: true },
  'tls.plaintext': { type: 'bool', get: (f) => [f.tls?.client?.plaintext, f.tls?.server?.plaintext], help: 'plaintext captured on either side', resolved: true },
  ...side('client'),
  ...side('server'),
  http: { type: 'bool', get: (f) => f.http.length > 0, help: 'the flow carried HTTP exchanges' },
  'http.method': { type: 'string', get: (f) => f.http.map((h) => h.method), some: (f, t) => f.http.some((h) => t(h.method)), help: 'request method of any exchange' },
  'http.host': { type: 'string', get: (f) => f.http.map((h) => h.host), some: (f, t) => f.http.some((h) => t(h.host)), help: 'Host / :authority of any exchange' },
  'http.path': { type: 'string', get: (f) => f.http.map((h) => h.path), some: (f, t) => f.http.some((h) => t(h.path)), help: 'request path of any exchange' },
  'http.status': { type: 'number', get: (f) => f.http.map((h) => h.status), some: (f, t) => f.http.some((h) => t(h.status)), help: 'response status of any exchange' },
  'http.stopped': { type: 'string', get: (f) => f.httpStopped?.map((x) => `${x.side}: ${x.reason}`), help: 'why HTTP/2 decoding of a side stopped (an HPACK or framing error, bytes the capture lost), as "client: ..." or "server: ..."; its later messages are missing' },
  'http.reset': { type: 'string', get: (f) => (f.http.length > 0 ? f.http.flatMap((h) => (h.reset ? [`${h.reset.by} ${h.reset.error}`] : [])) : undefined), help: 'an exchange whose HTTP/2 stream was reset (RST_STREAM): "client CANCEL", "server REFUSED_STREAM", ...' },
  'http.unfinished': { type: 'bool', get: (f) => (f.http.length > 0 ? f.http.some((h) => h.unfinished === true) : undefined), help: 'an exchange was still going when the capture ended (its body, or its HTTP/2 or HTTP/3 stream, not ended), or its HTTP/1 connection closed or was reset before its body\'s end' },
  'http.malformed': {
    type: 'string', get: (f) => (f.http.length > 0 ? f.http.flatMap((h) => (h.malformed ? [h.malformed] : [])) : undefined),
    some: (f, t) => f.http.some((h) => h.malformed !== undefined && t(h.malformed)),
    help: 'what of an HTTP/1 exchange could not be read, as "request: ..." or "response: ..." (a start line that is none, a head past 64 KiB, a Content-Length that is no length); present only on such exchanges',
  },
  'tcp.state': { type: 'string', get: (f) => f.tcp?.state, help: 'how the TCP connection went: no-reply, refused, established, closing, closed, reset, midstream' },
  'tcp.resetBy': { type: 'string', get: (f) => f.tcp?.resetBy, help: 'client | server: the side that sent the first RST' },
  'tcp.retransmissions': { type: 'number', get: (f) => f.tcp?.retransmissions, help: 'segments sent again (as Wireshark marks retransmissions; keep-alives not)' },
  'db.user': { type: 'string', get: (f) => f.db?.user, help: 'the user a database connection (postgres, mysql, mssql) logs in as' },
  'db.name': { type: 'string', get: (f) => f.db?.database, help: 'the database it asks for at login' },
  'db.application': { type: 'string', get: (f) => f.db?.application, help: 'the application name a Postgres (application_name) or SQL Server client gives' },
  'tls.keylog': { type: 'string', get: (f) => f.tls?.keylog?.status, help: 'with a key log (--keylog, or the capture\'s secrets block): decrypted, no-secrets or failed' },
  'tls.early_data': { type: 'string', get: (f) => f.tls?.keylog?.earlyData?.status, help: 'with a key log, a client that sent TLS 1.3 early data (0-RTT): decrypted, rejected (declined by the server) or not-decrypted' },
  'tls.midstream': { type: 'bool', get: (f) => (f.tls ? f.tls.midstream === true : undefined), help: 'TLS taken up in the middle: the connection was open before the capture began, its handshake not seen' },
  'tls.helloRetry': { type: 'bool', get: (f) => (f.tls ? f.tls.helloRetry === true : undefined), help: 'the server asked for another ClientHello (a HelloRetryRequest); version and cipher are the real ServerHello\'s' },
  'tls.hookEventsLost': {
    type: 'number', get: (f) => (f.tls ? f.tls.hookEventsLost ?? 0 : undefined), resolved: true,
    help: "events of the TLS hooks the helper's eBPF ring buffer dropped while the flow was open: its plaintext may be incomplete",
  },
  'tls.sameSessionAs': { type: 'string', get: (f) => f.tls?.sameSessionAs, help: 'the id of another flow that carried the same TLS session (the other leg of a NAT or of a relaying proxy)', resolved: true },
  proxy: { type: 'bool', get: (f) => f.proxy !== undefined, help: 'the client sent a PROXY protocol header first (a load balancer relaying for another client)' },
  'proxy.version': { type: 'number', get: (f) => f.proxy?.version, help: 'the PROXY protocol header\'s version: 1 (text) or 2 (binary)' },
  'proxy.src.ip': { type: 'ip', get: (f) => f.proxy?.src?.ip, help: 'the client the proxy relays for, from its PROXY protocol header' },
  'proxy.src.port': { type: 'number', get: (f) => f.proxy?.src?.port, help: 'that client\'s port' },
  'proxy.dst.ip': { type: 'ip', get: (f) => f.proxy?.dst?.ip, help: 'the address that client reached (the proxy\'s, or the service\'s it stands for)' },
  'proxy.dst.port': { type: 'number', get: (f) => f.proxy?.dst?.port, help: 'that address\'s port' },
  'proxy.authority': { type: 'string', get: (f) => f.proxy?.authority, help: 'the host name the client asked the proxy for (PROXY v2 AUTHORITY: its SNI)' },
  'proxy.alpn': { type: 'string', get: (f) => f.proxy?.alpn, help: 'the application protocol the client and the proxy agreed on (PROXY v2 ALPN)' },
  'proxy.tls': { type: 'bool', get: (f) => (f.proxy ? f.proxy.tls !== undefined : undefined), help: 'the client reached the proxy over TLS, which ended there (PROXY v2 SSL)' },
  'proxy.tls.version': { type: 'string', get: (f) => f.proxy?.tls?.version, help: 'the TLS version of the client\'s connection to the proxy, as the proxy tells it (TLSv1.3)' },
  'proxy.tls.cipher': { type: 'string', get: (f) => f.proxy?.tls?.cipher, help: 'the cipher of the client\'s connection to the proxy, as the proxy tells it' },
  dns: { type: 'bool', get: (f) => (f.dns?.length ?? 0) > 0, help: 'the flow carried DNS messages' },
  'dns.query': { type: 'string', get: (f) => (f.dns ?? []).map((d) => d.query), some: (f, t) => (f.dns ?? []).some((d) => t(d.query)), help: 'queried name of any question' },
  'dns.type': { type: 'string', get: (f) => (f.dns ?? []).map((d) => d.type), some: (f, t) => (f.dns ?? []).some((d) => t(d.type)), help: 'query type (A, AAAA, ...)' },
  'dns.rcode': { type: 'string', get: (f) => (f.dns ?? []).map((d) => d.rcode), some: (f, t) => (f.dns ?? []).some((d) => t(d.rcode)), help: 'response code (NOERROR, NXDOMAIN, ...)' },
  'dns.malformed': { type: 'bool', get: (f) => (f.dns && f.dns.length > 0 ? f.dns.some((d) => d.malformed === true) : undefined), help: 'a DNS response had a question or record that could not be read (a bad compression pointer or label, data its type\'s reader refuses): only what came before it is listed' },
  'dns.answer': { type: 'string', get: (f) => (f.dns ?? []).flatMap((d) => d.answers), some: (f, t) => (f.dns ?? []).some((d) => d.answers.some(t)), help: 'any answer record, "TYPE data"' },
};

/**
 * Wireshark's display filter names for what a flow's fields hold, for a Wireshark user's filters: each reads as the
 * field it stands for.
 */
export const WIRESHARK_NAMES: Readonly<Record<string, string>> = {
  'ip.addr': 'ip',
  'ipv6.addr': 'ip',
  'http.request.method': 'http.method',
  'http.request.uri': 'http.path',
  'http.response.code': 'http.status',
  'tls.handshake.extensions_server_name': 'tls.sni',
  'tls.handshake.ja4': 'tls.ja4',
  'dns.qry.name': 'dns.query',
};

const ADDRESSES = 'a flow has a client and a server: src.ip is the client\'s address, dst.ip the server\'s, ip either';
const PORTS = 'a flow has a client and a server: src.port is the client\'s port, dst.port the server\'s, port (tcp.port, udp.port) either';

/** Wireshark's per-packet fields that a flow has no one value of, with what to use instead. */
export const PACKET_FIELDS: Readonly<Record<string, string>> = {
  'ip.src': ADDRESSES, 'ip.dst': ADDRESSES, 'ipv6.src': ADDRESSES, 'ipv6.dst': ADDRESSES,
  'tcp.srcport': PORTS, 'tcp.dstport': PORTS, 'udp.srcport': PORTS, 'udp.dstport': PORTS,
};

/** Up to three known field names closest to `name` (edit distance), for "did you mean" hints. */
export function suggestFields(name: string): string[] {
  const scored = Object.keys(FIELDS)
    .map((k) => ({ k, d: distance(name, k) }))
    .filter(({ k, d }) => d <= Math.max(2, Math.floor(k.length / 3)) || k.startsWith(`${name}.`))
    .sort((a, b) => a.d - b.d || a.k.localeCompare(b.k));
  return scored.slice(0, 3).map((s) => s.k);
}

function distance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length]!;
}
