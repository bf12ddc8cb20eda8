// Synchronous, incremental pcapng / classic pcap parser: bytes in (any chunking), decoded blocks out.
// It knows nothing about streams or files; reader.ts wraps it as a Node Transform and as file helpers.
import { TapscopeError } from '../errors.js';
import { ipv4ToString, ipv6ToString } from '../util/ip.js';
import { be32, le32, LastText, utf8NoNul } from './bytes.js';
import {
  BLOCK_CB_COPY, BLOCK_CB_NOCOPY, BLOCK_DSB, BLOCK_EPB, BLOCK_IDB, BLOCK_ISB, BLOCK_NRB, BLOCK_OBSOLETE_PB, BLOCK_SHB, BLOCK_SPB,
  BYTE_ORDER_MAGIC, LINKTYPE_WIRESHARK_UPPER_PDU, MAX_BLOCK_LENGTH, TAPSCOPE_PEN,
  type InterfaceInfo, type NameRecord, type PcapngBlock, type RawOption, type TapscopeRecord,
} from './types.js';

type ParserState =
  | { kind: 'detect' }
  | { kind: 'pcapng'; le: boolean; section: number; ifaces: InterfaceInfo[] }
  | { kind: 'pcap'; le: boolean; iface: InterfaceInfo }
  | { kind: 'failed'; error: TapscopeError };

const PCAP_MAGIC_US = 0xa1b2c3d4;
const PCAP_MAGIC_NS = 0xa1b23c4d;
const TWO32 = 4294967296;

function malformed(message: string, offset: number, more: Record<string, unknown> = {}): TapscopeError {
  return new TapscopeError('E_PCAPNG_MALFORMED', `${message} at offset ${offset}`, { offset, ...more });
}

export type BlockSink = (block: PcapngBlock) => void;

/**
 * Takes a packet read in place (the fast path: no block object): its bytes are buf[start, start + capLen),
 * valid only during the call. Returns false to get the packet as a block object from the BlockSink instead.
 */
export type RawPacketSink = (
  iface: InterfaceInfo, buf: Buffer, start: number, capLen: number, origLen: number, tsMs: number, offset: number,
) => boolean;

/**
 * Takes a packet on an exported-PDU interface (decrypted TLS records) read in place, with its EPB flags and
 * comments, instead of the RawPacketSink: the record's bytes are buf[start, start + capLen), valid only during
 * the call. Returns false to get it as a block object from the BlockSink instead.
 */
export type RawRecordSink = (
  iface: InterfaceInfo, buf: Buffer, start: number, capLen: number, tsMs: number, offset: number, flags: number | null, comments: string[],
) => boolean;

export class PcapngParser {
  /**
   * `name`: the file read, named by the errors about the source as a whole (not a capture, empty), as tshark names
   * it; null for a stream (its reader says what it is). `from`: where in the file the first byte pushed lies (a read
   * that goes on at a later section after damage), for the offsets blocks and errors give.
   */
  constructor(private readonly name: string | null = null, from = 0) {
    this.base = from;
  }

  private state: ParserState = { kind: 'detect' };
  /** Received bytes not yet consumed: chunks[0] from `off` on, then the other chunks whole. */
  private chunks: Buffer[] = [];
  private off = 0;
  private queued = 0;
  /** File offset of the first queued byte. */
  private base = 0;
  private packet: RawPacketSink | null = null;
  private record: RawRecordSink | null = null;

  /** The error details naming the file read, if one is. */
  private named(): { path?: string } {
    return this.name === null ? {} : { path: this.name };
  }

  /** Offset just past the last complete block: everything before it has been emitted. */
  get completeOffset(): number {
    return this.base;
  }

  /** Bytes received but not yet part of a complete block. */
  get pendingBytes(): number {
    return this.queued;
  }

  /**
   * `packet`, when given, takes packet blocks read in place before any block object is made for them;
   * `record`, when given too, takes those on exported-PDU interfaces (with their flags and comments).
   */
  push(chunk: Buffer, emit: BlockSink, packet: RawPacketSink | null = null, record: RawRecordSink | null = null): void {
    if (this.state.kind === 'failed') throw this.state.error;
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.queued += chunk.length;
    this.packet = packet;
    this.record = packet ? record : null;
    try {
      this.drain(emit);
    } catch (e) {
      if (e instanceof TapscopeError) this.state = { kind: 'failed', error: e };
      throw e;
    }
  }

  /** Copies the queued bytes of an incomplete block, so that the caller may overwrite the chunks it pushed. */
  detach(): void {
    if (this.queued === 0) return;
    const copy = Buffer.allocUnsafe(this.queued);
    let filled = 0;
    for (let i = 0; i < this.chunks.length; i++) filled += this.chunks[i]!.copy(copy, filled, i === 0 ? this.off : 0);
    this.chunks = [copy];
    this.off = 0;
  }

  /** Call at end of input: throws E_PCAPNG_TRUNCATED when a partial block is left (everything complete was emitted). */
  end(): void {
    if (this.state.kind === 'failed') throw this.state.error;
    if (this.queued > 0) {
      throw new TapscopeError(
        'E_PCAPNG_TRUNCATED',
        `capture ends inside a block at offset ${this.base} (${this.queued} bytes of an incomplete block); every complete block before it was read`,
        { offset: this.base, pending: this.queued },
      );
    }
    if (this.state.kind === 'detect' && this.base === 0) {
      throw new TapscopeError('E_PCAPNG_TRUNCATED', `${this.name ?? 'the capture'} is empty (0 bytes)`, { offset: 0, pending: 0, ...this.named() });
    }
  }

  /**
   * Makes at least `need` queued bytes contiguous and returns the buffer holding them, starting at `this.off`
   * (read it only after the call: joining moves `off`); null when fewer bytes are queued.
   */
  private peek(need: number): Buffer | null {
    if (this.queued < need) return null;
    const first = this.chunks[0]!;
    if (first.length - this.off >= need) return first;
    // why: join only the `need` bytes of the block that straddles chunks; joining everything queued copied
    // the whole next 1 MiB read for every chunk boundary (a full copy of the file)
    const joined = Buffer.allocUnsafe(need);
    let filled = first.copy(joined, 0, this.off);
    let i = 1;
    for (; filled < need; i++) {
      const c = this.chunks[i]!;
      const take = Math.min(c.length, need - filled);
      c.copy(joined, filled, 0, take);
      filled += take;
      if (take < c.length) {
        this.chunks[i] = c.subarray(take);
        break;
      }
    }
    this.chunks.splice(0, i, joined);
    this.off = 0;
    return joined;
  }

  // why: an offset instead of re-slicing the chunk saves a Buffer allocation per block on multi-GB reads.
  private consume(n: number): void {
    this.base += n;
    this.queued -= n;
    this.off += n;
    while (this.chunks.length > 0 && this.off >= this.chunks[0]!.length) {
      this.off -= this.chunks[0]!.length;
      this.chunks.shift();
    }
  }

  private drain(emit: BlockSink): void {
    for (;;) {
      const st = this.state;
      if (st.kind === 'detect') {
        const b = this.peek(4);
        if (!b) return;
        const o = this.off;
        const magicLe = b.readUInt32LE(o);
        if (magicLe === BLOCK_SHB) {
          this.state = { kind: 'pcapng', le: true, section: -1, ifaces: [] };
        } else if (magicLe === PCAP_MAGIC_US || magicLe === PCAP_MAGIC_NS || b.readUInt32BE(o) === PCAP_MAGIC_US || b.readUInt32BE(o) === PCAP_MAGIC_NS) {
          if (!this.pcapHeader(emit)) return;
        } else {
          throw malformed(`not a pcapng or pcap file (${this.name === null ? '' : `${this.name} has `}no section header block or pcap magic)`, this.base, this.named());
        }
      } else if (st.kind === 'pcapng') {
        if (this.packet && st.section >= 0) this.walkPackets(st, this.packet);
        if (!this.pcapngBlock(st, emit)) return;
      } else if (st.kind === 'pcap') {
        if (!this.pcapRecord(st, emit)) return;
      } else {
        throw st.error;
      }
    }
  }

  /**
   * The hot loop: hands the raw sink every well-formed EPB lying whole in the first chunk, reading fields
   * byte by byte in place. It stops at anything else (another block type, a block crossing the chunk end,
   * any inconsistency, a packet the sink declines), which pcapngBlock then handles with its checks and errors.
   */
  private walkPackets(st: { le: boolean; ifaces: InterfaceInfo[] }, packet: RawPacketSink): void {
    const buf = this.chunks[0];
    if (buf === undefined) return;
    const from = this.off;
    const end = buf.length;
    // why: one reader picked per call, not `le ? le32 : be32` at each of the eight fields
    const u32 = st.le ? le32 : be32;
    const ifaces = st.ifaces;
    let o = from;
    while (o + 32 <= end) {
      if (u32(buf, o) !== BLOCK_EPB) break;
      const len = u32(buf, o + 4);
      if (len < 32 || (len & 3) !== 0 || len > end - o || u32(buf, o + len - 4) !== len) break;
      const iface = ifaces[u32(buf, o + 8)];
      const capLen = u32(buf, o + 20);
      const be = o + len - 4;
      const optStart = o + 28 + pad4(capLen);
      if (iface === undefined || o + 28 + capLen > be) break;
      const offset = this.base + (o - from);
      const tsHigh = u32(buf, o + 12);
      const tsLow = u32(buf, o + 16);
      const origLen = u32(buf, o + 24);
      // (either way the options are checked as the object path checks them, with the same errors)
      if (iface.linkType === LINKTYPE_WIRESHARK_UPPER_PDU && this.record) {
        const opts = epbOptions(buf, optStart, be, st.le, offset, true);
        if (!this.record(iface, buf, o + 28, capLen, tsToMs(iface, tsHigh, tsLow), offset, opts.flags, opts.comments)) break;
      } else {
        epbOptions(buf, optStart, be, st.le, offset, false);
        if (!packet(iface, buf, o + 28, capLen, origLen, tsToMs(iface, tsHigh, tsLow), offset)) break;
      }
      o += len;
    }
    if (o > from) this.consume(o - from);
  }

  // ---- classic pcap ----

  private pcapHeader(emit: BlockSink): boolean {
    const whole = this.peek(24);
    if (!whole) return false;
    const b = whole.subarray(this.off, this.off + 24);
    const le = b.readUInt32LE(0) === PCAP_MAGIC_US || b.readUInt32LE(0) === PCAP_MAGIC_NS;
    const magic = le ? b.readUInt32LE(0) : b.readUInt32BE(0);
    const nanos = magic === PCAP_MAGIC_NS;
    const u16 = (o: number): number => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (o: number): number => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const iface: InterfaceInfo = {
      section: 0, interfaceId: 0, linkType: u32(20) & 0xffff, snapLen: u32(16), name: null, description: null,
      tsresol: nanos ? 9 : 6, unitsPerSecond: nanos ? 1e9 : 1e6, tsoffset: 0, comments: [],
    };
    emit({ type: 'shb', offset: 0, section: 0, littleEndian: le, major: u16(4), minor: u16(6), hardware: null, os: null, userappl: null, comments: [] });
    emit({ type: 'idb', offset: 0, iface });
    this.consume(24);
    this.state = { kind: 'pcap', le, iface };
    return true;
  }

  private pcapRecord(st: { le: boolean; iface: InterfaceInfo }, emit: BlockSink): boolean {
    const h = this.peek(16);
    if (!h) return false;
    const le = st.le;
    let o = this.off;
    const sec = rd32(h, o, le);
    const frac = rd32(h, o + 4, le);
    const capLen = rd32(h, o + 8, le);
    const origLen = rd32(h, o + 12, le);
    if (capLen > MAX_BLOCK_LENGTH) throw malformed(`pcap record length ${capLen} is absurd (> 256 MiB)`, this.base);
    const b = this.peek(16 + capLen);
    if (!b) return false;
    o = this.off;
    const offset = this.base;
    const tsMs = sec * 1000 + frac / (st.iface.unitsPerSecond / 1000);
    if (this.packet?.(st.iface, b, o + 16, capLen, origLen, tsMs, offset)) {
      this.consume(16 + capLen);
      return true;
    }
    const data = b.subarray(o + 16, o + 16 + capLen);
    const [tsHigh, tsLow] = timeUnits(sec, st.iface.unitsPerSecond, frac);
    emit({ type: 'epb', offset, iface: st.iface, tsHigh, tsLow, tsMs, capLen, origLen, data, flags: null, comments: [] });
    this.consume(16 + capLen);
    return true;
  }

  // ---- pcapng ----

  private pcapngBlock(st: { le: boolean; section: number; ifaces: InterfaceInfo[] }, emit: BlockSink): boolean {
    const h = this.peek(12);
    if (!h) return false;
    const offset = this.base;
    let o = this.off;
    const typeLe = h.readUInt32LE(o);
    let le = st.le;
    if (typeLe === BLOCK_SHB) {
      const bom = h.readUInt32LE(o + 8);
      if (bom === BYTE_ORDER_MAGIC) le = true;
      else if (h.readUInt32BE(o + 8) === BYTE_ORDER_MAGIC) le = false;
      else throw malformed('section header block has a bad byte-order magic', offset);
    } else if (st.section < 0) {
      throw malformed('first block is not a section header block', offset);
    }
    const type = le ? typeLe : h.readUInt32BE(o);
    const len = rd32(h, o + 4, le);
    if (len < 12) throw malformed(`block length ${len} is less than 12`, offset);
    if (len % 4 !== 0) throw malformed(`block length ${len} is not a multiple of 4`, offset);
    if (len > MAX_BLOCK_LENGTH) throw malformed(`block length ${len} is absurd (> 256 MiB)`, offset);
    const packet = epbLike(type);
    if (packet !== null && len > MAX_EPB_OPTIONS) {
      // why: a damaged length reaching past the end of the file would read as a capture cut off inside its last
      // block, everything after it ignored without a word of damage; a packet block's length must fit its packet
      const head = this.peek(28);
      if (!head) return false;
      const capLen = rd32(head, this.off + 20, le);
      const spare = len - 32 - pad4(capLen);
      if (spare > MAX_EPB_OPTIONS) throw malformed(`${packet} length ${len} leaves ${spare} bytes after its ${capLen}-byte packet (its length is damaged)`, offset);
    }
    const b = this.peek(len);
    if (!b) return false;
    o = this.off;
    const trailer = rd32(b, o + len - 4, le);
    if (trailer !== len) throw malformed(`block trailing length ${trailer} does not match leading length ${len}`, offset);
    if (type === BLOCK_SHB) {
      st.le = le;
      st.section += 1;
      st.ifaces = [];
    }
    const block = packet !== null
      ? this.decodeEpb(b, o + 8, o + len - 4, offset, le, st, type)
      : this.decodeBlock(type, b.subarray(o + 8, o + len - 4), offset, le, st);
    this.consume(len);
    if (block) emit(block);
    return true;
  }

  /**
   * The hot path: an EPB read in place from the chunk (body is buf[bs..be)); null when the raw sink took it. An obsolete
   * Packet Block (`type`) is read as the EPB that replaced it: its 16-bit interface id (its drops count, the other half of
   * the EPB's id, is not kept), then the same timestamp, lengths, data and options (pack_flags is epb_flags).
   */
  private decodeEpb(buf: Buffer, bs: number, be: number, offset: number, le: boolean, st: { ifaces: InterfaceInfo[] }, type: number): PcapngBlock | null {
    const what = epbLike(type)!;
    if (be - bs < 20) throw malformed(`${what} is too short (${be - bs + 12} bytes)`, offset);
    const iface = ifaceOf(st.ifaces, type === BLOCK_OBSOLETE_PB ? rd16(buf, bs, le) : rd32(buf, bs, le), what, offset);
    const tsHigh = rd32(buf, bs + 4, le);
    const tsLow = rd32(buf, bs + 8, le);
    const capLen = rd32(buf, bs + 12, le);
    const origLen = rd32(buf, bs + 16, le);
    if (bs + 20 + capLen > be) throw malformed(`packet captured length ${capLen} overruns its block`, offset);
    const optStart = bs + 20 + pad4(capLen);
    if (this.packet) {
      // why: the options are checked like the object path does (same errors), without building them
      epbOptions(buf, optStart, be, le, offset, false);
      if (this.packet(iface, buf, bs + 20, capLen, origLen, tsToMs(iface, tsHigh, tsLow), offset)) return null;
    }
    const data = buf.subarray(bs + 20, bs + 20 + capLen);
    const { flags, comments } = epbOptions(buf, optStart, be, le, offset, true);
    return { type: 'epb', offset, iface, tsHigh, tsLow, tsMs: tsToMs(iface, tsHigh, tsLow), capLen, origLen, data, flags, comments };
  }

  private decodeBlock(
    type: number, body: Buffer, offset: number, le: boolean, st: { section: number; ifaces: InterfaceInfo[] },
  ): PcapngBlock | null {
    // why: no per-block closures here: this runs for every packet of multi-GB captures.
    const u16 = (o: number): number => rd16(body, o, le);
    const u32 = (o: number): number => rd32(body, o, le);
    switch (type) {
      case BLOCK_SHB: {
        need(body, 16, 'section header', offset);
        const major = u16(4);
        const minor = u16(6);
        if (major !== 1) throw malformed(`unsupported pcapng major version ${major}`, offset);
        const opts = parseOptions(body, 16, le, offset);
        return {
          type: 'shb', offset, section: st.section, littleEndian: le, major, minor,
          hardware: optString(opts, 2), os: optString(opts, 3), userappl: optString(opts, 4), comments: commentsOf(opts),
        };
      }
      case BLOCK_IDB: {
        need(body, 8, 'interface description', offset);
        const opts = parseOptions(body, 8, le, offset);
        const tsresolOpt = opts.find((o) => o.code === 9);
        const tsresol = tsresolOpt && tsresolOpt.value.length >= 1 ? (tsresolOpt.value[0] ?? 6) : 6;
        const unitsPerSecond = tsresol & 0x80 ? 2 ** (tsresol & 0x7f) : 10 ** tsresol;
        const tsoffsetOpt = opts.find((o) => o.code === 14);
        const tsoffset = tsoffsetOpt && tsoffsetOpt.value.length >= 8
          ? Number(le ? tsoffsetOpt.value.readBigInt64LE(0) : tsoffsetOpt.value.readBigInt64BE(0)) : 0;
        const iface: InterfaceInfo = {
          section: st.section, interfaceId: st.ifaces.length, linkType: u16(0), snapLen: u32(4),
          name: optString(opts, 2), description: optString(opts, 3), tsresol, unitsPerSecond, tsoffset, comments: commentsOf(opts),
        };
        st.ifaces.push(iface);
        return { type: 'idb', offset, iface };
      }
      case BLOCK_SPB: {
        need(body, 4, 'simple packet', offset);
        const iface = ifaceOf(st.ifaces, 0, 'simple packet block', offset);
        const origLen = u32(0);
        let capLen = Math.min(origLen, body.length - 4);
        if (iface.snapLen > 0) capLen = Math.min(capLen, iface.snapLen);
        return {
          type: 'spb', offset, iface, tsHigh: 0, tsLow: 0, tsMs: 0, capLen, origLen, data: body.subarray(4, 4 + capLen), flags: null, comments: [],
        };
      }
      case BLOCK_ISB: {
        need(body, 12, 'interface statistics', offset);
        const iface = ifaceOf(st.ifaces, u32(0), 'interface statistics block', offset);
        const tsHigh = u32(4);
        const tsLow = u32(8);
        const opts = parseOptions(body, 12, le, offset);
        const u64 = (code: number): bigint | null => {
          const o = opts.find((x) => x.code === code);
          if (!o || o.value.length < 8) return null;
          return le ? o.value.readBigUInt64LE(0) : o.value.readBigUInt64BE(0);
        };
        return {
          type: 'isb', offset, iface, tsHigh, tsLow, tsMs: tsToMs(iface, tsHigh, tsLow),
          ifRecv: u64(4), ifDrop: u64(5), filterAccept: u64(6), osDrop: u64(7), usrDeliv: u64(8), comments: commentsOf(opts),
        };
      }
      case BLOCK_NRB: {
        const records: NameRecord[] = [];
        let p = 0;
        for (;;) {
          if (p + 4 > body.length) throw malformed('name resolution block ends without an end record', offset);
          const rtype = u16(p);
          const rlen = u16(p + 2);
          if (p + 4 + rlen > body.length) throw malformed('name resolution record overruns its block', offset);
          const value = body.subarray(p + 4, p + 4 + rlen);
          p += 4 + pad4(rlen);
          if (rtype === 0) break;
          const alen = rtype === 1 ? 4 : rtype === 2 ? 16 : -1;
          if (alen < 0 || value.length < alen) continue;
          const names = value.subarray(alen).toString('utf8').split('\0').filter((n) => n.length > 0);
          records.push({ kind: alen === 4 ? 'ipv4' : 'ipv6', address: alen === 4 ? ipv4ToString(value, 0) : ipv6ToString(value, 0), names });
        }
        return { type: 'nrb', offset, section: st.section, records };
      }
      case BLOCK_DSB: {
        need(body, 8, 'decryption secrets', offset);
        const secretsType = u32(0);
        const slen = u32(4);
        if (8 + slen > body.length) throw malformed(`decryption secrets length ${slen} overruns its block`, offset);
        return { type: 'dsb', offset, section: st.section, secretsType, data: body.subarray(8, 8 + slen) };
      }
      case BLOCK_CB_COPY:
      case BLOCK_CB_NOCOPY: {
        need(body, 4, 'custom', offset);
        const pen = u32(0);
        const data = body.subarray(4);
        const block: PcapngBlock = { type: 'custom', offset, section: st.section, copiable: type === BLOCK_CB_COPY, pen, data };
        if (pen === TAPSCOPE_PEN) {
          const json = parseTapscopeJson(data);
          if (json) block.json = json;
        }
        return block;
      }
      default:
        // why: the spec says readers skip blocks they do not know; the length checks above already held.
        return null;
    }
  }
}

function rd16(b: Buffer, o: number, le: boolean): number {
  return le ? b.readUInt16LE(o) : b.readUInt16BE(o);
}

function rd32(b: Buffer, o: number, le: boolean): number {
  return le ? b.readUInt32LE(o) : b.readUInt32BE(o);
}

function need(body: Buffer, n: number, what: string, offset: number): void {
  if (body.length < n) throw malformed(`${what} block is too short (${body.length + 12} bytes)`, offset);
}

function ifaceOf(ifaces: InterfaceInfo[], id: number, what: string, offset: number): InterfaceInfo {
  const iface = ifaces[id];
  if (!iface) throw malformed(`${what} refers to interface ${id} but the section defines ${ifaces.length}`, offset);
  return iface;
}

/**
 * What the errors call a block of `type` laid out as an EPB (an enhanced packet block, or the obsolete packet block it
 * replaced, which differs in its interface id's width only: see decodeEpb); null for any other type.
 */
function epbLike(type: number): string | null {
  return type === BLOCK_EPB ? 'enhanced packet block' : type === BLOCK_OBSOLETE_PB ? 'packet block' : null;
}

/** More option bytes than an enhanced packet block can plausibly carry (comments, flags, hashes): its length is damaged. */
const MAX_EPB_OPTIONS = 1024 * 1024;

export function pad4(n: number): number {
  return (n + 3) & ~3;
}

function tsToMs(iface: InterfaceInfo, high: number, low: number): number {
  return ((high * TWO32 + low) / iface.unitsPerSecond) * 1000 + iface.tsoffset * 1000;
}

const NO_OPTIONS: RawOption[] = [];
const NO_COMMENTS: string[] = [];

/**
 * The option at buf[p] as `code << 16 | length`, once checked to fit before `end`; 0 at the end of the options
 * (opt_endofopt, or no room for another). One walk for both readers of options below.
 */
function optionAt(buf: Buffer, p: number, end: number, le: boolean, offset: number): number {
  if (p + 4 > end) return 0;
  const code = rd16(buf, p, le);
  if (code === 0) return 0;
  const len = rd16(buf, p + 2, le);
  if (p + 4 + len > end) throw malformed(`option ${code} (length ${len}) overruns its block`, offset);
  return (code << 16) | len;
}

function parseOptions(body: Buffer, start: number, le: boolean, offset: number): RawOption[] {
  // why: most packets carry no options; skip the allocation on that hot path.
  if (start + 4 > body.length) return NO_OPTIONS;
  const out: RawOption[] = [];
  for (let p = start, o = optionAt(body, p, body.length, le, offset); o !== 0; o = optionAt(body, p, body.length, le, offset)) {
    const len = o & 0xffff;
    out.push({ code: o >>> 16, value: body.subarray(p + 4, p + 4 + len) });
    p += 4 + pad4(len);
  }
  return out;
}

function optString(opts: RawOption[], code: number): string | null {
  const o = opts.find((x) => x.code === code);
  return o ? utf8NoNul(o.value, 0, o.value.length) : null;
}

const NO_EPB_OPTIONS: { flags: number | null; comments: string[] } = Object.freeze({ flags: null, comments: NO_COMMENTS });
// (a decrypted record's comment is usually the last one's: a run of reads or writes of one connection)
const commentText = new LastText();

/**
 * An EPB's flags (epb_flags, the first) and comments, from its options in buf[start, end), read in place (no
 * option objects or views: decrypted records, one per TLS read or write, all carry both); throws like
 * parseOptions on an option overrunning the block. With `read` false it only checks them (packets read in
 * place need no flags or comments).
 */
function epbOptions(
  buf: Buffer, start: number, end: number, le: boolean, offset: number, read: boolean,
): { flags: number | null; comments: string[] } {
  if (start + 4 > end) return NO_EPB_OPTIONS;
  let flags: number | null = null;
  let flagsSeen = false;
  let comments: string[] | null = null;
  for (let p = start, o = optionAt(buf, p, end, le, offset); o !== 0; o = optionAt(buf, p, end, le, offset)) {
    const code = o >>> 16;
    const len = o & 0xffff;
    if (read && code === 2 && !flagsSeen) {
      flagsSeen = true;
      if (len >= 4) flags = rd32(buf, p + 4, le);
    } else if (read && code === 1) {
      const c = commentText.of(buf, p + 4, p + 4 + len);
      if (comments === null) comments = [c];
      else comments.push(c);
    }
    p += 4 + pad4(len);
  }
  return flags === null && comments === null ? NO_EPB_OPTIONS : { flags, comments: comments ?? NO_COMMENTS };
}

function commentsOf(opts: RawOption[]): string[] {
  if (opts.length === 0) return NO_COMMENTS;
  let out: string[] | null = null;
  for (const o of opts) {
    if (o.code !== 1) continue;
    const c = utf8NoNul(o.value, 0, o.value.length);
    if (out === null) out = [c];
    else out.push(c);
  }
  return out ?? NO_COMMENTS;
}

function parseTapscopeJson(data: Buffer): TapscopeRecord | undefined {
  try {
    const v: unknown = JSON.parse(utf8NoNul(data, 0, data.length));
    if (v && typeof v === 'object' && !Array.isArray(v) && typeof (v as { t?: unknown }).t === 'string') return v as TapscopeRecord;
  } catch {
    // why: a custom block we cannot decode is ignored like any unknown record; the packets still count.
  }
  return undefined;
}

/**
 * A pcap record's time as a pcapng timestamp's two 32-bit words: `sec` * `perSecond` + `frac` units, exactly. why: the
 * product passes 2^53 in nanoseconds (a float rounded it by up to 100 ns, and an export changed the times); each part
 * below stays under 2^47.
 */
export function timeUnits(sec: number, perSecond: number, frac: number): [number, number] {
  // sec * perSecond = (high16 * perSecond) * 2^16 + low16 * perSecond
  const a = Math.floor(sec / 65536) * perSecond;
  const b = (sec % 65536) * perSecond + frac;
  const low = (a % 65536) * 65536 + (b % TWO32);
  return [Math.floor(a / 65536) + Math.floor(b / TWO32) + Math.floor(low / TWO32), low % TWO32];
}
