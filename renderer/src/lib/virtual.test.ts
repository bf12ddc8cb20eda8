// Geometry of the virtualized table, including the scaled scroll space used past ~577k rows.
import { describe, expect, it } from 'vitest';
import { clampIndex, contentHeight, MAX_SCROLL_PX, pagesFor, scrollToShow, scrollTopFor, topRowAt, visibleRange } from './virtual.js';
import { PageCache } from './page-cache.js';

describe('visibleRange', () => {
  it('draws only the rows in view plus overscan', () => {
    const r = visibleRange({ scrollTop: 2600, height: 520, rowHeight: 26, total: 1000, overscan: 5 });
    expect(r.first).toBe(95);
    expect(r.end).toBe(100 + 21 + 5);
    expect(r.offsetY).toBe(95 * 26);
    expect(r.contentHeight).toBe(26_000);
  });

  it('is empty for an empty table and clamps at the end', () => {
    expect(visibleRange({ scrollTop: 0, height: 500, rowHeight: 26, total: 0 })).toEqual({ first: 0, end: 0, offsetY: 0, contentHeight: 0 });
    const r = visibleRange({ scrollTop: 26_000, height: 520, rowHeight: 26, total: 1000 });
    expect(r.end).toBe(1000);
  });

  it('keeps a million rows reachable within the browser height limit', () => {
    const v = { height: 800, rowHeight: 26, total: 1_000_000 };
    expect(contentHeight(v.total, v.rowHeight)).toBe(MAX_SCROLL_PX);
    const bottom = visibleRange({ ...v, scrollTop: MAX_SCROLL_PX - v.height });
    expect(bottom.end).toBe(1_000_000);
    const mid = topRowAt({ ...v, scrollTop: (MAX_SCROLL_PX - v.height) / 2 });
    expect(mid).toBeGreaterThan(499_000);
    expect(mid).toBeLessThan(501_000);
    for (const index of [0, 1234, 500_000, 999_000]) {
      expect(Math.round(topRowAt({ ...v, scrollTop: scrollTopFor(index, v) }))).toBe(index);
    }
  });

  it('scrolls only as far as needed to reveal a selected row', () => {
    const v = { scrollTop: 2600, height: 520, rowHeight: 26, total: 1000 };
    expect(scrollToShow(105, v)).toBe(2600);
    expect(scrollToShow(99, v)).toBe(99 * 26);
    expect(scrollToShow(125, v)).toBe((125 - 20 + 1) * 26);
  });
});

describe('paging', () => {
  it('lists the pages covering a row range', () => {
    expect(pagesFor(0, 0, 200)).toEqual([]);
    expect(pagesFor(190, 230, 200)).toEqual([0, 1]);
    expect(pagesFor(400, 600, 200)).toEqual([2]);
  });

  it('clamps indexes', () => {
    expect(clampIndex(-3, 10)).toBe(0);
    expect(clampIndex(30, 10)).toBe(9);
    expect(clampIndex(3, 0)).toBe(-1);
  });

  it('evicts the least recently used page beyond its bound', () => {
    const c = new PageCache<number>(10, 2);
    c.set(0, Array.from({ length: 10 }, (_, i) => i));
    c.set(1, Array.from({ length: 10 }, (_, i) => 10 + i));
    expect(c.row(3)).toBe(3);
    c.set(2, Array.from({ length: 10 }, (_, i) => 20 + i));
    expect(c.has(0)).toBe(true);
    expect(c.has(1)).toBe(false);
    expect(c.row(25)).toBe(25);
    expect(c.row(15)).toBeUndefined();
    expect(c.size).toBe(2);
  });
});
