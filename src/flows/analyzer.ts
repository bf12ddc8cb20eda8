// The flow table: pcapng blocks in (one or more node streams), Flow records out. Decodes packets, orients
// and counts flows, reassembles TCP for the dissectors (TLS hellos, HTTP/1, HTTP/2, DNS), matches the
// helper's decrypted plaintext records and metadata blocks to flows, and gives each TLS side its verdict.
import {
  parseClientHello, parseServerHello, afterHelloRetry, sslv2HelloEnd, ja3, ja4, helloFields, tlsVersionName, cipherName, midstreamRecords, MAX_RECORD, RECORD_HEADER, type ClientHello, type HelloTransport,
  type ServerHello,
} from '../dissect/tls.js';
import { isUtf8 } from 'node:buffer';
import { Http1Parser, contentCodings, headerValue, looksBinary, looksLikeHttp1, mayGrowIntoHttp1, type Http1Options, type HttpMessage } from '../dissect/http1.js';
import { Http2Parser, looksLikeHttp2, type H2Reset } from '../dissect/http2.js';
import { beginsDnsMessage, parseDns, type DnsMessage } from '../dissect/dns.js';
import { Pieces } from '../util/pieces.js';
import { QuicInitialParser, looksLikeQuicInitial } from '../dissect/quic.js';
import { FragmentTable, type Datagram } from './fragments.js';
import { QuicDecryptor } from '../dissect/quic-decrypt.js';
import { DtlsHandshake, looksLikeDtlsClientHello } from '../dissect/dtls.js';
import { INCOMPLETE, dbLogin, dbPrelude, type DbApp } from '../dissect/db-prelude.js';
import { ldapPrelude, natsPrelude, tdsPrelude, textPrelude, xmppPrelude, type UpgradeApp, type UpgradePrelude } from '../dissect/starttls.js';
import { endpointText } from '../util/ip.js';
import { proxyHeader } from '../dissect/proxy-protocol.js';
import { decideSide, sameSessionReason } from '../verdict/index.js';
import { KeyLog, RecordDecryptor, connectionKeys, helloRandom, secretsComplete, type ConnectionSecrets, type HandshakeParams } from '../dissect/tls-keylog.js';
import type { DnsSummary, Endpoint, Flow, HttpExchangeSummary, KeyLogStatus, PodRef, TlsSideVerdict, TcpState, TcpSummary } from '../model/flow.js';
import { TRANSPORTS, type FlowColumns } from '../filter/fields.js';
import type { HttpExchangeDetail, HttpMessageInfo, FlowDetail } from '../api/contract.js';
import { LINKTYPE_WIRESHARK_UPPER_PDU, SECRETS_TLS_KEYLOG, TAPSCOPE_PEN, type PacketBlock, type PcapngBlock } from '../pcapng/types.js';
import type { RawPacketSink, RawRecordSink } from '../pcapng/parser.js';
import { readPduHead, recordWritten, tlsAttrsOf, TlsAttrs, type PduHead } from '../pcapng/exported-pdu.js';
import { DecodedPacket, decodePacket, PROTO_TCP, PROTO_UDP, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from './decode.js';
import { outOfOrder } from './tcp-order.js';
import { TcpReassembler, DEFAULT_LIMITS, type ReassemblyLimits, type StreamSink } from './reassembly.js';
import { NodeMeta, isLoopback, normalizeIp } from './node-meta.js';
import { isTapscopeError } from '../errors.js';
import { PairSet, TupleIndex, type KeyIp } from './tuple-index.js';
import { FirstBytes, NO_BYTES } from './first-bytes.js';

export interface AnalyzerOptions {
  /** Bytes per direction buffered for protocol detection and the TLS hellos before dissection gives up (default 64 KiB). */
  dissectLimit?: number;
  /** Exchanges kept per flow with headers and bodies (default 200); more are only summarised. */
  maxExchangesPerFlow?: number;
  /**
   * Keep each exchange's headers and bodies (default true): the flow detail and the HAR export show them.
   * Without, exchanges keep only what matching responses to requests needs; flows are the same.
   */
  details?: boolean;
  reassembly?: ReassemblyLimits;
  /**
   * Called for every packet (and decrypted record) with the id of the flow it was counted in. A record that no flow
   * takes yet but may (a DTLS server's, before its connection's first datagram) has flowId null and `kept` a number
   * (-1 for every other block): onRecordSettled says later which flow it joined.
   */
  onPacket?: ((block: PacketBlock, flowId: string | null, kept: number) => void) | null;
  /** A kept record (see onPacket) joined flow `flowId`, or was given up (null: no such flow came, or the capture ended). */
  onRecordSettled?: ((kept: number, flowId: string | null) => void) | null;
  /**
   * Keep only the flows of one partition of `count` (a hash of the 5-tuple that both directions share), and
   * count only their packets; packets of no flow belong to partition 0. The partitions of one capture add
   * up to the whole analysis: see arrivalOrigins() to interleave their flows in creation order.
   */
  partition?: { index: number; count: number } | null;
  /**
   * TLS secrets (SSLKEYLOGFILE lines) to decrypt connections with; a capture's own Decryption Secrets Blocks add to
   * it. A connection with secrets has its records decrypted and its HTTP read from them (tls.keylog).
   */
  keyLog?: KeyLog | null;
}

export interface AnalyzerCounters {
  packets: number;
  bytes: number;
  nonIp: number;
  otherProto: number;
  fragments: number;
  tlsRecords: number;
  tlsRecordsUnmatched: number;
  retransmittedBytes: number;
  gaps: number;
}

type App = 'classify' | 'tls' | 'http' | 'http2' | 'grpc' | 'dns' | 'ssh' | 'quic' | 'dtls' | DbApp | UpgradeApp | 'unknown';

/** the databases whose login message names the user (and database), plain or decrypted */
const LOGIN_APPS: ReadonlySet<string> = new Set(['postgres', 'mysql', 'mssql']);
/**
 * The client's decrypted messages a connection keeps while its protocol is not named yet, for its database's login
 * (FlowExtra.loginKept): a login is among a connection's first messages, and is small (a few hundred bytes). Small
 * caps, since a connection whose packets never come (a capture filter leaving them out) keeps them to the end
 */
const LOGIN_KEPT_RECORDS = 3;
const LOGIN_KEPT_BYTES = 2048;

/** Where the look for TLS records in each direction of a connection taken up in the middle resumes (midstreamRecords). */
function midstreamScan(fs: FlowState): { c: { from: number }; s: { from: number } } {
  const x = extra(fs);
  return (x.midstreamScan ??= { c: { from: 0 }, s: { from: 0 } });
}

/** bytes of a connection taken up in the middle to look through for its first whole TLS record: two of the longest */
const MIDSTREAM_SCAN = 2 * (MAX_RECORD + RECORD_HEADER);

const BODY_TEXT_CAP = 16 * 1024;
// why: bodies are for reading in the flow detail; a budget per flow keeps a chatty API connection from
// growing memory with its traffic.
const BODY_BUDGET = 256 * 1024;
const MAX_DNS_PER_FLOW = 50;
const MAX_HTTP_SUMMARIES = 1000;
// why: a ClientHello with post-quantum key shares spans two or three Initials; a client that never
// completes one (or a damaged capture) must not keep a parser forever
const MAX_QUIC_DATAGRAMS = 8;
/** Datagrams of a DTLS flow read for its hellos (a HelloVerifyRequest round, retransmissions, a fragmented hello). */
const MAX_DTLS_DATAGRAMS = 16;
const QUIC_PORT = 443;
const HOOK_ONLY_NOTE = 'note: this connection was seen only through TLS hooks, no packet of it was captured (it ran in another network namespace, such as a container or pod, or on an interface the capture did not cover)';

type Side = 'client' | 'server';

/** Where a direction's reassembled stream goes: the analyzer, one object for all directions. */
interface StreamEvents {
  data(fs: FlowState, c2s: boolean, chunk: Buffer, ts: number): void;
  gap(fs: FlowState, c2s: boolean): void;
}

/**
 * Reassembly and parser state of one direction; allocated on first payload, replaced by DONE when finished.
 * It is its reassembler's sink itself (no sink object and closures per direction).
 */
class DirState implements StreamSink {
  reasm: TcpReassembler | null = null;
  head: Buffer | null = null;
  /** DNS over TCP: a message still incomplete, its length known (up to 64 KiB, in dozens of segments): its pieces */
  pieces: Pieces | null = null;
  /** DNS over TCP: its bytes are read as messages (in a connection taken up in the middle, once one begins them) */
  dnsFrom = false;
  http1: Http1Parser | null = null;
  http2: Http2Parser | null = null;
  /** a TLS direction decrypted with a key log's secrets: its records go here once its hello is read */
  keys: RecordDecryptor | null = null;
  /**
   * The sequence number of the direction's FIN while bytes before it are missing: the direction ends when they come (a
   * retransmission the capture saw after the FIN) or, when they never do, at the capture's end (see Analyzer.endDir)
   */
  finAt: number | null = null;
  constructor(private readonly events: StreamEvents | null, private readonly fs: FlowState | null, private readonly c2s: boolean, readonly done: boolean) {}
  data(chunk: Buffer, ts: number): void {
    this.events!.data(this.fs!, this.c2s, chunk, ts);
  }
  gap(): void {
    this.events!.gap(this.fs!, this.c2s);
  }
}

const DONE = Object.freeze(new DirState(null, null, false, true)) as DirState;
const NO_HTTP: Flow['http'] = Object.freeze([]) as unknown as Flow['http'];
const NO_ALPN = Object.freeze([]) as unknown as string[];
// why shared: an exchange's headers are replaced, never appended to
const NO_HEADERS = Object.freeze([]) as unknown as [string, string][];
const NO_ATTRS = Object.freeze(new TlsAttrs());

/**
 * `list` with `item` appended; an empty list is replaced by a new one of just that item. (`[]` and a push
 * reserve 17 slots, and most of these lists keep one item for the life of the flow: 136 bytes per list.)
 */
function add<T>(list: T[], item: T): T[] {
  if (list.length === 0) return [item];
  list.push(item);
  return list;
}

/** The plaintext one side's hook gave; netns: of the records that fed it, when they told it (see onTlsRecord). */
interface SidePlaintext { library: string; bytes: number; netns: number | null }

/** What the TLS hooks' records told of a flow; allocated on its first record. */
interface HookState {
  plaintext: { client: SidePlaintext | null; server: SidePlaintext | null };
  tlsPid: { client: { pid: number; comm: string } | null; server: { pid: number; comm: string } | null };
  decrypted: { c2s: DecryptedDir | null; s2c: DecryptedDir | null };
}

/** A decrypted record kept until its flow comes (see Analyzer.pendingRecords). */
interface PendingRecord { key: string; node: string; data: Buffer; tsMs: number; flags: number | null; comments: readonly string[]; kept: number }

const PENDING_RECORDS = 256;

/**
 * A decrypted TCP record that came before any packet of its connection, with no conn record naming its client: held
 * (see Analyzer.held) until a packet makes its flow, oriented by the packets, or HOLD_MS passed.
 */
interface HeldRecord { node: string; data: Buffer; tsMs: number; flags: number | null; comments: readonly string[]; kept: number }

/**
 * How long (capture time) a record waits for its connection's first packet: the helper writes packets up to 50 ms after
 * the records of the same moment; a record whose packets never come (they crossed no captured interface) then makes
 * its flow from its own ends, the client told by the ports.
 */
const HOLD_MS = 250;
/** records held at most; past it the oldest connection's are placed */
const HELD_RECORDS = 256;

/** held's key: a connection's two ports, either way round */
function portsKey(a: number, b: number): number {
  return a < b ? a * 65536 + b : b * 65536 + a;
}

/** State only flows with TLS hooks or HTTP need; allocated on first use. */
interface FlowExtra {
  hook: HookState | null;
  exchanges: HttpExchangeDetail[];
  exchangeStreams: (number | undefined)[];
  exchangesDropped: number;
  /** First summary past the exchange cap that may still wait for its response. */
  cursor: number;
  /**
   * Summaries past the exchange cap still waiting for their responses, by their HTTP/2 or HTTP/3 stream: answers of
   * streams come in any order (at most MAX_HTTP_SUMMARIES, as the summaries). Absent until a flow passes the cap.
   */
  summaryStreams?: Map<number, number>;
  bodyChars: number;
  /** Decrypted request methods seen before the decrypted response side has an HTTP/1 parser. */
  pendingMethods: string[] | null;
  /** When the ClientHello was seen (ms), on flows of eBPF-mode nodes: verdicts compare it with hook attach times. */
  helloAt: number | null;
  /**
   * Where TLS records begin in the client's and the server's stream: after the plain prelude of a connection that
   * switched to TLS in place (db-prelude.ts, starttls.ts), else 0. (A proxy's tunnel hands its bytes over instead.)
   */
  tlsSkipC: number;
  tlsSkipS: number;
  /** the client's first bytes while they may still be a PROXY protocol header (afterProxyHeader) */
  proxyHead: Buffer | null;
  /**
   * Another connection that carried the same TLS session (the same ClientHello, its 32 random bytes included): the
   * other leg of a NAT (a pod's connection to a service address, and the same one after DNAT) or of a proxy that
   * relays TCP. A later leg names the first; the first names the first later leg. See linkSession.
   */
  session: FlowState | null;
  /** a database connection's login was read from the hooks' decrypted client messages (or cannot be) */
  loginDone: boolean;
  /** the server's reads of it so far */
  loginBuf: Buffer | null;
  /**
   * The client's decrypted messages that came while the connection's protocol was not named yet (the helper writes
   * records before the packets of the same moment: see onPacket), in order, each with its feeder: read for a login
   * when its prelude names it a database's (setPreludeApp), let go when it is named (setApp, setPreludeApp). At most
   * LOGIN_KEPT_RECORDS of them, and none past LOGIN_KEPT_BYTES (`size`: the bytes of those that came)
   */
  loginKept?: { records: { feeder: Side | 'keys'; bytes: Buffer }[]; size: number } | null;
  /** a connection taken up in the middle: where the look for TLS records resumes in each direction */
  midstreamScan?: { c: { from: number }; s: { from: number } };
  /**
   * A TCP direction whose first bytes the capture lost (its first segment dropped: a ring or snap-length loss), or whose
   * TLS hello a gap cut: 1, the client's; 2, the server's. Its protocol is told from the bytes after the gap, as a
   * connection taken up in the middle has it told, and a client's ClientHello lost so is said to be (ownSides).
   */
  startLost?: number;
  /** with a key log: the connection's client random, its secrets, each direction's decryption (see clientKeys) */
  keys?: FlowKeys;
  /** a QUIC connection's decryption with a key log (see quicDatagram) */
  quicKeys?: QuicDecryptor;
  /** a 101 Switching Protocols answered the connection's HTTP/1: to HTTP/2 (h2c), read as such, or to another protocol, not read */
  upgrade?: 'h2c' | 'other';
  /** A proxy's tunnel opened (CONNECT answered): what it carries is classified, the flow staying http with its CONNECT */
  tunnel?: true;
  /** a DTLS flow's handshake messages, each side's, while its hellos are read (null after) */
  dtls?: { c: DtlsHandshake; s: DtlsHandshake; datagrams: number } | null;
  /** an HTTP/1 request was read on the wire */
  requestSeen?: boolean;
  /**
   * The exchanges at the start of a connection taken up in the middle that are answers to requests before the capture:
   * no later request is theirs (see onResponse).
   */
  leadingOrphans?: number;
  /**
   * On the wire, HTTP/1: the responses' stream had a gap since its last response was read (answers may have been lost in
   * it; see onResponse), and the exchanges before `answersLostBefore` wait for no answer: theirs were lost.
   */
  answersGap?: boolean;
  answersLostBefore?: number;
  /** On the wire, HTTP/1: when the last answer read began (see onResponse) */
  lastAnswerAt?: number;
}

/** A TLS connection's decryption with a key log's secrets. */
interface FlowKeys {
  random: Buffer;
  secrets: ConnectionSecrets | null;
  c2s: RecordDecryptor | null;
  s2c: RecordDecryptor | null;
  /** why its records are not decrypted at all (keys that cannot be made from the secrets and the handshake) */
  reason: string | null;
  /** both hellos' parameters, kept while it waits for its secrets from a followed key log (see Analyzer.followKeyLog) */
  hs: HandshakeParams | null;
}

/** How long a TLS connection's records wait for its secrets from a followed key log, in capture time. */
const AWAIT_SECRETS_MS = 10_000;
/** How many connections wait at once; the longest waiting gives up first. */
const MAX_AWAITING = 1024;
/** How many bytes of records each direction of a waiting connection keeps. */
const AWAIT_BYTES = 64 * 1024;

/** A QUIC connection's decryption with a key log, in words (see KeyLogStatus); `waiting`: for its secrets. */
function quicKeyLogStatus(qd: QuicDecryptor | undefined, waiting: boolean, found: boolean): KeyLogStatus {
  if (!qd) return { status: 'no-secrets', reason: 'its first Initial came before the key log did, and its packets were not kept', records: 0 };
  const random = qd.clientRandom;
  if (random === null) return { status: 'no-secrets', reason: 'no ClientHello of it was read: no client random to find its secrets by', records: 0 };
  if (waiting) return { status: 'no-secrets', reason: `waiting for its secrets in the followed key log (client random ${random.toString('hex')}); its packets are kept until they come`, records: 0 };
  // (secrets found and not used: its ServerHello, which names the cipher suite they are for, was not read)
  if (!qd.hasSecrets) return { status: found ? 'failed' : 'no-secrets', reason: qd.reason ?? `the key log has no secrets for its client random (${random.toString('hex')})`, records: 0 };
  const early = qd.earlyData;
  const earlyLost = early?.status === 'not-decrypted'
    ? `0-RTT (early data): ${early.records} ${early.records === 1 ? 'packet' : 'packets'} not opened, whether the server took them or not: ${early.reason}`
    : null;
  const problems = [qd.problems, earlyLost].filter(Boolean).join('; ') || (qd.packets === 0 ? 'none of its 1-RTT packets was read' : null);
  const records = qd.packets + (early?.status === 'decrypted' ? early.records : 0);
  const status: KeyLogStatus = problems === null ? { status: 'decrypted', reason: null, records } : { status: 'failed', reason: problems, records };
  if (early) status.earlyData = early;
  return status;
}

/**
 * Why the end of a direction being decrypted was not read, when its capture lost bytes there and the reassembler
 * has not (yet) declared the gap: bytes held behind a hole not filled (a lost segment whose later ones came, the
 * capture over before the reassembler gave the hole up, see TcpReassembler's limits). Null: nothing held. (Bytes
 * lost right before a FIN fail the direction's decryption as the FIN comes, see onTcp.)
 */
function unreadEnd(dir: DirState | null): string | null {
  const r = dir?.keys ? dir.reasm : null;
  if (!r || r.isStopped || r.buffered === 0) return null;
  return `a gap in the capture: ${r.buffered} bytes after it wait for the bytes it lost, and its records from it on are not read`;
}

/**
 * A TLS connection's decryption with a key log, in words (see KeyLogStatus); `ends`: each direction's unreadEnd;
 * `waiting`: it waits for its secrets from a followed key log (Analyzer.awaiting).
 */
function keyLogStatus(k: FlowKeys | undefined, midstream: boolean, ends: { c2s: string | null; s2c: string | null }, helloRead: boolean, waiting: boolean): KeyLogStatus {
  if (!k && helloRead) {
    // (a key log added to a live capture, a secrets block in the middle of a file: its hello was read before them)
    return { status: 'no-secrets', reason: 'its hello came before the key log did (one added during the capture, a secrets block later in the file), and its records were not kept', records: 0 };
  }
  if (!k) {
    const why = midstream ? 'its handshake came before the capture began' : 'no ClientHello of it was read';
    return { status: 'no-secrets', reason: `${why}: no client random to find its secrets by`, records: 0 };
  }
  if (waiting) return { status: 'no-secrets', reason: `waiting for its secrets in the followed key log (client random ${k.random.toString('hex')}); its records are kept until they come`, records: 0 };
  if (!k.secrets) return { status: 'no-secrets', reason: k.reason ?? `the key log has no secrets for its client random (${k.random.toString('hex')})`, records: 0 };
  const records = (k.c2s?.records ?? 0) + (k.s2c?.records ?? 0);
  // (a hole not filled yet is no failure of the records: said only for a side whose records did not fail)
  const side = (name: string, d: RecordDecryptor | null, end: string | null): string | null => {
    const why = d?.failed ?? end;
    return why ? `${name}: ${why}` : null;
  };
  // (early data the server took and that was not read is the client's plaintext missing; early data it declined is not)
  const accepted = k.s2c?.acceptedEarly ?? null;
  const early = k.c2s?.earlyData(accepted) ?? null;
  const earlyLost = early?.status === 'not-decrypted'
    ? `client to server: its early data (0-RTT, ${early.records} ${early.records === 1 ? 'record' : 'records'}${accepted === null ? '; whether the server took it is not known' : ', which the server took'}) was not read: ${early.reason}`
    : null;
  const failed = [side('client to server', k.c2s, ends.c2s), earlyLost, side('server to client', k.s2c, ends.s2c)].filter(Boolean).join('; ');
  const why = k.reason ?? (failed || null) ?? (k.c2s?.hasKeys ? null : 'its ServerHello was not read (its random and cipher suite make the keys)');
  const status: KeyLogStatus = why === null ? { status: 'decrypted', reason: null, records } : { status: 'failed', reason: why, records };
  if (early) status.earlyData = early;
  return status;
}

/** How much a side verdict knows: its plaintext (a hook), its process's library, a fingerprint's library, nothing. */
function sideStrength(v: TlsSideVerdict | null): number {
  if (!v) return -1;
  if (v.plaintext) return 3;
  if (v.via === 'process') return 2;
  return v.library === 'unknown' ? 0 : 1;
}

/** A TLS flow's two side verdicts. */
interface Sides { client: TlsSideVerdict | null; server: TlsSideVerdict | null }

/** A TCP ClientHello seen (Analyzer.hellos): its connection, the random's bytes 4-19 as four numbers, when. */
interface SeenHello { fs: FlowState; r1: number; r2: number; r3: number; r4: number; at: number }
/**
 * how far apart the two legs' hellos may be: a relay forwards it at once; NAT's legs are one packet, on two
 * interfaces whose packets need not reach the file in time order
 */
const SESSION_WINDOW_MS = 5000;
const HELLOS_CAP = 4096;

interface DecryptedDir {
  /** whose plaintext the parsers read: one end's hook, or the key log's decryption of the records */
  feeder: Side | 'keys';
  http1: Http1Parser | null;
  http2: Http2Parser | null;
}

/**
 * Whether a direction's plaintext is what its receiving end's hooks read (records of reads), not its sender's writes or
 * the key log's decryption of its records.
 */
function readByReceiver(dir: DecryptedDir, c2s: boolean): boolean {
  return dir.feeder === (c2s ? 'server' : 'client');
}

interface FlowState {
  flow: Flow;
  /** The client's address in key form (IPv4 as a number) and port: orients each packet without strings. */
  cip: number | string;
  cport: number;
  app: App;
  closed: boolean;
  /** null until the direction carries payload (or a SYN), DONE once the dissectors are finished with it. */
  c2s: DirState | null;
  s2c: DirState | null;
  /** SYN sequence numbers seen before the direction's state exists (-1: none). */
  synC: number;
  synS: number;
  /** The direction's first bytes (what FlowDetail shows): a handle into the analyzer's FirstBytes. */
  firstC: number;
  firstS: number;
  chDone: boolean;
  shDone: boolean;
  x: FlowExtra | null;
  /** metaVersion when last resolved */
  resolvedMeta: number;
  /** UDP flows that started with a QUIC Initial, until their ClientHello is assembled. */
  quic: { parser: QuicInitialParser; datagrams: number; serverDatagrams: number; helloDone: boolean; serverDone: boolean } | null;
  resolvedAt: number;
  version: number;
  /** TCP_SEEN_* bits: what the connection's flags said so far (flow.tcp is told from them) */
  tcpBits: number;
  /** flow.tcp.state's index in TCP_STATES (-1: no flow.tcp) */
  tcpCode: number;
  /** the interface the flow's first TCP packet came on (-1: none yet); its retransmissions are counted there */
  tcpIf: number;
  /** which directions' next sequence numbers (Analyzer.tcpNext) are known: 1 the client's, 2 the server's */
  nextKnown: number;
  /** position in arrival order (the analyzer's columns) */
  at: number;
  /** the creating block's origin (see arrivalOrigins) */
  origin: number;
}

/** What a TCP connection's flags said so far (FlowState.tcpBits). */
const TCP_SEEN_CLIENT = 1;
const TCP_SEEN_SERVER = 2;
const TCP_SEEN_SYN = 4;
const TCP_SEEN_SYNACK = 8;
const TCP_SEEN_FIN_CLIENT = 16;
const TCP_SEEN_FIN_SERVER = 32;
const TCP_SEEN_RST_CLIENT = 64;
const TCP_SEEN_RST_SERVER = 128;

/** The bits after one more packet: its side, the client's SYN, the server's SYN+ACK, each side's FIN, the first RST. */
export function tcpBits(bits: number, flags: number, fromClient: boolean): number {
  bits |= fromClient ? TCP_SEEN_CLIENT : TCP_SEEN_SERVER;
  if (flags & TCP_SYN) bits |= fromClient ? TCP_SEEN_SYN : flags & TCP_ACK ? TCP_SEEN_SYNACK : 0;
  if (flags & TCP_FIN) bits |= fromClient ? TCP_SEEN_FIN_CLIENT : TCP_SEEN_FIN_SERVER;
  if (flags & TCP_RST && !(bits & (TCP_SEEN_RST_CLIENT | TCP_SEEN_RST_SERVER))) bits |= fromClient ? TCP_SEEN_RST_CLIENT : TCP_SEEN_RST_SERVER;
  return bits;
}

/** How a connection's direction ended, as the bits tell: by its FIN, by a reset (either side's), or not (null). */
function endedBy(bits: number, c2s: boolean): 'fin' | 'reset' | null {
  if (bits & (c2s ? TCP_SEEN_FIN_CLIENT : TCP_SEEN_FIN_SERVER)) return 'fin';
  return bits & (TCP_SEEN_RST_CLIENT | TCP_SEEN_RST_SERVER) ? 'reset' : null;
}

/** The state and resetting side the bits tell (see TcpState): one shared, frozen object for each. */
export function tcpSummary(bits: number): TcpSummary {
  // (by the bits themselves, an index: a flow's state changes a few times, on the hot path)
  return TCP_BY_BITS[bits]!;
}

const TCP_STATES = ['no-reply', 'refused', 'established', 'closing', 'closed', 'reset', 'midstream'] as const satisfies readonly TcpState[];

function summaryOf(bits: number): TcpSummary {
  const resetBy = bits & TCP_SEEN_RST_CLIENT ? 'client' : bits & TCP_SEEN_RST_SERVER ? 'server' : null;
  // (the server's SYN+ACK is the handshake's sign: its SYN may have been missed)
  const accepted = (bits & TCP_SEEN_SYNACK) !== 0;
  let state: TcpState;
  // a RST from the server to a SYN it never accepted; a client giving up on its SYN is a reset by the client
  if (resetBy === 'server' && bits & TCP_SEEN_SYN && !accepted) state = 'refused';
  else if (resetBy) state = 'reset';
  else if (bits & TCP_SEEN_FIN_CLIENT && bits & TCP_SEEN_FIN_SERVER) state = 'closed';
  else if (bits & (TCP_SEEN_FIN_CLIENT | TCP_SEEN_FIN_SERVER)) state = 'closing';
  else if (accepted) state = 'established';
  else if (bits & TCP_SEEN_SYN && !(bits & TCP_SEEN_SERVER)) state = 'no-reply';
  else state = 'midstream';
  return TCP_SUMMARIES[`${state}/${resetBy}`]!;
}

/**
 * The summaries of flows without retransmissions: one shared, frozen object for each state and resetting side, so
 * that most TCP flows carry none of their own (a flow gets its own at its first retransmission).
 */
const TCP_SUMMARIES: Record<string, TcpSummary> = Object.fromEntries(
  TCP_STATES.flatMap((state) =>
    ([null, 'client', 'server'] as const).map((resetBy) => [`${state}/${resetBy}`, Object.freeze({ state, resetBy, retransmissions: 0 })])),
);

const TCP_BY_BITS: readonly TcpSummary[] = Array.from({ length: 256 }, (_, bits) => summaryOf(bits));

const MIDSTREAM = tcpSummary(0);
const MIDSTREAM_CODE = TCP_STATES.indexOf('midstream');

interface StreamState {
  /** arrivalOrigins() of this stream's blocks start here */
  originBase: number;
  fixedNode: string | null;
  node: string;
  namedByRecord: boolean;
  meta: NodeMeta | null;
}

function extra(fs: FlowState): FlowExtra {
  if (!fs.x) {
    fs.x = {
      hook: null, exchanges: [], exchangeStreams: [], exchangesDropped: 0, cursor: 0, bodyChars: 0, pendingMethods: null, helloAt: null,
      tlsSkipC: 0, tlsSkipS: 0, proxyHead: null, session: null, loginDone: false, loginBuf: null,
    };
  }
  return fs.x;
}

function hookState(x: FlowExtra): HookState {
  return x.hook ?? (x.hook = { plaintext: { client: null, server: null }, tlsPid: { client: null, server: null }, decrypted: { c2s: null, s2c: null } });
}

/**
 * Hashes the hello fields JA3/JA4 depend on (helloFields: the parser's packed fields, no copy) and the
 * transport into H1 and H2. Cheaper to hash and compare than joined decimal text.
 */
function hashHello(fields: Uint16Array, transport: HelloTransport): void {
  hashStart();
  for (let i = 0; i < fields.length; i++) mix(fields[i]!);
  mix(transport === 'quic' ? 1 : transport === 'dtls' ? 2 : 0);
}

/** Datagrams of a flow that may be QUIC versions tried and negotiated away before its readable Initial. */
const MAX_VERSION_TRIES = 6;

/** A QUIC long header (RFC 8999 §5.1: the first bit set, a version and connection IDs), of any version. */
function quicLongHeader(p: Buffer): boolean {
  return p.length >= 7 && (p[0]! & 0x80) !== 0 && p.length >= 7 + p[5]!;
}

/** A QUIC Version Negotiation packet (RFC 8999 §6: a long header of version 0). */
function versionNegotiation(p: Buffer): boolean {
  return quicLongHeader(p) && p.readUInt32BE(1) === 0;
}

/**
 * Whether a datagram opens a connection: a QUIC Initial in a datagram of at least 1,200 bytes (RFC 9000 §14.1: a client
 * pads its first ones so) or a DTLS ClientHello. Its sender is the client.
 */
function opensConnection(d: DecodedPacket): boolean {
  const p = d.payload;
  return (d.payloadLen >= 1200 && looksLikeQuicInitial(p)) || looksLikeDtlsClientHello(p);
}

/** JA3 and JA4 of one set of hello fields, with the fields (to tell hash collisions apart). */
interface Fingerprint { fields: Uint16Array; transport: HelloTransport; ja3: string | null; ja3Hash: string | null; ja4: string }

function sameFields(a: Uint16Array, b: Uint16Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Flow ids: 16 hex digits of a 64-bit hash (two 32-bit lanes, FNV-1a style) of node, transport, client
 * address and port, server address and port, the first-seen time (its float64 bits) and, for a hook-only flow
 * of another network namespace, that namespace: stable for the same packets. IPv4 addresses, ports and times
 * are hashed as numbers (no text built per flow); the lanes stay in H1 and H2 for the collision check.
 */
// why lanes in a typed array: a module-level `let` is checked for initialization at each use, which made the
// hash loops measurably slower; index with H1 and H2
const LANES = new Int32Array(2);
const H1 = 0;
const H2 = 1;
const TS_BITS = new Float64Array(1);
const TS_WORDS = new Uint32Array(TS_BITS.buffer);

function hashStart(): void {
  LANES[H1] = 0x811c9dc5;
  LANES[H2] = 0xcbf29ce4;
}

/** Mixes one character (or any value below 2^16) in. */
function mix(c: number): void {
  const h1 = Math.imul(LANES[H1]! ^ c, 0x01000193);
  LANES[H1] = h1;
  LANES[H2] = Math.imul(LANES[H2]! ^ c, 0x01b3) ^ (h1 >>> 7);
}

function fnv(s: string): void {
  for (let i = 0; i < s.length; i++) mix(s.charCodeAt(i));
}

/** Mixes one 32-bit word in, a byte at a time. */
function fnvWord(w: number): void {
  mix(w & 0xff);
  mix((w >>> 8) & 0xff);
  mix((w >>> 16) & 0xff);
  mix(w >>> 24);
}

function fnvIp(ip: KeyIp): void {
  if (typeof ip === 'number') fnvWord(ip);
  else fnv(ip);
}

function flowId(node: string, tcp: boolean, cip: KeyIp, cport: number, sip: KeyIp, sport: number, ts: number, netns: number | null): string {
  hashStart();
  fnv(node);
  // why: the separators keep "node|tcp" apart from a node name ending in the transport's code
  fnvWord(tcp ? 0x7c74637c : 0x7c75647c);
  fnvIp(cip);
  fnvWord(cport);
  fnvIp(sip);
  fnvWord(sport);
  TS_BITS[0] = ts;
  fnvWord(TS_WORDS[0]!);
  fnvWord(TS_WORDS[1]!);
  if (netns !== null) fnvWord(netns >>> 0);
  return hexLanes();
}

/** The id after `id` in a collision chain: the hash of `${id}+`. */
function nextId(id: string): string {
  hashStart();
  fnv(id);
  fnv('+');
  return hexLanes();
}

function hexLanes(): string {
  const h1 = LANES[H1]!;
  const h2 = LANES[H2]!;
  // why: one flat string (joining two hex halves made a rope of three strings per flow, kept for the flow's life)
  return String.fromCharCode(
    HEX[(h1 >>> 28) & 15]!, HEX[(h1 >>> 24) & 15]!, HEX[(h1 >>> 20) & 15]!, HEX[(h1 >>> 16) & 15]!,
    HEX[(h1 >>> 12) & 15]!, HEX[(h1 >>> 8) & 15]!, HEX[(h1 >>> 4) & 15]!, HEX[h1 & 15]!,
    HEX[(h2 >>> 28) & 15]!, HEX[(h2 >>> 24) & 15]!, HEX[(h2 >>> 20) & 15]!, HEX[(h2 >>> 16) & 15]!,
    HEX[(h2 >>> 12) & 15]!, HEX[(h2 >>> 8) & 15]!, HEX[(h2 >>> 4) & 15]!, HEX[h2 & 15]!,
  );
}

const HEX = Array.from('0123456789abcdef', (c) => c.charCodeAt(0));
/** what hexLanes writes */
const FLOW_ID = /^[0-9a-f]{16}$/;

function appendCapped(prev: Buffer | null, chunk: Buffer, cap: number): Buffer {
  if (prev && prev.length >= cap) return prev;
  const take = chunk.subarray(0, cap - (prev?.length ?? 0));
  if (!prev) return Buffer.from(take);
  // why: a stream of small segments (a protocol of short messages not yet named, a hello sent a byte at a time) made
  // each append copy all that came before: up to the 64 KiB limit, 2 GiB copied for a byte-a-segment direction. The
  // second append makes a store with room to grow (doubling), which later appends fill in place. Only the view ending
  // where the store's bytes end extends it: bytes past that are in no view
  const end = prev.byteOffset + prev.length;
  if (grownTo.get(prev.buffer) === end && end + take.length <= prev.buffer.byteLength) {
    take.copy(new Uint8Array(prev.buffer), end);
    grownTo.set(prev.buffer, end + take.length);
    return Buffer.from(prev.buffer, prev.byteOffset, prev.length + take.length);
  }
  const len = prev.length + take.length;
  const store = Buffer.allocUnsafeSlow(Math.min(Math.max(cap, len), 2 * len));
  prev.copy(store, 0);
  take.copy(store, prev.length);
  grownTo.set(store.buffer, len);
  return store.subarray(0, len);
}
/** the stores appendCapped grows, each with how many of its bytes are used */
const grownTo = new WeakMap<ArrayBufferLike, number>();

/** A body for reading: its text (the first BODY_TEXT_CAP bytes), or its size when binary. */
function bodyText(b: Buffer, size: number): string | null {
  if (size === 0) return null;
  if (looksBinary(b)) return `[${size} bytes of binary data]`;
  const text = b.toString('utf8', 0, Math.min(b.length, BODY_TEXT_CAP));
  return b.length > BODY_TEXT_CAP ? `${text}…` : text;
}

/**
 * Bodies kept for a flow's detail, at most BODY_BUDGET characters in all; later ones are only described. `text` is for
 * reading; `body` says where the bytes are (HttpMessageInfo.body). A body the text cannot carry (binary, not UTF-8, or
 * content-encoded: `encoded`) keeps its bytes as base64 too, when it was kept whole, for exports (HAR) to give or decode.
 */
function keptBody(x: FlowExtra, m: HttpMessage, encoded: boolean): { text: string | null; body: HttpMessageInfo['body']; base64?: string } {
  const size = m.bodySize ?? m.body.length;
  if (size === 0) return { text: null, body: 'text' };
  if (x.bodyChars >= BODY_BUDGET) return { text: `[${size} bytes, not kept: this flow's body budget is used]`, body: 'none' };
  const text = bodyText(m.body, size);
  x.bodyChars += text?.length ?? 0;
  if (!encoded && !looksBinary(m.body) && isUtf8(m.body)) return { text, body: m.body.length > BODY_TEXT_CAP ? 'head' : 'text' };
  // (of a binary body, HTTP/1 keeps only the first BODY_SAMPLE bytes: not the body)
  if (m.body.length < size || x.bodyChars >= BODY_BUDGET) return { text, body: 'none' };
  const base64 = m.body.toString('base64');
  x.bodyChars += base64.length;
  return { text, body: 'base64', base64 };
}

/**
 * Marks an exchange's summary and detail (both given, or either) as the message `m` that made or completed them is:
 * unfinished (see endCapture, Http1Parser.end; the detail says what cut it short), and, for an HTTP/1 message not read
 * whole (HttpMessage.malformed), what of it was not read.
 */
function markedBy(m: HttpMessage, s: HttpExchangeSummary | undefined, e: HttpExchangeDetail | undefined): void {
  if (m.unfinished !== undefined) {
    if (s) s.unfinished = true;
    if (e) {
      e.unfinished = true;
      e.unfinishedReason = noted(e.unfinishedReason, `${m.kind}: ${m.unfinished}`);
    }
  }
  if (m.malformed === undefined) return;
  const note = `${m.kind}: ${m.malformed}`;
  if (s) s.malformed = noted(s.malformed, note);
  if (e) e.malformed = noted(e.malformed, note);
}

/** A list of notes (undefined: none yet) with one more, joined by "; ". */
function noted(notes: string | undefined, note: string): string {
  return notes === undefined ? note : `${notes}; ${note}`;
}

export class Analyzer {
  private readonly opts: Required<Omit<AnalyzerOptions, 'onPacket' | 'onRecordSettled' | 'partition' | 'keyLog'>>;
  /** the key log given and the capture's Decryption Secrets Blocks (see AnalyzerOptions.keyLog) */
  private keyLog: KeyLog | null;
  /** secrets blocks of the capture that could not be read (their errors; the lines before the bad one were taken) */
  readonly keyLogProblems: string[] = [];
  /** key log lines come while the capture runs (followKeyLog): TLS connections keep their records until their secrets come */
  private following = false;
  /** endCapture ran */
  private ended = false;
  /** the connections that wait for their secrets, by client random (hex), the longest waiting first */
  private readonly awaiting = new Map<string, { fs: FlowState; keys: FlowKeys; since: number }>();
  /** QUIC connections waiting for their secrets, by client random (hex): see quicSecrets */
  private readonly quicAwaiting = new Map<string, { fs: FlowState; qd: QuicDecryptor; since: number }>();
  private readonly part: { index: number; count: number } | null;
  private streams = 0;
  /** origin of the block being processed */
  private origin = 0;
  private readonly observe: ((block: PacketBlock, flowId: string | null, kept: number) => void) | null;
  private readonly settled: ((kept: number, flowId: string | null) => void) | null;
  /** the number of the record kept by the block being read, -1 when none; the next one's */
  private keptNow = -1;
  private keptCount = 0;
  /** (node, 5-tuple) -> the flow currently using that tuple */
  private readonly index = new TupleIndex<FlowState>();
  /** every id handed out (the collision check), each with its flow's index in `states` (see stateById) */
  private readonly ids = new PairSet();
  /** of the flow ids taken twice or more (see addFlow): the last id of each one's chain */
  private readonly chainEnds = new Map<string, string>();
  private readonly states: FlowState[] = [];
  /** Every flow in creation (arrival) order; resolved lazily, see resolved(). */
  private readonly list: Flow[] = [];
  /** Flows with TLS info, in creation order: the library breakdown walks only these. */
  private readonly tlsStates: FlowState[] = [];
  /** ports, bytes and packets of list[i], as typed arrays (grown by doubling): filters read these instead of the objects */
  private cols: FlowColumns = {
    srcPort: new Uint16Array(1024), dstPort: new Uint16Array(1024), bytes: new Float64Array(1024), packets: new Float64Array(1024), transport: new Uint8Array(1024),
  };
  /** `changes` when columns() last brought packets and bytes up to date */
  private colsAt = -1;
  /**
   * Per flow (its arrival position × 2, + 1 for the server's direction): the sequence number after the highest byte
   * seen on the flow's first interface, for counting retransmissions (raw 32-bit numbers: in a flow's state, half of
   * them would be a heap number each, 38 MB for a million flows)
   */
  private tcpNext = new Uint32Array(2 * 1024);
  /** when each direction's next sequence number last moved on (ms): a segment behind it soon after is out of order */
  private tcpNextAt = new Float64Array(2 * 1024);
  private ordered = true;
  private lastCreated = -Infinity;
  readonly nodes = new Map<string, NodeMeta>();
  private metaVersion = 0;
  private readonly fingerprints = new Map<number, Fingerprint>();
  /** TCP ClientHellos by their random's first 32 bits, while their connection may still be relayed (see linkSession) */
  private readonly hellos = new Map<number, SeenHello>();
  private hellosCap = HELLOS_CAP;
  /** with a partition: every linkable hello's random, as 53 bits (see sessionKeys) */
  private readonly sessionLog: number[] = [];
  /** with a partition: a flow was linked to a leg whose tuple is another partition's (see crossesPartitions) */
  private crossed = false;
  /** flows linked while others were resolved (dnatOwner): to be resolved again (see fresh) */
  private readonly relinked: FlowState[] = [];
  private readonly firstBytes = new FirstBytes();
  /** datagrams in fragments, waiting for the rest of them (see fragments.ts) */
  private readonly fragments = new FragmentTable<FlowState>((dg) => this.fragmentsGiveUp(dg));
  // why: nothing keeps a decoded packet past onPacket, so one instance serves every packet.
  private readonly scratch = new DecodedPacket(4, Buffer.alloc(0), 0);
  private changes = 0;
  /** UDP flows by one end and the other's port (see udpFlowTo); null until a wildcard record needs it */
  private udpEnds: Map<string, FlowState | null> | null = null;
  /**
   * A wildcard UDP socket's records (a DTLS server's) that found no flow yet, by the udpEnds key they look up: tried
   * again when a UDP flow comes (addFlow). why: the helper writes a record as its hook reports it, and the packets of
   * the same moment when its packet ring hands them over (up to 50 ms later), and a server's read may be reported
   * before its client's write: seen in eBPF captures of dtls.test. Kept PENDING_RECORDS at most, the oldest given up.
   */
  private readonly pendingRecords: PendingRecord[] = [];
  private retrying = false;
  /**
   * Decrypted TCP records that came before any packet of their connection, whose client no conn record names, by their
   * ports (portsKey), in arrival order. why: the client told from the ports alone is wrong for a server on a port above
   * its client's (gRPC's 50051): the flow was made reversed, and its SYN and ClientHello, which tell, came too late to
   * orient it (no JA4, the client's plaintext booked as the server's). Held, they join the flow their first packet
   * makes (joinHeld), or make it after HOLD_MS, at the capture's end or when the flows are asked for (placeHeld).
   */
  private readonly held = new Map<number, HeldRecord[]>();
  private heldCount = 0;
  /** the capture time (ms) at which the oldest held record is placed; Infinity while none is held */
  private heldUntil = Infinity;
  /** placing held records: a record no flow takes makes one, not held again */
  private placing = false;
  /** with retrying, the held record's number (its kept number, for onRecordSettled) */
  private retryKept = -1;
  // why: packets of one connection come in runs (bulk transfers, GSO segments); remembering the last
  // IPv4 flow skips building and hashing its table key for the rest of the run
  private last: FlowState | null = null;
  private lastNode = '';
  // why int32 (signed keys, ports packed with <<): a field that ever gets a number beyond int32 turns into a heap
  // number, which changes the analyzer's shape and threw away the optimized code of every method mid-capture
  private lastA = -1;
  private lastB = -1;
  private lastPorts = -1;
  private lastTcp = false;
  // the last decrypted record's ends (readPduHead gives a run of records with the same tags one head)
  private rec: RecordEnds = NO_RECORD_ENDS;
  /** TCP flows by how their connection went (flow.tcp.state), by TCP_STATES index, kept as they change */
  private readonly tcpCounts = new Float64Array(TCP_STATES.length);

  /** TCP flows by how their connection went (flow.tcp.state): the app's header counts */
  get tcpStates(): Record<TcpState, number> {
    return Object.fromEntries(TCP_STATES.map((state, i) => [state, this.tcpCounts[i]!])) as Record<TcpState, number>;
  }
  readonly counters: AnalyzerCounters = {
    packets: 0, bytes: 0, nonIp: 0, otherProto: 0, fragments: 0, tlsRecords: 0, tlsRecordsUnmatched: 0, retransmittedBytes: 0, gaps: 0,
  };
  // why numbers from the start (not null): a field that only ever holds numbers is updated in place, where a
  // null-or-number field boxes a new number at every packet
  private minTs = Infinity;
  private maxTs = -Infinity;

  /** The first and last packet time (ms), null before any packet with a time. */
  get firstTs(): number | null {
    return this.minTs === Infinity ? null : this.minTs;
  }

  get lastTs(): number | null {
    return this.maxTs === -Infinity ? null : this.maxTs;
  }
  /** Names the pod owning an address, or `container:<id>` (a container id from the helper's proc records), in
   *  Kubernetes captures; flow.pod is the owning process's pod, else the client's, else the server's. */
  podLookup: ((key: string) => PodRef | null) | null = null;
  private readonly http1Options: Http1Options;

  constructor(options: AnalyzerOptions = {}) {
    this.opts = {
      dissectLimit: options.dissectLimit ?? 64 * 1024,
      maxExchangesPerFlow: options.maxExchangesPerFlow ?? 200,
      details: options.details ?? true,
      reassembly: options.reassembly ?? DEFAULT_LIMITS,
    };
    this.observe = options.onPacket ?? null;
    this.settled = options.onRecordSettled ?? null;
    this.part = options.partition && options.partition.count > 1 ? options.partition : null;
    this.keyLog = options.keyLog ?? null;
    // why: without details an exchange keeps no body and no header but Host (the summaries' host), so its
    // parsers keep none either
    this.http1Options = this.opts.details ? {} : { bodies: false, headers: ['host', 'upgrade'] };
  }

  /**
   * A consumer for one pcapng stream. `node` names the node the stream comes from; without it the node is
   * taken from the stream (the store's `node` record, else the helper's hostname), else "local".
   */
  stream(node?: string): (block: PcapngBlock) => void {
    return this.sinks(node).block;
  }

  /**
   * The same consumer as stream(), with the fast paths for the reader (readBlocks' onPacket and onRecord):
   * packets and decrypted records read in place, without block objects. They decline (false) everything when
   * an onPacket observer is set (it takes blocks).
   */
  sinks(node?: string): { block: (block: PcapngBlock) => void; packet: RawPacketSink; record: RawRecordSink } {
    const st: StreamState = { originBase: ORIGIN_STREAM * this.streams++, fixedNode: node ?? null, node: node ?? 'local', namedByRecord: false, meta: null };
    return {
      block: (b) => this.onBlock(st, b),
      packet: (iface, buf, start, capLen, origLen, tsMs, offset) => {
        if (this.observe || iface.linkType === LINKTYPE_WIRESHARK_UPPER_PDU) return false;
        this.changes++;
        this.origin = st.originBase + offset;
        this.onPacket(st, iface.linkType, buf, start, start + capLen, tsMs, origLen, iface.interfaceId);
        return true;
      },
      record: (_iface, buf, start, capLen, tsMs, offset, flags, comments) => {
        if (this.observe) return false;
        this.changes++;
        this.origin = st.originBase + offset;
        this.onTlsRecord(st.node, buf, start, start + capLen, tsMs, flags, comments);
        return true;
      },
    };
  }

  private countNode(st: StreamState, origLen: number): void {
    const m = st.meta ?? (st.meta = this.meta(st.node));
    m.packets++;
    m.bytes += origLen;
  }

  /**
   * Records still held for their connections' first packets (see held) make their flows now, each settled (onRecordSettled)
   * with its flow: a reader that hands blocks on by file calls it at a file's end.
   */
  placeHeldRecords(): void {
    this.placeHeld();
  }

  get flowCount(): number {
    if (this.heldCount > 0) this.placeHeld();
    return this.states.length;
  }

  meta(node: string): NodeMeta {
    let m = this.nodes.get(node);
    if (!m) {
      m = new NodeMeta();
      this.nodes.set(node, m);
    }
    return m;
  }

  /** The client randoms (hex) of the TLS connections (over TCP, QUIC's) the key log has secrets for, of the flows `ids` (all without). */
  clientRandoms(ids?: ReadonlySet<string>): string[] {
    const out: string[] = [];
    for (const fs of this.tlsStates) {
      if (ids && !ids.has(fs.flow.id)) continue;
      const k = fs.x?.keys;
      const q = fs.x?.quicKeys;
      if (k?.secrets) out.push(k.random.toString('hex'));
      else if (q?.hasSecrets && q.clientRandom) out.push(q.clientRandom.toString('hex'));
    }
    return out;
  }

  /** Changes whenever a block changed anything (queries cache on it). */
  get version(): number {
    return this.changes;
  }

  /**
   * A flow's state by its id: the id's two hash halves find its index in the id table (no string-keyed map: building
   * one for a million flows took ~0.8 s, on a session's first query).
   */
  private stateById(id: string): FlowState | undefined {
    if (!FLOW_ID.test(id)) return undefined;
    // (16 hex digits are exactly the two halves: equal halves, equal id)
    const at = this.ids.get(parseInt(id.slice(0, 8), 16), parseInt(id.slice(8), 16));
    return at < 0 ? undefined : this.states[at];
  }

  private onBlock(st: StreamState, b: PcapngBlock): void {
    this.changes++;
    this.origin = st.originBase + b.offset;
    switch (b.type) {
      case 'shb':
        st.node = st.fixedNode ?? 'local';
        st.namedByRecord = false;
        st.meta = null;
        break;
      case 'epb':
      case 'spb':
        if (b.iface.linkType === LINKTYPE_WIRESHARK_UPPER_PDU) {
          this.keptNow = -1;
          const id = this.onTlsRecord(st.node, b.data, 0, b.data.length, b.tsMs, b.flags, b.comments);
          if (this.observe) this.observe(b, id, this.keptNow);
        } else {
          const id = this.onPacket(st, b.iface.linkType, b.data, 0, b.data.length, b.tsMs, b.origLen, b.iface.interfaceId);
          if (this.observe) this.observe(b, id, -1);
        }
        break;
      case 'custom':
        if (b.pen === TAPSCOPE_PEN && b.json) {
          if (!st.fixedNode && (b.json.t === 'node' || (b.json.t === 'capture' && !st.namedByRecord))) {
            const name = b.json.t === 'node' ? b.json.node : b.json.hostname;
            if (typeof name === 'string' && name && name !== st.node) { st.node = name; st.meta = null; }
            if (b.json.t === 'node') st.namedByRecord = true;
          }
          const meta = this.meta(st.node);
          const before = b.json.t === 'stats' ? meta.stats : null;
          meta.apply(b.json);
          if (b.json.t === 'stats') meta.statsAt(this.maxTs, before);
          this.metaVersion++;
          // (a helper following key logs on its node writes their lines as secrets blocks while it captures, each after
          // the handshakes it is for: the connections wait for them, as for a key log followed here)
          if (b.json.t === 'capture' && Array.isArray(b.json.keylogs) && b.json.keylogs.length > 0) this.followKeyLog();
        }
        break;
      case 'dsb':
        if (b.secretsType === SECRETS_TLS_KEYLOG) this.addKeyLog(b.data.toString('utf8'), `the capture's decryption secrets block at byte ${b.offset}`);
        break;
      case 'isb':
        if (b.ifDrop !== null) this.meta(st.node).isbDrops.set(`${b.iface.section}:${b.iface.interfaceId}`, Number(b.ifDrop));
        break;
      default:
        break;
    }
  }

  /**
   * Key log lines (SSLKEYLOGFILE): from a capture's secrets block, a key log followed during a live capture; the
   * connections whose hellos come after them, and those waiting for them (see followKeyLog), are decrypted.
   */
  addKeyLog(text: string, source: string): void {
    try {
      (this.keyLog ??= new KeyLog()).add(text, source);
    } catch (e) {
      if (!isTapscopeError(e, 'E_KEYLOG')) throw e;
      this.keyLogProblems.push(e.message);
    }
    this.settleAwaiting();
    // (verdicts now say whether each TLS flow was decrypted; a live view's rows change)
    this.metaVersion++;
    this.changes++;
  }

  /**
   * Key log lines will come while the capture runs (an SSLKEYLOGFILE followed as clients write it): a client writes a
   * connection's secrets only after its handshake, so each TLS connection from here on keeps its records (at most
   * AWAIT_BYTES each way, for AWAIT_SECRETS_MS of capture time) until addKeyLog brings its secrets. Connections whose
   * hello came before this are not decrypted live (a saved session's key log decrypts them when it is opened again).
   */
  followKeyLog(): void {
    this.following = true;
    this.keyLog ??= new KeyLog();
  }

  /** Connections the key log has secrets for. */
  get keyLogSize(): number {
    return this.keyLog?.size ?? 0;
  }

  /** Whether key log lines are still to come (followKeyLog, or a helper following key logs on its node). */
  get followsKeyLog(): boolean {
    return this.following;
  }

  /** The key log's lines for these client randoms (hex), as SSLKEYLOGFILE text: see clientRandoms. */
  keyLogLines(randoms: readonly string[]): string {
    return this.keyLog?.linesFor(randoms) ?? '';
  }

  /** The key log stopped coming (the capture stopped): connections still waiting give up, each saying why. */
  stopFollowingKeyLog(): void {
    this.following = false;
    this.expireAwaiting(Infinity, 'the capture stopped before its secrets came in the followed key log');
    this.changes++;
  }

  /**
   * The capture ended (its files are read, or a live capture stopped; after stopFollowingKeyLog, whose late secrets may
   * still open records): the HTTP messages in flight are taken as they are, each marked `unfinished`. An HTTP/1 message
   * whose head came and whose body had not ended (a download cut off, an upload still going), and HTTP/2 and HTTP/3
   * streams whose headers came without their end. Without this, a request whose response was still coming showed no
   * status, and a request whose body was still coming did not show at all. (Plaintext its receiving end's hooks read ends
   * here as its connection ended, if it did: see endDecrypted.) Once; packets after it are not expected.
   */
  endCapture(): void {
    if (this.ended) return;
    this.ended = true;
    this.placeHeld();
    this.fragments.drain();
    for (const r of this.pendingRecords.splice(0)) this.giveUpRecord(r);
    for (const fs of this.states) {
      let n = 0;
      for (const c2s of [true, false]) {
        const held = c2s ? fs.c2s : fs.s2c;
        // (bytes held behind a hole the capture never filled are read after it; a FIN that waited for bytes before it
        // ends its direction, those that never came declared lost)
        if (held && held !== DONE && held.reasm && (held.reasm.buffered > 0 || held.finAt !== null)) {
          n++;
          if (held.finAt !== null) this.finAfterGap(fs, c2s, fs.flow.lastSeen);
          else held.reasm.flush();
        }
        const d = c2s ? fs.c2s : fs.s2c;
        const dir = d !== DONE ? d : null;
        // (an HTTP/1 parser's gap returns the message being read, its body marked truncated; nothing comes after it)
        if (dir?.http1) n += this.onUnfinished(fs, dir.http1.gap(), 'plain');
        if (dir?.http2) n += this.onUnfinished(fs, dir.http2.close(), 'plain');
        const dec = fs.x?.hook?.decrypted[c2s ? 'c2s' : 's2c'];
        if (dec?.http1) {
          // (plaintext read by the receiving end ends here as its connection did: see endDecrypted)
          const how = readByReceiver(dec, c2s) ? endedBy(fs.tcpBits, c2s) : null;
          if (how) {
            const msgs = dec.http1.end(how === 'reset');
            this.onMessages(fs, msgs, 'decrypted', fs.flow.lastSeen);
            n += msgs.length;
          } else n += this.onUnfinished(fs, dec.http1.gap(), 'decrypted');
        }
        if (dec?.http2) n += this.onUnfinished(fs, dec.http2.close(), 'decrypted');
      }
      const qd = fs.x?.quicKeys;
      if (qd) n += this.onUnfinished(fs, qd.end(), 'decrypted');
      if (n > 0) {
        fs.version++;
        this.changes++;
      }
    }
  }

  /** Messages the end of the capture cut, taken as the flow's; how many. */
  private onUnfinished(fs: FlowState, msgs: HttpMessage[], source: 'plain' | 'decrypted'): number {
    if (msgs.length === 0) return 0;
    for (const m of msgs) m.unfinished = 'the capture ended before its end';
    this.onMessages(fs, msgs, source, msgs[0]!.ts);
    return msgs.length;
  }

  /** Waiting connections whose secrets are all here, and both hellos read, are decrypted now. */
  private settleAwaiting(): void {
    if (this.quicAwaiting.size > 0) for (const w of [...this.quicAwaiting.values()]) this.quicSecrets(w.fs, w.qd);
    if (this.awaiting.size === 0 || this.keyLog === null) return;
    for (const w of this.awaiting.values()) {
      const secrets = this.keyLog.get(w.keys.random) ?? null;
      if (w.keys.hs && secretsComplete(secrets, w.keys.hs.version)) {
        w.keys.secrets = secrets;
        this.applyKeys(w.fs, w.keys, w.keys.hs);
      }
    }
  }

  /**
   * Connections that waited since before `until` (capture time) give up, and the longest waiting beyond MAX_AWAITING:
   * with the secrets that came (a key log with only one side's) they are decrypted as far as those go, else `why`.
   * (Each one that gives up is resolved again through its own version, see applyKeys and noKeys: this runs for every
   * new waiting connection, and a change of metaVersion would resolve every flow of the session again.)
   */
  private expireAwaiting(until: number, why: string): void {
    for (const [hex, w] of this.quicAwaiting) {
      if (w.since >= until && this.quicAwaiting.size <= MAX_AWAITING) break;
      this.quicAwaiting.delete(hex);
      const secrets = this.keyLog?.get(w.qd.clientRandom!);
      if (secrets) this.quicMessages(w.fs, w.qd.setSecrets(secrets));
      else w.qd.giveUp(why);
      w.fs.version++;
    }
    for (const w of this.awaiting.values()) {
      if (w.since >= until && this.awaiting.size <= MAX_AWAITING) break;
      const secrets = this.keyLog?.get(w.keys.random) ?? null;
      if (secrets && w.keys.hs) {
        w.keys.secrets = secrets;
        this.applyKeys(w.fs, w.keys, w.keys.hs);
        continue;
      }
      this.noKeys(w.fs, w.keys, why);
    }
  }

  // ---- packets ----

  /** One packet: the frame is buf[start, end); `iface`: the capturing interface's id in its section. */
  private onPacket(st: StreamState, linkType: number, buf: Buffer, start: number, end: number, tsMs: number, origLen: number, iface: number): string | null {
    // (records held for their packets too long make their flows now: in every partition at the same block)
    if (tsMs >= this.heldUntil) this.placeHeld(tsMs);
    const d = decodePacket(linkType, buf, this.scratch, start, end);
    const flowPacket = d !== null && (d.proto === PROTO_TCP || d.proto === PROTO_UDP) && (!d.fragment || d.firstFragment) && (d.srcPort !== 0 || d.dstPort !== 0);
    const v4 = d !== null && d.ipVersion === 4;
    // why: an IPv6 address's text is built only when it is needed (a new flow, a partition); the flow table
    // finds IPv6 flows by the address bytes (building the text of both addresses for every packet made IPv6
    // traffic load at half the speed of IPv4)
    let sip: KeyIp = flowPacket && v4 ? d.src4 : 0;
    let dip: KeyIp = flowPacket && v4 ? d.dst4 : 0;
    if (this.part && flowPacket && !v4) { sip = d.src; dip = d.dst; }
    // (a UDP flow's partition is its ports': a DTLS server's records on a wildcard socket do not name its address)
    const udp = d !== null && d.proto === PROTO_UDP;
    if (this.part && (flowPacket ? partitionOf(udp ? 0 : sip, d.srcPort, udp ? 0 : dip, d.dstPort, this.part.count) : 0) !== this.part.index) {
      // (a later fragment names no ports, so no partition: each looks for its datagram among its own flows' (partition 0
      // counts it, below)
      return d !== null && d.fragment && !d.firstFragment && (udp || d.proto === PROTO_TCP) ? this.laterFragment(st.node, d, tsMs, origLen) : null;
    }
    this.countNode(st, origLen);
    const node = st.node;
    const c = this.counters;
    c.packets++;
    c.bytes += origLen;
    if (tsMs > 0) {
      if (tsMs < this.minTs) this.minTs = tsMs;
      if (tsMs > this.maxTs) this.maxTs = tsMs;
    }
    if (!d) { c.nonIp++; return null; }
    if (d.fragment) c.fragments++;
    if (d.proto !== PROTO_TCP && d.proto !== PROTO_UDP) { c.otherProto++; return null; }
    if (d.fragment && !d.firstFragment) return this.laterFragment(node, d, tsMs, origLen);
    if (d.srcPort === 0 && d.dstPort === 0) { c.otherProto++; return null; }
    const transport = d.proto === PROTO_TCP ? 'tcp' : 'udp';
    let fs: FlowState | undefined;
    if (v4 && this.last !== null && node === this.lastNode && (transport === 'tcp') === this.lastTcp) {
      const a = sip as number;
      const bb = dip as number;
      if (a === this.lastA && bb === this.lastB && ((d.srcPort << 16) | d.dstPort) === this.lastPorts) fs = this.last;
      else if (a === this.lastB && bb === this.lastA && ((d.dstPort << 16) | d.srcPort) === this.lastPorts) fs = this.last;
    }
    fs ??= v4 ? this.index.get(node, transport === 'tcp', sip, d.srcPort, dip, d.dstPort) : this.index.get6(node, transport === 'tcp', d.data, d.addrOffset, d.srcPort, d.dstPort);
    const syn = transport === 'tcp' && (d.tcpFlags & TCP_SYN) !== 0 && (d.tcpFlags & TCP_ACK) === 0;
    // (the port reused for a new connection: after a close, or one the capture did not see; not a SYN sent again after the
    // server refused it, with the same initial number: the same attempt, as tshark counts it, whose retries are
    // retransmissions)
    if (fs && syn && (fs.closed ? !this.sameSyn(fs, d) : this.reopens(fs, d))) fs = undefined;
    if (!fs) {
      if (!v4 && sip === 0) { sip = d.src; dip = d.dst; }
      fs = this.createFlow(node, transport, sip, dip, d, tsMs);
      if (this.heldCount > 0 && transport === 'tcp') this.joinHeld(fs, syn);
    }
    if (v4 && fs !== this.last) {
      this.last = fs;
      this.lastNode = node;
      this.lastA = sip as number;
      this.lastB = dip as number;
      this.lastPorts = (d.srcPort << 16) | d.dstPort;
      this.lastTcp = transport === 'tcp';
    }
    const f = fs.flow;
    // why: a hook record can come before the first packet of its connection; packets make it a captured flow
    if (f.seenBy === 'hook-only') {
      f.seenBy = 'packets';
      // why: the helper writes a record as its hook reports it, and the packets of the same moment when its ring hands
      // them over, up to 50 ms later: records can make a TCP flow TLS before its first packet. A first packet that opens
      // the connection (its SYN) has the connection's first bytes follow, classified as any connection's: they may be
      // another protocol's that switches to TLS in place (XMPP's <starttls/>; seen in upgrades.test on a loaded machine,
      // where the flow was TLS with no hello)
      if (syn && fs.app === 'tls') fs.app = 'classify';
    }
    this.count(fs, 1, origLen, tsMs);
    // (an IPv6 packet from the client's port is the client's unless both ports are the same: only then is the
    // source address's text needed)
    const fromClient = fs.cport === d.srcPort && (v4 ? fs.cip === sip : d.srcPort !== d.dstPort || fs.cip === (sip === 0 ? d.src : sip));
    if (transport === 'tcp') this.onTcp(fs, d, fromClient, tsMs, iface);
    else if (!d.fragment) this.onUdp(fs, d, fromClient);
    // (a UDP datagram's first fragment: its dissectors wait for the whole datagram)
    if (d.fragment) this.firstFragment(node, fs, d, fromClient, tsMs, transport === 'udp');
    return f.id;
  }

  /** Packets of a flow: its counts, last time and version. */
  private count(fs: FlowState, packets: number, bytes: number, ts: number): void {
    const f = fs.flow;
    f.packets += packets;
    f.bytes += bytes;
    if (ts > f.lastSeen) f.lastSeen = ts;
    fs.version++;
  }

  /** A fragment after the first of a datagram (no ports): counted for its flow, which its first fragment names. */
  private laterFragment(node: string, d: DecodedPacket, ts: number, origLen: number): string | null {
    const dg = this.fragments.later(node, d, ts);
    const fs = dg.flow;
    if (fs === null) {
      dg.waitingPackets++;
      dg.waitingBytes += origLen;
      dg.waitingLast = Math.max(dg.waitingLast, ts);
      return null;
    }
    this.count(fs, 1, origLen, ts);
    this.fragmentsDone(dg);
    return fs.flow.id;
  }

  /** A datagram's first fragment, of flow `fs`: the fragments before it are the flow's now. */
  private firstFragment(node: string, fs: FlowState, d: DecodedPacket, fromClient: boolean, ts: number, keep: boolean): void {
    const dg = this.fragments.first(node, d, ts, fs, fromClient, keep);
    if (dg.waitingPackets > 0) {
      this.count(fs, dg.waitingPackets, dg.waitingBytes, dg.waitingLast);
      dg.waitingPackets = 0;
      dg.waitingBytes = 0;
    }
    this.fragmentsDone(dg);
  }

  /** A UDP datagram whose fragments all came goes to the dissectors whole. */
  private fragmentsDone(dg: Datagram<FlowState>): void {
    const whole = this.fragments.whole(dg);
    if (whole) this.onUdp(dg.flow!, whole, dg.fromClient);
  }

  /** A UDP datagram that will not complete goes to the dissectors as far as its bytes reach (a DNS message says it was cut). */
  private fragmentsGiveUp(dg: Datagram<FlowState>): void {
    const part = this.fragments.partial(dg);
    if (part) {
      this.onUdp(dg.flow!, part, dg.fromClient);
      dg.flow!.version++;
      this.changes++;
    }
  }

  private createFlow(node: string, transport: 'tcp' | 'udp', sip: KeyIp, dip: KeyIp, d: DecodedPacket, ts: number): FlowState {
    let srcIsClient: boolean;
    const flags = d.tcpFlags;
    const src = d.src;
    const dst = d.dst;
    if (transport === 'tcp' && flags & TCP_SYN) {
      srcIsClient = (flags & TCP_ACK) === 0;
    } else {
      const m = this.nodes.get(node);
      // why: without connection records there is nothing to look up; skip building the keys
      const meta = m && m.hasOwners ? m : undefined;
      const srcRole = meta?.owner(transport, src, d.srcPort, dst, d.dstPort)?.role;
      const dstRole = meta?.owner(transport, dst, d.dstPort, src, d.srcPort)?.role;
      if (srcRole === 'client' || srcRole === 'server') srcIsClient = srcRole === 'client';
      else if (dstRole === 'client' || dstRole === 'server') srcIsClient = dstRole === 'server';
      // (a datagram that opens a connection names its sender the client, whatever the ports: a QUIC Initial, a DTLS
      // ClientHello. By the ports, a QUIC server on a port above its client's, as Linux's ephemeral ports go up to
      // 60999, had its client's Initial read as the server's, and the connection was unknown, with no verdict)
      else if (transport === 'udp' && d.payloadEnd > d.payloadStart && opensConnection(d)) srcIsClient = true;
      // (as a TCP segment that begins with a ClientHello, its SYN not captured)
      else if (transport === 'tcp' && beginsClientHello(d)) srcIsClient = true;
      // (ports alike, as mDNS's, NTP's or IKE's: the first packet's sender, as tshark takes it; comparing the addresses'
      // text made a multicast group the client of every mDNS query to it)
      else srcIsClient = d.srcPort >= d.dstPort;
    }
    const client = srcIsClient ? { ip: src, port: d.srcPort } : { ip: dst, port: d.dstPort };
    const server = srcIsClient ? { ip: dst, port: d.dstPort } : { ip: src, port: d.srcPort };
    return this.addFlow(node, transport, sip, d.srcPort, dip, d.dstPort, client, server, ts, srcIsClient ? sip : dip, null, d.ipVersion === 6 ? d : null);
  }

  private addFlow(
    node: string, transport: 'tcp' | 'udp', a: KeyIp, ap: number, b: KeyIp, bp: number,
    client: { ip: string; port: number }, server: { ip: string; port: number }, ts: number, cip: KeyIp, netns: number | null = null,
    /** the IPv6 packet starting the flow: the index takes its addresses' bytes, not their text */
    packet6: DecodedPacket | null = null,
  ): FlowState {
    let id = flowId(node, transport === 'tcp', cip, client.port, cip === a && client.port === ap ? b : a, server.port, ts, netns);
    // (the id's halves index the flow's state, see stateById)
    if (!this.ids.add(LANES[H1]!, LANES[H2]!, this.states.length)) {
      // why: flows of one tuple that began at one timestamp (a SYN flood from one port, a capture without timestamps)
      // take the ids of a chain in turn; walking it from its start for each was quadratic (20,000 such connections:
      // 20 s, tshark 0.6 s), so the chain's last id is remembered and the next taken after it (the same ids)
      const base = id;
      id = nextId(this.chainEnds.get(base) ?? base);
      while (!this.ids.add(LANES[H1]!, LANES[H2]!, this.states.length)) id = nextId(id);
      this.chainEnds.set(base, id);
    }
    const flow: Flow = {
      id, transport, src: client, dst: server, firstSeen: ts, lastSeen: ts, packets: 0, bytes: 0, process: null, processSide: null,
      peerProcess: null, node, pod: null, app: 'unknown', tls: null, http: NO_HTTP, seenBy: 'packets',
      tcp: transport === 'tcp' ? MIDSTREAM : null,
    };
    const fs: FlowState = {
      flow, cip, cport: client.port, app: 'classify', closed: false, c2s: null, s2c: null, synC: -1, synS: -1, firstC: NO_BYTES, firstS: NO_BYTES, chDone: false, shDone: false,
      x: null, resolvedMeta: -1, quic: null, resolvedAt: -1, version: 0, tcpBits: 0, tcpCode: transport === 'tcp' ? MIDSTREAM_CODE : -1, tcpIf: -1, nextKnown: 0, at: this.list.length, origin: this.origin,
    };
    if (netns !== null) flow.netns = netns;
    if (fs.tcpCode >= 0) this.tcpCounts[fs.tcpCode]!++;
    if (packet6) this.index.set6(indexNode(node, netns), transport === 'tcp', packet6.data, packet6.addrOffset, ap, bp, fs);
    else this.index.set(indexNode(node, netns), transport === 'tcp', a, ap, b, bp, fs);
    if (this.udpEnds !== null && transport === 'udp') this.addUdpEnds(fs);
    if (this.pendingRecords.length > 0 && transport === 'udp') this.retryRecords(fs);
    // why: the tuple now names this flow; a remembered older flow of the same tuple must not be reused
    this.last = null;
    this.states.push(fs);
    const at = this.list.length;
    this.list.push(flow);
    if (at === this.cols.srcPort.length) {
      const c = this.cols;
      const ports = (a: Uint16Array): Uint16Array => { const b = new Uint16Array(a.length * 2); b.set(a); return b; };
      const counts = (a: Float64Array): Float64Array => { const b = new Float64Array(a.length * 2); b.set(a); return b; };
      const codes = (a: Uint8Array): Uint8Array => { const b = new Uint8Array(a.length * 2); b.set(a); return b; };
      this.cols = { srcPort: ports(c.srcPort), dstPort: ports(c.dstPort), bytes: counts(c.bytes), packets: counts(c.packets), transport: codes(c.transport) };
      const next = new Uint32Array(this.tcpNext.length * 2);
      next.set(this.tcpNext);
      this.tcpNext = next;
      const at = new Float64Array(this.tcpNextAt.length * 2);
      at.set(this.tcpNextAt);
      this.tcpNextAt = at;
    }
    this.cols.srcPort[at] = client.port;
    this.cols.dstPort[at] = server.port;
    this.cols.bytes[at] = 0;
    this.cols.packets[at] = 0;
    this.cols.transport[at] = TRANSPORTS.indexOf(transport);
    // why: flows are created as their first packet arrives, so creation order is firstSeen order unless
    // timestamps went backwards (several nodes' streams, clock steps); queries rely on this to skip sorting
    if (ts < this.lastCreated) this.ordered = false;
    else this.lastCreated = ts;
    return fs;
  }

  /** The direction's state, created (with its reassembler, unless `reassemble` is false) on first use. */
  private dir(fs: FlowState, c2s: boolean, reassemble = true): DirState {
    const cur = c2s ? fs.c2s : fs.s2c;
    if (cur) return cur;
    const d = new DirState(this.events, fs, c2s, false);
    if (reassemble && fs.flow.transport === 'tcp') {
      d.reasm = new TcpReassembler(d, this.opts.reassembly);
      const syn = c2s ? fs.synC : fs.synS;
      if (syn >= 0) d.reasm.syn(syn);
    }
    if (c2s) fs.c2s = d;
    else fs.s2c = d;
    return d;
  }

  private readonly events: StreamEvents = {
    data: (fs, c2s, chunk, ts) => this.onStreamData(fs, c2s, chunk, ts),
    gap: (fs, c2s) => this.onStreamGap(fs, c2s),
  };

  private onTcp(fs: FlowState, d: DecodedPacket, fromClient: boolean, ts: number, iface: number): void {
    const flags = d.tcpFlags;
    const bits = tcpBits(fs.tcpBits, flags, fromClient);
    const f = fs.flow;
    if (bits !== fs.tcpBits) {
      fs.tcpBits = bits;
      const now = tcpSummary(bits);
      const tcp = f.tcp;
      // (null: a hook-only flow's first packet)
      if (!tcp || tcp.state !== now.state || tcp.resetBy !== now.resetBy) {
        const code = TCP_STATES.indexOf(now.state);
        if (fs.tcpCode >= 0) this.tcpCounts[fs.tcpCode]!--;
        this.tcpCounts[code]!++;
        fs.tcpCode = code;
        // (a flow with retransmissions has a summary of its own; the others share one)
        if (tcp && tcp.retransmissions > 0) {
          tcp.state = now.state;
          tcp.resetBy = now.resetBy;
        } else {
          f.tcp = now;
        }
      }
    }
    // retransmissions, counted on the interface the flow was first seen on: a capture of several interfaces sees a
    // packet crossing a pod's veth and a bridge twice, and each copy after the first would read as one
    if (fs.tcpIf < 0) fs.tcpIf = iface;
    const tcp = f.tcp;
    if (iface === fs.tcpIf && tcp) {
      const span = d.payloadLen + (flags & TCP_SYN ? 1 : 0) + (flags & TCP_FIN ? 1 : 0);
      if (span > 0) {
        const side = fromClient ? 1 : 2;
        const slot = fs.at * 2 + side - 1;
        const known = (fs.nextKnown & side) !== 0;
        const next = this.tcpNext[slot]!;
        // (a SYN sent again, its number already seen, is one too, as Wireshark counts it; a SYN with a new number opens anew)
        const ahead = !known ? 0 : flags & TCP_SYN ? (((d.seq + 1 - next) | 0) <= 0 && d.seq === (fromClient ? fs.synC : fs.synS) ? -2 : 0) : (d.seq - next) | 0;
        // (a keep-alive, one byte before the next, is no retransmission, nor a segment out of order (one behind the next
        // soon after it, not ending there): as Wireshark tells them apart)
        if (ahead < 0 && !(ahead === -1 && d.payloadLen <= 1 && !(flags & TCP_FIN)) && (flags & TCP_SYN || !outOfOrder(ahead, span, ts - this.tcpNextAt[slot]!))) {
          if (tcp.retransmissions === 0) f.tcp = { state: tcp.state, resetBy: tcp.resetBy, retransmissions: 1 };
          else tcp.retransmissions++;
        }
        if (!known || flags & TCP_SYN || ((d.seq + span - next) | 0) > 0) {
          this.tcpNext[slot] = d.seq + span;
          this.tcpNextAt[slot] = ts;
          fs.nextKnown |= side;
        }
      }
    }
    const cur = fromClient ? fs.c2s : fs.s2c;
    // (data a SYN carries, TCP Fast Open's, begins after the SYN's own sequence number)
    const seq = flags & TCP_SYN ? (d.seq + 1) >>> 0 : d.seq;
    if (d.tcpFlags & TCP_SYN) {
      if (cur) cur.reasm?.syn(d.seq);
      else if (fromClient) fs.synC = d.seq;
      else fs.synS = d.seq;
    }
    if (d.payloadEnd > d.payloadStart) {
      if (cur === DONE) {
        // why: the dissectors are done with this direction; still keep its first bytes for the flow detail.
        if ((fromClient ? fs.firstC : fs.firstS) === NO_BYTES) this.keepFirst(fs, fromClient, d.data, d.payloadStart, d.payloadEnd);
      } else if (cur === null && this.startsStream(fs, fromClient, seq)) {
        // why: a direction's first segment, in order, mostly holds its whole hello or request head and is all
        // the dissectors need; it goes to them directly, and a reassembler is made only if the direction goes on
        const dir = this.dir(fs, fromClient, false);
        this.onStreamData(fs, fromClient, d.payload, ts);
        if ((fromClient ? fs.c2s : fs.s2c) === dir) {
          dir.reasm = new TcpReassembler(dir, this.opts.reassembly);
          dir.reasm.expect(seq + d.payloadEnd - d.payloadStart);
        }
      } else {
        const dir = cur ?? this.dir(fs, fromClient);
        const reasm = dir.reasm;
        if (reasm && !reasm.isStopped) {
          const n = d.payloadEnd - d.payloadStart;
          if (dir.http1 !== null && reasm.inOrder(seq) && dir.http1.countableBody() >= n) {
            // why: most segments of a large HTTP/1 body are only counted; one in order inside such a body skips
            // the reassembler, the stream events and the parser's buffers, most of what such a segment cost
            this.keepFirst(fs, fromClient, d.data, d.payloadStart, d.payloadEnd);
            reasm.skip(n);
            dir.http1.countBody(n, ts);
          } else {
            const before = reasm.retransmittedBytes;
            reasm.segment(seq, d.payload, ts);
            this.counters.retransmittedBytes += reasm.retransmittedBytes - before;
          }
          // (the bytes its FIN waited for have all come: the direction ends now)
          if (dir.finAt !== null && reasm.buffered === 0 && reasm.expected === dir.finAt) this.finAfterGap(fs, fromClient, ts);
        }
      }
    }
    // (the peer acknowledged a waiting FIN: it had every byte before it, so what the capture missed will not come again)
    if (flags & TCP_ACK) {
      const peer = fromClient ? fs.s2c : fs.c2s;
      if (peer && peer !== DONE && peer.finAt !== null && ((d.ack - peer.finAt) | 0) >= 1) this.finAfterGap(fs, !fromClient, ts);
    }
    if (d.tcpFlags & (TCP_FIN | TCP_RST)) {
      fs.closed = true;
      const fin = (d.tcpFlags & TCP_FIN) !== 0;
      // why: the direction's stream is over; finish its parser (a body delimited by close) and free its state. A FIN
      // with bytes before it missing (a segment lost, or one its sender will send again: a retransmission the capture
      // sees after the FIN) ends the direction when they come, when the peer acknowledges the FIN, at a reset or at the
      // capture's end (a key log's decryption of it too: its last records may be in them)
      const dir = fromClient ? fs.c2s : fs.s2c;
      const r = dir && dir !== DONE ? dir.reasm : null;
      const finSeq = (seq + d.payloadEnd - d.payloadStart) >>> 0;
      if (fin && r !== null && !r.isStopped && r.expected !== null && (r.buffered > 0 || ((finSeq - r.expected) | 0) > 0)) {
        dir!.finAt = finSeq;
      } else {
        // (a reset: nothing more comes; what waits behind a hole is read after it)
        r?.flush();
        this.endDir(fs, fromClient, fin, ts);
        // (its decrypted plaintext ends too: an HTTP/1.0 response over TLS runs to the close; the hooks' records of the
        // last writes come before the FIN, which follows the TLS close_notify)
        this.endDecrypted(fs, fromClient, fin, ts);
      }
      if (d.tcpFlags & TCP_RST) {
        // (a reset ends the other direction as well: a FIN of it waiting for bytes, its HTTP/1 message in progress and its
        // HTTP/2 streams, plain and decrypted)
        this.finAfterGap(fs, !fromClient, ts);
        const other = fromClient ? fs.s2c : fs.c2s;
        if (other && other !== DONE && (other.reasm?.buffered ?? 0) === 0) {
          if (other.http1) this.onMessages(fs, other.http1.end(true), 'plain', ts);
          if (other.http2) this.onMessages(fs, other.http2.close(), 'plain', ts);
        }
        this.endDecrypted(fs, !fromClient, false, ts);
      }
    }
  }

  /**
   * A direction whose FIN waited for bytes before it ends now (they will not come, or came): the bytes still missing are
   * declared lost, what waited behind them is read, and its stream and its decrypted plaintext end.
   */
  private finAfterGap(fs: FlowState, c2s: boolean, ts: number): void {
    const dir = c2s ? fs.c2s : fs.s2c;
    if (!dir || dir === DONE || dir.finAt === null) return;
    // (a direction being decrypted whose last bytes before its FIN did not come: its last records are not read)
    const r = dir.reasm;
    const lost = r && r.buffered === 0 && r.expected !== null ? (dir.finAt - r.expected) | 0 : 0;
    if (lost > 0) dir.keys?.fail(`a gap in the capture: its last ${lost} bytes before its FIN were not captured, and their records are not read`);
    r?.endAt(dir.finAt);
    this.endDir(fs, c2s, true, ts);
    this.endDecrypted(fs, c2s, true, ts);
  }

  /**
   * A direction's TCP stream ended (`fin`: by its FIN, else by a reset): its HTTP/1 message in progress ends (complete
   * when its body runs to the close, else unfinished: see Http1Parser.end), HTTP/2 streams are returned, and its state is
   * freed.
   */
  private endDir(fs: FlowState, c2s: boolean, fin: boolean, ts: number): void {
    const dir = c2s ? fs.c2s : fs.s2c;
    if (!dir || dir === DONE) return;
    dir.finAt = null;
    if (dir.http1) this.onMessages(fs, dir.http1.end(!fin), 'plain', ts);
    if (dir.http2) this.onMessages(fs, dir.http2.close(), 'plain', ts);
    if (dir.http1 || dir.http2 || fs.app !== 'classify') this.stopDir(fs, c2s);
  }

  /**
   * A direction's decrypted plaintext ends with its TCP stream (`fin`: by its FIN, else a reset): its HTTP/1 message in
   * progress ends as a plain one does (endDir), and its HTTP/2 streams are returned (an answer whose END_STREAM the close
   * cut off still has its status, as Wireshark shows it).
   */
  private endDecrypted(fs: FlowState, c2s: boolean, fin: boolean, ts: number): void {
    const dir = fs.x?.hook?.decrypted?.[c2s ? 'c2s' : 's2c'];
    // why not plaintext the receiving end's hooks read, unless a FIN completes its response: a read returns after its
    // bytes came, so its last records may come after the FIN or reset; its message ends at the capture's end
    // (endCapture), as the connection did
    if (dir?.http1 && (!readByReceiver(dir, c2s) || (fin && dir.http1.readsToClose()))) this.onMessages(fs, dir.http1.end(!fin), 'decrypted', ts);
    if (dir?.http2) this.onMessages(fs, dir.http2.close(), 'decrypted', ts);
  }

  /**
   * Whether a SYN (without ACK) on a flow not seen closing opens a new connection of its tuple, as Wireshark starts a new
   * stream: its initial sequence number is not the one the flow's client opened with (the old connection's close was not
   * captured: a middlebox dropped it idle, the capture lost its FIN), or the flow began in the middle and the SYN is not
   * its sender's own opening seen late. A SYN sent again has the same number; a flow its hooks' records made before any
   * packet came is the connection's own.
   */
  private reopens(fs: FlowState, d: DecodedPacket): boolean {
    if (fs.flow.packets === 0) return false;
    // (the other side's SYN without ACK opens no new connection: both sides open at once, "simultaneous open")
    if (fs.synC >= 0) return fs.synC !== d.seq && this.fromFlowClient(fs, d);
    if (fs.synS >= 0 || fs.flow.tcp?.state !== 'midstream') return false;
    // why by the sender's next number: its own SYN, captured behind its first segments (copies of several interfaces
    // merged out of order), lies before them, by no more than the flow's bytes; a new connection's initial number is
    // random. Without a segment of the sender's with a number (it only acknowledged, or nothing came from it), a SYN
    // opens anew, as Wireshark starts a new stream (before, only a flow that had carried data did: an idle connection's
    // keep-alive acknowledgements took the next connection of its ports in)
    const side = this.fromFlowClient(fs, d) ? 1 : 2;
    if ((fs.nextKnown & side) === 0) return true;
    const behind = (this.tcpNext[fs.at * 2 + side - 1]! - ((d.seq + 1) >>> 0)) | 0;
    return behind < 0 || behind > fs.flow.bytes;
  }

  /** Whether a SYN is the flow's client's own SYN again, its initial sequence number the same (a retry of a refused one). */
  private sameSyn(fs: FlowState, d: DecodedPacket): boolean {
    return fs.synC === d.seq && fs.flow.tcp?.state === 'refused' && this.fromFlowClient(fs, d);
  }

  private fromFlowClient(fs: FlowState, d: DecodedPacket): boolean {
    return d.srcPort === fs.cport && (d.ipVersion === 4 ? fs.cip === d.src4 : fs.flow.src.ip === d.src);
  }

  /** True when a segment at `seq` would be the first byte of the direction's stream (its SYN's next, or no SYN seen). */
  private startsStream(fs: FlowState, c2s: boolean, seq: number): boolean {
    const syn = c2s ? fs.synC : fs.synS;
    return syn < 0 || ((syn + 1) >>> 0) === seq >>> 0;
  }

  /** Keeps buf[start, end) while the direction has fewer than FIRST_BYTES bytes kept. */
  private keepFirst(fs: FlowState, c2s: boolean, buf: Buffer, start: number, end: number): void {
    if (c2s) fs.firstC = this.firstBytes.keep(fs.firstC, buf, start, end);
    else fs.firstS = this.firstBytes.keep(fs.firstS, buf, start, end);
  }

  private onUdp(fs: FlowState, d: DecodedPacket, fromClient: boolean): void {
    if ((fromClient ? fs.firstC : fs.firstS) === NO_BYTES && d.payloadEnd > d.payloadStart) this.keepFirst(fs, fromClient, d.data, d.payloadStart, d.payloadEnd);
    // (DNS on 53, mDNS to 5353, LLMNR on 5355: RFC 4795, DNS's format; a querier's multicast query and the unicast answer
    // from 5355 are two flows)
    if (fs.flow.src.port !== 53 && fs.flow.dst.port !== 53 && fs.flow.dst.port !== 5353 && fs.flow.src.port !== 5355 && fs.flow.dst.port !== 5355) {
      if (fs.app === 'dtls' || (fs.app === 'classify' && fromClient && looksLikeDtlsClientHello(d.payload))) return this.onDtls(fs, d, fromClient);
      if (fs.app === 'classify' || fs.quic) this.onQuic(fs, d, fromClient);
      const qd = fs.x?.quicKeys;
      if (qd) this.quicDatagram(fs, qd, d.payload, fromClient);
      return;
    }
    const msg = parseDns(d.payload, false);
    if (!msg) return;
    fs.app = 'dns';
    this.nameApp(fs, 'dns');
    this.onDns(fs, msg);
  }

  /** A DNS message of the flow: a query adds its entry (up to MAX_DNS_PER_FLOW), an answer completes its query's. */
  private onDns(fs: FlowState, msg: DnsMessage): void {
    // (each question its own entry: a message may ask several, as mDNS's do; none: one entry without a query)
    const questions: (DnsMessage['questions'][number] | null)[] = msg.questions.length > 0 ? msg.questions : [null];
    const entries: DnsSummary[] = [];
    for (const q of questions) {
      const list = fs.flow.dns ?? [];
      // (names compare without case: a resolver may send its query in mixed case, 0x20 encoding, and be answered in lower)
      const name = q?.name.toLowerCase() ?? null;
      let entry = list.find((e) => e.id === msg.id && (e.query === null ? name === null : e.query.toLowerCase() === name));
      if (!entry) {
        if (list.length >= MAX_DNS_PER_FLOW) break;
        entry = { id: msg.id, query: q?.name ?? null, type: q?.type ?? null, rcode: null, answers: [] };
        fs.flow.dns = add(list, entry);
      }
      entries.push(entry);
    }
    if (!msg.qr || entries.length === 0) return;
    // (an answer goes to the question of its name; one of another name, a CNAME's target, to the first question)
    const answers = entries.map((): string[] => []);
    for (const a of msg.answers) {
      const name = a.name.toLowerCase();
      const i = entries.findIndex((e) => e.query !== null && e.query.toLowerCase() === name);
      answers[Math.max(0, i)]!.push(`${a.type} ${a.data}`);
    }
    entries.forEach((e, i) => {
      e.rcode = msg.rcode;
      e.answers = answers[i]!;
      if (msg.cut) e.cut = true;
      if (msg.malformed) e.malformed = true;
    });
  }

  /**
   * A DTLS flow (its first client datagram a ClientHello in a DTLS record): its hellos, from its first datagrams (see
   * dtls.ts), give its SNI, ALPN, JA3 and JA4 ("d"), version and cipher, as TLS's do.
   */
  private onDtls(fs: FlowState, d: DecodedPacket, fromClient: boolean): void {
    if (fs.app !== 'dtls') {
      fs.app = 'dtls';
      this.nameApp(fs, 'dtls');
      this.ensureTls(fs);
    }
    const x = extra(fs);
    if (x.dtls === null) return;
    const st = x.dtls ??= { c: new DtlsHandshake(), s: new DtlsHandshake(), datagrams: 0 };
    if (fromClient && !fs.chDone) {
      st.c.push(d.payload);
      const ch = st.c.clientHello();
      if (ch) {
        fs.chDone = true;
        this.applyClientHello(fs, ch, 'dtls');
      }
    } else if (!fromClient && !fs.shDone) {
      st.s.push(d.payload);
      const sh = st.s.serverHello();
      if (sh) {
        fs.shDone = true;
        this.applyServerHello(fs, sh);
      }
    }
    if ((fs.chDone && fs.shDone) || ++st.datagrams >= MAX_DTLS_DATAGRAMS) x.dtls = null;
  }

  /**
   * UDP that is not DNS: a flow whose first client datagram is a QUIC Initial is 'quic' and gets its
   * ClientHello (SNI, ALPN, JA3/JA4 with the 'q' prefix) from the Initials; anything else is 'unknown'.
   */
  private onQuic(fs: FlowState, d: DecodedPacket, fromClient: boolean): void {
    const payload = d.payload;
    let q = fs.quic;
    if (!fromClient || payload.length === 0) {
      if (q && !q.serverDone && payload.length > 0) {
        // why: the server's Initial opens with Initial keys every observer can make, as the client's do: its
        // ServerHello names the version and cipher suite (tshark shows them without a key log)
        const sh = q.parser.pushServer(payload);
        if (sh === 'incomplete' && ++q.serverDatagrams < MAX_QUIC_DATAGRAMS) return;
        q.serverDone = true;
        if (q.helloDone) fs.quic = null;
        if (sh && sh !== 'incomplete') this.applyServerHello(fs, sh);
        return;
      }
      // why: a capture can start after the client's first datagram; to port 443 wait for the next one. A server's
      // Version Negotiation (a long header of version 0) answers a client that tried a version the server lacks: the
      // client's next Initial, of another version, follows on the same ports
      if (fs.app === 'classify' && fs.flow.dst.port !== QUIC_PORT && !(versionNegotiation(payload) && this.mayRetryVersion(fs))) { fs.app = 'unknown'; this.nameApp(fs, 'unknown'); }
      return;
    }
    if (!q) {
      if (!looksLikeQuicInitial(payload)) {
        // (a long header of a version it cannot read, as a client trying a new or greased one sends: its next Initial may
        // be of one it can, after the server's Version Negotiation)
        if (quicLongHeader(payload) && this.mayRetryVersion(fs)) return;
        fs.app = 'unknown';
        this.nameApp(fs, 'unknown');
        return;
      }
      q = fs.quic = { parser: new QuicInitialParser(), datagrams: 0, serverDatagrams: 0, helloDone: false, serverDone: false };
      fs.app = 'quic';
      this.nameApp(fs, 'quic');
      this.ensureTls(fs);
      if ((this.keyLog !== null && this.keyLog.size > 0) || this.following) extra(fs).quicKeys = new QuicDecryptor(payload);
    }
    // (after its hello too, while the server's is not read: after a Retry the client's next Initial begins the keys
    // the server's Initial is under; push reads nothing more when no Retry came)
    const r = q.parser.push(payload);
    const n = ++q.datagrams;
    if (!q.helloDone && (r !== 'incomplete' || n >= MAX_QUIC_DATAGRAMS)) {
      q.helloDone = true;
      // (not QUIC it can read: no server Initial will be either)
      if (r === null) q.serverDone = true;
      if (r && r !== 'incomplete') this.applyClientHello(fs, r, 'quic');
    }
    // (a server that does not answer: its Initials are not waited for past as many client datagrams again)
    if (q.helloDone && (q.serverDone || n >= 2 * MAX_QUIC_DATAGRAMS)) fs.quic = null;
  }

  /** A flow's first datagrams may be QUIC of a version tried before one it can read (bounded: a few datagrams). */
  private mayRetryVersion(fs: FlowState): boolean {
    return fs.flow.packets <= MAX_VERSION_TRIES;
  }

  /**
   * A datagram of a QUIC connection read with a key log: its packets opened (once the secrets are found by the client
   * random, see quicSecrets) and the HTTP/3 messages they complete taken as the connection's exchanges.
   */
  private quicDatagram(fs: FlowState, qd: QuicDecryptor, payload: Buffer, fromClient: boolean): void {
    const msgs = qd.push(payload, fromClient, fs.flow.lastSeen);
    if (!qd.hasSecrets && qd.reason === null) this.quicSecrets(fs, qd);
    this.quicMessages(fs, msgs);
  }

  /**
   * A QUIC connection's secrets, looked up once both Initials told its client random and cipher suite: with them its
   * packets kept so far are opened; without them it waits while a key log is followed (settleAwaiting brings them,
   * expireAwaiting gives up), else it is not decrypted (its reason says why).
   */
  private quicSecrets(fs: FlowState, qd: QuicDecryptor): void {
    const random = qd.clientRandom;
    const cipher = qd.cipher;
    if (random === null || cipher === null) return;
    const tls = this.ensureTls(fs);
    // (QUIC is TLS 1.3; the ServerHello in the server's Initial names the suite)
    if (tls.cipher === null) {
      tls.version = tlsVersionName(0x0304);
      tls.cipher = cipherName(cipher);
    }
    const hex = random.toString('hex');
    const secrets = this.keyLog?.get(random);
    if (secrets?.client0 && secrets.server0) {
      this.quicAwaiting.delete(hex);
      this.quicMessages(fs, qd.setSecrets(secrets));
      fs.version++;
    } else if (this.following) {
      if (!this.quicAwaiting.has(hex)) {
        this.quicAwaiting.set(hex, { fs, qd, since: fs.flow.lastSeen });
        this.expireAwaiting(fs.flow.lastSeen - AWAIT_SECRETS_MS, `no secrets for its client random came in the followed key log within ${AWAIT_SECRETS_MS / 1000} s of its hello`);
      }
    } else if (secrets) {
      this.quicMessages(fs, qd.setSecrets(secrets));
    } else {
      qd.giveUp(`the key log has no secrets for its client random (${hex})`);
    }
  }

  private quicMessages(fs: FlowState, msgs: HttpMessage[]): void {
    if (msgs.length === 0) return;
    this.onMessages(fs, msgs, 'decrypted', msgs[0]!.ts);
    fs.version++;
  }

  // ---- reassembled streams ----

  /** The dissectors are finished with a direction: free its reassembler, buffers and parsers. */
  private stopDir(fs: FlowState, c2s: boolean): void {
    const dir = c2s ? fs.c2s : fs.s2c;
    dir?.reasm?.stop();
    if (c2s) fs.c2s = DONE;
    else fs.s2c = DONE;
  }

  private onStreamGap(fs: FlowState, c2s: boolean): void {
    this.counters.gaps++;
    const dir = this.dir(fs, c2s);
    if (dir.http1) {
      this.onMessages(fs, dir.http1.gap(), 'plain', fs.flow.lastSeen);
      if (!c2s) extra(fs).answersGap = true;
    } else if (dir.http2) this.onMessages(fs, dir.http2.gap(), 'plain', fs.flow.lastSeen);
    else if (fs.app === 'tls') {
      dir.keys?.fail('a gap in the capture: its records after it cannot be read');
      if (c2s && !fs.chDone) {
        fs.chDone = true;
        // (its ClientHello, or what was still to come of it, was lost: no fingerprint)
        const x = extra(fs);
        x.startLost = (x.startLost ?? 0) | 1;
      }
      if (!c2s && !fs.shDone) fs.shDone = true;
      this.stopDir(fs, c2s);
    } else if (fs.app === 'classify') {
      // why: a direction whose first bytes were lost (its first segment dropped) is told from the bytes after the gap,
      // as a connection taken up in the middle is; a TLS connection whose ClientHello was lost was "unknown", no verdict
      if (dir.head === null && fs.flow.transport === 'tcp') {
        const x = extra(fs);
        x.startLost = (x.startLost ?? 0) | (c2s ? 1 : 2);
        return;
      }
      this.setApp(fs, 'unknown');
    } else if (fs.app === 'dns') {
      // (past a gap the next message's length is not known)
      this.stopDir(fs, c2s);
    }
  }

  private onStreamData(fs: FlowState, c2s: boolean, chunk: Buffer, ts: number): void {
    this.keepFirst(fs, c2s, chunk, 0, chunk.length);
    const dir = this.dir(fs, c2s);
    if (dir.done) return;
    switch (fs.app) {
      case 'classify':
      case 'tls': {
        if (dir.keys) {
          dir.keys.push(chunk);
          return;
        }
        if (c2s && fs.flow.proxy === undefined && (fs.x?.proxyHead || (dir.head === null && (chunk[0] === 0x50 || chunk[0] === 0x0d)))) {
          const rest = this.afterProxyHeader(fs, chunk);
          if (rest === null || rest.length === 0) return;
          chunk = rest;
        }
        // why: most hellos and request heads arrive whole in the first segment; dissect that in place and
        // copy only what is still needed after (the chunk may be a view of the reader's buffer)
        const limit = this.opts.dissectLimit;
        const borrowed = dir.head === null ? (chunk.length <= limit ? chunk : chunk.subarray(0, limit)) : null;
        dir.head = borrowed ?? appendCapped(dir.head, chunk, limit);
        if (fs.app === 'classify') this.classify(fs, c2s);
        else this.tlsHello(fs, c2s);
        const after = c2s ? fs.c2s : fs.s2c;
        if (borrowed && after && after.head === borrowed) after.head = Buffer.from(borrowed);
        return;
      }
      case 'http':
      case 'http2':
      case 'grpc':
        this.feedPlainHttp(fs, dir, chunk, ts);
        return;
      case 'dns':
        this.feedDnsTcp(fs, c2s, dir, chunk);
        return;
      default:
        // (a plain database connection's login is read as the client's stream goes on)
        if (c2s && LOGIN_APPS.has(fs.app)) {
          dir.head = appendCapped(dir.head, chunk, this.opts.dissectLimit);
          this.readPlainLogin(fs);
          return;
        }
        this.stopDir(fs, c2s);
    }
  }

  /**
   * DNS over TCP (RFC 1035 4.2.2): the direction's messages, each after its two-byte length, read as each completes; the
   * bytes of one not whole yet wait in the direction's head (at most a message: 64 KiB). Once the flow's entries are
   * full and every one has its answer, the connection is not read further. In a connection taken up in the middle a
   * direction is read only when its first bytes begin a message (beginsDnsMessage).
   */
  private feedDnsTcp(fs: FlowState, c2s: boolean, dir: DirState, chunk: Buffer): void {
    if (!dir.dnsFrom) {
      if (this.midstream(fs)) {
        const first = dir.head ? Buffer.concat([dir.head, chunk]) : chunk;
        // (a copy: the chunk may be a view of the reader's buffer)
        if (first.length < 14) { dir.head = Buffer.from(first); return; }
        if (!beginsDnsMessage(first, !c2s)) {
          dir.head = null;
          this.stopDir(fs, c2s);
          return;
        }
        dir.head = null;
        chunk = first;
      }
      dir.dnsFrom = true;
    }
    const head = dir.head;
    let buf: Buffer;
    if (head !== null && head.length >= 2) {
      const whole = (dir.pieces ??= new Pieces(head, 2 + head.readUInt16BE(0))).add(chunk);
      if (whole === null) return;
      buf = whole;
      dir.pieces = null;
    } else buf = head ? Buffer.concat([head, chunk]) : chunk;
    let at = 0;
    while (buf.length - at >= 2) {
      const len = buf.readUInt16BE(at);
      // why: a DNS message is at least its 12-byte header; a shorter length is no DNS over TCP (another protocol on
      // port 53), and reading on took a zero-filled segment as 700 empty messages
      if (len < 12) {
        dir.head = null;
        this.stopDir(fs, c2s);
        return;
      }
      if (buf.length - at < 2 + len) break;
      const msg = parseDns(buf.subarray(at + 2, at + 2 + len), false);
      if (msg) this.onDns(fs, msg);
      at += 2 + len;
    }
    // (a copy: the chunk may be a view of the reader's buffer)
    dir.head = at < buf.length ? Buffer.from(buf.subarray(at)) : null;
    const list = fs.flow.dns;
    if (list && list.length >= MAX_DNS_PER_FLOW && list.every((e) => e.rcode !== null)) {
      this.stopDir(fs, c2s);
      this.stopDir(fs, !c2s);
    }
  }

  /**
   * The client's first bytes, which begin (or may begin: "P", CR) with a PROXY protocol header: what follows the
   * header once it is read (the flow's `proxy` set), all of them when they begin with none; null while too few
   * are here to tell (kept until the next). A header longer than the dissection limit is taken for none.
   */
  private afterProxyHeader(fs: FlowState, chunk: Buffer): Buffer | null {
    const pending = fs.x?.proxyHead ?? null;
    const buf = pending ? Buffer.concat([pending, chunk]) : chunk;
    const h = proxyHeader(buf);
    if (h === INCOMPLETE && buf.length < this.opts.dissectLimit) {
      // (a copy: the chunk may be a view of the reader's buffer)
      extra(fs).proxyHead = pending ? buf : Buffer.from(buf);
      return null;
    }
    if (pending) fs.x!.proxyHead = null;
    if (h === null || h === INCOMPLETE) return buf;
    const proxy: NonNullable<Flow['proxy']> = { version: h.version, src: h.src, dst: h.dst };
    if (h.authority) proxy.authority = h.authority;
    if (h.alpn) proxy.alpn = h.alpn;
    if (h.tls) proxy.tls = h.tls;
    fs.flow.proxy = proxy;
    return buf.subarray(h.length);
  }

  /** A plain database connection's login, from the client's stream; its direction ends once it is read (or cannot be). */
  private readPlainLogin(fs: FlowState): void {
    const head = fs.c2s?.head ?? null;
    const login = head && LOGIN_APPS.has(fs.app) ? dbLogin(fs.app, head) : null;
    if (login === INCOMPLETE && head!.length < this.opts.dissectLimit) return;
    if (login && login !== INCOMPLETE) fs.flow.db = login;
    this.stopDir(fs, true);
  }

  private classify(fs: FlowState, c2s: boolean): void {
    const ch = fs.c2s?.head ?? null;
    const sh = fs.s2c?.head ?? null;
    if (sh && isSshBanner(sh)) return this.setApp(fs, 'ssh');
    if (!ch || ch.length === 0) {
      // (a server's TLS records, its client silent so far, in a connection taken up in the middle or one whose first
      // bytes were lost)
      if (sh && this.recordsAnywhere(fs) && midstreamRecords(sh, midstreamScan(fs).s) >= 0) return this.setRecordsTls(fs);
      // (a ServerHello before any byte of its client: the client's hello was lost, or comes later than the answer)
      if (sh && beginsServerHello(sh)) return this.setApp(fs, 'tls');
      if (!c2s && sh && sh.length >= this.opts.dissectLimit) this.setApp(fs, 'unknown');
      return;
    }
    if (isSshBanner(ch)) return this.setApp(fs, 'ssh');
    // (a banner's first bytes; "S" could also begin an HTTP method)
    if (ch.length < SSH_BANNER.length && SSH_BANNER.subarray(0, ch.length).equals(ch)) return;
    if (ch[0] === 0x16 && (ch.length < 2 || ch[1] === 0x03)) {
      // (a NATS server's INFO line comes before the client's handshake)
      const nats = natsPrelude(ch, sh);
      if (nats) return this.prelude(fs, ch, sh, nats);
      if (ch.length >= 2) this.setApp(fs, 'tls');
      return;
    }
    // (a ClientHello in SSL 2.0's format, RFC 5246 Appendix E.2, as old clients and scanners send)
    if (ch[0]! >= 0x80) {
      const v2 = sslv2HelloEnd(ch);
      if (v2 === 'incomplete') return;
      if (v2 !== null) return this.setApp(fs, 'tls');
    }
    // (before HTTP: a server that greets first is no HTTP server, and a client's first line could pass for a request's start)
    const up = textPrelude(ch, sh) ?? ldapPrelude(ch, sh) ?? xmppPrelude(ch, sh) ?? natsPrelude(ch, sh) ?? tdsPrelude(ch, sh);
    if (up) return this.prelude(fs, ch, sh, up);
    if (looksLikeHttp2(ch)) {
      if (ch.length >= 24) this.setApp(fs, 'http2');
      return;
    }
    if (looksLikeHttp1(ch)) {
      if (ch.length >= 16 || ch.includes(0x20)) this.setApp(fs, 'http');
      return;
    }
    const db = dbPrelude(ch, sh);
    if (db === INCOMPLETE) return;
    if (db) return this.setPreludeApp(fs, db.app, db.tls);
    // (LLMNR over TCP, RFC 4795 §2.5, as DNS's)
    if (fs.flow.src.port === 53 || fs.flow.dst.port === 53 || fs.flow.src.port === 5355 || fs.flow.dst.port === 5355) return this.setApp(fs, 'dns');
    const anywhere = this.recordsAnywhere(fs);
    if (anywhere) {
      const scan = midstreamScan(fs);
      if (midstreamRecords(ch, scan.c) >= 0 || (sh && midstreamRecords(sh, scan.s) >= 0)) return this.setRecordsTls(fs);
    }
    // (after what is told at once above: a first segment of one or two bytes, "G" or "PO", or a line not ended yet, too
    // few to tell; HTTP/2's "PR" begins like PROPFIND)
    if (this.mayBecomeHttp1(ch, sh)) return;
    // (taken up inside a long record, the first whole one may begin past the bytes so far)
    const limit = Math.min(this.opts.dissectLimit, MIDSTREAM_SCAN);
    if (anywhere && ch.length < limit && (sh?.length ?? 0) < limit) return;
    this.setApp(fs, 'unknown');
  }

  /**
   * Whether a connection's first bytes from its client, too few to tell, are worth waiting on as the beginning of an
   * HTTP/1 request (mayGrowIntoHttp1): within the bytes a direction keeps (dissectLimit), and while its server has said
   * nothing, or something that begins like HTTP/1 (a connection taken up in the middle: an answer to an earlier request).
   * why: any text ("A B") may begin a request line; a client that sent a line's beginning and then waited for its
   * server's answer (a prompt's) kept its flow unclassified, and every packet classifying it again, for its whole life
   */
  private mayBecomeHttp1(ch: Buffer, sh: Buffer | null): boolean {
    if (sh !== null && sh.length > 0 && !looksLikeHttp1(sh)) return false;
    return mayGrowIntoHttp1(ch, this.opts.dissectLimit);
  }

  /** A TCP connection taken up in the middle: no SYN of it seen (it was open before the capture began). */
  private midstream(fs: FlowState): boolean {
    return fs.flow.transport === 'tcp' && (fs.tcpBits & (TCP_SEEN_SYN | TCP_SEEN_SYNACK)) === 0;
  }

  /**
   * Whether TLS records may begin anywhere in the connection's bytes: it was taken up in the middle, or a direction's
   * first bytes were lost (startLost).
   */
  private recordsAnywhere(fs: FlowState): boolean {
    return this.midstream(fs) || (fs.x?.startLost ?? 0) !== 0;
  }

  /**
   * A connection taken up in the middle, or one whose first bytes the capture lost, whose bytes are TLS records: TLS
   * whose ClientHello was not seen (no SNI, JA3/JA4), its sides judged by their processes and hooks. Taken up in the
   * middle, its handshake came before the capture (`tls.midstream`); a lost ClientHello is said in the client's reason
   * (ownSides). Without this, such a connection (a database pool's, a gRPC channel's, a sidecar's mTLS: long-lived) was
   * "unknown", with no verdict at all. A ServerHello the capture has (the server's stream from its start) still tells
   * the version and cipher.
   */
  private setRecordsTls(fs: FlowState): void {
    fs.app = 'tls';
    this.nameApp(fs, 'tls');
    fs.chDone = true;
    const midstream = this.midstream(fs);
    const tls = this.ensureTls(fs);
    if (midstream) tls.midstream = true;
    this.stopDir(fs, true);
    const sh = fs.s2c && fs.s2c !== DONE ? fs.s2c.head : null;
    // (the server's stream from its start: its ServerHello, here or still to come; taken up in the middle, only one here)
    if (((fs.x?.startLost ?? 0) & 2) === 0 && (sh ? beginsServerHello(sh) : !midstream)) return this.tlsHello(fs, false);
    fs.shDone = true;
    this.stopDir(fs, false);
  }

  /** A connection that began with a protocol that may switch to TLS in place: told, or waiting for more. */
  private prelude(fs: FlowState, ch: Buffer, sh: Buffer | null, up: UpgradePrelude | typeof INCOMPLETE): void {
    if (up === INCOMPLETE) return this.undecided(fs, ch, sh);
    if (up.tls !== 'pending') return this.setPreludeApp(fs, up.app, up.tls);
    this.nameApp(fs, up.app);
    this.undecided(fs, ch, sh, up.app);
  }

  /**
   * A connection whose first bytes do not tell its protocol yet: it waits for more, unless a direction's bytes
   * reached the dissection limit (then it is `app` in plain text, or unknown).
   */
  private undecided(fs: FlowState, ch: Buffer, sh: Buffer | null, app?: UpgradeApp): void {
    const limit = this.opts.dissectLimit;
    if (ch.length < limit && (sh?.length ?? 0) < limit) return;
    if (app) this.setPreludeApp(fs, app, null);
    else this.setApp(fs, 'unknown');
  }

  /**
   * A database, mail, file transfer or directory connection; one that switched to TLS (`tls`: where its records begin in each
   * direction) has its hellos dissected after its prelude.
   */
  private setPreludeApp(fs: FlowState, app: DbApp | UpgradeApp, tls: { client: number; server: number } | null): void {
    const kept = fs.x?.loginKept;
    if (kept) fs.x!.loginKept = null;
    if (!tls) {
      // (a database client's login is read as its stream goes on; no other stream is needed)
      fs.app = app;
      this.nameApp(fs, app);
      this.stopDir(fs, false);
      if (LOGIN_APPS.has(app)) this.readPlainLogin(fs);
      else this.stopDir(fs, true);
      return;
    }
    const x = extra(fs);
    x.tlsSkipC = tls.client;
    x.tlsSkipS = tls.server;
    this.setApp(fs, 'tls');
    this.nameApp(fs, app);
    // (its login, when the hooks' records of it came before its prelude's packets)
    if (kept && LOGIN_APPS.has(fs.flow.app)) {
      for (const r of kept.records) if (!x.loginDone) this.readDecryptedLogin(fs, x, r.feeder, r.bytes);
    }
  }

  /**
   * Names the flow's protocol (flow.app), as every writer of it does: in a proxy's tunnel (FlowExtra.tunnel) the flow stays
   * 'http' with its CONNECT, whatever the tunnel carries (TLS, plain HTTP, a mail or database protocol, h2c).
   */
  private nameApp(fs: FlowState, app: string): void {
    if (!fs.x?.tunnel) fs.flow.app = app;
  }

  private setApp(fs: FlowState, app: App): void {
    fs.app = app;
    if (fs.x?.loginKept) fs.x.loginKept = null;
    this.nameApp(fs, app === 'classify' ? 'unknown' : app);
    switch (app) {
      case 'tls':
        this.tlsHello(fs, true);
        this.tlsHello(fs, false);
        break;
      case 'http':
      case 'http2': {
        // (both parsers before either is fed: a first request tells the response side its method, HEAD or CONNECT)
        const dirs = [this.dir(fs, true), this.dir(fs, false)];
        for (const dir of dirs) {
          if (app === 'http') dir.http1 = new Http1Parser(this.http1Options);
          else dir.http2 = new Http2Parser(dir === fs.c2s ? 'client' : 'server');
        }
        // (a connection taken up in the middle whose server spoke before the client's first request came: its answer to
        // a request before the capture is read first, as it came)
        for (const dir of app === 'http' && this.midstream(fs) ? [dirs[1]!, dirs[0]!] : dirs) {
          const head = dir.head;
          dir.head = null;
          if (head) this.feedPlainHttp(fs, dir, head, fs.flow.lastSeen);
        }
        break;
      }
      case 'dns': {
        // (DNS over TCP: both directions' messages, each after its length, as many as the connection carries. In a
        // connection taken up in the middle, a direction whose first bytes do not begin a message is not read: they
        // need not, and a segment in the middle of a long answer would be read as messages of made-up lengths)
        for (const c2s of [true, false]) {
          const dir = c2s ? fs.c2s : fs.s2c;
          if (dir && dir !== DONE && dir.head) {
            const head = dir.head;
            dir.head = null;
            this.feedDnsTcp(fs, c2s, dir, head);
          }
        }
        break;
      }
      default:
        this.stopDir(fs, true);
        this.stopDir(fs, false);
    }
  }

  private tlsHello(fs: FlowState, c2s: boolean): void {
    const dir = c2s ? fs.c2s : fs.s2c;
    if (!dir || dir.done || !dir.head) return;
    const skip = fs.x ? (c2s ? fs.x.tlsSkipC : fs.x.tlsSkipS) : 0;
    const head = skip === 0 ? dir.head : dir.head.subarray(Math.min(skip, dir.head.length));
    if (c2s && !fs.chDone) {
      const r = parseClientHello(head);
      if (r === 'incomplete' && dir.head.length < this.opts.dissectLimit) return;
      fs.chDone = true;
      if (r && r !== 'incomplete') {
        this.applyClientHello(fs, r);
        this.linkSession(fs, head);
        if (((this.keyLog !== null && this.keyLog.size > 0) || this.following) && this.clientKeys(fs, dir, head)) return;
      } else if (r === null && this.midstream(fs)) {
        // (a handshake record that is no ClientHello, taken up in the middle: a handshake the capture came into late)
        this.ensureTls(fs).midstream = true;
      }
    } else if (!c2s && !fs.shDone) {
      let sh = head;
      let r = parseServerHello(sh);
      if (r && r !== 'incomplete' && r.retry) {
        // (a HelloRetryRequest: the server's hello is the one after it, which answers the client's second ClientHello; read
        // from the HelloRetryRequest on each time, as it is short and rare. A second one, which a client must refuse, is none)
        this.applyServerHello(fs, r);
        const next = afterHelloRetry(sh);
        sh = sh.subarray(next < 0 ? sh.length : next);
        r = next < 0 ? 'incomplete' : parseServerHello(sh);
        if (r && r !== 'incomplete' && r.retry) r = null;
      }
      if (r === 'incomplete' && dir.head.length < this.opts.dissectLimit) return;
      fs.shDone = true;
      if (r && r !== 'incomplete') {
        this.applyServerHello(fs, r);
        if (fs.x?.keys?.c2s && this.serverKeys(fs, fs.x.keys, dir, sh, r)) return;
      }
    }
    this.stopDir(fs, c2s);
  }

  /**
   * With a key log, a ClientHello's connection looks up its secrets by the hello's random; with them (or while a key log
   * is followed, see followKeyLog), its client's stream is kept from the hello on, to be decrypted once the server's
   * hello tells the keys (true: the direction goes on). `head`: the client's stream from its hello's record.
   */
  private clientKeys(fs: FlowState, dir: DirState, head: Buffer): boolean {
    const random = helloRandom(head);
    if (random === null) return false;
    const secrets = this.keyLog?.get(random) ?? null;
    // why "complete", not "any": a helper following a key log forwards a client's lines as it writes them, one by one
    // (TLS 1.3's handshake secrets after the ServerHello, the traffic secrets after the server's Finished), and its
    // ring can hand the handshake's packets over after that: secrets blocks with some of the lines may come before
    // this hello and the rest after the server's. It waits for the rest, as when none came yet (see serverKeys, which
    // knows the version and so which secrets it needs); taking the first lines as all there is decrypted nothing.
    const waiting = this.following && !secretsComplete(secrets, 0x0304) && !secretsComplete(secrets, 0x0303);
    const keys: FlowKeys = { random, secrets, c2s: null, s2c: null, reason: null, hs: null };
    extra(fs).keys = keys;
    if (!secrets && !waiting) return false;
    if (dir.head!.length >= this.opts.dissectLimit) {
      keys.reason = `its client's stream was cut at ${this.opts.dissectLimit} bytes before its hello was read`;
      return false;
    }
    const wait = waiting ? { bytes: AWAIT_BYTES, for: 'its secrets came in the followed key log' } : undefined;
    const decryptor = (c2s: boolean): RecordDecryptor =>
      new RecordDecryptor((data) => this.feedDecrypted(fs, c2s, 'keys', data, 0, data.length, null, fs.flow.lastSeen, false), wait);
    keys.c2s = decryptor(true);
    keys.s2c = decryptor(false);
    dir.keys = keys.c2s;
    dir.head = null;
    keys.c2s.push(head);
    if (waiting) {
      this.awaiting.set(random.toString('hex'), { fs, keys, since: fs.flow.lastSeen });
      this.expireAwaiting(fs.flow.lastSeen - AWAIT_SECRETS_MS, `no secrets for its client random came in the followed key log within ${AWAIT_SECRETS_MS / 1000} s of its hello`);
    }
    return true;
  }

  /**
   * The server's hello of a connection with secrets: both directions' keys, and its stream decrypted from here (true).
   * A connection waiting for its secrets keeps the server's stream too, until they come (see settleAwaiting).
   */
  private serverKeys(fs: FlowState, keys: FlowKeys, dir: DirState, head: Buffer, sh: ServerHello): boolean {
    const serverRandom = helloRandom(head);
    const cut = dir.head!.length >= this.opts.dissectLimit;
    if (serverRandom === null || cut) {
      this.noKeys(fs, keys, serverRandom === null ? 'its ServerHello could not be read' : `its server's stream was cut at ${this.opts.dissectLimit} bytes before its hello was read`);
      return false;
    }
    const hex = keys.random.toString('hex');
    const waiting = this.awaiting.get(hex);
    // (it gave up waiting for its secrets before this hello came, see expireAwaiting)
    if (!waiting && !keys.secrets) return false;
    const hs: HandshakeParams = { clientRandom: keys.random, serverRandom, version: sh.selectedVersion, cipher: sh.cipher };
    dir.keys = keys.s2c;
    dir.head = null;
    keys.s2c!.push(head);
    if (waiting) {
      const secrets = this.keyLog?.get(keys.random) ?? null;
      if (!secretsComplete(secrets, hs.version)) {
        keys.hs = hs;
        return true;
      }
      keys.secrets = secrets;
    }
    return this.applyKeys(fs, keys, hs);
  }

  /** The connection's keys from its secrets and hellos, set on both directions (true), or why there are none (false). */
  private applyKeys(fs: FlowState, keys: FlowKeys, hs: HandshakeParams): boolean {
    this.doneWaiting(keys);
    const made = connectionKeys(keys.secrets!, hs);
    if (typeof made === 'string') {
      this.noKeys(fs, keys, made);
      return false;
    }
    keys.c2s!.setKeys(made.c2s);
    keys.s2c!.setKeys(made.s2c);
    // (secrets from a followed key log can come after the connection closed: its records, read now, end as the close did)
    for (const c2s of [true, false]) {
      const how = endedBy(fs.tcpBits, c2s);
      if (how) this.endDecrypted(fs, c2s, how === 'fin', fs.flow.lastSeen);
    }
    fs.version++;
    return true;
  }

  /** The connection no longer waits for its secrets (it has its keys, or none). */
  private doneWaiting(keys: FlowKeys): void {
    keys.hs = null;
    if (this.awaiting.size > 0) this.awaiting.delete(keys.random.toString('hex'));
  }

  /** No keys for the connection: both directions stop being kept, with the reason. */
  private noKeys(fs: FlowState, keys: FlowKeys, why: string): void {
    this.doneWaiting(keys);
    keys.reason = why;
    keys.c2s!.fail(why);
    keys.s2c!.fail(why);
    for (const c2s of [true, false]) if ((c2s ? fs.c2s : fs.s2c)?.keys) this.stopDir(fs, c2s);
    fs.version++;
  }

  /**
   * Links a TCP connection whose ClientHello (`head`, from its record header) another open connection carried a
   * moment before: one TLS session seen twice, on both legs of a NAT or of a proxy that relays TCP. A random is 32
   * bytes a client draws per handshake, so two connections with the same one carry the same handshake; the 160
   * bits compared make a chance match between two clients' hellos as good as impossible. (A capture made of one
   * hello copied many times, as synthetic ones are, links only connections open at once.)
   */
  private linkSession(fs: FlowState, head: Buffer): void {
    // (an SSL 2.0-format hello has no random there: its challenge comes after its cipher specs)
    if (fs.flow.transport !== 'tcp' || head.length < 11 + 20 || head[0] !== 0x16 || head[5] !== 0x01) return;
    // (32-bit numbers: small integers to V8, no heap number per key)
    const key = head.readInt32BE(11);
    const r1 = head.readInt32BE(15);
    const r2 = head.readInt32BE(19);
    const r3 = head.readInt32BE(23);
    const r4 = head.readInt32BE(27);
    const at = fs.flow.lastSeen;
    if (this.part) this.sessionLog.push((key >>> 0) * 0x200000 + ((r1 >>> 0) & 0x1fffff));
    const seen = this.hellos.get(key);
    if (seen && seen.r1 === r1 && seen.r2 === r2 && seen.r3 === r3 && seen.r4 === r4 && seen.fs !== fs && !seen.fs.closed &&
      Math.abs(at - seen.at) <= SESSION_WINDOW_MS) {
      extra(fs).session = seen.fs;
      const first = extra(seen.fs);
      first.session ??= fs;
      // (the first leg's verdicts may take this leg's evidence: resolve it again)
      seen.fs.version++;
      return;
    }
    if (this.hellos.size >= this.hellosCap) {
      for (const [k, h] of this.hellos) if (at - h.at > SESSION_WINDOW_MS || h.fs.closed) this.hellos.delete(k);
      if (this.hellos.size >= this.hellosCap * 0.75) this.hellosCap *= 2;
    }
    this.hellos.set(key, { fs, r1, r2, r3, r4, at });
  }

  private ensureTls(fs: FlowState): NonNullable<Flow['tls']> {
    if (!fs.flow.tls) {
      fs.flow.tls = { sni: null, alpn: NO_ALPN, version: null, cipher: null, ja3: null, ja3Hash: null, ja4: null, client: null, server: null };
      this.tlsStates.push(fs);
    }
    return fs.flow.tls;
  }

  private applyClientHello(fs: FlowState, ch: ClientHello, transport: HelloTransport = 'tcp'): void {
    const tls = this.ensureTls(fs);
    // (the time of the packet that completed the hello: never before the handshake began)
    if (this.nodes.get(fs.flow.node)?.mode === 'ebpf') extra(fs).helloAt ??= fs.flow.lastSeen;
    tls.sni = ch.sni;
    // why: one client sends the same hello fields on every connection; hashing them once per distinct set
    // instead of per flow was a sixth of the time on captures with many short TLS connections.
    const fields = helloFields(ch);
    hashHello(fields, transport);
    // why: a number key (53 bits of the 64-bit hash): no string built and hashed per hello
    const hash = (LANES[H1]! >>> 0) * 0x200000 + (LANES[H2]! >>> 11);
    let fp = this.fingerprints.get(hash);
    if (!fp || fp.transport !== transport || !sameFields(fp.fields, fields)) {
      // why no JA3 for a hello in SSL 2.0's format: JA3 is made from a TLS ClientHello (Salesforce's reference reads TLS
      // records only) and tshark gives none for one. JA4 is: its versions include SSL 2.0 ("s2"), and it is made of
      // what such a hello has (its TLS suites; no extensions), so the fingerprint lookup says what it found for it
      const j3 = ch.sslv2 === true ? null : ja3(ch);
      // why a copy: the parser's fields are a view of a shared block
      fp = { fields: fields.slice(), transport, ja3: j3?.string ?? null, ja3Hash: j3?.hash ?? null, ja4: ja4(ch, transport) };
      if (this.fingerprints.size >= 4096) this.fingerprints.clear();
      this.fingerprints.set(hash, fp);
    }
    tls.ja3 = fp.ja3;
    tls.ja3Hash = fp.ja3Hash;
    tls.ja4 = fp.ja4;
    // (the parser's list, shared by every hello offering the same one)
    tls.alpn = ch.alpn;
  }

  private applyServerHello(fs: FlowState, sh: ServerHello): void {
    const tls = this.ensureTls(fs);
    // why: a HelloRetryRequest negotiates nothing yet: its version and cipher are what the real ServerHello must repeat,
    // and a client that does not try again never gets one
    if (sh.retry) {
      tls.helloRetry = true;
      return;
    }
    tls.version = tlsVersionName(sh.selectedVersion);
    tls.cipher = cipherName(sh.cipher);
    if (sh.alpn) tls.negotiatedAlpn = sh.alpn;
  }

  private feedPlainHttp(fs: FlowState, dir: DirState, chunk: Buffer, ts: number): void {
    // why: no copy here: both parsers copy what they keep (bodies, an unfinished tail), never pinning the
    // reader's chunks; a copy per packet was a tenth of the time on HTTP-heavy captures
    if (dir.http1) {
      this.onMessages(fs, dir.http1.push(chunk, ts), 'plain', ts);
      const tunnel = dir.http1?.takeTunnel() ?? null;
      const upgrade = fs.x?.upgrade;
      if (tunnel === null) return;
      if (upgrade === 'h2c') this.toHttp2(fs, tunnel, ts);
      // (another protocol: neither side is read any more)
      else if (upgrade) {
        this.stopDir(fs, true);
        this.stopDir(fs, false);
      } else this.openTunnel(fs, tunnel);
    } else if (dir.http2) {
      this.onMessages(fs, dir.http2.push(chunk, ts), 'plain', ts);
      this.afterHttp2(fs, dir === fs.c2s, dir.http2);
      if (dir.http2.failed) this.stopDir(fs, dir === fs.c2s);
    }
  }

  /**
   * After a side's HTTP/2 bytes were read: the streams it reset mark their exchanges, and a side that can no longer be
   * decoded says so on its flow, once, with the parser's why and where.
   */
  private afterHttp2(fs: FlowState, c2s: boolean, p: Http2Parser): void {
    const resets = p.takeResets();
    if (resets.length > 0 && fs.x) this.streamsReset(fs, fs.x, c2s, resets);
    const reason = p.failure;
    if (reason === null) return;
    const side = c2s ? 'client' : 'server';
    const list = fs.flow.httpStopped ?? (fs.flow.httpStopped = []);
    if (list.some((s) => s.side === side)) return;
    list.push({ side, reason });
    fs.version++;
    this.changes++;
  }

  /**
   * Streams a side reset (RST_STREAM): their exchanges say by whom and why, the first reset of each standing. A reset
   * before the stream's request was read (the capture's order) marks nothing.
   */
  private streamsReset(fs: FlowState, x: FlowExtra, c2s: boolean, resets: H2Reset[]): void {
    const by = c2s ? 'client' : 'server';
    for (const r of resets) {
      const i = x.exchangeStreams.lastIndexOf(r.streamId);
      const at = i >= 0 ? i : x.summaryStreams?.get(r.streamId);
      const e = i >= 0 ? x.exchanges[i] : undefined;
      const s = at === undefined ? undefined : fs.flow.http[at];
      if (e) e.reset ??= { by, error: r.error };
      if (s) s.reset ??= { by, error: r.error };
    }
    fs.version++;
    this.changes++;
  }

  /**
   * A cleartext HTTP/1 connection upgraded to HTTP/2 (`Upgrade: h2c`, RFC 7540 §3.2): both sides are read as HTTP/2 from
   * here on, the server's from `s2c` (its bytes after the 101's head); the upgrade request is stream 1, whose answer
   * comes in HTTP/2 (switched()).
   */
  private toHttp2(fs: FlowState, s2c: Buffer, ts: number): void {
    fs.app = 'http2';
    this.nameApp(fs, 'http2');
    const c = fs.c2s !== DONE ? fs.c2s : null;
    const s = fs.s2c !== DONE ? fs.s2c : null;
    if (c) {
      c.http1 = null;
      c.http2 = new Http2Parser('client');
    }
    if (s) {
      s.http1 = null;
      s.http2 = new Http2Parser('server');
      if (s2c.length > 0) this.onMessages(fs, s.http2.push(s2c, ts), 'plain', ts);
      this.afterHttp2(fs, false, s.http2);
    }
  }

  /**
   * A proxy answered CONNECT: what follows in both directions is the client's tunnel to the server it named, classified
   * as a connection's first bytes are (TLS mostly, whose hellos are then dissected; plain HTTP, whose requests are read;
   * any other protocol). The flow stays 'http' whatever the tunnel carries (nameApp), its exchanges the CONNECT and the
   * tunnel's requests (plain, or decrypted from the hooks). `s2c`: the tunnel's first bytes from the server side, after
   * the answer's head.
   */
  private openTunnel(fs: FlowState, s2c: Buffer): void {
    const c = fs.c2s !== DONE ? fs.c2s : null;
    const s = fs.s2c !== DONE ? fs.s2c : null;
    const c2s = c?.http1?.takeBuffered() ?? null;
    for (const dir of [c, s]) {
      if (!dir) continue;
      dir.http1 = null;
      dir.head = null;
    }
    // why classified anew, not taken for TLS: a tunnel carries what its client sends, most often TLS, but plain HTTP too
    // (`curl --proxytunnel -x proxy http://...`), whose requests were not read at all
    fs.app = 'classify';
    extra(fs).tunnel = true;
    if (c && c2s && c2s.length > 0) c.head = Buffer.from(c2s);
    if (s && s2c.length > 0) s.head = s2c;
    this.classify(fs, true);
  }

  // ---- exchanges ----

  private onMessages(fs: FlowState, msgs: HttpMessage[], source: 'plain' | 'decrypted', _ts: number): void {
    if (msgs.length === 0) return;
    const x = extra(fs);
    for (const m of msgs) {
      if (m.grpcMethod && (fs.app === 'http2' || fs.app === 'grpc')) { fs.app = 'grpc'; this.nameApp(fs, 'grpc'); }
      if (m.kind === 'request') this.onRequest(fs, x, m, source);
      else this.onResponse(fs, x, m, source);
    }
  }

  /** A message's headers and body as an exchange keeps them: not at all without details. */
  private headersOf(m: HttpMessage): [string, string][] {
    return this.opts.details ? m.headers : NO_HEADERS;
  }

  /**
   * What the exchange keeps of its request's or response's message `m` besides its headers, with details: how many of
   * its headers were not (HEADER_BYTES_CAP), its body (keptBody), and its version and times (HttpMessageInfo). Whether a
   * decrypted one was opened with the key log, details or not.
   */
  private keepMessage(x: FlowExtra, m: HttpMessage, e: HttpExchangeDetail, side: 'request' | 'response'): void {
    // (a key log's decryption feeds a direction's parsers as its hook would, as the feeder 'keys'; QUIC's is always one)
    if (e.source === 'decrypted' && (x.quicKeys !== undefined || x.hook?.decrypted[side === 'request' ? 'c2s' : 's2c']?.feeder === 'keys')) {
      e.decryptedWith = 'keylog';
    }
    if (!this.opts.details) return;
    const body = keptBody(x, m, contentCodings(m.headers).length > 0);
    const info: HttpMessageInfo = {
      version: m.version ?? null, firstAt: m.ts, lastAt: m.endTs ?? m.ts, bodySize: m.bodySize ?? m.body.length, body: body.body,
    };
    if (m.reason !== undefined) info.reason = m.reason;
    if (m.bodyTruncated) info.bodyTruncated = true;
    if (body.base64 !== undefined) info.bodyBase64 = body.base64;
    if (side === 'request') {
      e.requestBody = body.text;
      e.requestInfo = info;
      if (m.headersDropped) e.requestHeadersDropped = m.headersDropped;
    } else {
      e.responseBody = body.text;
      e.responseInfo = info;
      if (m.headersDropped) e.responseHeadersDropped = m.headersDropped;
    }
  }

  // Exchanges and their summaries (flow.http) share indexes: summary i describes exchange i while i is below
  // the per-flow cap; summaries beyond it have no detail.
  private onRequest(fs: FlowState, x: FlowExtra, m: HttpMessage, source: 'plain' | 'decrypted'): void {
    const host = headerValue(m.headers, 'host') ?? headerValue(m.headers, ':authority');
    if (m.method && m.streamId === undefined) {
      // why: HEAD and CONNECT responses have no body whatever their Content-Length says; the response
      // parser must know each request's method or it swallows the next response
      if (source === 'plain') fs.s2c?.http1?.expectResponseTo(m.method);
      else {
        const res = x.hook?.decrypted.s2c;
        if (res?.http1) res.http1.expectResponseTo(m.method);
        else if (!res?.http2) {
          const q = x.pendingMethods ?? (x.pendingMethods = []);
          if (q.length < 1024) q.push(m.method);
        }
      }
    }
    if (source === 'plain' && m.streamId === undefined) x.requestSeen = true;
    // why: captures can deliver a response before its request (HTTP/2 streams interleave; nodes' clocks and
    // streams differ); such a response waits as an exchange without a request, which this request completes.
    for (let i = x.leadingOrphans ?? 0; i < x.exchanges.length; i++) {
      const e = x.exchanges[i]!;
      if (e.source !== source || e.method !== null || e.path !== null || e.status === null) continue;
      if (m.streamId !== undefined ? x.exchangeStreams[i] !== m.streamId : x.exchangeStreams[i] !== undefined) continue;
      // (on the wire, HTTP/1: an answer that began before this request was sent answers an earlier one, which the
      // capture lost in a gap; one node's packets, one clock)
      if (source === 'plain' && m.streamId === undefined && e.startedAt < m.ts) continue;
      e.method = m.method ?? null;
      e.host = host;
      e.path = m.path ?? null;
      e.requestHeaders = this.headersOf(m);
      this.keepMessage(x, m, e, 'request');
      e.startedAt = Math.min(e.startedAt, m.ts);
      const s = fs.flow.http[i];
      if (s) { s.method = e.method; s.host = host; s.path = e.path; }
      markedBy(m, s, e);
      return;
    }
    if (fs.flow.http.length >= MAX_HTTP_SUMMARIES) {
      // why: a keep-alive connection can carry millions of requests; memory must not follow them.
      fs.flow.httpOmitted = (fs.flow.httpOmitted ?? 0) + 1;
      return;
    }
    const s: HttpExchangeSummary = { method: m.method ?? null, host, path: m.path ?? null, status: null };
    fs.flow.http = add(fs.flow.http, s);
    markedBy(m, s, undefined);
    if (x.exchanges.length >= this.opts.maxExchangesPerFlow) {
      x.exchangesDropped++;
      if (m.streamId !== undefined) (x.summaryStreams ??= new Map()).set(m.streamId, fs.flow.http.length - 1);
      return;
    }
    const e: HttpExchangeDetail = {
      method: m.method ?? null, host, path: m.path ?? null, status: null, requestHeaders: this.headersOf(m), responseHeaders: NO_HEADERS,
      requestBody: null, responseBody: null, source, startedAt: m.ts,
    };
    this.keepMessage(x, m, e, 'request');
    x.exchanges = add(x.exchanges, e);
    markedBy(m, undefined, e);
    x.exchangeStreams = add(x.exchangeStreams, m.streamId);
  }

  private onResponse(fs: FlowState, x: FlowExtra, m: HttpMessage, source: 'plain' | 'decrypted'): void {
    const status = m.status ?? 0;
    // why: an interim answer (100 Continue, 102, 103 Early Hints) is followed by the request's real one; 101
    // Switching Protocols is the last the request gets
    if (status >= 100 && status < 200 && status !== 101) return;
    const wire1 = source === 'plain' && m.streamId === undefined;
    // why: after a gap in the answers (a segment the capture lost), the first answer read is that of the last request
    // sent before it and after the last answer read began, not of the first still unanswered: a client that sends a
    // request after an answer began waits for each answer before its next request, so the answers to those between were
    // in the gap. Paired in order, every later answer was off by one and a request with no answer got the next one's
    // status. Requests sent before the last answer began (a client that pipelines) keep their answers in order: the gap
    // may have been inside an answer's body
    let from = wire1 ? x.answersLostBefore ?? 0 : 0;
    if (wire1 && x.answersGap) {
      x.answersGap = false;
      const after = x.lastAnswerAt ?? -Infinity;
      for (let i = x.exchanges.length - 1; i >= from; i--) {
        const e = x.exchanges[i]!;
        if (e.source === source && e.status === null && x.exchangeStreams[i] === undefined && e.method !== null && e.startedAt <= m.ts) {
          if (e.startedAt > after) from = x.answersLostBefore = i;
          break;
        }
      }
    }
    if (wire1) x.lastAnswerAt = m.ts;
    for (let i = from; i < x.exchanges.length; i++) {
      const e = x.exchanges[i]!;
      if (e.source !== source || e.status !== null) continue;
      if (m.streamId !== undefined && x.exchangeStreams[i] !== m.streamId) continue;
      e.status = status;
      e.responseHeaders = this.headersOf(m);
      this.keepMessage(x, m, e, 'response');
      const s = fs.flow.http[i];
      if (s) s.status = status;
      markedBy(m, s, e);
      if (status === 101) this.switched(fs, x, m, source, i);
      // a refused CONNECT: what the client sent since is requests again (a tunnel's answer opens the tunnel instead)
      if (e.method === 'CONNECT' && source === 'plain' && (status < 200 || status >= 300)) {
        const c = fs.c2s !== DONE ? fs.c2s?.http1 : null;
        if (c) this.onMessages(fs, c.resume(m.ts), 'plain', m.ts);
      }
      return;
    }
    if (x.exchanges.length >= this.opts.maxExchangesPerFlow && m.streamId !== undefined) {
      // beyond the cap, a stream's answer: its own request's summary (streams answer in any order: given to the oldest
      // waiting, a long gRPC or HTTP/2 connection's statuses past the cap went to the wrong requests)
      const at = x.summaryStreams?.get(m.streamId);
      const s = at === undefined ? undefined : fs.flow.http[at];
      if (s && s.status === null) {
        x.summaryStreams!.delete(m.streamId);
        s.status = status;
        markedBy(m, s, undefined);
        return;
      }
      x.exchangesDropped++;
      return;
    }
    if (x.exchanges.length >= this.opts.maxExchangesPerFlow) {
      // beyond the cap: complete the oldest summary still waiting for its status (a cursor keeps this O(1))
      const list = fs.flow.http;
      x.cursor = Math.max(x.cursor, x.exchanges.length);
      while (x.cursor < list.length && list[x.cursor]!.status !== null) x.cursor++;
      const s = list[x.cursor];
      if (s) {
        s.status = status;
        markedBy(m, s, undefined);
        x.cursor++;
        return;
      }
      x.exchangesDropped++;
      return;
    }
    if (fs.flow.http.length >= MAX_HTTP_SUMMARIES) {
      fs.flow.httpOmitted = (fs.flow.httpOmitted ?? 0) + 1;
      return;
    }
    const s: HttpExchangeSummary = { method: null, host: null, path: null, status };
    fs.flow.http = add(fs.flow.http, s);
    // why: an HTTP/1 connection taken up in the middle (open before the capture began, a keep-alive's) may begin with
    // the answer to a request before the capture; taken by the next request, every exchange after it was off by one.
    // On the wire only: the hooks' records of two processes (the client's write, the server's) may come in either order
    if (source === 'plain' && m.streamId === undefined && !x.requestSeen && (x.leadingOrphans ?? 0) === x.exchanges.length && this.midstream(fs)) {
      x.leadingOrphans = x.exchanges.length + 1;
    }
    const e: HttpExchangeDetail = {
      method: null, host: null, path: null, status, requestHeaders: NO_HEADERS, responseHeaders: this.headersOf(m), requestBody: null,
      responseBody: null, source, startedAt: m.ts,
    };
    this.keepMessage(x, m, e, 'response');
    x.exchanges = add(x.exchanges, e);
    markedBy(m, s, e);
    x.exchangeStreams = add(x.exchangeStreams, m.streamId);
  }

  /**
   * A 101 Switching Protocols answer: the connection speaks another protocol from here on, both ways (the answer's side
   * stops reading as it takes the answer). A WebSocket's plain connection is named so (`app`), as Wireshark does.
   */
  private switched(fs: FlowState, x: FlowExtra, m: HttpMessage, source: 'plain' | 'decrypted', i: number): void {
    const req = source === 'plain' ? (fs.c2s !== DONE ? fs.c2s?.http1 : null) : x.hook?.decrypted.c2s?.http1;
    req?.upgraded();
    if (source !== 'plain') return;
    const to = headerValue(m.headers, 'upgrade')?.toLowerCase() ?? null;
    x.upgrade = to === 'h2c' ? 'h2c' : 'other';
    if (to === 'h2c') {
      // (the upgrade request is stream 1: its answer, in HTTP/2, is its status)
      x.exchanges[i]!.status = null;
      x.exchangeStreams[i] = 1;
      const s = fs.flow.http[i];
      if (s) s.status = null;
    } else if (fs.flow.app === 'http' && to === 'websocket') this.nameApp(fs, 'websocket');
  }

  // ---- decrypted plaintext ----

  /** True when records from another namespace than `netns` already fed the end `mine` of the flow. */
  private endClaimedElsewhere(fs: FlowState, mine: { ip: string; port: number }, netns: number): boolean {
    const claimed = fs.x?.hook?.plaintext[sideOf(fs.flow, mine)]?.netns ?? null;
    return claimed !== null && claimed !== netns;
  }

  /** A decrypted record without its connection's addresses: its process's hooks read plaintext they could not place. */
  private noteUnattributed(node: string, comments: readonly string[] | null): void {
    const pid = Number(comments && tlsAttrsOf(comments)?.pid);
    if (!Number.isInteger(pid) || pid <= 0) return;
    const m = this.meta(node);
    if (m.unattributedTls.has(pid)) return;
    m.unattributedTls.add(pid);
    // (the verdicts of its flows change)
    this.metaVersion++;
  }

  /** A decrypted record: its exported-PDU bytes, time, EPB flags and comments. */
  private onTlsRecord(node: string, data: Buffer, start: number, end: number, tsMs: number, flags: number | null, comments: readonly string[]): string | null {
    if (tsMs >= this.heldUntil && !this.retrying) this.placeHeld(tsMs);
    const pdu = readPduHead(data, start, end);
    // (a record of a socket with no peer, an unconnected UDP socket's whose peer the hook did not learn, names port 0:
    // it is no connection's, and taken as one it would make a flow to 0.0.0.0:0)
    const matched = pdu !== null && pdu.src !== null && pdu.dst !== null && pdu.src.port !== 0 && pdu.dst.port !== 0;
    if (matched && pdu !== this.rec.head) this.rec = recordEnds(pdu);
    let src = matched ? this.rec.src : null;
    let dst = matched ? this.rec.dst : null;
    let srcKey = matched ? this.rec.srcKey : 0;
    let dstKey = matched ? this.rec.dstKey : 0;
    // (a DTLS connection's records name its UDP ports: they join its UDP flow, never a TCP flow of the same ports)
    const tcp = pdu === null || !pdu.udp;
    // (every partition notes it: the verdicts of the process's flows, in any partition, say so)
    if (!src || !dst) this.noteUnattributed(node, pdu === null ? null : comments);
    // (a UDP flow's partition is its ports', as its packets' are: a wildcard record's local address is not the flow's)
    if (this.part && (src && dst ? partitionOf(tcp ? srcKey : 0, src.port, tcp ? dstKey : 0, dst.port, this.part.count) : 0) !== this.part.index) return null;
    if (!this.retrying) this.counters.tlsRecords++;
    if (!pdu || !src || !dst) { this.counters.tlsRecordsUnmatched++; return null; }
    const attrs = tlsAttrsOf(comments) ?? NO_ATTRS;
    const meta = this.nodes.get(node);
    const dirOut = recordWritten(attrs, flags);
    let mine = dirOut ? src : dst;
    const other = dirOut ? dst : src;
    // why: hooks are host-wide; a record from another network namespace's loopback (a pod's own 127.0.0.1)
    // must never join a captured flow that merely has the same 5-tuple
    const recordNetns = attrs.netns ? Number(attrs.netns) : null;
    let netns = meta?.separateNetns(recordNetns, other.ip) ?? null;
    let fs: FlowState | undefined;
    if (!tcp && UNSPECIFIED.has(mine.ip)) {
      // why: an unconnected UDP socket bound to the wildcard (a DTLS server's) has no local address of its own; its
      // record is the one UDP flow's between its peer and its local port, and never makes a flow (FORMAT.md)
      const found = this.udpFlowTo(indexNode(node, netns), other, mine.port);
      if (!found) {
        // (no such flow yet: kept for the one its datagrams may still make, a copy, the data being a view of the reader's
        // buffer; two such flows (null): it is neither's)
        if (found === undefined && !this.retrying) {
          this.keptNow = this.keptCount++;
          this.keepRecord({ key: udpEndKey(indexNode(node, netns), other.ip, other.port, mine.port), node, data: Buffer.from(data.subarray(start, end)), tsMs, flags, comments, kept: this.keptNow });
        } else this.giveUpRecord({ node, comments });
        return null;
      }
      fs = found;
      const f = fs.flow;
      mine = f.src.port === other.port && f.src.ip === other.ip ? f.dst : f.src;
      [src, dst] = dirOut ? [mine, other] : [other, mine];
      [srcKey, dstKey] = [ipKeyPart(src.ip), ipKeyPart(dst.ip)];
    }
    fs ??= this.index.get(indexNode(node, netns), tcp, srcKey, src.port, dstKey, dst.port);
    if (fs && netns === null && recordNetns !== null && this.endClaimedElsewhere(fs, mine, recordNetns)) {
      // why: one end of a connection lives in one namespace; another namespace's records for the same end are
      // another connection that reuses the addresses (isolated namespaces), not this flow's plaintext
      netns = recordNetns;
      fs = this.index.get(indexNode(node, netns), tcp, srcKey, src.port, dstKey, dst.port);
    }
    if (!fs) {
      // why: a hook event can reach us before the first packet of its connection; orient by the owner's role.
      const role = meta?.owner(tcp ? 'tcp' : 'udp', mine.ip, mine.port, other.ip, other.port, netns)?.role;
      // (without one, the packets tell: held for them, as the records of its connection held before it. In a network
      // namespace of its own, no captured packet is the connection's: its records make its flow)
      if (tcp && netns === null && !this.placing && (role === undefined || this.held.has(portsKey(src.port, dst.port)))) {
        this.hold(portsKey(src.port, dst.port), { node, data: Buffer.from(data.subarray(start, end)), tsMs, flags, comments, kept: this.retrying ? this.retryKept : this.keptCount++ });
        return null;
      }
      const mineIsClient = role === 'client' ? true : role === 'server' ? false : mine.port > other.port;
      const client = mineIsClient ? mine : other;
      // (copies: the record's ends are shared by the records that follow)
      fs = this.addFlow(node, tcp ? 'tcp' : 'udp', srcKey, src.port, dstKey, dst.port, { ...client }, { ...(mineIsClient ? other : mine) }, tsMs, ipKeyPart(client.ip), netns);
      fs.flow.seenBy = 'hook-only';
      // (a UDP one is named DTLS below, as a UDP flow its datagrams left unnamed is)
      if (tcp) {
        fs.app = 'tls';
        this.nameApp(fs, 'tls');
        // (no packet tells how the connection went; its first packet, if one comes, does)
        this.tcpCounts[fs.tcpCode]!--;
        fs.tcpCode = -1;
        fs.flow.tcp = null;
      }
    }
    const f = fs.flow;
    fs.version++;
    // (the other leg of its TLS session takes its verdicts from this flow's plaintext)
    if (fs.x?.session) fs.x.session.version++;
    if (f.seenBy === 'hook-only' && tsMs > f.lastSeen) f.lastSeen = tsMs;
    const side = sideOf(f, mine);
    // (the payload: data[payloadStart, end), empty when the end tag's value runs past the record)
    const payloadStart = Math.min(start + pdu.tagsLength, end);
    const len = Number(attrs.len ?? end - payloadStart) || end - payloadStart;
    const lib = attrs.lib ?? 'unknown';
    const x = extra(fs);
    const h = hookState(x);
    const seen = h.plaintext[side];
    if (seen) {
      seen.bytes += len;
      seen.netns ??= recordNetns;
    } else h.plaintext[side] = { library: lib, bytes: len, netns: recordNetns };
    const pid = Number(attrs.pid);
    if (Number.isFinite(pid) && pid > 0 && !h.tlsPid[side]) h.tlsPid[side] = { pid, comm: attrs.comm ?? '?' };
    this.ensureTls(fs);
    // (a connection upgrading in place, its protocol named while its TLS is awaited, is left to be read: the hooks
    // report its first writes before the server's hello packet may be in the stream)
    if (tcp && fs.app === 'classify' && f.app === 'unknown') {
      f.app = 'tls';
      // why: records come up to 50 ms before the packets of the same moment (see onPacket), so they can come between
      // a connection's SYN and its first bytes; bytes seen from their start are classified as any connection's, as
      // they may be another protocol's that switches to TLS in place (starttls.test on a loaded machine: FTP, whose
      // AUTH is its client's first line, was 'tls' with no hello). Only bytes that may begin anywhere are read as TLS
      if (this.recordsAnywhere(fs)) fs.app = 'tls';
    }
    // (a UDP flow known from its records only, or one its datagrams left unnamed (the capture began after its hello, or
    // to port 443 QUIC was still possible): its records say DTLS. Datagrams that come after are still read for a hello
    // while none of the flow came before: the helper writes a record as its hook reports it, and the packets of the same
    // moment when its packet ring hands them over, later; seen in eBPF captures of dtls.test, where the client's first
    // record often came before its ClientHello. Once datagrams came without one, the capture began after it)
    if (!tcp && (fs.app === 'classify' || fs.app === 'unknown')) {
      fs.app = 'dtls';
      f.app = 'dtls';
      if (f.packets > 0) extra(fs).dtls = null;
    }
    // (a DTLS record is a datagram's plaintext, not a stream's: it is not read as HTTP or a database's login)
    if (!tcp) return f.id;
    const c2s = sideOf(f, src) === 'client';
    this.feedDecrypted(fs, c2s, side, data, payloadStart, end, pdu.protoName, tsMs, attrs.trunc === '1');
    return f.id;
  }

  /**
   * The one UDP flow between `peer` and a local end of port `localPort` (any address), on the index node; undefined
   * when there is none (yet), null when there are more than one (then no record is tied on a guess). Its table is
   * made on first use and kept as UDP flows are added (see addFlow).
   */
  private udpFlowTo(nodeKey: string, peer: Endpoint, localPort: number): FlowState | null | undefined {
    if (this.udpEnds === null) {
      this.udpEnds = new Map();
      for (const fs of this.states) if (fs.flow.transport === 'udp') this.addUdpEnds(fs);
    }
    return this.udpEnds.get(udpEndKey(nodeKey, peer.ip, peer.port, localPort));
  }

  private keepRecord(r: PendingRecord): void {
    this.pendingRecords.push(r);
    if (this.pendingRecords.length > PENDING_RECORDS) this.giveUpRecord(this.pendingRecords.shift()!);
  }

  /** A record no flow takes (or came for): unmatched, its process's verdicts saying so. */
  private giveUpRecord(r: Pick<PendingRecord, 'node' | 'comments'> & { kept?: number }): void {
    this.counters.tlsRecordsUnmatched++;
    this.noteUnattributed(r.node, r.comments);
    if (r.kept !== undefined) this.settled?.(r.kept, null);
  }

  /** A record held for its connection's first packet (see held); its number is the block's kept one (onPacket). */
  private hold(key: number, r: HeldRecord): void {
    this.keptNow = r.kept;
    const list = this.held.get(key);
    if (list) list.push(r);
    else this.held.set(key, [r]);
    if (this.heldCount++ === 0) this.heldUntil = r.tsMs + HOLD_MS;
    if (this.heldCount > HELD_RECORDS && !this.retrying) this.placeHeld(-Infinity, 1);
  }

  /** The held records of a TCP flow's ports, read again as its first packet made it: its own join it, others wait on. */
  private joinHeld(fs: FlowState, syn: boolean): void {
    const f = fs.flow;
    const key = portsKey(f.src.port, f.dst.port);
    const list = this.held.get(key);
    if (!list) return;
    this.held.delete(key);
    this.heldCount -= list.length;
    this.heldUntil = Infinity;
    this.readHeld(list);
    this.heldSince();
    // (as for a flow its records made before its SYN came: the connection's first bytes are classified, they may be
    // another protocol's that switches to TLS in place; see onPacket)
    if (syn && fs.app === 'tls') fs.app = 'classify';
  }

  /**
   * Held records make their flows (oriented by their ends, the client by the ports, when no conn record names it): those
   * of every connection with one held since HOLD_MS before `now` (-Infinity: the `count` oldest connections', every
   * one by default), each connection's all at once, in order.
   */
  private placeHeld(now = Infinity, count = Infinity): void {
    if (this.heldCount === 0) return;
    this.heldUntil = Infinity;
    const due: HeldRecord[][] = [];
    for (const [key, list] of this.held) {
      if (due.length >= count) break;
      if (now !== -Infinity && list[0]!.tsMs + HOLD_MS > now) continue;
      due.push(list);
      this.held.delete(key);
      this.heldCount -= list.length;
    }
    this.placing = true;
    try {
      for (const list of due) this.readHeld(list);
    } finally {
      this.placing = false;
    }
    this.heldSince();
    this.changes++;
  }

  /** Held records read again (their ends find their flow, or make one while placing), each settled with its flow. */
  private readHeld(list: HeldRecord[]): void {
    const was = this.retrying;
    this.retrying = true;
    try {
      for (const r of list) {
        this.retryKept = r.kept;
        const id = this.onTlsRecord(r.node, r.data, 0, r.data.length, r.tsMs, r.flags, r.comments);
        // (null: held again, for another connection of the same ports)
        if (id !== null || this.placing) this.settled?.(r.kept, id);
      }
    } finally {
      this.retrying = was;
    }
  }

  /** heldUntil from the oldest record still held (each connection's list is in arrival order). */
  private heldSince(): void {
    let oldest = Infinity;
    for (const list of this.held.values()) if (list[0]!.tsMs < oldest) oldest = list[0]!.tsMs;
    this.heldUntil = oldest + HOLD_MS;
  }

  /** The kept records of a new UDP flow's ends, read again: they join it now. */
  private retryRecords(fs: FlowState): void {
    const keys = udpEndKeys(fs.flow);
    const mine = this.pendingRecords.filter((r) => keys.includes(r.key));
    if (mine.length === 0) return;
    for (const r of mine) this.pendingRecords.splice(this.pendingRecords.indexOf(r), 1);
    this.retrying = true;
    try {
      for (const r of mine) {
        // (null: it matches two flows by now, and was given up as such)
        const id = this.onTlsRecord(r.node, r.data, 0, r.data.length, r.tsMs, r.flags, r.comments);
        this.settled?.(r.kept, id);
      }
    } finally {
      this.retrying = false;
    }
  }

  /** A UDP flow's two ends in udpEnds, each with the other's port; a key two flows share is null (ambiguous). */
  private addUdpEnds(fs: FlowState): void {
    for (const k of udpEndKeys(fs.flow)) {
      const had = this.udpEnds!.get(k);
      this.udpEnds!.set(k, had === undefined || had === fs ? fs : null);
    }
  }

  /**
   * Decrypted plaintext of one direction, data[start, end): a database's login, HTTP. `feeder`: the end whose hook read
   * or wrote it, or 'keys' (the records decrypted with a key log's secrets); the first to feed a direction is the one
   * its parsers read (both ends' hooks, or a hook and the key log, carry the same bytes). `proto`: the record's
   * protocol tag, when it has one; `truncated`: the hook did not copy all of it.
   */
  private feedDecrypted(fs: FlowState, c2s: boolean, feeder: Side | 'keys', data: Buffer, start: number, end: number, proto: string | null, tsMs: number, truncated: boolean): void {
    const f = fs.flow;
    const x = extra(fs);
    const h = hookState(x);
    if (c2s && !x.loginDone) {
      if (LOGIN_APPS.has(f.app)) this.readDecryptedLogin(fs, x, feeder, data.subarray(start, end));
      // why: the helper writes records before the packets of the same moment, so a database's login can come before
      // the plain prelude that names it (SSLRequest and 'S'), while its connection is still classified, or before any
      // of its packets (its records made it, or were held for its first packet, whose SYN reopens classifying: see
      // onPacket, joinHeld). A copy: the data is a view of the reader's buffer
      else if (fs.app === 'classify' || f.packets === 0) {
        const k = (x.loginKept ??= { records: [], size: 0 });
        k.size += end - start;
        if (k.records.length < LOGIN_KEPT_RECORDS && k.size <= LOGIN_KEPT_BYTES) k.records.push({ feeder, bytes: Buffer.from(data.subarray(start, end)) });
      }
    }
    const dk = c2s ? 'c2s' : 's2c';
    let dd = h.decrypted[dk];
    if (!dd) {
      dd = { feeder, http1: null, http2: null };
      h.decrypted[dk] = dd;
    }
    // why: when both ends are hooked, the client's write and the server's read carry the same bytes; parse one.
    if (dd.feeder !== feeder) return;
    // (no copy: the parsers copy what they keep, never a view of the reader's buffer)
    let payload: Buffer | null = null;
    if (!dd.http1 && !dd.http2) {
      payload = data.subarray(start, end);
      const other2 = h.decrypted[c2s ? 's2c' : 'c2s'];
      // why the bytes before the tag: a helper tags a TLS object's records http2 once it wrote the preface, and a
      // server's next connection may get the same object's memory (Node's did): its HTTP/1.1 response came tagged http2
      const h1 = looksLikeHttp1(payload);
      if (looksLikeHttp2(payload) || (!h1 && (proto === 'http2' || other2?.http2))) dd.http2 = new Http2Parser(c2s ? 'client' : 'server');
      else if (h1 || proto === 'http' || other2?.http1) {
        dd.http1 = new Http1Parser(this.http1Options);
        if (!c2s && x.pendingMethods) {
          for (const method of x.pendingMethods) dd.http1.expectResponseTo(method);
          x.pendingMethods = null;
        }
      } else return;
    }
    if (dd.http1) {
      const n = end - start;
      // why: as for plain TCP, a record inside a large body (most records of a download) is only counted: no view
      // of its bytes, no pass through the parser
      if (n > 0 && dd.http1.countableBody() >= n) dd.http1.countBody(n, tsMs);
      else this.onMessages(fs, dd.http1.push(payload ?? data.subarray(start, end), tsMs), 'decrypted', tsMs);
      // (after a 101 the protocol switched to is not read: its bytes are let go)
      dd.http1.takeTunnel();
      if (truncated) this.onMessages(fs, dd.http1.gap(), 'decrypted', tsMs);
    } else if (dd.http2) {
      this.onMessages(fs, dd.http2.push(payload ?? data.subarray(start, end), tsMs), 'decrypted', tsMs);
      if (truncated) this.onMessages(fs, dd.http2.gap(), 'decrypted', tsMs);
      this.afterHttp2(fs, c2s, dd.http2);
    }
  }

  /**
   * A database's login, in the client's first decrypted message: whole in the client's write; the server reads it in
   * pieces (a length, then the rest), which are put together until it is.
   */
  private readDecryptedLogin(fs: FlowState, x: FlowExtra, feeder: Side | 'keys', bytes: Buffer): void {
    const whole = feeder !== 'server' ? bytes : Buffer.concat(x.loginBuf ? [x.loginBuf, bytes] : [bytes]);
    const login = dbLogin(fs.flow.app, whole);
    if (login === INCOMPLETE && whole.length < this.opts.dissectLimit) {
      if (feeder === 'server') x.loginBuf = whole;
    } else {
      x.loginDone = true;
      x.loginBuf = null;
      if (login && login !== INCOMPLETE) fs.flow.db = login;
    }
  }

  // ---- results ----

  private resolve(fs: FlowState): void {
    const f = fs.flow;
    const meta = this.nodes.get(f.node);
    let clientOwner = this.owner(fs, meta, true);
    if (!clientOwner && meta && f.transport === 'tcp' && f.seenBy !== 'hook-only') clientOwner = this.dnatOwner(fs, meta);
    const serverOwner = this.owner(fs, meta, false);
    const ref = (o: { pid: number; comm: string } | null): Flow['process'] => (o ? (meta ? meta.processRef(o.pid, o.comm) : { pid: o.pid, comm: o.comm, exe: null }) : null);
    f.process = clientOwner ? ref(clientOwner) : ref(serverOwner);
    f.processSide = clientOwner ? 'client' : serverOwner ? 'server' : null;
    if (this.podLookup) {
      // why: the owning process's container is the most exact answer (hostNetwork pods share the node's IP)
      const cid = f.process?.containerId;
      f.pod = (cid ? this.podLookup(`container:${cid}`) : null) ?? this.podLookup(f.src.ip) ?? this.podLookup(f.dst.ip) ?? f.pod;
    }
    f.peerProcess = clientOwner && serverOwner ? ref(serverOwner) : null;
    if (f.tls) {
      this.ownSides(fs, meta, clientOwner, serverOwner, f.tls);
      if (this.keyLog !== null && (this.keyLog.size > 0 || fs.x?.keys || fs.x?.quicKeys)) this.keyLogVerdict(fs, f.tls);
      const other = fs.x?.session;
      if (other?.flow.tls) this.sameSession(f.tls, other);
      // (the hooks' events the ring buffer dropped while it was open: its plaintext may be short of them)
      const lost = meta && meta.ringbufLosses.length > 0 && meta.mode === 'ebpf' ? meta.ringbufLostDuring(f.firstSeen, f.lastSeen) : 0;
      if (lost > 0) f.tls.hookEventsLost = lost;
      else if (f.tls.hookEventsLost !== undefined) delete f.tls.hookEventsLost;
    }
  }

  /**
   * With a key log: whether the connection was decrypted (tls.keylog), and each side whose records held application
   * data that decrypted has its plaintext.
   */
  private keyLogVerdict(fs: FlowState, tls: NonNullable<Flow['tls']>): void {
    if (fs.flow.transport === 'udp') {
      const qd = fs.x?.quicKeys;
      const random = qd?.clientRandom;
      const secrets = random ? this.keyLog?.get(random) : undefined;
      tls.keylog = quicKeyLogStatus(qd, random !== null && random !== undefined && this.quicAwaiting.get(random.toString('hex'))?.fs === fs, Boolean(secrets?.client0 && secrets.server0));
      // (copies: verdicts from the fingerprint alone are shared between flows)
      if (qd?.streamPackets(true) && tls.client && !tls.client.plaintext) tls.client = { ...tls.client, plaintext: true, plaintextFrom: 'keylog', reason: null };
      if (qd?.streamPackets(false) && tls.server && !tls.server.plaintext) tls.server = { ...tls.server, plaintext: true, plaintextFrom: 'keylog', reason: null };
      return;
    }
    const k = fs.x?.keys;
    tls.keylog = keyLogStatus(k, tls.midstream === true, { c2s: unreadEnd(fs.c2s), s2c: unreadEnd(fs.s2c) }, fs.chDone && tls.ja4 !== null,
      k !== undefined && this.awaiting.size > 0 && this.awaiting.get(k.random.toString('hex'))?.fs === fs);
    // (copies: verdicts from the fingerprint alone are shared between flows)
    if (k?.c2s && k.c2s.records > 0 && tls.client && !tls.client.plaintext) tls.client = { ...tls.client, plaintext: true, plaintextFrom: 'keylog', reason: null };
    if (k?.s2c && k.s2c.records > 0 && tls.server && !tls.server.plaintext) tls.server = { ...tls.server, plaintext: true, plaintextFrom: 'keylog', reason: null };
  }

  /**
   * A connection a process of the node made to one address and the node's DNAT sent to another (a Service address,
   * kube-proxy's OUTPUT rules; a published port): its packets name the address after DNAT, its socket (the conn
   * record, the hooks' records) the one before. Its owner is the one conn record made from the flow's client end
   * (the node's, or a pod's whose veth was not captured) to elsewhere, when no packets carried that other connection;
   * the flow its hooks' records made (hook-only, the address before DNAT) becomes its other leg (see sameSession).
   * Null otherwise.
   */
  private dnatOwner(fs: FlowState, meta: NodeMeta): { pid: number; comm: string } | null {
    const f = fs.flow;
    if (meta.conns.size === 0) return null;
    let made: { ip: string; port: number; owner: { pid: number; comm: string } } | null = null;
    for (const c of meta.connectedFrom(f.src.ip, f.src.port)) {
      if (c.ip === f.dst.ip && c.port === f.dst.port) continue;
      // (two: a local port used toward two ends at once; which one this was is not known)
      if (made) return null;
      made = c;
    }
    if (!made) return null;
    const [a, b] = [ipKeyPart(f.src.ip), ipKeyPart(made.ip)];
    const leg = this.index.get(indexNode(f.node, null), true, a, f.src.port, b, made.port);
    // (its packets showed that connection under its own addresses: another connection from the same port)
    if (leg && leg.flow.seenBy !== 'hook-only') return null;
    // why: in a partition the other leg may be another's; one thread must then do the work (see flows-parallel)
    if (this.part && partitionOf(a, f.src.port, b, made.port, this.part.count) !== this.part.index) this.crossed = true;
    if (leg && !fs.x?.session) {
      extra(fs).session = leg;
      extra(leg).session ??= fs;
      leg.version++;
      this.relinked.push(leg);
    }
    return made.owner;
  }

  /** The process owning a flow's client (or server) end: from the node's connection records, else its hooks' records. */
  private owner(fs: FlowState, meta: NodeMeta | undefined, client: boolean): { pid: number; comm: string } | null {
    const f = fs.flow;
    const a = client ? f.src : f.dst;
    const b = client ? f.dst : f.src;
    const known = meta !== undefined && meta.hasOwners ? meta.owner(f.transport, a.ip, a.port, b.ip, b.port, f.netns ?? null) : null;
    return known ?? (client ? fs.x?.hook?.tlsPid.client : fs.x?.hook?.tlsPid.server) ?? null;
  }

  /** A TLS flow's side verdicts from its own evidence (its processes, its hooks' plaintext, its hello), into `out`. */
  private ownSides(
    fs: FlowState, meta: NodeMeta | undefined, clientOwner: { pid: number } | null, serverOwner: { pid: number } | null, out: Sides,
  ): void {
    const f = fs.flow;
    const ctx = { mode: meta?.mode ?? null, modeReason: meta?.modeReason ?? null };
    const ev = (o: { pid: number } | null) => (o && meta ? meta.evidence(o.pid) : null);
    const handshakeAt = fs.x?.helloAt ?? null;
    // (an address of the captured namespace, or a pod scheduled on the captured node: its process was there to be
    // seen; without a capture record, only loopback)
    const podHere = (ip: string): PodRef | null => {
      const p = this.podLookup?.(ip) ?? null;
      return p?.node && p.node === f.node ? p : null;
    };
    const where = (ip: string): { local: boolean; pod: string | null } => {
      const pod = podHere(ip);
      return { local: pod !== null || (meta ? meta.isLocal(ip) : isLoopback(ip)), pod: pod ? `${pod.namespace}/${pod.name}` : null };
    };
    // (a client that sends a header naming itself, as curl --haproxy-protocol does, relays nothing)
    const named = f.proxy?.src;
    const relayFor = named && (named.ip !== f.src.ip || named.port !== f.src.port) ? endpointText(named) : null;
    const midstream = f.tls!.midstream === true;
    const dtls = fs.app === 'dtls';
    // (UDP with TLS is DTLS or QUIC)
    const quic = f.transport === 'udp' && !dtls;
    const helloLost = ((fs.x?.startLost ?? 0) & 1) !== 0 && !midstream && f.tls!.ja4 === null;
    const client = decideSide('client', { process: ev(clientOwner), plaintextSeen: fs.x?.hook?.plaintext.client ?? null, ja4: f.tls!.ja4, handshakeAt, relayFor, midstream, helloLost, dtls, quic, ...where(f.src.ip) }, ctx);
    const server = decideSide('server', { process: ev(serverOwner), plaintextSeen: fs.x?.hook?.plaintext.server ?? null, ja4: null, handshakeAt, midstream, dtls, quic, ...where(f.dst.ip) }, ctx);
    if (f.seenBy === 'hook-only') {
      // why copies: verdicts from the fingerprint alone are shared between flows
      const noted = (v: TlsSideVerdict | null): TlsSideVerdict | null => (v?.reason ? { ...v, reason: `${v.reason}; ${HOOK_ONLY_NOTE}` } : v);
      out.client = noted(client);
      out.server = noted(server);
      return;
    }
    out.client = client;
    out.server = server;
  }

  /**
   * A TLS flow whose session another connection carried too (linkSession): each side takes the other leg's verdict
   * when that one knows more (its hook read the plaintext; its process was found), since both legs carry the same
   * TLS between the same two ends. The flow names the other leg (`tls.sameSessionAs`).
   */
  private sameSession(tls: NonNullable<Flow['tls']>, other: FlowState): void {
    const o = other.flow;
    tls.sameSessionAs = o.id;
    const meta = this.nodes.get(o.node);
    const theirs: Sides = { client: null, server: null };
    this.ownSides(other, meta, this.owner(other, meta, true), this.owner(other, meta, false), theirs);
    const { client, server } = theirs;
    const via = (side: 'client' | 'server', v: TlsSideVerdict | null): TlsSideVerdict | null => {
      const mine = tls[side];
      if (!v || sideStrength(v) <= sideStrength(mine)) return mine;
      if (v.plaintext) return v;
      return { ...v, reason: sameSessionReason(o.id, endpointText(o.src), endpointText(o.dst), v.reason ?? '') };
    };
    tls.client = via('client', client);
    tls.server = via('server', server);
  }

  /** Brings one flow's attribution and verdicts up to date unless nothing changed since the last time. */
  private fresh(fs: FlowState): Flow {
    if (fs.resolvedAt !== fs.version || fs.resolvedMeta !== this.metaVersion) {
      this.resolve(fs);
      fs.resolvedAt = fs.version;
      fs.resolvedMeta = this.metaVersion;
    }
    // (a leg this flow was linked to while it was resolved (dnatOwner), which a pass may have resolved before it:
    // its verdicts and its link, again, whichever pass this is: flows(), tlsFlows(), resolved())
    while (this.relinked.length > 0) this.fresh(this.relinked.pop()!);
    return fs.flow;
  }

  /**
   * With a partition: the randoms of its TCP hellos (53 bits of each). A random two partitions share may be one
   * TLS session on two connections, which neither could link (see flows-parallel's sessionsCross).
   */
  sessionKeys(): Float64Array {
    return Float64Array.from(this.sessionLog);
  }

  /** With a partition, after flows(): whether a flow's other leg (DNAT's, by its conn record) is another partition's. */
  crossesPartitions(): boolean {
    return this.crossed;
  }

  /** Every flow, with process attribution and verdicts brought up to date. Returned objects are live: do not mutate. */
  flows(): Flow[] {
    // (records still held for their packets make their flows: the flows are asked for now)
    if (this.heldCount > 0) this.placeHeld();
    const out: Flow[] = new Array<Flow>(this.states.length);
    for (let i = 0; i < this.states.length; i++) out[i] = this.fresh(this.states[i]!);
    return out;
  }

  /**
   * Every flow in creation order WITHOUT bringing attribution and verdicts up to date (firstSeen, bytes
   * and packets are current): for sorting and paging; pass the rows handed out through resolved().
   * The array is the analyzer's own and grows: do not mutate it.
   */
  arrivalOrder(): readonly Flow[] {
    if (this.heldCount > 0) this.placeHeld();
    return this.list;
  }

  /**
   * Where each flow of arrivalOrder() was created: the offset of its first block, plus 2^40 per earlier
   * stream (file) of this analyzer. Increasing when the streams are read one after another (analyzeFiles):
   * the partitions of one capture then merge by it into the whole analysis's creation order.
   */
  arrivalOrigins(): Float64Array {
    if (this.heldCount > 0) this.placeHeld();
    const out = new Float64Array(this.states.length);
    for (let i = 0; i < out.length; i++) out[i] = this.states[i]!.origin;
    return out;
  }

  /**
   * Column views of arrivalOrder() (index i is arrivalOrder()[i]); the arrays are replaced as they grow.
   * Packets and bytes are copied in from the flows here, when they changed since the last call: a packet
   * updates only its flow (two more scattered writes per packet were two more cache misses with many flows).
   */
  columns(): FlowColumns {
    if (this.colsAt !== this.changes) {
      const c = this.cols;
      const list = this.list;
      for (let i = 0; i < list.length; i++) {
        const f = list[i]!;
        c.packets[i] = f.packets;
        c.bytes[i] = f.bytes;
      }
      this.colsAt = this.changes;
    }
    return this.cols;
  }

  /** True while creation order is also firstSeen order (no flow started before an earlier-created one). */
  get arrivalIsFirstSeenOrder(): boolean {
    return this.ordered;
  }

  /** The given flows (of this analyzer) with attribution and verdicts brought up to date. */
  resolved(rows: Flow[]): Flow[] {
    for (const f of rows) {
      const fs = this.stateById(f.id);
      if (fs) this.fresh(fs);
    }
    return rows;
  }

  /** The flows with TLS info, brought up to date, in creation order. */
  tlsFlows(): Flow[] {
    if (this.heldCount > 0) this.placeHeld();
    const out: Flow[] = new Array<Flow>(this.tlsStates.length);
    for (let i = 0; i < this.tlsStates.length; i++) out[i] = this.fresh(this.tlsStates[i]!);
    return out;
  }

  flowById(id: string): Flow | null {
    const fs = this.stateById(id);
    if (!fs) return null;
    this.resolve(fs);
    return fs.flow;
  }

  detail(id: string): FlowDetail | null {
    const fs = this.stateById(id);
    if (!fs) return null;
    this.resolve(fs);
    return {
      flow: fs.flow,
      exchanges: fs.x?.exchanges ?? [],
      clientBytesHex: this.firstBytes.hex(fs.firstC),
      serverBytesHex: this.firstBytes.hex(fs.firstS),
    };
  }

  /** Exchanges with headers and bodies, for HAR export. */
  exchangesOf(id: string): HttpExchangeDetail[] {
    return this.stateById(id)?.x?.exchanges ?? [];
  }


  /** Bytes held by reassembly buffers right now (for the memory-bound test). */
  bufferedBytes(): number {
    let n = 0;
    for (const fs of this.states) n += (fs.c2s?.reasm?.buffered ?? 0) + (fs.s2c?.reasm?.buffered ?? 0);
    return n;
  }
}

/** An unconnected socket's local address when bound to the wildcard, as a record names it (normalized). */
const UNSPECIFIED = new Set(['0.0.0.0', '::']);

/** udpEnds' key: one end of a UDP flow on an index node, and the other end's port. */
function udpEndKey(nodeKey: string, ip: string, port: number, otherPort: number): string {
  return `${nodeKey}|${ip}|${port}|${otherPort}`;
}

/** A UDP flow's two udpEnds keys: each end with the other's port. */
function udpEndKeys(f: Flow): [string, string] {
  const nodeKey = indexNode(f.node, f.netns ?? null);
  return [udpEndKey(nodeKey, f.src.ip, f.src.port, f.dst.port), udpEndKey(nodeKey, f.dst.ip, f.dst.port, f.src.port)];
}

/** The flow table's node key: a foreign network namespace's hook-only flows live apart from the node's captured ones. */
function indexNode(node: string, netns: number | null): string {
  return netns === null ? node : `${node}\0netns=${netns}`;
}

/** An address in key form: IPv4 as its signed 32-bit number (DecodedPacket.src4's form), anything else as text. */
export function ipKeyPart(ip: string): number | string {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (!m) return ip;
  return (Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4]);
}

/** Origins of successive streams (files) of one analyzer are this far apart: file offsets stay below 1 TiB. */
const ORIGIN_STREAM = 2 ** 40;

function mixIp(ip: number | string): number {
  if (typeof ip === 'number') return ip;
  let h = 0x811c9dc5;
  for (let i = 0; i < ip.length; i++) h = Math.imul(h ^ ip.charCodeAt(i), 0x01000193);
  return h;
}

function mixEndpoint(ip: number | string, port: number): number {
  let h = Math.imul(mixIp(ip) ^ (port * 0x9e3779b1), 0x85ebca6b);
  h ^= h >>> 13;
  return Math.imul(h, 0xc2b2ae35);
}

/** A decrypted record's ends, normalized (IPv4 mapped into IPv6 as IPv4), with their index keys. */
interface RecordEnds { head: PduHead | null; src: Endpoint; dst: Endpoint; srcKey: KeyIp; dstKey: KeyIp }

const NO_RECORD_ENDS: RecordEnds = { head: null, src: { ip: '', port: 0 }, dst: { ip: '', port: 0 }, srcKey: 0, dstKey: 0 };

function recordEnds(pdu: PduHead): RecordEnds {
  const s = pdu.src!;
  const d = pdu.dst!;
  const src = { ip: normalizeIp(s.ip), port: s.port };
  const dst = { ip: normalizeIp(d.ip), port: d.port };
  // (the record's IPv4 addresses come as numbers too: no text parsed back into a key for every record)
  return { head: pdu, src, dst, srcKey: s.v4 ?? ipKeyPart(src.ip), dstKey: d.v4 ?? ipKeyPart(dst.ip) };
}

/** A server's stream that begins with a TLS handshake record holding a ServerHello. */
function beginsServerHello(b: Buffer): boolean {
  return b.length >= 6 && b[0] === 0x16 && b[1] === 0x03 && b[5] === 0x02;
}

/** A TCP segment whose payload begins with a TLS handshake record holding a ClientHello: its sender is the client. */
function beginsClientHello(d: DecodedPacket): boolean {
  const p = d.payloadStart;
  const b = d.data;
  return d.payloadEnd - p >= 6 && b[p] === 0x16 && b[p + 1] === 0x03 && b[p + 5] === 0x01;
}

/** Which side of the flow the endpoint is. */
function sideOf(f: Flow, end: { ip: string; port: number }): Side {
  return f.src.ip === end.ip && f.src.port === end.port ? 'client' : 'server';
}

/** An SSH identification string's start (a first segment shorter than it may be one to come). */
const SSH_BANNER = Buffer.from('SSH-');

/** An SSH identification string ("SSH-") starts the bytes: compared in place, no string per flow. */
function isSshBanner(b: Buffer): boolean {
  return b.length >= 4 && b[0] === 0x53 && b[1] === 0x53 && b[2] === 0x48 && b[3] === 0x2d;
}

/** The partition of a flow: a hash both directions share (XOR of the endpoints' hashes), so no flow is split. */
export function partitionOf(a: number | string, ap: number, b: number | string, bp: number, count: number): number {
  const h = mixEndpoint(a, ap) ^ mixEndpoint(b, bp);
  return ((h ^ (h >>> 16)) >>> 0) % count;
}

export type { DnsSummary };
