// The flow record: what every consumer (CLI `flows --json`, filter language, UI, exports) sees of a flow.
// Field names are part of the CLI contract; add fields, never rename them.

export const TLS_LIBRARIES = [
  'openssl', 'boringssl', 'gnutls', 'nss', 'go-crypto-tls', 'java-jsse', 'rustls', 'schannel', 'unknown',
] as const;
export type TlsLibrary = (typeof TLS_LIBRARIES)[number];

export type VerdictSource = 'hook' | 'process' | 'fingerprint';

/** Who a database connection logs in as (src/dissect/db-prelude.ts reads it). */
export interface DbLogin {
  user: string | null;
  /** Postgres: the database asked for (the user's name when none is); MySQL, SQL Server: the one given at login, else null */
  database: string | null;
  /** Postgres' application_name, SQL Server's application name, when the client sent one */
  application: string | null;
}

export interface Endpoint {
  ip: string;
  port: number;
}

/** What a PROXY protocol header said (src/dissect/proxy-protocol.ts reads it). */
export interface ProxiedFor {
  version: 1 | 2;
  src: Endpoint | null;
  dst: Endpoint | null;
  /** v2's AUTHORITY: the host name the client asked the proxy for (its TLS SNI, or Host) */
  authority?: string;
  /** v2's ALPN: the application protocol the client and the proxy agreed on */
  alpn?: string;
  /**
   * v2's SSL: the client reached the proxy over TLS, which ended there (the proxy terminated it: this connection
   * carries it decrypted, or encrypted anew); its version and cipher, and the client certificate's common name, as
   * the proxy tells them (each null when it does not)
   */
  tls?: { version: string | null; cipher: string | null; clientCertCn: string | null };
}

export interface ProcessRef {
  pid: number;
  comm: string;
  exe: string | null;
  cgroup?: string | null;
  containerId?: string | null;
}

export interface PodRef {
  namespace: string;
  name: string;
  workload?: string | null;
  /** the node the pod runs on (its spec.nodeName); null for a Service, absent in sessions saved before it was kept */
  node?: string | null;
}

/** The verdict for one side (client or server) of a TLS flow. */
export interface TlsSideVerdict {
  library: TlsLibrary;
  via: VerdictSource;
  /** 0..1 */
  confidence: number;
  plaintext: boolean;
  /**
   * Where the plaintext came from, when it was captured: 'hook', this side's own library hook read it; 'keylog', the
   * packets were decrypted with a key log's secrets (the hook, if any, did not read it). `via` still says how the
   * library was told.
   */
  plaintextFrom?: 'hook' | 'keylog' | null;
  /** Why plaintext was not captured; null when it was. */
  reason: string | null;
  /** Library version when known (from the mapped file name or fingerprint data). */
  version?: string | null;
}

export interface TlsInfo {
  sni: string | null;
  alpn: string[];
  version: string | null;
  cipher: string | null;
  ja3: string | null;
  ja3Hash: string | null;
  ja4: string | null;
  client: TlsSideVerdict | null;
  server: TlsSideVerdict | null;
  /** ALPN protocol the server selected (ServerHello), when seen. `alpn` is what the client offered. */
  negotiatedAlpn?: string | null;
  /**
   * The id of another flow that carried this TLS session too (the same ClientHello, its random included): the other
   * leg of a NAT (a connection to a service address, seen again after DNAT) or of a proxy relaying TCP. Each side's
   * verdict is the leg's that knows more (a hook's plaintext, the process).
   */
  sameSessionAs?: string;
  /**
   * True when the connection was taken up in the middle (open before the capture began) and its bytes are TLS
   * records: its handshake was not seen, so no SNI, JA3/JA4, version or cipher; its sides are judged by their
   * processes and hooks.
   */
  midstream?: boolean;
  /**
   * True when the server answered the client's ClientHello with a HelloRetryRequest (RFC 8446 §4.1.4: it asks for
   * another hello, mostly for a key share of another group): `version` and `cipher` are then the real ServerHello's,
   * which answers the client's second hello, and stay null when none was seen; SNI, ALPN, JA3 and JA4 are the first
   * hello's. Absent otherwise.
   */
  helloRetry?: boolean;
  /**
   * With a key log (SSLKEYLOGFILE lines given to the command, or a capture's Decryption Secrets Blocks): whether this
   * connection's records were decrypted with its secrets. Absent without a key log.
   */
  keylog?: KeyLogStatus;
  /**
   * Events of the TLS hooks (decrypted records among them) that the helper's eBPF ring buffer dropped, on this flow's
   * node, while the flow was open (within the second its statistics counted them): its plaintext may be incomplete, or
   * missing. Absent when there were none.
   */
  hookEventsLost?: number;
}

/**
 * A TLS connection against a key log: 'decrypted' (its records read with its secrets; the sides whose records held
 * application data have plaintext), 'no-secrets' (the log has none for its client random, or no ClientHello was seen
 * to find them by), 'failed' (secrets found, records not decrypted: reason says why).
 */
export interface KeyLogStatus {
  status: 'decrypted' | 'no-secrets' | 'failed';
  /** null when decrypted */
  reason: string | null;
  /** application data records decrypted, both directions (early data's among them) */
  records: number;
  /** the client's TLS 1.3 early data (0-RTT), when it sent some */
  earlyData?: EarlyDataStatus;
}

/**
 * The client's TLS 1.3 early data (0-RTT: application data sent with its hello when it resumes a session, RFC 8446
 * §2.3; QUIC's 0-RTT packets): 'decrypted' (read with its CLIENT_EARLY_TRAFFIC_SECRET, part of the client's plaintext),
 * 'rejected' (the server declined it: not part of what the server read; a client sends what it still wants again after
 * the handshake), 'not-decrypted' (sent, not read: reason says why).
 */
export interface EarlyDataStatus {
  status: 'decrypted' | 'rejected' | 'not-decrypted';
  /** its records (QUIC: its 0-RTT packets) */
  records: number;
  /** null unless not-decrypted */
  reason: string | null;
}

export interface HttpExchangeSummary {
  method: string | null;
  host: string | null;
  path: string | null;
  status: number | null;
  /**
   * Its request's or response's head came, its end did not: the capture ended inside it (a body still coming, an
   * HTTP/2 or HTTP/3 stream not ended), or its HTTP/1 connection closed or was reset before a body's end (a download
   * cut off; the detail's unfinishedReason says which). The status, if any, is the response head's. Absent otherwise.
   */
  unfinished?: true;
  /**
   * Its HTTP/2 stream was reset (RST_STREAM): by which side, and the error code's name (CANCEL: a client gave up on the
   * answer, or a gRPC call was cancelled; REFUSED_STREAM: the server did not take it up). Absent otherwise.
   */
  reset?: StreamReset;
  /**
   * HTTP/1: what of its request or response could not be read, and so was not ("request: ..." or "response: ...", both
   * joined by "; "): a start line that is none (a request's method is its first word, its path null; a response's status
   * 0), a head past 64 KiB, a Content-Length that is no length (its body, whose end is then unknown). Absent otherwise.
   */
  malformed?: string;
}

export interface StreamReset {
  by: 'client' | 'server';
  error: string;
}

/** One DNS question and its answer as seen in a flow (UDP or TCP port 53). */
export interface DnsSummary {
  id: number;
  query: string | null;
  type: string | null;
  /** null until the response is seen */
  rcode: string | null;
  /** "TYPE data" per answer record */
  answers: string[];
  /**
   * The response was cut short in the capture (a snap length; the first fragment of a datagram, fragments not being
   * reassembled): only the answers that came whole are listed
   */
  cut?: true;
  /**
   * A record of the response could not be read (a name whose compression pointers loop or lead out of the message, a
   * bad label, data its type's reader refuses): only the answers before it are listed, as tshark lists them
   */
  malformed?: true;
}

/**
 * How a TCP connection went, from the flags of its packets (Zeek's conn_state, in words):
 * - no-reply: the client's SYN, and nothing back from the server;
 * - refused: the SYN answered by a RST (nothing listens on the port, or a firewall refuses);
 * - established: the handshake completed, and the connection neither closed nor reset (yet);
 * - closing: one side sent its FIN; closed: both did;
 * - reset: a RST after the handshake (resetBy says which side sent it);
 * - midstream: no SYN was captured (the capture began after the handshake) and no FIN or RST since.
 */
export type TcpState = 'no-reply' | 'refused' | 'established' | 'closing' | 'closed' | 'reset' | 'midstream';

export interface TcpSummary {
  state: TcpState;
  /** the side that sent the first RST; null when none did */
  resetBy: 'client' | 'server' | null;
  /**
   * Segments that carried bytes (or a SYN or FIN) again, before the highest sequence number seen in their direction:
   * what Wireshark marks a retransmission (spurious or not; keep-alives are not), counted on the interface the flow
   * was first seen on, so that a capture of several interfaces does not count the copies of one packet
   */
  retransmissions: number;
}

export interface Flow {
  id: string;
  transport: 'tcp' | 'udp';
  src: Endpoint;
  dst: Endpoint;
  /** ms since epoch */
  firstSeen: number;
  lastSeen: number;
  packets: number;
  bytes: number;
  /** The process owning the client's end of the connection; the server's when the client's is unknown (processSide says which). */
  process: ProcessRef | null;
  /**
   * Whose process `process` is: 'client', or 'server' when only the server's end was attributed (a client that exited
   * before it was polled, or one on another machine). null without a process. Present on every analyzed flow (filter
   * `process.side`).
   */
  processSide?: 'client' | 'server' | null;
  /** The process owning the other (server) end when it is on a captured node too. */
  peerProcess?: ProcessRef | null;
  node: string;
  pod: PodRef | null;
  /** Application protocol: tls, http, http2, grpc, dns, ssh, quic, postgres, mysql, redis, mssql, smtp, imap, pop3, ftp, nntp, sieve, ldap, xmpp, nats, unknown (all but redis from postgres on may carry tls) */
  app: string;
  tls: TlsInfo | null;
  http: HttpExchangeSummary[];
  /** Exchanges beyond the per-flow cap of `http` (long keep-alive connections), counted but not listed. */
  httpOmitted?: number;
  /**
   * HTTP/2 decoding of a side that stopped before the flow's end, why and where (an HPACK or framing error, bytes the
   * capture lost, which HPACK's table cannot be read past): that side's messages after it are missing. Absent otherwise.
   */
  httpStopped?: { side: 'client' | 'server'; reason: string }[];
  /** DNS questions and answers (app 'dns'), capped per flow. */
  dns?: DnsSummary[];
  /** Who a database connection (app postgres, mysql or mssql) logs in as, from its login message, plain or decrypted by the hooks. */
  db?: DbLogin;
  /**
   * The PROXY protocol header the client sent first (a load balancer or proxy relaying TCP, HAProxy's protocol,
   * version 1 or 2): the connection it relays for, its client (src) and the address that client reached (dst);
   * both null when the header names none (v1 UNKNOWN, v2 LOCAL). The flow's app, TLS and HTTP are read after it.
   */
  proxy?: ProxiedFor;
  /**
   * 'packets': captured packets carried this connection. 'hook-only': known only from decrypted TLS
   * records whose 5-tuple matched no captured packet (a process in another network namespace, pod-local
   * loopback when capturing on the host); packets and bytes then stay 0.
   */
  seenBy?: 'packets' | 'hook-only';
  /** TCP flows: how the connection went (null for UDP and for a hook-only flow, which no packet told of) */
  tcp?: TcpSummary | null;
  /**
   * Inode of the network namespace of a flow known only from hooks in a namespace other than the one the
   * packets were captured in, kept apart from a captured flow with the same 5-tuple: a loopback connection
   * (a pod's own 127.0.0.1), or one whose end another namespace's records already claimed (isolated
   * namespaces reusing addresses). Absent (null) otherwise: flows of the capture's own namespace, other
   * namespaces' non-loopback flows (they cross captured interfaces such as a pod's veth, and join by
   * 5-tuple), and captures that do not state namespaces.
   */
  netns?: number | null;
}

export interface LibraryBreakdownRow {
  library: TlsLibrary;
  side: 'client' | 'server';
  flows: number;
  bytes: number;
  plaintextFlows: number;
  /** reason -> number of flows without plaintext for that reason */
  reasons?: Record<string, number>;
}

/**
 * One library's flows, each counted once whichever side(s) the library is on: the flows (and their bytes) that
 * `tls.library == "X"` matches. A connection between two processes of the same library is one flow here, and one
 * row per side in LibraryBreakdownRow.
 */
export interface LibraryTotal {
  library: TlsLibrary;
  flows: number;
  bytes: number;
  /** flows whose plaintext was captured on a side this library made */
  plaintextFlows: number;
}

/** Every library's LibraryTotal, and the TLS flows with a library on either side, each counted once. */
export interface LibraryTotals {
  libraries: LibraryTotal[];
  flows: number;
  /** flows whose plaintext was captured on either side */
  plaintextFlows: number;
}
