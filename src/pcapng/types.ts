// The decoded shapes of pcapng (and classic pcap) blocks, as produced by the reader and taken by the writer.
// One tagged union: consumers switch on `type`.

export const BLOCK_SHB = 0x0a0d0d0a;
export const BLOCK_IDB = 0x00000001;
/**
 * The obsolete Packet Block (pcapng's appendix): an EPB's fields but a 16-bit interface id and a 16-bit drops count
 * where the EPB's 32-bit id is. Early writers wrote it; tshark still reads it, and so does the parser (as an EPB).
 */
export const BLOCK_OBSOLETE_PB = 0x00000002;
export const BLOCK_SPB = 0x00000003;
export const BLOCK_NRB = 0x00000004;
export const BLOCK_ISB = 0x00000005;
export const BLOCK_EPB = 0x00000006;
export const BLOCK_DSB = 0x0000000a;
/** A Decryption Secrets Block's type for TLS key log lines (NSS SSLKEYLOGFILE format): "TLSK" */
export const SECRETS_TLS_KEYLOG = 0x544c534b;
export const BLOCK_CB_COPY = 0x00000bad;
export const BLOCK_CB_NOCOPY = 0x40000bad;
export const BYTE_ORDER_MAGIC = 0x1a2b3c4d;

/** The PEN Tapscope's custom blocks use (RFC 5612 documentation PEN; see native/FORMAT.md). */
export const TAPSCOPE_PEN = 32473;

export const LINKTYPE_NULL = 0;
export const LINKTYPE_ETHERNET = 1;
export const LINKTYPE_RAW = 101;
export const LINKTYPE_LOOP = 108;
export const LINKTYPE_LINUX_SLL = 113;
export const LINKTYPE_IPV4 = 228;
export const LINKTYPE_IPV6 = 229;
export const LINKTYPE_WIRESHARK_UPPER_PDU = 252;
export const LINKTYPE_LINUX_SLL2 = 276;

/** Upper bound for one block: anything larger is corruption, not data. */
export const MAX_BLOCK_LENGTH = 256 * 1024 * 1024;

export interface RawOption {
  code: number;
  value: Buffer;
}

export interface InterfaceInfo {
  /** Index of the section this interface belongs to (0-based, counting SHBs). */
  section: number;
  interfaceId: number;
  linkType: number;
  snapLen: number;
  name: string | null;
  description: string | null;
  /** Raw if_tsresol byte (6 = microseconds, 9 = nanoseconds, high bit = power of two). */
  tsresol: number;
  /** Timestamp units per second derived from tsresol. */
  unitsPerSecond: number;
  /** if_tsoffset in seconds. */
  tsoffset: number;
  comments: string[];
}

export interface ShbBlock {
  type: 'shb';
  offset: number;
  section: number;
  littleEndian: boolean;
  major: number;
  minor: number;
  hardware: string | null;
  os: string | null;
  userappl: string | null;
  comments: string[];
}

export interface IdbBlock {
  type: 'idb';
  offset: number;
  iface: InterfaceInfo;
}

export interface PacketBlock {
  /** 'epb' for enhanced (and obsolete packet blocks, and classic pcap records), 'spb' for simple packet blocks. */
  type: 'epb' | 'spb';
  offset: number;
  iface: InterfaceInfo;
  tsHigh: number;
  tsLow: number;
  /** Milliseconds since the epoch (float; sub-microsecond precision may be lost). */
  tsMs: number;
  capLen: number;
  origLen: number;
  data: Buffer;
  /** epb_flags; null when absent. Bits 0-1: 1 inbound, 2 outbound. */
  flags: number | null;
  comments: string[];
}

export interface IsbBlock {
  type: 'isb';
  offset: number;
  iface: InterfaceInfo;
  tsMs: number;
  tsHigh: number;
  tsLow: number;
  ifRecv: bigint | null;
  ifDrop: bigint | null;
  osDrop: bigint | null;
  filterAccept: bigint | null;
  usrDeliv: bigint | null;
  comments: string[];
}

export interface NameRecord {
  kind: 'ipv4' | 'ipv6';
  address: string;
  names: string[];
}

export interface NrbBlock {
  type: 'nrb';
  offset: number;
  section: number;
  records: NameRecord[];
}

export interface DsbBlock {
  type: 'dsb';
  offset: number;
  section: number;
  secretsType: number;
  data: Buffer;
}

export interface CustomBlock {
  type: 'custom';
  offset: number;
  section: number;
  copiable: boolean;
  pen: number;
  data: Buffer;
  /** For PEN 32473: the decoded JSON record (undefined when not Tapscope's or not valid JSON). */
  json?: TapscopeRecord;
}

export type PcapngBlock = ShbBlock | IdbBlock | PacketBlock | IsbBlock | NrbBlock | DsbBlock | CustomBlock;

/** A Tapscope custom-block record (native/FORMAT.md). Unknown fields are kept, unknown `t` values are passed on. */
export interface TapscopeRecord {
  t: string;
  [key: string]: unknown;
}
