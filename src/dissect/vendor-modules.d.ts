// Type declarations for the untyped npm packages the dissectors use (only the parts used here).
declare module 'hpack.js' {
  interface HpackDecoder {
    push(chunk: Buffer): void;
    isEmpty(): boolean;
    decodeBit(): number;
    decodeInt(): number;
    decodeStr(): number[];
  }
  interface HpackTable {
    lookup(index: number): { name: string; value: string; nameSize: number };
    add(name: string, value: string, nameSize: number, valueSize: number): void;
    updateSize(size: number): void;
  }
  const hpack: {
    decoder: { create(): HpackDecoder };
    table: { create(options: { maxSize: number }): HpackTable };
    utils: { stringify(arr: number[]): string };
  };
  export default hpack;
}

declare module 'dns-packet' {
  export interface DnsQuestion { name: string; type: string; class?: string }
  export interface DnsAnswer { name: string; type: string; class?: string; ttl?: number; data?: unknown; flush?: boolean }
  export interface DnsPacket {
    id?: number;
    type?: 'query' | 'response';
    flags?: number;
    flag_qr?: boolean;
    rcode?: string;
    opcode?: string;
    questions?: DnsQuestion[];
    answers?: DnsAnswer[];
    authorities?: DnsAnswer[];
    additionals?: DnsAnswer[];
  }
  export function decode(buf: Buffer, offset?: number): DnsPacket;
  export function encode(packet: DnsPacket, buf?: Buffer, offset?: number): Buffer;
  /** One resource record at buf[offset]; decode.bytes: how many bytes it took. */
  export const answer: { decode: ((buf: Buffer, offset?: number) => DnsAnswer) & { bytes: number } };
  /** The reader of a record type's data (given by name), from its 2-byte length at buf[offset]. */
  export function record(type: string): { decode(buf: Buffer, offset?: number): unknown };
  export function streamEncode(packet: DnsPacket): Buffer;
  export function streamDecode(buf: Buffer): DnsPacket;
  export const TRUNCATED_RESPONSE: number;
  export const RECURSION_DESIRED: number;
  export const RECURSION_AVAILABLE: number;
  const _default: {
    decode: typeof decode; encode: typeof encode; streamEncode: typeof streamEncode; streamDecode: typeof streamDecode;
    answer: typeof answer; record: typeof record;
    TRUNCATED_RESPONSE: number; RECURSION_DESIRED: number; RECURSION_AVAILABLE: number;
  };
  export default _default;
}

declare module 'dns-packet/types.js' {
  /** A record type's name ("A", "AAAA"; "TYPE" and the number for one without a name). */
  export function toString(type: number): string;
  const _default: { toString: typeof toString };
  export default _default;
}
