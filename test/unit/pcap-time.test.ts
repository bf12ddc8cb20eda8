// A classic pcap's record times read as pcapng timestamps, exactly: nanoseconds since 1970 pass 2^53, where a float's
// product of seconds and units was off by up to 100 ns (and an export wrote those times).
import { describe, expect, it } from 'vitest';
import { parseBuffer } from '../../src/pcapng/reader.js';
import { timeUnits } from '../../src/pcapng/parser.js';

/** A little-endian classic pcap (Ethernet) of empty frames at the given (seconds, fraction) times. */
function pcap(nanos: boolean, times: [number, number][]): Buffer {
  const head = Buffer.alloc(24);
  head.writeUInt32LE(nanos ? 0xa1b23c4d : 0xa1b2c3d4, 0);
  head.writeUInt16LE(2, 4);
  head.writeUInt16LE(4, 6);
  head.writeUInt32LE(65535, 16);
  head.writeUInt32LE(1, 20);
  const frame = Buffer.alloc(14);
  return Buffer.concat([head, ...times.map(([sec, frac]) => {
    const r = Buffer.alloc(16);
    r.writeUInt32LE(sec, 0);
    r.writeUInt32LE(frac, 4);
    r.writeUInt32LE(frame.length, 8);
    r.writeUInt32LE(frame.length, 12);
    return Buffer.concat([r, frame]);
  })]);
}

describe('pcap record times', () => {
  it('give the exact 64-bit timestamp, in nanoseconds and in microseconds', () => {
    const times: [number, number][] = [[1795925748, 58846000], [1795925748, 58859000], [4294967295, 999999999], [0, 1], [65536, 0]];
    for (const nanos of [true, false]) {
      const per = nanos ? 1_000_000_000 : 1_000_000;
      const blocks = parseBuffer(pcap(nanos, times.map(([s, f]) => [s, nanos ? f : Math.floor(f / 1000)]))).filter((b) => b.type === 'epb');
      expect(blocks.map((b) => b.type === 'epb' && BigInt(b.tsHigh) * 2n ** 32n + BigInt(b.tsLow)))
        .toEqual(times.map(([s, f]) => BigInt(s) * BigInt(per) + BigInt(nanos ? f : Math.floor(f / 1000))));
    }
  });

  it('timeUnits is exact over the whole range (random seconds and fractions, against BigInt)', () => {
    let seed = 11;
    const next = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return Math.floor((seed / 2 ** 31) * n); };
    for (let i = 0; i < 20_000; i++) {
      const sec = next(2 ** 32);
      for (const per of [1e6, 1e9]) {
        const frac = next(per);
        const [h, l] = timeUnits(sec, per, frac);
        expect(BigInt(h) * 2n ** 32n + BigInt(l)).toBe(BigInt(sec) * BigInt(per) + BigInt(frac));
      }
    }
  });
});
