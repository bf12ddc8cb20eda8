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
import { DecodedPacket, PROTO_TCP, TCP_FIN, TCP_RST, TCP_SYN, decodePacket } from '../flows/decode.js';
import type { Flow } from '../model/flow.js';
import { FlowJsonLines } from '../model/flow-json.js';
import { headersDroppedText } from '../model/http-text.js';
import type { HttpExchangeDetail, HttpMessageInfo } from '../api/contract.js';
import { LINKTYPE_WIRESHARK_UPPER_PDU, SECRETS_TLS_KEYLOG, TAPSCOPE_PEN, type PcapngBlock, type TapscopeRecord } from '../pcapng/types.js';
import { KeyLog } from '../dissect/tls-keylog.js';
import { encodeCustom, encodeDsb, encodeEpb, encodeIdb, encodeIsb, encodeNrb, encodeShb } from '../pcapng/writer.js';
import { parseExportedPdu, tlsAttrsOf } from '../pcapng/exported-pdu.js';
import { packageVersion } from '../util/paths.js';
import { REDACTED, isSecretHeader, redactHeaders, redactRecordText, resyncRedact } from './redact.js';
import { H2Stream, Http1Stream } from './redact-stream.js';
import { H2Redactor } from './redact-h2.js';
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
      await writePcapng(files, req, out, keys, randoms, owners);
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
 * `keys`: key log lines to embed after the first section header (a secrets block applies to the packets after it).
 * `randoms`: with a filter, the client randoms of the exported connections: the capture's own TLS secrets blocks keep
 * only their lines (the other connections' packets are not exported, and their secrets do not go either).
 */
async function writePcapng(
  files: CaptureFile[], req: ExportRequest, out: OutFile, keys: string, randoms: ReadonlySet<string> | null, owners: ExportedOwners | null,
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
    if (isTapscopeError(e)) throw e;
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
 * or RST (later retransmissions are scanned conservatively).
 */
export class PacketRedactor {
  private readonly tcpDirs = new Map<string, Http1Stream | H2Stream>();
  /** Reused for every packet (decodePacket fills it in). */
  private readonly scratch = new DecodedPacket(4, Buffer.alloc(0), 0);
  /** TCP connections seen starting HTTP/2 in cleartext. */
  private readonly h2cConns = new Map<string, true>();
  private readonly recordDirs = new Map<string, RecordDir>();
  /**
   * Connections of decrypted records taken to speak HTTP/2 -> whether a direction began with the client preface (else
   * a record's label said so: a connection seen from its middle).
   */
  private readonly h2Conns = new Map<string, boolean>();

  /**
   * `origLen` is the packet's length before the capture cut it (bytes the export cannot see); `observer` tells
   * the two copies of a decrypted direction apart (see recordObserver).
   */
  packet(linkType: number, data: Buffer, scope: string, origLen = data.length, observer: 'in' | 'out' = 'out'): Buffer {
    if (linkType === LINKTYPE_WIRESHARK_UPPER_PDU) return this.record(data, scope, origLen, observer);
    const d = decodePacket(linkType, data, this.scratch);
    // why: a later IP fragment carries no TCP header to place its bytes (documented limit; TCP sets DF)
    if (!d || d.proto !== PROTO_TCP || (d.fragment && !d.firstFragment)) return data;
    const syn = (d.tcpFlags & TCP_SYN) !== 0;
    const end = (d.tcpFlags & (TCP_FIN | TCP_RST)) !== 0;
    if (d.payloadLen === 0 && !syn && !end) return data;
    const key = `${scope}|${endKey(d, true)}|${endKey(d, false)}`;
    const seq = syn ? (d.seq + 1) >>> 0 : d.seq;
    let dir = this.tcpDirs.get(key);
    if (d.payloadLen > 0 && !(dir instanceof H2Stream)) dir = this.h2cStart(scope, d, seq) ?? dir;
    if (!dir) dir = new Http1Stream();
    touch(this.tcpDirs, key, dir);
    if (syn && dir instanceof Http1Stream) dir.open(seq);
    const red = d.payloadLen > 0 ? dir.push(seq, d.payload, d.payloadLen) : null;
    if (end) this.tcpDirs.delete(key);
    if (!red) return data;
    const copy = Buffer.from(data);
    red.copy(copy, d.payloadStart);
    return copy;
  }

  /**
   * Cleartext HTTP/2 (prior knowledge, or after an Upgrade): a segment that begins with the whole client
   * preface turns its direction to HTTP/2 frames, and the other direction of that connection at its next data.
   */
  private h2cStart(scope: string, d: DecodedPacket, seq: number): H2Stream | null {
    const p = d.payload;
    const preface = wholePreface(p);
    if (!preface && this.h2cConns.size === 0) return null;
    const ends = [endKey(d, true), endKey(d, false)].sort();
    const connKey = `${scope}|${ends[0]}|${ends[1]}`;
    if (preface) touch(this.h2cConns, connKey, true);
    else if (!this.h2cConns.has(connKey)) return null;
    return new H2Stream(seq, new H2Redactor(preface));
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
        // why: a direction is known by its ends only, so the records of a later connection on the same ports (or of one
        // labelled http2 from its middle) reach the HTTP/2 redactor, which would find no frame in HTTP/1 text and mask
        // nothing. Between frames, text that begins an HTTP/1 message is none (as a frame header its length would be
        // megabytes): the direction is HTTP/1 from it
        if (dir.betweenFrames && looksLikeHttp1(pdu.payload)) {
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
   * How a direction of decrypted records is read, from its first bytes `head` (the bytes already held and this record's)
   * and not from the records' labels alone: a label can be wrong (helpers before 88b3dce called an HTTP/1 server's
   * records HTTP/2), and HTTP/2's redaction finds no frame in HTTP/1 text, so it would mask nothing. Bytes that begin
   * with the client preface are HTTP/2 from its start; bytes that begin as an HTTP/1 request or response are HTTP/1;
   * bytes still a part of the preface ("P" of a one-byte write, which "POST" begins with too) wait for more (a
   * PrefacePart); anything else is HTTP/2 when its connection is (another direction's preface, or a label: frames of
   * a connection seen from its middle), else HTTP/1.
   */
  private recordDir(head: Buffer, missing: number, labelledH2: boolean, connKey: string): RecordDir {
    const n = Math.min(head.length, H2_PREFACE.length);
    if (head.subarray(0, n).equals(H2_PREFACE.subarray(0, n))) {
      if (n === H2_PREFACE.length) {
        touch(this.h2Conns, connKey, true);
        return new H2Redactor(true, true);
      }
      // (a copy: the record's bytes are in a read buffer used again)
      if (missing === 0) return new PrefacePart(Buffer.from(head));
    }
    if (!looksLikeHttp1(head) && !mayGrowIntoHttp1(head)) {
      if (labelledH2 && !this.h2Conns.has(connKey)) touch(this.h2Conns, connKey, false);
      const fromStart = this.h2Conns.get(connKey);
      if (fromStart !== undefined) return new H2Redactor(false, fromStart);
    }
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

/** A HAR body: bodySize (bytes as received, -1: not known), and the content (decoded) with the notes on it. */
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
 */
function harBody(seen: boolean, text: string | null, info: HttpMessageInfo | undefined, headers: [string, string][], unfinished: boolean): HarBody {
  if (!seen) return { bodySize: -1, size: 0, notes: [] };
  // (an analysis without details keeps neither a body nor its info)
  if (!info) return { bodySize: -1, size: -1, notes: [] };
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
  // (without a content-coding the content is the body)
  let size = codings.length > 0 ? -1 : bodySize;
  let compression: number | undefined;
  if (codings.length > 0) {
    content = null;
    if (!whole) notes.push(`content-encoding ${codings.join(', ')}: not decoded, the body was not all kept`);
    else {
      try {
        content = decodeContent(bytes!, codings);
        size = content.length;
        compression = content.length - bytes!.length;
      } catch (err) {
        notes.push(`content-encoding ${codings.join(', ')}: not decoded (${(err as Error).message})`);
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
        timings: { blocked: -1, dns: -1, connect: -1, send: 0, wait, receive, ssl: -1 }, serverIPAddress: f.dst.ip, connection: `${f.src.port}`,
        comment: `flow ${f.id}, ${sourceText(e)}${f.process ? `, process ${f.process.comm} (${f.process.pid})` : ''}${unfinished ? '; unfinished: the capture ended before this exchange did, its bodies are as far as they came' : ''}`,
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
