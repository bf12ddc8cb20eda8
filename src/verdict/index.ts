// Per-side TLS verdicts: which library made this side of a TLS flow, was its plaintext captured, and
// if not, why — in words a person can act on. Evidence is weighed strongest first: a hook that fired
// for this connection, then what the helper learned about the owning process (mapped libraries,
// binary symbols, Go build info), then the ClientHello fingerprint (JA4) against
// resources/fingerprints/ja4.json. Every TLS flow gets a verdict for both sides, 'unknown' included.
import { TLS_LIBRARIES, type TlsLibrary, type TlsSideVerdict } from '../model/flow.js';
import { lookupJa4 } from './ja4-table.js';

export { lookupJa4, buildJa4Lookup, ja4Entries, type Ja4Entry, type Ja4Match } from './ja4-table.js';

export interface ProcessTlsEvidence {
  library: TlsLibrary | null;
  /**
   * How the helper learned the library: a mapped library file, symbols in the executable, Go build info, a library file
   * the process opened (not mapped yet when the record was written), or a hook that fired for a process already gone
   */
  via: 'maps' | 'binary' | 'buildid' | 'open' | 'hook';
  evidence: string;
  version?: string | null;
  /** attachedAt: when the attach ended, ms since the epoch (absent in files of earlier builds) */
  hooks: { library: string; path: string; status: 'attached' | 'failed' | 'unsupported'; reason?: string | null; attachedAt?: number | null }[];
  startedBeforeCapture?: boolean;
  /** the process had exited before the helper could read its binary and libraries (its proc record's alive: false) */
  exited?: boolean;
  /** ...but its executable was read at its exec (proc record's readAt: "exec"): only its mapped libraries are unknown */
  readAtExec?: boolean;
  exe?: string | null;
  /** its hooks read plaintext they could not tie to any connection (a memory-BIO library's call with nothing to go by) */
  unattributedPlaintext?: boolean;
}

export interface SideInput {
  /** the process owning this side, when it is on a captured node */
  process: ProcessTlsEvidence | null;
  /** hook events seen for this exact connection and side */
  plaintextSeen: { library: string; bytes: number } | null;
  /** only for the client side */
  ja4: string | null;
  /** when this connection's ClientHello was seen (ms since the epoch), when it was */
  handshakeAt?: number | null;
  /**
   * this side's address belongs to the captured node itself (its interfaces', or loopback): without a process it
   * was not attributed, rather than elsewhere
   */
  local?: boolean;
  /** with local: the pod ("namespace/name") this side is, on the captured node, in a network namespace of its own */
  pod?: string | null;
  /**
   * only for the client side: the client a PROXY protocol header on this connection names ("ip:port"): this side is
   * a proxy relaying that client's connection, and the TLS it carries is likely that client's
   */
  relayFor?: string | null;
  /** the connection's TLS began before the capture: no ClientHello of it to fingerprint */
  midstream?: boolean;
  /** the client's stream began with a gap (its ClientHello segment was not captured): no ClientHello to fingerprint */
  helloLost?: boolean;
  /** a DTLS connection (over UDP): plaintext the hooks could not tie is said to be a UDP connection's */
  dtls?: boolean;
  /** a QUIC connection: its TLS library makes only the handshake's keys, so no hook can read its plaintext */
  quic?: boolean;
}

export interface CaptureContext {
  mode: 'ebpf' | 'afpacket' | null;
  modeReason: string | null;
}

/** Confidence of a verdict from the owning process's binary/libraries without a hook firing. */
export const PROCESS_CONFIDENCE = 0.9;
/** ...lowered to this when the connection's JA4 strongly points at a different library. */
export const CONTRADICTED_CONFIDENCE = 0.6;
const CONTRADICTION_MIN = 0.8;

// Libraries the helper cannot hook at all, with what to do instead. Their reason always starts with
// "<library> has no hook"; "hook not attached: …" is kept for hookable libraries whose attach failed.
const NO_HOOK: Partial<Record<TlsLibrary, string>> = {
  'java-jsse': 'JSSE does its TLS in Java code, where uprobes cannot reach; decrypt with an SSLKEYLOGFILE-capable agent (packets are still captured)',
  rustls: 'it is compiled into the program without stable symbols to attach to; enable its SSLKEYLOGFILE support to decrypt (packets are still captured)',
  schannel: 'it is the Windows TLS stack',
  unknown: 'the TLS library could not be identified, so there was nothing to attach to',
};

// why: BoringSSL can be hooked when its symbols are present (Envoy); only without an attach attempt
// is "no hook" the explanation, otherwise the attempt says more
const NO_HOOK_UNLESS_ATTEMPTED: Partial<Record<TlsLibrary, string>> = {
  boringssl: 'it is linked statically without exported symbols (packets are still captured)',
};

/** The reason for a library the helper cannot hook: "<library> has no hook — <what to do>". */
export function noHookReason(lib: TlsLibrary): string | null {
  const why = NO_HOOK[lib];
  return why ? `${lib} has no hook — ${why}` : null;
}

export function normalizeLibrary(name: string): TlsLibrary {
  const n = name.toLowerCase();
  if ((TLS_LIBRARIES as readonly string[]).includes(n)) return n as TlsLibrary;
  // (NSS's libssl3 before OpenSSL's libssl*)
  if (n.startsWith('libnss') || n.startsWith('libssl3')) return 'nss';
  if (n.startsWith('libssl') || n === 'ssl') return 'openssl';
  if (n.startsWith('libgnutls')) return 'gnutls';
  if (n === 'go' || n === 'crypto/tls') return 'go-crypto-tls';
  if (n === 'jsse' || n === 'java') return 'java-jsse';
  return 'unknown';
}

function label(lib: TlsLibrary, version: string | null | undefined): string {
  return version ? `${lib} ${version}` : lib;
}

const VIA_WORDS: Record<ProcessTlsEvidence['via'], string> = {
  maps: 'in its mapped libraries', binary: "in its executable's symbols", buildid: 'in its Go build info', open: 'in a library file it opened',
  hook: 'by a hook that fired',
};

const LATE_TAIL = " after this connection's TLS handshake began: ";
const LATE_DELAY = new RegExp(` attached \\d+(?:\\.\\d)? (?:ms|s)${LATE_TAIL}`);

/**
 * A reason as the per-library breakdown counts it: the same words without what differs from flow to flow (how
 * late a hook attached, which client a proxy relays for), so flows with one cause share one row.
 */
export function reasonGroup(reason: string): string {
  return reason.replace(SAME_SESSION, '').replace(LATE_DELAY, ` attached${LATE_TAIL}`).replace(RELAY_FOR, `${RELAY_HEAD}another client ${RELAY_NAMED}`);
}

/**
 * What a flow linked to another leg of its TLS session (NAT's, a relay's) says before the other leg's reason; the
 * breakdown counts it under that reason, its cause (see sameSessionReason).
 */
const SAME_SESSION_HEAD = 'the same TLS session as flow ';
const SAME_SESSION_TAIL = ', which knows more of this side: ';
const SAME_SESSION = new RegExp(`^${literalOf(SAME_SESSION_HEAD)}\\S+ \\([^)]*\\)${literalOf(SAME_SESSION_TAIL)}`);

/** The reason of a side whose linked leg (flow `id`, `from` → `to`) knows more of it: that leg's reason, said to be its. */
export function sameSessionReason(id: string, from: string, to: string, reason: string): string {
  return `${SAME_SESSION_HEAD}${id} (${from} → ${to})${SAME_SESSION_TAIL}${reason}`;
}

function literalOf(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const RELAY_HEAD = 'this connection relays TLS for ';
const RELAY_NAMED = '(its PROXY protocol header names that client)';
/** (the two, around the relayed client: built from them, so the words live in one place) */
const RELAY_FOR = new RegExp(`^${literalOf(RELAY_HEAD)}\\S+ ${literalOf(RELAY_NAMED)}`);

/** A duration in ms as a person reads it: 0.4 ms, 12 ms, 3.2 s. */
function duration(ms: number): string {
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(1)} s`;
}

/** Why a process known to use `lib` produced no plaintext for this connection. */
function noPlaintextReason(lib: TlsLibrary, p: ProcessTlsEvidence, ctx: CaptureContext, handshakeAt: number | null, dtls: boolean): string {
  const mine = p.hooks.filter((h) => normalizeLibrary(h.library) === lib);
  // why: an unhookable library stays unhookable whatever the helper reported about it (e.g. an
  // "unsupported" entry for a JVM): the library is the reason, in every capture mode
  const fixed = noHookReason(lib);
  if (fixed) return fixed;
  const soft = NO_HOOK_UNLESS_ATTEMPTED[lib];
  if (soft && mine.length === 0) return `${lib} has no hook — ${soft}`;
  if (ctx.mode === 'afpacket') {
    return `capture ran in afpacket mode because ${ctx.modeReason ?? 'eBPF was not available'}; no hooks were attached`;
  }
  if (ctx.mode === null) return 'this capture has no hook data (it was not made in eBPF mode)';
  const attached = mine.filter((h) => h.status === 'attached');
  if (attached.length === 0) {
    const failed = mine.find((h) => h.status === 'failed');
    if (failed) return `hook not attached: ${failed.reason ?? `attaching to ${failed.path} failed`}`;
    const unsupported = mine.find((h) => h.status === 'unsupported');
    if (unsupported) {
      return `hook not attached: ${label(lib, p.version)} in ${unsupported.path} is not supported${unsupported.reason ? ` (${unsupported.reason})` : ''}`;
    }
    // (a hook that fired in the process was attached, whatever the list of its hooks, read later, says)
    if (p.via === 'hook') return `the ${lib} hook fired in this process (${p.evidence}) but saw no reads or writes on this connection${NO_DATA}`;
    return `no ${lib} hook was attached for this process (${lib} found ${VIA_WORDS[p.via]}: ${p.evidence})`;
  }
  // why: a hook attached after the handshake began (a library loaded, or a process started, while capturing) missed
  // the calls made before it; it explains the silence only when no attached hook of the library was in place by then
  const late = handshakeAt == null ? null : lateHook(attached, handshakeAt);
  if (late) {
    return `the ${lib} hook (${late.path}) attached ${duration(late.delay)}${LATE_TAIL}` +
      'reads and writes made before then were not seen, and it saw none after — reconnect while capturing';
  }
  if (p.unattributedPlaintext) return `${lib}${dtls ? UNATTRIBUTED_DTLS : UNATTRIBUTED}`;
  // why only then: a connection whose handshake came after a hook attached was not set up before it
  if (p.startedBeforeCapture && (handshakeAt == null || attached.every((h) => h.attachedAt == null))) {
    return `process started before capture and the hook saw no reads or writes on this connection; it was probably set up before the hook attached — restart the process or reconnect while capturing`;
  }
  return `${lib} hook attached but saw no reads or writes on this connection${NO_DATA}`;
}

const NO_DATA = ' (it carried no application data, or used an API the hook does not cover)';

// why its own: a DTLS record is tied to its UDP connection by its socket (connected) or by the peer address of the
// datagram the TLS call sent or received (a server's socket that serves every client); the memory-BIO wording is wrong
const UNATTRIBUTED_DTLS = ' hook read DTLS plaintext in this process that it could not tie to a UDP connection (on a socket not connected, ' +
  'a read or write whose datagram\'s peer the hooks did not see, or a wildcard-bound socket\'s peer and port shared by two flows); ' +
  'this connection\'s may be among it, and is not shown rather than shown on a guess';

const UNATTRIBUTED = ' hook read plaintext in this process that it could not tie to a connection (a read or write through a memory BIO, ' +
  'with no socket call of its thread to go by); this connection\'s may be among it, and is not shown rather than shown on a guess';

/**
 * A QUIC connection's side: its TLS library (OpenSSL or quictls, BoringSSL, GnuTLS, Go's crypto/tls under quic-go,
 * rustls under quinn) only runs the handshake and hands its keys to the QUIC stack, which protects every packet itself.
 * No TLS read or write carries its data, so no hook of the library sees it; its key log does.
 */
function quicReason(lib: TlsLibrary): string {
  return `QUIC: ${lib === 'unknown' ? 'its TLS library' : lib} only makes the handshake's keys, and the QUIC stack encrypts each packet itself with no TLS read or write ` +
    'for a hook to see, so hooks cannot capture its plaintext — give tapscope its SSLKEYLOGFILE to decrypt it (the session\'s Key log; ' +
    'capture or flows --keylog FILE)';
}

/** The first of the attached hooks and how long after `at` it attached, when every one of them attached after `at`; else null. */
function lateHook(attached: ProcessTlsEvidence['hooks'], at: number): { path: string; delay: number } | null {
  let first: { path: string; delay: number } | null = null;
  for (const h of attached) {
    if (h.attachedAt == null || h.attachedAt <= at) return null;
    if (!first || h.attachedAt - at < first.delay) first = { path: h.path, delay: h.attachedAt - at };
  }
  return first;
}

// why constants: most flows of a capture share these reasons; one string each, not one built per flow
const NOT_ON_NODE = { client: 'client process not on a captured node', server: 'server process not on a captured node' } as const;
// (a capture with no helper records, tcpdump's: where a process runs is not known, not elsewhere)
const NOT_KNOWN_WHERE = {
  client: 'where the client process runs is not known: this capture has no process records (it was not made by the tapscope helper)',
  server: 'where the server process runs is not known: this capture has no process records (it was not made by the tapscope helper)',
} as const;
const SERVER_FROM_HELLO = "a server's library cannot be told from the ClientHello";
const SERVER_UNKNOWN = `${NOT_ON_NODE.server}; ${SERVER_FROM_HELLO}`;
const MIDSTREAM_NO_HELLO = ', and its TLS handshake came before the capture began: no ClientHello to fingerprint';
const HELLO_LOST = "its ClientHello was not captured (a gap at the start of the client's stream): no fingerprint";

/**
 * Verdicts from the fingerprint alone (no process, no plaintext) by side and JA4: most flows of a capture get
 * one of a few, so they share one frozen object each instead of an object (and a reason) per flow. Bounded.
 * Of the capture context only whether it has helper records plays a part in them (where a side is: see
 * NOT_KNOWN_WHERE); the rest only explains why a known process's library gave no plaintext.
 */
const BY_FINGERPRINT = {
  helper: { client: new Map<string | null, TlsSideVerdict>(), server: new Map<string | null, TlsSideVerdict>() },
  none: { client: new Map<string | null, TlsSideVerdict>(), server: new Map<string | null, TlsSideVerdict>() },
};
const BY_FINGERPRINT_MAX = 4096;

/**
 * The verdict for one side of a TLS flow. Never null: with no evidence the verdict is 'unknown'. Verdicts
 * from the fingerprint alone are shared and frozen: copy one to change it.
 */
export function decideSide(side: 'client' | 'server', input: SideInput, ctx: CaptureContext): TlsSideVerdict | null {
  // (a local side's reason depends on the capture mode: not shared)
  if (input.process || input.plaintextSeen || input.local || input.relayFor || input.midstream || input.helloLost || input.quic) return decide(side, input, ctx);
  const cache = BY_FINGERPRINT[ctx.mode === null ? 'none' : 'helper'][side];
  const ja4 = side === 'client' ? input.ja4 : null;
  let v = cache.get(ja4);
  if (v === undefined) {
    v = Object.freeze(decide(side, { process: null, plaintextSeen: null, ja4 }, ctx));
    if (cache.size >= BY_FINGERPRINT_MAX) cache.clear();
    cache.set(ja4, v);
  }
  return v;
}

function decide(side: 'client' | 'server', input: SideInput, ctx: CaptureContext): TlsSideVerdict {
  const p = input.process;
  if (input.plaintextSeen) {
    const library = normalizeLibrary(input.plaintextSeen.library);
    return {
      library, via: 'hook', confidence: 1, plaintext: true, plaintextFrom: 'hook', reason: null,
      version: p && p.library === library ? (p.version ?? null) : null,
    };
  }
  if (side === 'client' && input.relayFor) return relayed(input.relayFor, input.ja4);
  if (p && p.library) {
    // why QUIC first: a hook, an eBPF capture, a process started later would not read it; any such reason sends the
    // reader the wrong way
    const own = input.quic ? quicReason(p.library) : noPlaintextReason(p.library, p, ctx, input.handshakeAt ?? null, input.dtls === true);
    // (no hello to check the process's library against, and said why)
    const reason = side === 'client' && input.helloLost && !input.ja4 ? `${own}; ${HELLO_LOST}` : own;
    // why: a process can carry several TLS libraries (a JVM with a native agent, a Python with both
    // OpenSSL and GnuTLS modules); a strong fingerprint for another library makes the guess weaker
    const fp = side === 'client' && input.ja4 ? lookupJa4(input.ja4) : null;
    // why: when the other library is one of this process's own too (a hook was tried for it), the two agree on it
    if (fp && fp.library !== p.library && fp.confidence >= CONTRADICTION_MIN && p.hooks.some((h) => normalizeLibrary(h.library) === fp.library)) {
      const own = input.quic ? quicReason(fp.library) : noPlaintextReason(fp.library, p, ctx, input.handshakeAt ?? null, input.dtls === true);
      return {
        library: fp.library, via: 'process', confidence: PROCESS_CONFIDENCE, plaintext: false, plaintextFrom: null,
        reason: `${own}; this process has ${p.library} too, and this connection's ClientHello is ${fp.library}'s (${fp.client})`, version: fp.version,
      };
    }
    if (fp && fp.library !== p.library && fp.confidence >= CONTRADICTION_MIN) {
      return {
        library: p.library, via: 'process', confidence: CONTRADICTED_CONFIDENCE, plaintext: false, plaintextFrom: null,
        reason: `${reason}; note: this connection's ClientHello looks like ${fp.library} (${fp.client})`, version: p.version ?? null,
      };
    }
    return { library: p.library, via: 'process', confidence: PROCESS_CONFIDENCE, plaintext: false, plaintextFrom: null, reason, version: p.version ?? null };
  }
  const whereabouts = !p ? (input.local ? notAttributed(side, ctx, input.pod ?? null) : ctx.mode === null ? NOT_KNOWN_WHERE[side] : NOT_ON_NODE[side])
    // why: an exited process was never looked at; "no TLS library found" would claim a search that did not happen
    : p.exited && p.readAtExec ? `the ${side} process had exited before its mapped libraries could be read, and its executable (${p.exe ?? 'read at its exec'}) has no TLS of its own, so its TLS library is unknown`
    : p.exited ? `the ${side} process had exited before its binary and libraries could be read, so its TLS library is unknown and nothing could be hooked for it`
      : `no TLS library found in the ${side} process (${p.evidence || 'binary and mapped libraries'}), so there was nothing to hook`;
  const match = side === 'client' && input.ja4 ? lookupJa4(input.ja4) : null;
  // why QUIC's reason first, with or without its process: no hook reads QUIC in any mode, and where its process is
  // (or why it was not found) would send the reader the wrong way; then what tells its library
  if (match) {
    const reason = input.quic ? `${quicReason(match.library)}; ${whereabouts}` : whereabouts;
    return { library: match.library, via: 'fingerprint', confidence: match.confidence, plaintext: false, plaintextFrom: null, reason, version: match.version };
  }
  let why = whereabouts;
  if (side === 'client') {
    why += input.ja4 ? `, and its ClientHello fingerprint (${input.ja4}) is not in the fingerprint table`
      : input.midstream ? MIDSTREAM_NO_HELLO : input.helloLost ? `, and ${HELLO_LOST}` : ', and no ClientHello was seen';
  } else if (!p) {
    why = input.local || ctx.mode === null ? `${whereabouts}; ${SERVER_FROM_HELLO}` : SERVER_UNKNOWN;
  }
  if (input.quic) why = `${quicReason('unknown')}; ${why}`;
  return { library: 'unknown', via: 'fingerprint', confidence: 0, plaintext: false, plaintextFrom: null, reason: why, version: null };
}

/**
 * The client side of a connection that relays another client's (a PROXY protocol header names it) and whose own hooks
 * saw none of its plaintext: a proxy that forwards TLS as it is (TCP mode) makes no TLS of its own, so the
 * ClientHello, and the library told from it, are the relayed client's; the proxy's own libraries tell nothing (an
 * HAProxy on OpenSSL relays a Java client's TLS). The plaintext is at the TLS's ends: the client and the server.
 */
function relayed(client: string, ja4: string | null): TlsSideVerdict {
  const reason = `${RELAY_HEAD}${client} ${RELAY_NAMED}: the ClientHello is that client's, ` +
    "and a proxy that forwards TLS as it is has no plaintext of its own — the plaintext is at the TLS's ends, that client's own connection " +
    "(when captured) and this connection's server";
  const match = ja4 ? lookupJa4(ja4) : null;
  if (match) return { library: match.library, via: 'fingerprint', confidence: match.confidence, plaintext: false, plaintextFrom: null, reason, version: match.version };
  return {
    library: 'unknown', via: 'fingerprint', confidence: 0, plaintext: false, plaintextFrom: null,
    reason: `${reason}; its ClientHello fingerprint (${ja4 ?? 'none: no ClientHello was seen'}) is not in the fingerprint table`, version: null,
  };
}

/** Why a side on the captured node itself has no process: how the capture's mode attributes connections. */
function notAttributed(side: 'client' | 'server', ctx: CaptureContext, pod: string | null): string {
  const here = pod ? `the ${side} is pod ${pod} on the captured node, and its process was not attributed` : `the ${side} process is on the captured node but was not attributed`;
  if (ctx.mode === 'afpacket') {
    // why apart: afpacket mode reads the helper's own namespace's /proc/net and sock_diag; a pod's sockets are in its own
    if (pod) return `${here}: afpacket mode attributes processes in the node's own network namespace only, not in pods' (eBPF mode attributes them)`;
    return `${here}: in afpacket mode a connection is matched to its process from /proc (at its SYN and every 500 ms), and this one closed, or its process exited, before then`;
  }
  if (ctx.mode === 'ebpf') return `${here}: eBPF mode saw no socket event of this connection (it was set up before the capture began, or its events were dropped)`;
  return `the ${side} is on the capturing host, but this capture has no process records (it was not made by the tapscope helper)`;
}
