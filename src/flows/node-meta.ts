// Per-node metadata from the helper's custom blocks (native/FORMAT.md): capture mode and reason, processes,
// connection owners, hook attach results and counters. Unknown record types and fields are ignored.
import type { TapscopeRecord } from '../pcapng/types.js';
import type { ProcessRef, TlsLibrary } from '../model/flow.js';
import { TLS_LIBRARIES } from '../model/flow.js';
import type { ProcessTlsEvidence } from '../verdict/index.js';

export interface ProcRecord {
  pid: number;
  ppid: number | null;
  comm: string;
  exe: string | null;
  cmdline: string | null;
  cgroup: string | null;
  containerId: string | null;
  startedBeforeCapture: boolean;
  /** false when /proc/PID was gone before the helper could read it (exe, cmdline and cgroup are then null, or from its exec) */
  alive: boolean;
  /** exe, cmdline, cgroup and the executable's TLS were read at the process's exec (it was gone when the record was written) */
  readAtExec: boolean;
  tls: { library: TlsLibrary | null; via: ProcessTlsEvidence['via']; evidence: string; version: string | null } | null;
  hooks: ProcessTlsEvidence['hooks'];
}

export interface ConnOwner {
  pid: number;
  comm: string;
  role: 'client' | 'server' | 'unknown';
}

/** One attach result of a library file (a `hook` record, or an entry of a `proc` record's hooks[]). */
export interface HookEntry {
  library: string;
  path: string;
  status: 'attached' | 'failed' | 'unsupported';
  reason: string | null;
  /** when the attach ended (ms since the epoch; null in files of earlier builds) */
  attachedAt: number | null;
}

export interface HookRecord extends HookEntry {
  pid: number | null;
}

export interface NodeStats {
  packets: number;
  bytes: number;
  ringDrops: number;
  ringbufDrops: number;
  snaplenCuts: number;
  /** packets and decrypted records the capture filter left out */
  filtered: number;
  tlsEvents: number;
  tlsBytes: number;
  tlsTruncated: number;
  /**
   * TLS calls whose records never left the kernel (its table of calls in progress was full, or an entry was evicted; but
   * also a Go call in progress when its hooks attached, returning through a hooked RET: common, not a loss, so no note)
   */
  tlsCallsLost: number;
  final: boolean;
}

const RINGBUF_LOSSES_MAX = 4096;

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const nsToMs = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v / 1e6 : null);
const PROC_TLS_VIA: readonly string[] = ['maps', 'binary', 'buildid', 'open', 'hook'] satisfies ProcessTlsEvidence['via'][];

/** IPv4-mapped IPv6 addresses (dual-stack sockets) name the same endpoint as the IPv4 address on the wire. */
export function normalizeIp(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

export function isLoopback(ip: string): boolean {
  const n = normalizeIp(ip);
  return n.startsWith('127.') || n === '::1';
}

export function endpointPairKey(localIp: string, localPort: number, remoteIp: string, remotePort: number): string {
  return `${normalizeIp(localIp)}|${localPort}|${normalizeIp(remoteIp)}|${remotePort}`;
}

/** A bound UDP socket's key (see NodeMeta.bound): its local end, prefixed by its namespace as connKey's. */
function boundKey(localIp: string, localPort: number, netns: number | null): string {
  const key = `${normalizeIp(localIp)}|${localPort}`;
  return netns === null ? key : `${netns}|${key}`;
}

// why the namespace: hooks are host-wide, and pods' own loopback connections can share one 5-tuple
function connKey(transport: 'tcp' | 'udp', localIp: string, localPort: number, remoteIp: string, remotePort: number, netns: number | null): string {
  const key = `${transport === 'udp' ? 'u' : 't'}|${endpointPairKey(localIp, localPort, remoteIp, remotePort)}`;
  return netns === null ? key : `${netns}|${key}`;
}

/** One attach result, as a `hook` record or a `proc` record's hooks[] entry gives it; null without a known status. */
function hookEntry(h: Record<string, unknown>): HookEntry | null {
  const status = h.status === 'attached' || h.status === 'failed' || h.status === 'unsupported' ? h.status : null;
  if (!status) return null;
  return { library: str(h.library) ?? 'unknown', path: str(h.path) ?? '', status, reason: str(h.reason), attachedAt: nsToMs(h.tsNs) };
}

function parseHooks(v: unknown): HookEntry[] {
  if (!Array.isArray(v)) return [];
  const out: HookEntry[] = [];
  for (const h of v as Record<string, unknown>[]) {
    const entry = h && typeof h === 'object' ? hookEntry(h) : null;
    if (entry) out.push(entry);
  }
  return out;
}

const NONE_CONNECTED: readonly { ip: string; port: number; owner: ConnOwner }[] = Object.freeze([]);

export class NodeMeta {
  hostname: string | null = null;
  /** Node name given by the store (`{"t":"node"}` record) — wins over the helper's hostname. */
  nodeName: string | null = null;
  mode: 'ebpf' | 'afpacket' | null = null;
  modeReason: string | null = null;
  requestedMode: string | null = null;
  /** the capture filter (tcpdump syntax) the helper applied, null for none */
  captureFilter: string | null = null;
  helperVersion: string | null = null;
  kernel: string | null = null;
  startNs: number | null = null;
  /** Inode of the network namespace the helper captured packets in (capture record), null when not stated. */
  netns: number | null = null;
  /** The addresses of that namespace's interfaces (capture record `addrs`; empty when not stated). */
  readonly addrs = new Set<string>();
  readonly procs = new Map<number, ProcRecord>();
  /** "t|localIp|localPort|remoteIp|remotePort" (tcp) -> owner; prefixed "netns|" for another network namespace */
  readonly conns = new Map<string, ConnOwner>();
  /**
   * UDP sockets bound and not connected (a DNS, QUIC or DTLS server's: a conn record with no remote end, port 0):
   * "localIp|localPort" (prefixed "netns|" as conns) -> owner; localIp may be the wildcard, 0.0.0.0 or ::
   */
  private readonly bound = new Map<string, ConnOwner>();
  /** TCP connections a process of the node made ("localIp|localPort" -> the ends they were made to; not another namespace's) */
  private readonly connected = new Map<string, { ip: string; port: number; owner: ConnOwner }[]>();
  readonly hooks: HookRecord[] = [];
  /**
   * Processes (pid) whose hooks read plaintext they could not tie to a connection (records with no address tags:
   * a memory-BIO call whose thread made no socket call to go by); their connections' verdicts say so.
   */
  readonly unattributedTls = new Set<number>();
  /**
   * The helper's counters: its latest statistics record, added to the last ones of this node's earlier helper streams
   * (a lost stream resumed by a new helper, whose counters start again at 0: every stream's drops count). `final`: the
   * last stream's, which a helper writes when it stops as asked (a stream without it was cut off: killed, lost).
   */
  get stats(): NodeStats | null {
    if (!this.earlierStats || !this.streamStats) return this.streamStats ?? this.earlierStats;
    const a = this.earlierStats;
    const b = this.streamStats;
    return {
      packets: a.packets + b.packets, bytes: a.bytes + b.bytes, ringDrops: a.ringDrops + b.ringDrops, ringbufDrops: a.ringbufDrops + b.ringbufDrops,
      snaplenCuts: a.snaplenCuts + b.snaplenCuts, filtered: a.filtered + b.filtered, tlsEvents: a.tlsEvents + b.tlsEvents, tlsBytes: a.tlsBytes + b.tlsBytes,
      tlsTruncated: a.tlsTruncated + b.tlsTruncated, tlsCallsLost: a.tlsCallsLost + b.tlsCallsLost, final: b.final,
    };
  }

  /** a helper stream (its capture record) began and has not ended */
  private streamOpen = false;
  /** the current helper stream's latest statistics record */
  private streamStats: NodeStats | null = null;
  /** the earlier helper streams' last statistics records, added up */
  private earlierStats: NodeStats | null = null;
  /** the helper streams of this node that wrote statistics but ended without their final ones (cut off), as their start times */
  readonly cutStreams: (number | null)[] = [];
  /**
   * When the eBPF ring buffer dropped the hooks' events: each statistics record that counted more than the one before,
   * from that one's time to its own (capture time, by the packets read by then), with how many. Bounded: adjacent ones
   * merge past RINGBUF_LOSSES_MAX.
   */
  readonly ringbufLosses: { fromMs: number; toMs: number; n: number }[] = [];
  /** the capture time of the last statistics record (see ringbufLosses) */
  private lastStatsMs: number | null = null;
  /** Drops reported by ISBs (per interface, latest value). */
  readonly isbDrops = new Map<string, number>();
  hasCaptureRecord = false;
  /** Where this node's stream was lost and resumed (written by the session writer, see store/node-writer.ts). */
  readonly gaps: { fromMs: number; toMs: number | null; reason: string }[] = [];
  /** Packets and bytes of this node as read from its stream(s). */
  packets = 0;
  bytes = 0;

  /** Whether any conn record named an owner (a connection's, or a bound UDP socket's): without one, owner() finds none. */
  get hasOwners(): boolean {
    return this.conns.size > 0 || this.bound.size > 0;
  }

  /**
   * Whether `ip` is an address of the captured namespace itself (one of its interfaces', or loopback), as far as
   * the capture says: a process there would have been seen. False for an address elsewhere, or when the capture
   * names no addresses (an older helper, a capture from another tool) and the address is not loopback.
   */
  isLocal(ip: string): boolean {
    return this.addrs.has(normalizeIp(ip)) || isLoopback(ip);
  }

  apply(rec: TapscopeRecord): void {
    switch (rec.t) {
      case 'capture': {
        // (a helper stream begins: the one before it, if any, is over)
        this.endStream();
        this.streamOpen = true;
        this.hasCaptureRecord = true;
        const mode = rec.mode === 'ebpf' || rec.mode === 'afpacket' ? rec.mode : null;
        this.mode = mode;
        this.modeReason = str(rec.reason);
        this.requestedMode = str(rec.requestedMode);
        this.captureFilter = str(rec.filter) || null;
        this.helperVersion = str(rec.helper);
        this.kernel = str(rec.kernel);
        this.hostname = str(rec.hostname) ?? this.hostname;
        this.startNs = num(rec.startNs);
        this.netns = num(rec.netns);
        if (Array.isArray(rec.addrs)) for (const a of rec.addrs) if (typeof a === 'string') this.addrs.add(a);
        break;
      }
      case 'node':
        this.nodeName = str(rec.node) ?? this.nodeName;
        break;
      case 'gap': {
        const fromMs = num(rec.fromMs);
        if (fromMs !== null) this.gaps.push({ fromMs, toMs: num(rec.toMs), reason: str(rec.reason) ?? 'stream lost' });
        break;
      }
      case 'proc': {
        const pid = num(rec.pid);
        if (pid === null) break;
        const tlsRaw = rec.tls && typeof rec.tls === 'object' ? (rec.tls as Record<string, unknown>) : null;
        let tls: ProcRecord['tls'] = null;
        if (tlsRaw) {
          const lib = str(tlsRaw.library);
          const via = PROC_TLS_VIA.includes(tlsRaw.via as string) ? (tlsRaw.via as ProcessTlsEvidence['via']) : 'maps';
          tls = {
            library: lib && (TLS_LIBRARIES as readonly string[]).includes(lib) ? (lib as TlsLibrary) : lib ? 'unknown' : null,
            via, evidence: str(tlsRaw.evidence) ?? '', version: str(tlsRaw.version),
          };
        }
        const prev = this.procs.get(pid);
        this.procs.set(pid, {
          pid, ppid: num(rec.ppid), comm: str(rec.comm) ?? prev?.comm ?? '?', exe: str(rec.exe) ?? prev?.exe ?? null,
          cmdline: str(rec.cmdline) ?? prev?.cmdline ?? null, cgroup: str(rec.cgroup) ?? prev?.cgroup ?? null,
          containerId: str(rec.containerId) ?? prev?.containerId ?? null,
          startedBeforeCapture: rec.startedBeforeCapture === true,
          // (absent in files of builds before the field: those processes were read)
          alive: rec.alive !== false,
          readAtExec: rec.readAt === 'exec',
          tls: tls ?? prev?.tls ?? null,
          hooks: Array.isArray(rec.hooks) ? parseHooks(rec.hooks) : prev?.hooks ?? [],
        });
        break;
      }
      case 'conn': {
        const local = rec.local as { ip?: unknown; port?: unknown } | undefined;
        const remote = rec.remote as { ip?: unknown; port?: unknown } | undefined;
        const pid = num(rec.pid);
        const lip = str(local?.ip);
        const lport = num(local?.port);
        const rip = str(remote?.ip);
        const rport = num(remote?.port);
        if (pid === null || lip === null || lport === null || rip === null || rport === null) break;
        if (rec.proto !== undefined && rec.proto !== 'tcp' && rec.proto !== 'udp') break;
        const role = rec.role === 'client' || rec.role === 'server' ? rec.role : 'unknown';
        const netns = this.separateNetns(num(rec.netns), lip);
        const owner: ConnOwner = { pid, comm: str(rec.comm) ?? '?', role };
        if (rec.proto === 'udp' && rport === 0) {
          this.bound.set(boundKey(lip, lport, netns), owner);
          break;
        }
        this.conns.set(connKey(rec.proto === 'udp' ? 'udp' : 'tcp', lip, lport, rip, rport, netns), owner);
        if (role === 'client' && rec.proto !== 'udp' && netns === null) {
          const k = `${lip}|${lport}`;
          const to = this.connected.get(k);
          if (to) to.push({ ip: rip, port: rport, owner });
          else this.connected.set(k, [{ ip: rip, port: rport, owner }]);
        }
        break;
      }
      case 'hook': {
        const entry = hookEntry(rec);
        if (entry) this.hooks.push({ ...entry, pid: num(rec.pid) });
        break;
      }
      case 'stats':
        this.streamStats = {
          packets: num(rec.packets) ?? 0, bytes: num(rec.bytes) ?? 0, ringDrops: num(rec.ringDrops) ?? 0, ringbufDrops: num(rec.ringbufDrops) ?? 0,
          snaplenCuts: num(rec.snaplenCuts) ?? 0, filtered: num(rec.filtered) ?? 0, tlsEvents: num(rec.tlsEvents) ?? 0, tlsBytes: num(rec.tlsBytes) ?? 0,
          tlsTruncated: num(rec.tlsTruncated) ?? 0, tlsCallsLost: num(rec.tlsCallsLost) ?? 0, final: rec.final === true,
        };
        break;
      default:
        break;
    }
  }

  /**
   * The network namespace of a hooked record (or conn record) whose connection has local address `ip`, when
   * it must be kept apart from the capture's packets: known, not the namespace the packets were captured in,
   * and on loopback, which never leaves its namespace (pods' own 127.0.0.1 reuse one 5-tuple). Else null:
   * a foreign namespace's other connections cross captured interfaces (a pod's veth) and join by 5-tuple,
   * unless another namespace's records already fed that end of the flow (see Analyzer.onTlsRecord).
   */
  separateNetns(netns: number | null, ip: string): number | null {
    return netns !== null && this.netns !== null && netns !== this.netns && isLoopback(ip) ? netns : null;
  }

  /** The owner of a local end; `netns` as separateNetns gives it, null for connections joined by 5-tuple. */
  owner(transport: 'tcp' | 'udp', localIp: string, localPort: number, remoteIp: string, remotePort: number, netns: number | null = null): ConnOwner | null {
    const exact = this.conns.get(connKey(transport, localIp, localPort, remoteIp, remotePort, netns));
    if (exact || transport === 'tcp' || this.bound.size === 0) return exact ?? null;
    // (a UDP end with no socket of its own: a bound socket's, on its address, or on the wildcard when the address is one of
    // the node's: a datagram to another host's port must not be given to a local server of the same port)
    return this.bound.get(boundKey(localIp, localPort, netns))
      ?? (this.isLocal(localIp) ? this.bound.get(boundKey('0.0.0.0', localPort, netns)) ?? this.bound.get(boundKey('::', localPort, netns)) : undefined)
      ?? null;
  }

  /** The ends a process of the node connected to (TCP) from `localIp:localPort`, as its conn records say. */
  connectedFrom(localIp: string, localPort: number): readonly { ip: string; port: number; owner: ConnOwner }[] {
    return this.connected.get(`${localIp}|${localPort}`) ?? NONE_CONNECTED;
  }

  processRef(pid: number, fallbackComm: string): ProcessRef {
    const p = this.procs.get(pid);
    return { pid, comm: p?.comm ?? fallbackComm, exe: p?.exe ?? null, cgroup: p?.cgroup ?? null, containerId: p?.containerId ?? null };
  }

  /** What the verdict needs to know about a process's TLS library and hooks. */
  evidence(pid: number): ProcessTlsEvidence | null {
    const p = this.procs.get(pid);
    if (!p) return null;
    const tls = p.tls;
    let hooks = p.hooks;
    if (hooks.length === 0 && tls?.evidence) {
      // why: the helper may report hook attempts only as global `hook` records for a library file.
      hooks = this.hooks.filter((h) => h.path === tls.evidence && (h.pid === null || h.pid === pid));
    }
    return {
      library: tls?.library ?? null, via: tls?.via ?? 'maps', evidence: tls?.evidence ?? '', version: tls?.version ?? null,
      hooks, startedBeforeCapture: p.startedBeforeCapture, exited: !p.alive, readAtExec: p.readAtExec, exe: p.exe,
      unattributedPlaintext: this.unattributedTls.has(pid),
    };
  }

  /**
   * The current helper stream is over (a new one began, or the capture was read to its end): its counters join the
   * earlier streams', and one that wrote no final statistics is noted as cut off.
   */
  endStream(): void {
    if (!this.streamOpen) return;
    // (a stream with no statistics at all is not the helper's periodic kind: nothing to tell from)
    if (this.streamStats && !this.streamStats.final) this.cutStreams.push(this.startNs);
    this.earlierStats = this.stats;
    this.streamStats = null;
    this.streamOpen = false;
  }

  /** A statistics record was read at capture time `atMs` (the latest packet's), the counters before it `before`. */
  statsAt(atMs: number, before: NodeStats | null): void {
    const n = (this.stats?.ringbufDrops ?? 0) - (before?.ringbufDrops ?? 0);
    // (before any packet there is no capture time to place them at: the node's note still counts them)
    if (!Number.isFinite(atMs)) return;
    // (the first record's: the second before it, as the helper writes them each second)
    const fromMs = this.lastStatsMs ?? atMs - 1000;
    this.lastStatsMs = atMs;
    if (n <= 0) return;
    const l = this.ringbufLosses;
    if (l.length >= RINGBUF_LOSSES_MAX) {
      const last = l[l.length - 1]!;
      last.toMs = atMs;
      last.n += n;
      return;
    }
    l.push({ fromMs, toMs: atMs, n });
  }

  /**
   * The hooks' events the ring buffer dropped while a flow open from `fromMs` to `toMs` was (0: none). why a search: it
   * runs for every TLS flow, and the losses (one per second with drops, in capture-time order) can number thousands
   */
  ringbufLostDuring(fromMs: number, toMs: number): number {
    const l = this.ringbufLosses;
    // (the first loss that ends at or after the flow's start)
    let lo = 0;
    let hi = l.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (l[mid]!.toMs < fromMs) lo = mid + 1;
      else hi = mid;
    }
    let n = 0;
    for (let i = lo; i < l.length && l[i]!.fromMs <= toMs; i++) n += l[i]!.n;
    return n;
  }

  /** Drops: the helper's counters when present, else the ISBs' if_drop. */
  get drops(): number {
    if (this.stats) return this.stats.ringDrops + this.stats.ringbufDrops;
    let n = 0;
    for (const v of this.isbDrops.values()) n += v;
    return n;
  }
}

/**
 * What a node's capture lost, as its helper counted it (every stream's): the packets its capture ring dropped (it fell
 * behind), the decrypted TLS records its eBPF ring buffer dropped, the packets cut to the snap length; or, in a capture
 * without helper statistics, the drops its interface statistics blocks report. None when nothing was lost.
 */
export function lossNote(node: string, meta: NodeMeta): string | null {
  const s = meta.stats;
  const parts: string[] = [];
  const n = (count: number, one: string, many: string): string => `${count} ${count === 1 ? one : many}`;
  if (s) {
    if (s.ringDrops > 0) parts.push(`${n(s.ringDrops, 'packet', 'packets')} dropped by the capture ring (the helper fell behind)`);
    if (s.ringbufDrops > 0) parts.push(`${n(s.ringbufDrops, 'event', 'events')} of the TLS hooks (decrypted records among them) dropped by the eBPF ring buffer (their flows' plaintext may be incomplete)`);
    if (s.snaplenCuts > 0) parts.push(`${n(s.snaplenCuts, 'packet', 'packets')} cut to the snap length (their bytes past it were not captured)`);
  } else if (meta.drops > 0) {
    // (the decrypted records' interface counts its ring buffer's drops there too)
    parts.push(`${meta.drops} dropped, as its interface statistics blocks count them (packets, and decrypted TLS records on tapscope-tls)`);
  }
  return parts.length > 0 ? `${node}: the capture lost data: ${parts.join('; ')}` : null;
}

/** The note for a helper stream that ended without its final statistics: killed, or its connection lost. */
export function cutStreamNote(node: string, startNs: number | null): string {
  const began = startNs === null ? '' : ` (begun ${new Date(Math.floor(startNs / 1e6)).toISOString()})`;
  return `${node}: the helper's stream${began} ended without its final statistics (the helper was killed or its stream cut off): ` +
    'its counts end at its last statistics, up to a second before its end, and its last packets may be missing';
}

/** The session note for a lost stream: the same words live (from the target) and when a file is reopened. */
export function gapNote(node: string, gap: { fromMs: number; toMs: number | null; reason: string }): string {
  return `${node}: stream gap from ${new Date(gap.fromMs).toISOString()}${gap.toMs ? ` to ${new Date(gap.toMs).toISOString()}` : ''} (${gap.reason})`;
}

/**
 * Notes without repeats. Notes of one gap (open, then closed; from the target, then from the file on reopen,
 * whose end time is when the resumed stream's first block was written) count as one: the last one says most.
 */
export function distinctNotes(notes: string[]): string[] {
  const byKey = new Map<string, string>();
  for (const n of notes) {
    const key = /^.*?: stream gap from \S+/.exec(n)?.[0] ?? n;
    byKey.set(key, n);
  }
  return [...byKey.values()];
}
