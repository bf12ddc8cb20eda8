// One packet block read at a known offset of a capture file (a row of a flow's packet list, opened for its bytes),
// without reading the file up to it. The block's own type word tells its section's byte order: an enhanced (6),
// simple (3) or obsolete (2) packet block reads as 6, 3 or 2 in one order only.
import { open } from 'node:fs/promises';
import { TapscopeError } from '../errors.js';
import { captureFileError } from './file-errors.js';
import { BLOCK_EPB, BLOCK_OBSOLETE_PB, BLOCK_SPB, MAX_BLOCK_LENGTH } from './types.js';

export interface PacketAt {
  /** the packet as captured */
  data: Buffer;
  /** its length on the wire */
  origLen: number;
}

const PACKET_BLOCKS = new Set([BLOCK_EPB, BLOCK_SPB, BLOCK_OBSOLETE_PB]);

function notAPacket(path: string, offset: number, why: string): TapscopeError {
  return new TapscopeError('E_PCAPNG_MALFORMED', `${path} has no packet block at offset ${offset}: ${why}`, { offset, path });
}

export async function readPacketAt(path: string, offset: number): Promise<PacketAt> {
  const fh = await open(path, 'r').catch((e: unknown) => {
    throw captureFileError(e, path);
  });
  try {
    const head = Buffer.alloc(12);
    if ((await fh.read(head, 0, 12, offset)).bytesRead < 12) throw notAPacket(path, offset, 'the file ends before it');
    const typeLe = head.readUInt32LE(0);
    const le = PACKET_BLOCKS.has(typeLe);
    const type = le ? typeLe : head.readUInt32BE(0);
    if (!PACKET_BLOCKS.has(type)) throw notAPacket(path, offset, `its block type is 0x${typeLe.toString(16)}`);
    const u32 = (b: Buffer, o: number): number => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const len = u32(head, 4);
    const min = type === BLOCK_SPB ? 16 : 32;
    if (len < min || len % 4 !== 0 || len > MAX_BLOCK_LENGTH) throw notAPacket(path, offset, `its length ${len} is impossible`);
    const b = Buffer.alloc(len);
    if ((await fh.read(b, 0, len, offset)).bytesRead < len) throw notAPacket(path, offset, 'the file ends inside it');
    if (u32(b, len - 4) !== len) throw notAPacket(path, offset, 'its trailing length does not match');
    if (type === BLOCK_SPB) {
      const origLen = u32(b, 8);
      return { data: b.subarray(12, 12 + Math.min(origLen, len - 16)), origLen };
    }
    // (an obsolete packet block's fields lie where an EPB's do: its interface id is narrower, and not read here)
    const capLen = u32(b, 20);
    if (capLen > len - 32) throw notAPacket(path, offset, `its captured length ${capLen} does not fit in it`);
    return { data: b.subarray(28, 28 + capLen), origLen: u32(b, 24) };
  } catch (e) {
    // (a directory, or an I/O error: the file named)
    throw captureFileError(e, path);
  } finally {
    await fh.close();
  }
}
