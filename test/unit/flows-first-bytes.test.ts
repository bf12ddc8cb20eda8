// FirstBytes keeps each flow direction's first 64 bytes outside the heap: appends across segments, stops at
// 64, keeps slots apart across pages, and gives them back as hex.
import { describe, it, expect } from 'vitest';
import { FIRST_BYTES, FirstBytes, NO_BYTES } from '../../src/flows/first-bytes.js';

const bytes = (n: number, seed: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff));

describe('FirstBytes', () => {
  it('appends pieces up to 64 bytes and ignores the rest', () => {
    const fb = new FirstBytes();
    const whole = bytes(100, 7);
    let h = NO_BYTES;
    expect(fb.hex(h)).toBe('');
    h = fb.keep(h, whole, 0, 0);
    expect(h).toBe(NO_BYTES);
    h = fb.keep(h, whole, 0, 10);
    h = fb.keep(h, Buffer.concat([Buffer.alloc(5), whole]), 15, 45);
    expect(FirstBytes.size(h)).toBe(40);
    expect(fb.hex(h)).toBe(whole.subarray(0, 40).toString('hex'));
    h = fb.keep(h, whole, 40, 100);
    expect(FirstBytes.size(h)).toBe(FIRST_BYTES);
    expect(fb.keep(h, whole, 0, 100)).toBe(h);
    expect(fb.hex(h)).toBe(whole.subarray(0, 64).toString('hex'));
  });

  it('keeps 40,000 directions apart (three pages), each with its own bytes', () => {
    const fb = new FirstBytes();
    const handles: number[] = [];
    for (let i = 0; i < 40_000; i++) handles.push(fb.keep(NO_BYTES, bytes(1 + (i % 64), i), 0, 1 + (i % 64)));
    // a second piece for some of them after all slots exist
    for (let i = 0; i < 40_000; i += 997) handles[i] = fb.keep(handles[i]!, Buffer.from([0xee, 0xff]), 0, 2);
    for (let i = 0; i < 40_000; i += 1) {
      const n = 1 + (i % 64);
      const want = i % 997 === 0 ? Buffer.concat([bytes(n, i), Buffer.from([0xee, 0xff])]).subarray(0, 64) : bytes(n, i);
      if (fb.hex(handles[i]!) !== want.toString('hex')) expect.fail(`direction ${i}: ${fb.hex(handles[i]!)} != ${want.toString('hex')}`);
    }
  });
});
