// Bytes put back in order (src/util/in-order.ts): pieces in any order, of any size, overlapping and repeated, give the
// bytes sent; the first bytes seen at a position are kept; pieces wholly before the run's end are dropped; pieces
// after a hole wait, and their bytes are counted.
import { describe, it, expect } from 'vitest';
import { InOrder, Later } from '../../src/util/in-order.js';

/** A seeded generator: the same pieces on every run. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s / 2 ** 32;
  };
}

describe('InOrder', () => {
  const sent = Buffer.from(Array.from({ length: 5000 }, (_, i) => (i * 131 + 7) & 0xff));

  it('gives the bytes sent from pieces in any order, overlapping and repeated', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const r = rng(seed);
      const pieces: [number, Buffer][] = [];
      // (cover the whole message, then add overlaps and repeats)
      for (let at = 0; at < sent.length;) {
        const n = 1 + Math.floor(r() * 40);
        pieces.push([at, sent.subarray(at, at + n)]);
        at += n;
      }
      for (let k = 0; k < 300; k++) {
        const at = Math.floor(r() * sent.length);
        pieces.push([at, sent.subarray(at, at + 1 + Math.floor(r() * 60))]);
      }
      for (let i = pieces.length - 1; i > 0; i--) {
        const j = Math.floor(r() * (i + 1));
        [pieces[i], pieces[j]] = [pieces[j]!, pieces[i]!];
      }
      const run = new InOrder();
      for (const [at, b] of pieces) run.add(at, b);
      expect(run.end, `seed ${seed}`).toBe(sent.length);
      expect(run.bytes().equals(sent), `seed ${seed}`).toBe(true);
      expect(run.waiting).toBe(0);
    }
  });

  it('one-byte pieces sent backwards, then the first: the whole run at once', () => {
    const run = new InOrder();
    for (let i = sent.length - 1; i >= 1; i--) run.add(i, sent.subarray(i, i + 1));
    expect(run.end).toBe(0);
    expect(run.bytes().length).toBe(0);
    expect(run.waiting).toBe(sent.length - 1);
    run.add(0, sent.subarray(0, 1));
    expect(run.bytes().equals(sent)).toBe(true);
    expect(run.waiting).toBe(0);
  });

  it('keeps the first bytes seen at a position, and copies what it keeps', () => {
    const run = new InOrder();
    const a = Buffer.from('abcdef');
    run.add(0, a.subarray(0, 3));
    // (later bytes for the same positions do not replace them)
    run.add(1, Buffer.from('XYZW'));
    a.fill(0x2e);
    expect(run.bytes().toString()).toBe('abcZW');
    const b = Buffer.from('12');
    run.add(7, b);
    b.fill(0x2e);
    run.add(5, Buffer.from('!?'));
    expect(run.bytes().toString()).toBe('abcZW!?12');
  });
});

describe('Later', () => {
  it('hands pieces on smallest offset first, dropping those wholly before, not keeping one that reaches no further', () => {
    const l = new Later();
    for (const at of [50, 10, 40, 20, 30]) expect(l.push(at, Buffer.alloc(10, at))).toBe(true);
    expect(l.push(20, Buffer.alloc(10, 99))).toBe(false);
    expect(l.push(20, Buffer.alloc(4, 99))).toBe(false);
    expect(l.wants(20, 10)).toBe(false);
    expect(l.wants(20, 11)).toBe(true);
    expect(l.bytes).toBe(50);
    expect(l.from(5)).toBeNull();
    // (10..20 is wholly before 25; 20..30 reaches past it)
    expect(l.from(25)).toEqual(Buffer.alloc(5, 20));
    expect(l.wants(10, 1)).toBe(true);
    expect(l.size).toBe(3);
    expect(l.from(30)).toEqual(Buffer.alloc(10, 30));
    expect(l.from(45)).toEqual(Buffer.alloc(5, 40));
    expect(l.bytes).toBe(10);
    l.clear();
    expect([l.size, l.bytes, l.from(1000)]).toEqual([0, 0, null]);
  });

  it('keeps a longer piece at an offset a shorter one waits at: its bytes beyond are not lost', () => {
    const l = new Later();
    l.push(10, Buffer.from('ab'));
    expect(l.push(10, Buffer.from('abcdef'))).toBe(true);
    let got = '';
    for (let chunk = l.from(10); chunk !== null; chunk = l.from(10 + got.length)) got += chunk.toString();
    expect(got).toBe('abcdef');
  });
});
