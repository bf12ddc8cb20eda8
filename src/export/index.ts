// Exports of a capture: pcapng (Wireshark-ready, keeps the decrypted-plaintext interface so HTTP inside TLS
// shows; with a filter only the matching flows' packets), HAR 1.2 of the HTTP exchanges, and JSON Lines of
// flows. Secrets are redacted unless includeSecrets (see redact.ts); decryption-secrets blocks are dropped too.
import { closeSync, fchmodSync, fchownSync, fsyncSync, openSync, realpathSync, renameSync, rmSync, statSync, writeSync, type Stats } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join, resolve } from 'node:path';
import { isUtf8 } from 'node:buffer';
import { brotliDecompressSync, gunzipSync, inflateRawSync, inflateSync } from 'node:zlib';
import { TapscopeError, isTapscopeError, noRoomReason } from '../errors.js';
import type { Analyzer } from '../flows/analyzer.js';
import { readWithFlowIds, type CaptureFile } from '../flows/load.js';
import { DecodedPacket, PROTO_TCP, TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, decodePacket } from '../flows/decode.js';
import type { Flow } from '../model/flow.js';
import { FlowJsonLines } from '../model/flow-json.js';
import { headersDroppedText } from '../model/http-text.js';
import type { HttpExchangeDetail, HttpMessageInfo } from '../api/contract.js';
import { LINKTYPE_WIRESHARK_UPPER_PDU, SECRETS_TLS_KEYLOG, TAPSCOPE_PEN, type PcapngBlock, type TapscopeRecord } from '../pcapng/types.js';
import { KeyLog } from '../dissect/tls-keylog.js';
import { encodeCustom, encodeDsb, encodeEpb, encodeIdb, encodeIsb, encodeNrb, encodeShb } from '../pcapng/writer.js';
import { parseExportedPdu, readPduHead, tlsAttrsOf } from '../pcapng/exported-pdu.js';
import { packageVersion } from '../util/paths.js';
import { REDACTED, isSecretHeader, redactHeaders, redactRecordText, redactUnplaced, resyncRedact } from './redact.js';
import { H2Stream, H2cUpgrade, Http1Stream } from './redact-stream.js';
import { H2Redactor, readsAsFrames } from './redact-h2.js';
import { tunnelOf } from './tunnels.js';
import { H2_PREFACE } from '../dissect/http2.js';
import { BODY_CAP, BODY_SAMPLE, contentCodings, headerValue, looksBinary, looksLikeHttp1, mayGrowIntoHttp1 } from '../dissect/http1.js';

export type ExportFormat = 'pcapng' | 'har' | 'json';

export interface ExportRequest {
  format: ExportFormat;
  out: string;
  /** The flows to export (already filtered by the caller); undefined exports everything. */
  flowIds?: Set<string>;
  includeSecrets?: boolean;
  /**
   * The key log the capture was analyzed with: with includeSecrets, a pcapng export carries the secrets of its
   * connections in a decryption secrets block at its start, so that Wireshark decrypts them too.
   */
  keyLog?: KeyLog | null;
  onProgress?: (done: number, total: number) => void;
  /**
   * Files the export is made from besides `files` (a compressed capture's original, key logs): like the capture files,
   * refused as its output.
   */
  inputs?: string[];
  /**
   * Stops the export (a Ctrl-C): it rejects with the signal's reason, and its temporary file is removed, as on any
   * error (the file that was at `out` stays).
   */
  signal?: AbortSignal;
}

/**
 * Buffered synchronous output of an export (written start to end, once). A regular file, new or replaced, is written
 * as a temporary file beside it and renamed into place once whole: an export that fails (a full disk, a capture that
 * cannot be read) leaves the file that was there, or none, never a partial one that looks complete. A special file
 * (/dev/null, a FIFO, a terminal) is written in place. Errors name `path` as the caller gave it.
 */
class OutFile {
  private fd: number;
  /** the temporary file renamed onto `dest` at the end; null: written in place */
  private readonly temp: string | null;
  /** where the export goes: `path`, or the file a symlink there points to (the link stays a link) */
  private readonly dest: string;
  private parts: Buffer[] = [];
  private queued = 0;
  private closed = false;
  bytes = 0;

  constructor(private readonly path: string) {
    const st = statOrNull(path);
    if (st?.isDirectory()) throw new TapscopeError('E_EXPORT', `cannot write ${path}: it is a directory`, { path });
    this.dest = st ? realpathSync(path) : path;
    if (st && !st.isFile()) {
      this.temp = null;
      this.fd = openOrThrow(path, 'w', path);
      return;
    }
    const temp = join(dirname(this.dest), `.${basename(this.dest)}.tapscope-${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
    try {
      this.fd = openSync(temp, 'wx', 0o666);
      this.temp = temp;
    } catch (e) {
      // why: a folder the user may not create files in can still hold a file they may write (tshark -w writes it in
      // place): written in place as before, without the protection of the rename
      if (!st || (e as NodeJS.ErrnoException).code !== 'EACCES') throw writeError(path, e);
      this.temp = null;
      this.fd = openOrThrow(path, 'w', path);
      return;
    }
    if (st) {
      // (the replaced file's permissions and, where allowed, owner go to its replacement, as writing it in place kept them)
      try {
        fchmodSync(this.fd, st.mode & 0o7777);
        if (process.getuid?.() === 0) fchownSync(this.fd, st.uid, st.gid);
      } catch {
        // (best effort: the export itself is what was asked for)
      }
    }
  }

  write(b: Buffer): void {
    this.parts.push(b);
    this.queued += b.length;
    this.bytes += b.length;
    if (this.queued >= 1 << 20) this.flush();
  }

  private flush(): void {
    if (this.parts.length === 0) return;
    const buf = Buffer.concat(this.parts, this.queued);
    this.parts = [];
    this.queued = 0;
    let off = 0;
    try {
      while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off);
    } catch (e) {
      throw writeError(this.path, e, this.temp !== null);
    }
  }

  /** Writes what is buffered and puts the file in place. On failure the output is removed, as abort() does. */
  commit(): void {
    try {
      this.flush();
      // why fsync: a rename can reach the disk before the data it names (a crash then leaves an empty file)
      if (this.temp) fsyncSync(this.fd);
      this.closed = true;
      closeSync(this.fd);
      if (this.temp) renameSync(this.temp, this.dest);
    } catch (e) {
      this.abort();
      throw writeError(this.path, e, this.temp !== null);
    }
  }

  /** Closes the output and removes the temporary file (a file written in place keeps what it got, as tshark's does). */
  abort(): void {
    if (!this.closed) {
      this.closed = true;
      try {
        closeSync(this.fd);
      } catch {
        // (the error being reported is the one that stopped the export)
      }
    }
    if (this.temp) rmSync(this.temp, { force: true });
  }
}

/**
 * The error of writing an export to `path` (as the caller named it): a full disk is E_DISK_FULL, others E_EXPORT.
 * `kept`: nothing partial is left at `path` (the temporary file was removed).
 */
function writeError(path: string, e: unknown, kept = false): TapscopeError {
  if (isTapscopeError(e)) return e;
  const err = e as NodeJS.ErrnoException;
  const why = noRoomReason(err.code);
  if (why !== null) {
    const after = kept ? '; the export was not saved (free some space, or export to another disk)' : '';
    return new TapscopeError('E_DISK_FULL', `cannot write ${path}: ${why}${after}`, { path, errno: err.code }, { cause: e });
  }
  // (Node's text ends with the call and the path it was given, maybe the temporary file's: the message names `path`)
  const text = err.code ? err.message.replace(/, \w+ '.*$/, '') : err.message;
  return new TapscopeError('E_EXPORT', `cannot write ${path}: ${text}`, { path, ...(err.code ? { errno: err.code } : {}) }, { cause: e });
}

function openOrThrow(path: string, flags: string, shown: string): number {
  try {
    return openSync(path, flags);
  } catch (e) {
    throw writeError(shown, e);
  }
}

/** What is at `path` (a symlink followed), null when nothing is; a path that cannot be looked at is an export error. */
function statOrNull(path: string): Stats | null {
  try {
    return statSync(path, { throwIfNoEntry: false }) ?? null;
  } catch (e) {
    throw writeError(path, e);
  }
}

/**
 * Refuses an output that is one of the export's inputs: the same file (device and inode: another spelling of its path,
 * a symlink, a hard link), or, for an input no longer there, the same path. why: the output replaces what was there,
 * and an input replaced by its own export is lost (tshark -r f -w f keeps f too).
 */
function refuseInputs(out: string, inputs: string[]): void {
  let o: Stats | null = null;
  try {
    o = statSync(out, { throwIfNoEntry: false }) ?? null;
  } catch {
    // (an output that cannot even be looked at is reported when it is opened)
  }
  for (const input of inputs) {
    let i: Stats | null = null;
    try {
      i = statSync(input, { throwIfNoEntry: false }) ?? null;
    } catch {
      // (compared by path below)
    }
    const same = o && i ? o.dev === i.dev && o.ino === i.ino : resolve(out) === resolve(input);
    if (same) {
      const named = resolve(out) === resolve(input) ? '' : ` (${input})`;
      throw new TapscopeError('E_EXPORT', `cannot export to ${out}: it is a file the export is made from${named}, which writing the export would destroy; choose another output file`, { path: out, input });
    }
  }
}

export async function exportCapture(files: CaptureFile[], analyzer: Analyzer, req: ExportRequest): Promise<{ path: string; bytes: number }> {
  // (before anything is opened for writing)
  refuseInputs(req.out, [...files.map((f) => f.path), ...(req.inputs ?? [])]);
  const out = new OutFile(req.out);
  try {
    if (req.format === 'pcapng') {
      const randoms = req.includeSecrets && req.flowIds ? new Set(analyzer.clientRandoms(req.flowIds)) : null;
      const keys = req.includeSecrets && req.keyLog ? req.keyLog.linesFor(randoms ?? analyzer.clientRandoms()) : '';
      const owners = req.flowIds ? new ExportedOwners(analyzer.flows().filter((f) => req.flowIds!.has(f.id))) : null;
      const copies = await RecordCopies.of(files, analyzer, req.signal);
      await writePcapng(files, req, out, keys, randoms, owners, copies);
    }
    else {
      const flows = analyzer.flows().filter((f) => !req.flowIds || req.flowIds.has(f.id));
      if (req.format === 'json') {
        await new FlowJsonLines().addAll(flows, (chunk) => { out.write(chunk); });
      } else {
        out.write(Buffer.from(JSON.stringify(har(flows, (id) => analyzer.exchangesOf(id), req.includeSecrets ?? false), null, 1)));
      }
      req.onProgress?.(flows.length, flows.length);
    }
    req.signal?.throwIfAborted();
  } catch (e) {
    out.abort();
    throw e;
  }
  out.commit();
  return { path: req.out, bytes: out.bytes };
}

// ---- pcapng ----

/**
 * With a filter, the helper's records an export keeps: those of the exported flows' processes (their proc and hook
 * records, by pid) and connections (conn records, by their ends; a bound UDP socket's by its port), and every record
 * about the capture itself (capture, node, stats, gaps). why: a filtered export is how one flow is handed to someone
 * else; the capture's other processes (their command lines, executables, containers) and connections are not theirs.
 */
class ExportedOwners {
  private readonly pids = new Set<number>();
  private readonly tuples = new Set<string>();
  private readonly udpPorts = new Set<number>();

  constructor(flows: Flow[]) {
    for (const f of flows) {
      for (const p of [f.process, f.peerProcess]) if (p) this.pids.add(p.pid);
      this.tuples.add(`${f.transport}|${f.src.ip}|${f.src.port}|${f.dst.ip}|${f.dst.port}`);
      this.tuples.add(`${f.transport}|${f.dst.ip}|${f.dst.port}|${f.src.ip}|${f.src.port}`);
      if (f.transport === 'udp') {
        this.udpPorts.add(f.src.port);
        this.udpPorts.add(f.dst.port);
      }
    }
  }

  keeps(rec: TapscopeRecord): boolean {
    const r = rec as Record<string, unknown>;
    switch (r.t) {
      case 'proc':
        return typeof r.pid === 'number' && this.pids.has(r.pid);
      case 'hook':
        // (a library's hook attached for every process: no pid)
        return typeof r.pid !== 'number' || this.pids.has(r.pid);
      case 'conn': {
        const l = r.local as { ip?: unknown; port?: unknown } | undefined;
        const m = r.remote as { ip?: unknown; port?: unknown } | undefined;
        const proto = r.proto === 'udp' ? 'udp' : 'tcp';
        if (proto === 'udp' && m?.port === 0) return typeof l?.port === 'number' && this.udpPorts.has(l.port);
        return this.tuples.has(`${proto}|${String(l?.ip)}|${String(l?.port)}|${String(m?.ip)}|${String(m?.port)}`) || (typeof r.pid === 'number' && this.pids.has(r.pid));
      }
      default:
        return true;
    }
  }
}

/**
 * Which copy of a decrypted direction a pcapng export keeps when both ends' hooks wrote it: the writer's and the
 * reader's records of the same bytes, on the same exported-PDU addresses and ports. why: Wireshark reads every exported
 * PDU of a conversation into one HTTP/2 state, so each header block read twice leaves its HPACK table wrong, and later
 * blocks decode to other headers (the analysis, too, reads one copy of a direction). One copy per flow and direction is
 * kept: the one that lost fewer bytes to the helper's record limit (trunc=1), the writer's when they lost as many (its
 * records are the application's writes, whole frames each, and tshark does not join a frame across records). Every
 * other block goes as it is.
 */
class RecordCopies {
  /** flow and direction -> bytes each observer's copy lost (-1: no record of that observer) */
  private readonly lost = new Map<string, { in: number; out: number }>();

  private constructor(private readonly flows: ReadonlySet<string>) {}

  /**
   * Null when no flow has both ends' plaintext from hooks (nothing to choose); else the capture is read once more, for
   * the records each observer has of each direction.
   */
  static async of(files: CaptureFile[], analyzer: Analyzer, signal?: AbortSignal): Promise<RecordCopies | null> {
    const both = analyzer.flows().filter((f) => f.tls?.client?.plaintextFrom === 'hook' && f.tls.server?.plaintextFrom === 'hook');
    if (both.length === 0) return null;
    const copies = new RecordCopies(new Set(both.map((f) => f.id)));
    await readWithFlowIds(files, (b, id) => {
      signal?.throwIfAborted();
      const k = copies.key(b, id);
      if (k === null || b.type !== 'epb') return;
      const c = copies.lost.get(k) ?? { in: -1, out: -1 };
      const o = recordObserver(b);
      c[o] = Math.max(c[o], 0) + Math.max(0, b.origLen - b.data.length);
      copies.lost.set(k, c);
    });
    return copies;
  }

  /** Whether the block is written: any but a record of the copy of its direction not kept. */
  keeps(b: PcapngBlock, id: string | null): boolean {
    const k = this.key(b, id);
    const c = k === null ? undefined : this.lost.get(k);
    if (!c || c.in < 0 || c.out < 0 || b.type !== 'epb') return true;
    return recordObserver(b) === (c.out <= c.in ? 'out' : 'in');
  }

  /** A decrypted record's flow and direction, when its flow is one of both ends hooked; else null. */
  private key(b: PcapngBlock, id: string | null): string | null {
    if (b.type !== 'epb' || id === null || b.iface.linkType !== LINKTYPE_WIRESHARK_UPPER_PDU || !this.flows.has(id)) return null;
    const h = readPduHead(b.data);
    return h?.src && h.dst ? `${id}|${h.src.ip}|${h.src.port}|${h.dst.ip}|${h.dst.port}` : null;
  }
}

/**
 * `keys`: key log lines to embed after the first section header (a secrets block applies to the packets after it).
 * `randoms`: with a filter, the client randoms of the exported connections: the capture's own TLS secrets blocks keep
 * only their lines (the other connections' packets are not exported, and their secrets do not go either). `copies`:
 * the decrypted records of connections both of whose ends were hooked, one copy each way.
 */
async function writePcapng(
  files: CaptureFile[], req: ExportRequest, out: OutFile, keys: string, randoms: ReadonlySet<string> | null, owners: ExportedOwners | null,
  copies: RecordCopies | null,
): Promise<void> {
  const total = files.reduce((n, f) => n + safeSize(f.path), 0);
  let doneBefore = 0;
  let lastReport = 0;
  const secrets = req.includeSecrets ?? false;
  const redactor = new PacketRedactor();
  let wroteShb = false;
  let reading: CaptureFile | null = null;
  // why flow ids: the filter's flow set selects packets without a per-packet index (see readWithFlowIds); a file
  // damaged in the middle exports up to the damage, as its analysis read it (the session notes it)
  let wroteKeys = keys === '';
  await readWithFlowIds(files, (b: PcapngBlock, matchedId: string | null, f: CaptureFile) => {
    req.signal?.throwIfAborted();
    if (b.type !== 'shb' && !wroteShb) {
      out.write(encodeShb({ userappl: `tapscope ${packageVersion()} export` }));
      wroteShb = true;
    }
    if (b.type !== 'shb' && !wroteKeys) {
      out.write(encodeDsb(SECRETS_TLS_KEYLOG, Buffer.from(keys, 'utf8')));
      wroteKeys = true;
    }
    switch (b.type) {
      case 'shb':
        out.write(encodeShb({
          hardware: b.hardware, os: b.os, userappl: b.userappl ?? `tapscope ${packageVersion()}`,
          comments: [...b.comments, `exported by tapscope ${packageVersion()}${secrets ? '' : '; Authorization/Cookie/Set-Cookie values redacted'}`],
        }));
        wroteShb = true;
        break;
      case 'idb':
        out.write(encodeIdb({
          linkType: b.iface.linkType, snapLen: b.iface.snapLen, name: b.iface.name, description: b.iface.description,
          tsresol: b.iface.tsresol, tsoffset: b.iface.tsoffset, comments: b.iface.comments,
        }));
        break;
      case 'epb':
      case 'spb': {
        if (req.flowIds && (matchedId === null || !req.flowIds.has(matchedId))) break;
        if (copies && !copies.keeps(b, matchedId)) break;
        const data = secrets ? b.data : redactor.packet(b.iface.linkType, b.data, `${f.path}#${b.iface.section}`, b.origLen, recordObserver(b));
        out.write(encodeEpb({ interfaceId: b.iface.interfaceId, tsHigh: b.tsHigh, tsLow: b.tsLow, data, origLen: b.origLen, flags: b.flags, comments: b.comments }));
        if (req.onProgress && b.offset - lastReport > 4 << 20) {
          lastReport = b.offset;
          req.onProgress(doneBefore + b.offset, total);
        }
        break;
      }
      case 'isb':
        out.write(encodeIsb({
          interfaceId: b.iface.interfaceId, tsHigh: b.tsHigh, tsLow: b.tsLow, ifRecv: b.ifRecv, ifDrop: b.ifDrop, osDrop: b.osDrop,
          filterAccept: b.filterAccept, usrDeliv: b.usrDeliv, comments: b.comments,
        }));
        break;
      case 'nrb':
        out.write(encodeNrb(b.records));
        break;
      case 'dsb': {
        if (!secrets) break;
        const data = randoms && b.secretsType === SECRETS_TLS_KEYLOG ? Buffer.from(keyLogLinesOf(b.data.toString('utf8'), randoms), 'utf8') : b.data;
        if (data.length > 0) out.write(encodeDsb(b.secretsType, data));
        break;
      }
      case 'custom':
        if (owners && b.pen === TAPSCOPE_PEN && b.json && !owners.keeps(b.json)) break;
        out.write(encodeCustom(b.pen, (!secrets && b.pen === TAPSCOPE_PEN && redactRecordText(b.data)) || b.data, b.copiable));
        break;
    }
  }, (f) => {
    if (reading) doneBefore += safeSize(reading.path);
    reading = f;
    lastReport = 0;
  }).catch((e: unknown) => {
    if (isTapscopeError(e) || (req.signal?.aborted && e === req.signal.reason)) throw e;
    throw new TapscopeError('E_EXPORT', `export failed reading ${reading?.path ?? ''}: ${(e as Error).message}`);
  });
  if (!wroteShb) out.write(encodeShb({ userappl: `tapscope ${packageVersion()} export` }));
  req.onProgress?.(total, total);
}

// why: a direction's state is small, but a capture can hold millions of connections that never close; the least
// recently used states go beyond this many (their later packets are then scanned conservatively).
const MAX_DIRECTIONS = 100_000;

/** One end of a decoded packet as a map key part (IPv4 as a number: no address string per packet). */
function endKey(d: DecodedPacket, src: boolean): string {
  if (d.ipVersion === 4) return `${src ? d.src4 : d.dst4}|${src ? d.srcPort : d.dstPort}`;
  return `${src ? d.src : d.dst}|${src ? d.srcPort : d.dstPort}`;
}

/** Stores `value` as the most recently used entry of a bounded map (a Map iterates in insertion order). */
function touch<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > MAX_DIRECTIONS) map.delete(map.keys().next().value!);
}

/**
 * Which end's process a decrypted record came from ('out': the writer, 'in': the reader). When both ends are
 * hooked each direction's bytes arrive twice, once per observer, possibly cut at different places.
 */
function recordObserver(b: { comments: string[]; flags: number | null }): 'in' | 'out' {
  const dir = tlsAttrsOf(b.comments)?.dir;
  if (dir === 'in' || dir === 'out') return dir;
  return (b.flags ?? 0) & 2 ? 'out' : 'in';
}

function safeSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/**
 * Redacts secret header values in packets' application bytes, keeping every length (see redact.ts and
 * redact-h2.ts). Stateful: each direction of each TCP connection and of each decrypted-record stream is
 * followed as a stream (HTTP/1 by TCP sequence number or record offset, HTTP/2 frame by frame in records and
 * in cleartext h2c), so a header split across packets is found. A TCP direction's state is dropped at its FIN
 * or RST (later retransmissions are scanned conservatively) and starts again at a SYN. Packets inside tunnels
 * (tunnels.ts) are read as their own connections.
 */
export class PacketRedactor {
  private readonly tcpDirs = new Map<string, TcpDir>();
  /** Reused for every packet (decodePacket fills it in). */
  private readonly scratch = new DecodedPacket(4, Buffer.alloc(0), 0);
  /** TCP connections taken to speak HTTP/2 in cleartext -> whether seen from their start (see directionKind). */
  private readonly h2cConns = new Map<string, boolean>();
  private readonly recordDirs = new Map<string, RecordDir>();
  /**
   * Connections of decrypted records taken to speak HTTP/2 -> whether a direction began with the client preface (else
   * a record's label or its frames said so: a connection seen from its middle).
   */
  private readonly h2Conns = new Map<string, boolean>();

  /**
   * `origLen` is the packet's length before the capture cut it (bytes the export cannot see); `observer` tells
   * the two copies of a decrypted direction apart (see recordObserver).
   */
  packet(linkType: number, data: Buffer, scope: string, origLen = data.length, observer: 'in' | 'out' = 'out'): Buffer {
    if (linkType === LINKTYPE_WIRESHARK_UPPER_PDU) return this.record(data, scope, origLen, observer);
    const d = decodePacket(linkType, data, this.scratch);
    const red = d ? this.ipPayload(d, scope, 0) : null;
    if (!red) return data;
    const copy = Buffer.from(data);
    red.bytes.copy(copy, red.at);
    return copy;
  }

  /**
   * The redacted bytes of a decoded packet's payload and where they go in its data; null when nothing changed. A
   * tunnel's packet (tunnels.ts) is read for the packet it carries, whose connections are its own (`scope` names the
   * tunnel), up to MAX_TUNNELS deep.
   */
  private ipPayload(d: DecodedPacket, scope: string, depth: number): { at: number; bytes: Buffer } | null {
    // why: a later IP fragment carries no header to place its bytes (documented limit; TCP sets DF)
    if (d.fragment && !d.firstFragment) return null;
    if (d.proto === PROTO_TCP) {
      const red = this.tcp(d, scope);
      return red && { at: d.payloadStart, bytes: red };
    }
    const t = depth < MAX_TUNNELS ? tunnelOf(d) : null;
    if (!t) return null;
    const data = d.data;
    // (the inner packet is decoded into the same scratch: `d` is not read after this)
    const inner = t.linkType === null ? null : decodePacket(t.linkType, data, this.scratch, t.start, t.end);
    if (inner && !(inner.fragment && !inner.firstFragment)) return this.ipPayload(inner, `${scope}|${t.tag}`, depth + 1);
    // why: what a tunnel carries that cannot be read here (a protocol not decoded, a packet cut short, an inner fragment
    // after the first) may still be HTTP, which Wireshark may show
    const red = redactUnplaced(data.subarray(t.start, t.end));
    return red && { at: t.start, bytes: red };
  }

  /** A TCP segment's redacted payload; null when nothing changed. */
  private tcp(d: DecodedPacket, scope: string): Buffer | null {
    const syn = (d.tcpFlags & TCP_SYN) !== 0;
    const end = (d.tcpFlags & (TCP_FIN | TCP_RST)) !== 0;
    if (d.payloadLen === 0 && !syn && !end) return null;
    const key = `${scope}|${endKey(d, true)}|${endKey(d, false)}`;
    const seq = syn ? (d.seq + 1) >>> 0 : d.seq;
    let dir = this.tcpDirs.get(key);
    if (syn) {
      // (a connection opening on these ends: what was told of an earlier one on them is not this one's)
      dir = new TcpHttp1(seq);
      if (!(d.tcpFlags & TCP_ACK) && this.h2cConns.size > 0) this.h2cConns.delete(connKeyOf(scope, d));
    }
    let red: Buffer | null = null;
    if (d.payloadLen > 0) {
      const payload = d.payload;
      dir = this.tcpDirection(dir, d, payload, scope, seq);
      if (dir instanceof H2Stream) red = dir.push(seq, payload, d.payloadLen);
      else {
        red = dir.h1.push(seq, payload, d.payloadLen);
        const at = dir.upgrade.feed(seq, payload, d.payloadLen);
        if (at >= 0) {
          // (h2c by Upgrade: the server's frames from the end of its 101's head; the connection is HTTP/2 from its start)
          touch(this.h2cConns, connKeyOf(scope, d), true);
          dir = new H2Stream((seq + at) >>> 0, new H2Redactor(false));
          const frames = dir.push((seq + at) >>> 0, payload.subarray(at), d.payloadLen - at);
          if (red || frames) {
            const out = Buffer.from(red ?? payload);
            (frames ?? payload.subarray(at)).copy(out, at);
            red = out;
          }
        }
      }
    }
    if (end) this.tcpDirs.delete(key);
    else if (dir) touch(this.tcpDirs, key, dir);
    return red;
  }

  /**
   * How a TCP direction's segment at `seq` is read, and so the direction from it: as decrypted records' directions are
   * (directionKind), from the bytes of a segment that begins them, with frames seen in the middle of a connection as the
   * hint a record's label is. An HTTP/1 direction turns to HTTP/2 only at the client's preface (h2c's upgrade request,
   * then the preface; its server turns at the 101, see tcp()); HTTP/2 turns to HTTP/1 as records' do (turnsHttp1).
   */
  private tcpDirection(dir: TcpDir | undefined, d: DecodedPacket, payload: Buffer, scope: string, seq: number): TcpDir {
    if (dir instanceof H2Stream) {
      if (!turnsHttp1(dir.framesStartAt(seq), payload)) return dir;
      this.h2cConns.delete(connKeyOf(scope, d));
      return new TcpHttp1(seq, true);
    }
    // (data with no SYN before it: a connection taken up in the middle)
    dir ??= new TcpHttp1(null);
    // (most segments: a connection's HTTP/1 or other bytes, nothing HTTP/2 known of it)
    if (payload[0] !== H2_PREFACE[0] && (dir.http1 === true || (dir.http1 === false && this.h2cConns.size === 0))) return dir;
    const connKey = (): string => connKeyOf(scope, d);
    const kind = directionKind(this.h2cConns, connKey, payload, dir.midstream && readsAsFrames(payload));
    if (kind === 'preface') return new H2Stream(seq, new H2Redactor(true));
    // (a segment can end inside the preface; a connection already known for HTTP/2 then has its client's preface here)
    if (kind === 'part' && this.h2cConns.get(connKey()) === true) return new H2Stream(seq, new H2Redactor(true));
    if (dir.http1 === true) return dir;
    if (typeof kind === 'object') return new H2Stream(seq, new H2Redactor(false, kind.fromStart, !kind.fromStart));
    // why the first byte: looksLikeHttp1 reads a line; a message's start line begins with a method's or HTTP's capital
    if (dir.http1 === null && kind !== 'part') dir.http1 = payload[0]! >= 0x41 && payload[0]! <= 0x5a && looksLikeHttp1(payload) ? true : dir.midstream ? null : false;
    return dir;
  }

  private record(data: Buffer, scope: string, origLen: number, observer: 'in' | 'out'): Buffer {
    const pdu = parseExportedPdu(data);
    if (!pdu) return data;
    const missing = Math.max(0, origLen - data.length);
    let red: Buffer | null;
    if (pdu.src && pdu.dst) {
      const dirKey = `${scope}|${observer}|${pdu.src.ip}|${pdu.src.port}|${pdu.dst.ip}|${pdu.dst.port}`;
      const ends = [`${pdu.src.ip}|${pdu.src.port}`, `${pdu.dst.ip}|${pdu.dst.port}`].sort();
      const connKey = `${scope}|${ends[0]}|${ends[1]}`;
      let dir = this.recordDirs.get(dirKey);
      let before: Buffer | null = null;
      if (dir === undefined || dir instanceof PrefacePart) {
        // (a direction's first bytes: HTTP/2 or HTTP/1 is told from them; see recordDir)
        before = dir?.bytes ?? null;
        const head = before ? Buffer.concat([before, pdu.payload]) : pdu.payload;
        dir = this.recordDir(head, missing, pdu.protoName === 'http2', connKey);
        if (dir instanceof PrefacePart) {
          touch(this.recordDirs, dirKey, dir);
          return data;
        }
      } else if (dir instanceof H2Redactor) {
        if (turnsHttp1(dir.betweenFrames, pdu.payload)) {
          dir = { h1: new Http1Stream(), offset: 0 };
          this.h2Conns.delete(connKey);
        }
      } else {
        // why: a direction followed as HTTP/1 turning to HTTP/2 (h2c's upgrade) starts its frames here; one whose
        // connection another direction's preface showed to be HTTP/2 (its first record came before that one) too
        if (this.startsWithPreface(pdu.payload, connKey)) dir = new H2Redactor(true, true);
        else if (this.h2Conns.get(connKey) === true && !looksLikeHttp1(pdu.payload)) dir = new H2Redactor(false, false);
      }
      touch(this.recordDirs, dirKey, dir);
      // (the bytes held while undecided were written out as they came: a part of the preface, nothing to mask)
      if (dir instanceof H2Redactor) {
        if (before) dir.redact(before);
        red = dir.redact(pdu.payload, missing);
      } else {
        if (before) this.h1Record(dir, before, 0);
        red = this.h1Record(dir, pdu.payload, missing);
      }
    } else {
      red = resyncRedact(pdu.payload);
    }
    if (!red) return data;
    const copy = Buffer.from(data);
    red.copy(copy, pdu.payloadOffset);
    return copy;
  }

  /**
   * How a direction of decrypted records is read, from its first bytes `head` (the bytes already held and this record's;
   * see directionKind), a record's http2 label or frames being the hint: bytes still a part of the preface ("P" of a
   * one-byte write, which "POST" begins with too) wait for more (a PrefacePart), unless the capture cut the record.
   */
  private recordDir(head: Buffer, missing: number, labelledH2: boolean, connKey: string): RecordDir {
    const kind = directionKind(this.h2Conns, () => connKey, head, labelledH2 || readsAsFrames(head));
    if (kind === 'preface') return new H2Redactor(true, true);
    // (a copy: the record's bytes are in a read buffer used again)
    if (kind === 'part' && missing === 0) return new PrefacePart(Buffer.from(head));
    if (typeof kind === 'object') return new H2Redactor(false, kind.fromStart);
    return { h1: new Http1Stream(), offset: 0 };
  }

  /** Whether a record of a direction followed as HTTP/1 begins with the client preface (its connection is then HTTP/2). */
  private startsWithPreface(payload: Buffer, connKey: string): boolean {
    if (!wholePreface(payload)) return false;
    touch(this.h2Conns, connKey, true);
    return true;
  }

  /** An HTTP/1 direction's next record, `missing` bytes of it cut off by the capture. */
  private h1Record(dir: { h1: Http1Stream; offset: number }, payload: Buffer, missing: number): Buffer | null {
    const red = dir.h1.push(dir.offset, payload, payload.length + missing);
    dir.offset = (dir.offset + payload.length + missing) >>> 0;
    return red;
  }
}

/** How many tunnels deep the redaction looks (VXLAN in GRE, say). */
const MAX_TUNNELS = 4;

/** A TCP connection's key, the same both ways. */
function connKeyOf(scope: string, d: DecodedPacket): string {
  const a = endKey(d, true);
  const b = endKey(d, false);
  return a < b ? `${scope}|${a}|${b}` : `${scope}|${b}|${a}`;
}

/**
 * What a direction's first bytes `head` say it speaks (decrypted records' and cleartext TCP's alike), with what is
 * known of its connection (`conns`: connections taken to speak HTTP/2 -> whether seen from their start) and `hint`:
 * something besides its bytes says its connection is HTTP/2 (a record's label, or frames read from the middle of a
 * connection, see readsAsFrames). Not from the labels alone: a label can be wrong (helpers before 88b3dce called an
 * HTTP/1 server's records HTTP/2), and HTTP/2's redaction finds no frame in HTTP/1 text, so it would mask nothing.
 * - 'preface': the whole client preface; the connection is HTTP/2 from its start
 * - 'part': a part of the preface, so far
 * - 'h1': an HTTP/1 request or response begins (or may), or nothing says HTTP/2
 * - { fromStart }: HTTP/2 frames of a connection known to speak it (another direction's preface, or a hint: a
 *   connection seen from its middle, whose HPACK table is not known)
 */
function directionKind(conns: Map<string, boolean>, connKey: () => string, head: Buffer, hint: boolean): 'preface' | 'part' | 'h1' | { fromStart: boolean } {
  const n = Math.min(head.length, H2_PREFACE.length);
  if (n > 0 && head.subarray(0, n).equals(H2_PREFACE.subarray(0, n))) {
    if (n < H2_PREFACE.length) return 'part';
    touch(conns, connKey(), true);
    return 'preface';
  }
  if ((!hint && conns.size === 0) || looksLikeHttp1(head) || mayGrowIntoHttp1(head)) return 'h1';
  const key = connKey();
  if (hint && !conns.has(key)) touch(conns, key, false);
  const fromStart = conns.get(key);
  return fromStart === undefined ? 'h1' : { fromStart };
}

/**
 * Whether an HTTP/2 direction turns to HTTP/1 with `payload`, which comes between two of its frames. why: a direction is
 * known by its ends only, so the bytes of a later connection on the same ports (or of one taken for HTTP/2 from its
 * middle) reach the HTTP/2 redactor, which would find no frame in HTTP/1 text and mask nothing. Between frames, text
 * that begins an HTTP/1 message is none (as a frame header its length would be megabytes): the direction is HTTP/1 from it.
 */
function turnsHttp1(betweenFrames: boolean, payload: Buffer): boolean {
  return betweenFrames && looksLikeHttp1(payload);
}

/**
 * A TCP direction read as HTTP/1 (its stream opened at a SYN's `seq`, or null: taken up in the middle), watched for a
 * 101 that turns it to h2c. `http1`, what its bytes began as (see PacketRedactor.tcpDirection): true, an HTTP/1
 * message, and it turns to HTTP/2 only at the client's preface; false, something else from its start, which turns to
 * HTTP/2 frames when its connection is known to speak them (an h2c server speaks first); null, not told yet (taken up
 * in the middle, its segments are looked at until one begins HTTP/1 or reads as frames).
 */
class TcpHttp1 {
  readonly h1 = new Http1Stream();
  readonly upgrade = new H2cUpgrade();
  readonly midstream: boolean;
  http1: boolean | null = null;

  constructor(seq: number | null, http1: boolean | null = null) {
    this.midstream = seq === null;
    this.http1 = http1;
    if (seq !== null) this.h1.open(seq);
  }
}

type TcpDir = TcpHttp1 | H2Stream;

/** Whether `buf` begins with the whole HTTP/2 client preface. */
function wholePreface(buf: Buffer): boolean {
  return buf.length >= H2_PREFACE.length && buf[0] === H2_PREFACE[0] && buf.subarray(0, H2_PREFACE.length).equals(H2_PREFACE);
}

/** A direction of decrypted records whose bytes so far are a part of the HTTP/2 client preface (see recordDir). */
class PrefacePart {
  constructor(readonly bytes: Buffer) {}
}

type RecordDir = { h1: Http1Stream; offset: number } | H2Redactor | PrefacePart;

// ---- HAR 1.2 ----

interface HarHeader { name: string; value: string }

function harHeaders(h: [string, string][]): HarHeader[] {
  return h.map(([name, value]) => ({ name, value }));
}

function cookiesOf(headers: [string, string][], response: boolean, secrets: boolean): { name: string; value: string }[] {
  const out: { name: string; value: string }[] = [];
  for (const [k, v] of headers) {
    const n = k.toLowerCase();
    if (!response && n === 'cookie') {
      for (const part of v.split(';')) {
        const eq = part.indexOf('=');
        if (eq > 0) out.push({ name: part.slice(0, eq).trim(), value: secrets ? part.slice(eq + 1).trim() : REDACTED });
      }
    } else if (response && n === 'set-cookie') {
      const first = v.split(';')[0] ?? '';
      const eq = first.indexOf('=');
      if (eq > 0) out.push({ name: first.slice(0, eq).trim(), value: secrets ? first.slice(eq + 1).trim() : REDACTED });
    }
  }
  return out;
}


/** A time in ms as HAR gives it: to the microsecond (captures' resolution), without float noise. */
function ms(t: number): number {
  return Math.round(t * 1000) / 1000;
}

/**
 * The request's URL, built per the form of its request-target (RFC 9112 §3.2, §3.3): absolute-form (a request to a
 * proxy) is the URL; authority-form (CONNECT) and asterisk-form (OPTIONS *) name no path, so the URL is the authority's
 * (the request-target's, or the Host's); origin-form is the Host's followed by the path. `note`: what the URL does not
 * say of the target.
 */
function requestUrl(f: Flow, e: HttpExchangeDetail): { url: string; queryString: HarHeader[]; note: string | null } {
  // (HTTP/2 and HTTP/3 name the scheme; HTTP/1 leaves it to the connection)
  const scheme = headerValue(e.requestHeaders, ':scheme') ?? (f.tls ? 'https' : 'http');
  const port = scheme === 'https' ? 443 : 80;
  const ip = f.dst.ip.includes(':') ? `[${f.dst.ip}]` : f.dst.ip;
  const host = e.host ?? f.tls?.sni ?? (f.dst.port === port ? ip : `${ip}:${f.dst.port}`);
  const target = e.path;
  let url: string;
  let note: string | null = null;
  if (e.method === null) {
    url = `${scheme}://${host}/`;
    note = 'the request was not captured (before the capture began, or lost): its method, path and version are not known';
  } else if (target !== null && /^[a-z][a-z0-9+.-]*:\/\//i.test(target)) url = target;
  // (an HTTP/2 extended CONNECT, a WebSocket's, has a path: origin-form)
  else if (e.method === 'CONNECT' && !target?.startsWith('/')) {
    url = `${scheme}://${target ?? host}`;
    note = `CONNECT ${target ?? host}: a tunnel request, its target an authority`;
  } else if (target === '*') {
    url = `${scheme}://${host}`;
    note = 'request-target "*": the server as a whole';
  } else {
    const path = target ?? '/';
    url = `${scheme}://${host}${path.startsWith('/') ? path : `/${path}`}`;
  }
  try {
    const u = new URL(url);
    return { url: u.toString(), queryString: [...u.searchParams.entries()].map(([name, value]) => ({ name, value })), note };
  } catch {
    // why: a target we cannot parse as a URL is still worth listing verbatim.
    return { url, queryString: [], note };
  }
}

// why: a compressed body of 64 KiB can grow a thousandfold; past this its content is left out rather than held
const DECODED_CAP = 16 << 20;

/** A body's bytes with its content-codings undone (RFC 9110 §8.4: listed in the order applied); throws what stops it. */
function decodeContent(bytes: Buffer, codings: string[]): Buffer {
  let b = bytes;
  for (const c of [...codings].reverse()) {
    const opts = { maxOutputLength: DECODED_CAP };
    if (c === 'gzip' || c === 'x-gzip') b = gunzipSync(b, opts);
    else if (c === 'br') b = brotliDecompressSync(b, opts);
    else if (c === 'deflate') {
      // (RFC 9110 says zlib format; some servers send raw deflate)
      try {
        b = inflateSync(b, opts);
      } catch {
        b = inflateRawSync(b, opts);
      }
    } else if (c !== 'identity') throw new Error(`content-coding ${c} is not decoded`);
  }
  return b;
}

/**
 * A HAR body: bodySize (bytes as received, -1: not known), and the content (decoded) with the notes on it: its size
 * (never -1, see harBody) and the bytes its content-coding saved.
 */
interface HarBody {
  bodySize: number;
  size: number;
  compression?: number;
  text?: string;
  base64?: true;
  notes: string[];
}

/**
 * What the exchange kept of one message's body, as HAR puts it. `bodySize` counts the bytes as they came (de-chunked,
 * still compressed); `size` the content's, after its content-coding is undone (when the whole body was kept); text that
 * is not UTF-8 goes as base64. A body cut short (a gap, the capture's end, the 64 KiB a message keeps) says so.
 * why `size` is never -1: HAR 1.2 allows -1 for bodySize and headersSize only. A content whose coding was not undone
 * (one not decoded here, bytes that are not what their coding says, a body not all kept) has the size of the body as
 * it came, still coded, and a note says so; a body the capture cut, the bytes captured.
 */
function harBody(seen: boolean, text: string | null, info: HttpMessageInfo | undefined, headers: [string, string][], unfinished: boolean): HarBody {
  if (!seen) return { bodySize: -1, size: 0, notes: [] };
  // (an analysis without details keeps neither a body nor its info)
  if (!info) return { bodySize: -1, size: 0, notes: [] };
  if (info.bodySize === 0) return { bodySize: 0, size: 0, notes: [] };
  const notes: string[] = [];
  let bodySize = info.bodySize;
  if (info.bodyTruncated) {
    const declared = Number(headerValue(headers, 'content-length') ?? NaN);
    // (a body past the cap came whole, as its Content-Length said; one the capture cut did not)
    bodySize = !unfinished && Number.isSafeInteger(declared) && declared >= info.bodySize ? declared : -1;
    notes.push(info.bodySize >= BODY_CAP ? `body truncated: only its first ${BODY_CAP} bytes were kept` : `body truncated: ${info.bodySize} bytes of it were captured`);
  }
  let bytes: Buffer | null = null;
  if (info.body === 'base64') bytes = Buffer.from(info.bodyBase64 ?? '', 'base64');
  else if (info.body === 'text' && text !== null) bytes = Buffer.from(text, 'utf8');
  else if (info.body === 'head' && text !== null) {
    bytes = Buffer.from(text.endsWith('…') ? text.slice(0, -1) : text, 'utf8');
    notes.push(`only the first ${bytes.length} bytes of the body are given`);
  } else notes.push(`the body's ${info.bodySize} bytes were not kept (of a binary body only the first ${BODY_SAMPLE} are, and a flow's bodies have a budget)`);
  const whole = bytes !== null && !info.bodyTruncated && bytes.length === info.bodySize;
  const codings = contentCodings(headers);
  let content = bytes;
  let size = bodySize >= 0 ? bodySize : info.bodySize;
  let compression: number | undefined;
  if (codings.length > 0) {
    content = null;
    if (!whole) notes.push(`content-encoding ${codings.join(', ')}: not decoded, the body was not all kept; content.size is the body's, coded`);
    else {
      try {
        content = decodeContent(bytes!, codings);
        size = content.length;
        // (the bytes saved: a coding that made a short body longer saved none, and HAR leaves out what it cannot say)
        if (content.length >= bytes!.length) compression = content.length - bytes!.length;
      } catch (err) {
        notes.push(`content-encoding ${codings.join(', ')}: not decoded (${(err as Error).message}); content.size is the body's, coded`);
      }
    }
  }
  if (content === null) return { bodySize, size, notes };
  // (text or not is the whole content's to say, before the cap cuts it, maybe inside a character)
  const binary = looksBinary(content) || !isUtf8(content);
  if (content.length > BODY_CAP) {
    notes.push(`content: its first ${BODY_CAP} of ${content.length} bytes`);
    content = content.subarray(0, BODY_CAP);
  }
  const out: HarBody = { bodySize, size, notes };
  if (compression !== undefined) out.compression = compression;
  if (binary) {
    out.text = content.toString('base64');
    out.base64 = true;
  } else out.text = content.toString('utf8');
  return out;
}

/** Which capture an exchange was read from, as the entry's comment says it. */
function sourceText(e: HttpExchangeDetail): string {
  if (e.source === 'plain') return 'plain HTTP';
  return e.decryptedWith === 'keylog' ? 'decrypted with the key log' : 'decrypted from TLS hooks';
}

export function har(flows: Flow[], exchangesOf: (id: string) => HttpExchangeDetail[], includeSecrets: boolean): unknown {
  const entries: { startedDateTime: string; sort: number; [k: string]: unknown }[] = [];
  for (const f of flows) {
    for (const e of exchangesOf(f.id)) {
      if (e.method === null && e.status === null) continue;
      const reqH = includeSecrets ? e.requestHeaders : redactHeaders(e.requestHeaders);
      const resH = includeSecrets ? e.responseHeaders : redactHeaders(e.responseHeaders);
      const { url, queryString, note } = requestUrl(f, e);
      const rq = e.requestInfo;
      const rs = e.responseInfo;
      const reqType = headerValue(e.requestHeaders, 'content-type') ?? 'application/octet-stream';
      const resType = headerValue(e.responseHeaders, 'content-type') ?? 'application/octet-stream';
      const unfinished = e.unfinished === true;
      const reqBody = harBody(e.method !== null, e.requestBody, rq, e.requestHeaders, unfinished);
      const resBody = harBody(e.status !== null, e.responseBody, rs, e.responseHeaders, unfinished);
      const reqNotes = [note, e.requestHeadersDropped ? headersDroppedText(e.requestHeadersDropped) : null, ...reqBody.notes];
      // (a server side whose HTTP/2 could not be read further: its answers were on the wire, not read)
      const stopped = e.status === null ? f.httpStopped?.find((x) => x.side === 'server') : undefined;
      const resNotes = [e.status === null ? (stopped ? `no response was read: HTTP/2 decoding of the server's side stopped: ${stopped.reason}` : 'no response was captured') : null,
        e.reset ? `its HTTP/2 stream was reset by the ${e.reset.by} (RST_STREAM ${e.reset.error})` : null, e.responseHeadersDropped ? headersDroppedText(e.responseHeadersDropped) : null, ...resBody.notes];
      const request: Record<string, unknown> = {
        // (HAR wants a method; an invented GET would read as a real request)
        method: e.method ?? 'UNKNOWN', url, httpVersion: rq?.version ?? '', cookies: cookiesOf(e.requestHeaders, false, includeSecrets), headers: harHeaders(reqH),
        queryString, headersSize: -1, bodySize: reqBody.bodySize,
      };
      if (reqBody.text !== undefined) {
        // (HAR 1.2's postData has no encoding field: a binary body's base64 says so in a custom one)
        request.postData = { mimeType: reqType, text: reqBody.text, ...(reqBody.base64 ? { _encoding: 'base64' } : {}) };
      }
      const reqComment = reqNotes.filter((n) => n !== null).join('; ');
      if (reqComment) request.comment = reqComment;
      const content: Record<string, unknown> = { size: resBody.size };
      if (resBody.compression !== undefined) content.compression = resBody.compression;
      content.mimeType = resType;
      if (resBody.text !== undefined) content.text = resBody.text;
      if (resBody.base64) content.encoding = 'base64';
      const response: Record<string, unknown> = {
        status: e.status ?? 0, statusText: rs?.reason ?? '', httpVersion: rs?.version ?? '', cookies: cookiesOf(e.responseHeaders, true, includeSecrets), headers: harHeaders(resH),
        content, redirectURL: headerValue(e.responseHeaders, 'location') ?? '', headersSize: -1, bodySize: resBody.bodySize,
      };
      const resComment = resNotes.filter((n) => n !== null).join('; ');
      if (resComment) response.comment = resComment;
      // why these timings: a capture sees when each message's first and last bytes passed, not DNS, connect or queueing
      // (-1: not known). Sending is the request's bytes, taken as instant; waiting runs from the request's end (its start
      // when not known) to the answer's first bytes; receiving to its last bytes.
      const wait = rs && e.method !== null ? Math.max(0, ms(rs.firstAt - (rq?.lastAt ?? e.startedAt))) : 0;
      const receive = rs ? Math.max(0, ms(rs.lastAt - rs.firstAt)) : 0;
      entries.push({
        sort: e.startedAt,
        startedDateTime: new Date(e.startedAt).toISOString(), time: ms(wait + receive), request, response, cache: {},
        // why the server's port as `connection`: HAR 1.2 takes either end's, and Chromium's HAR importer reads it as the
        // remote port (setRemoteAddress(serverIPAddress, connection)), so the client's showed a wrong Remote Address. The
        // comment's flow id tells the connections apart
        timings: { blocked: -1, dns: -1, connect: -1, send: 0, wait, receive, ssl: -1 }, serverIPAddress: f.dst.ip, connection: `${f.dst.port}`,
        comment: `flow ${f.id}, ${sourceText(e)}${f.process ? `, process ${f.process.comm} (${f.process.pid})` : ''}${unfinished ? `; unfinished (${e.unfinishedReason ?? 'the capture ended before this exchange did'}): its bodies are as far as they came` : ''}`,
      });
    }
  }
  entries.sort((a, b) => a.sort - b.sort);
  return {
    log: {
      version: '1.2', creator: { name: 'tapscope', version: packageVersion() }, pages: [],
      entries: entries.map(({ sort: _sort, ...rest }) => rest),
      comment: includeSecrets ? 'includes secrets' : `values of ${['Authorization', 'Proxy-Authorization', 'Cookie', 'Set-Cookie'].join(', ')} are "${REDACTED}"`,
    },
  };
}

export { isSecretHeader };

/**
 * The lines of a secrets block's key log that belong to these connections (client randoms, hex). A line that is no key
 * log line ends the block's lines, as it ended them for the analysis.
 */
function keyLogLinesOf(text: string, randoms: ReadonlySet<string>): string {
  const log = new KeyLog();
  try {
    log.add(text, 'secrets block');
  } catch {
    // (the lines before the bad one were taken)
  }
  return log.linesFor(randoms);
}
