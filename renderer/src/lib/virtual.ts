// Pure geometry of the virtualized flow table: which rows are visible for a scroll position, which
// pages to fetch, and how to keep a selected row in view. Scales the scroll space past the browser's
// maximum element height so millions of rows stay reachable.

/** Chromium caps element heights near 2^25 px; stay well below it. */
export const MAX_SCROLL_PX = 15_000_000;

export interface Viewport {
  scrollTop: number;
  height: number;
  rowHeight: number;
  total: number;
  overscan?: number;
}

export interface VisibleRange {
  /** First and last (exclusive) row indexes to render. */
  first: number;
  end: number;
  /** Pixel offset (from the top of the scroll content) where row `first` is drawn. */
  offsetY: number;
  /** Height of the scroll content. */
  contentHeight: number;
}

export function contentHeight(total: number, rowHeight: number): number {
  return Math.min(total * rowHeight, MAX_SCROLL_PX);
}

/** Row index (fractional) at the top of the viewport. */
export function topRowAt(v: Viewport): number {
  const full = v.total * v.rowHeight;
  const h = contentHeight(v.total, v.rowHeight);
  if (full <= h) return v.scrollTop / v.rowHeight;
  const maxScroll = Math.max(1, h - v.height);
  const rowsInView = v.height / v.rowHeight;
  return (Math.min(v.scrollTop, maxScroll) / maxScroll) * Math.max(0, v.total - rowsInView);
}

/** scrollTop that puts row `index` at the top of the viewport (inverse of topRowAt). */
export function scrollTopFor(index: number, v: Omit<Viewport, 'scrollTop'>): number {
  const full = v.total * v.rowHeight;
  const h = contentHeight(v.total, v.rowHeight);
  if (full <= h) return index * v.rowHeight;
  const maxScroll = Math.max(1, h - v.height);
  const rowsInView = v.height / v.rowHeight;
  return (index / Math.max(1, v.total - rowsInView)) * maxScroll;
}

export function visibleRange(v: Viewport): VisibleRange {
  const overscan = v.overscan ?? 8;
  const h = contentHeight(v.total, v.rowHeight);
  if (v.total === 0) return { first: 0, end: 0, offsetY: 0, contentHeight: 0 };
  const top = topRowAt(v);
  const firstVisible = Math.floor(top);
  const first = Math.max(0, firstVisible - overscan);
  const count = Math.ceil(v.height / v.rowHeight) + 1;
  const end = Math.min(v.total, firstVisible + count + overscan);
  // why: rows are drawn relative to the viewport's top so scaled scrolling stays pixel-smooth.
  const offsetY = v.scrollTop - (top - first) * v.rowHeight;
  return { first, end, offsetY: Math.max(0, offsetY), contentHeight: h };
}

export function pagesFor(first: number, end: number, pageSize: number): number[] {
  if (end <= first) return [];
  const out: number[] = [];
  for (let p = Math.floor(first / pageSize); p <= Math.floor((end - 1) / pageSize); p++) out.push(p);
  return out;
}

/** scrollTop after moving the selection to `index`, scrolling only as far as needed to show it. */
export function scrollToShow(index: number, v: Viewport): number {
  const top = topRowAt(v);
  const rowsInView = Math.floor(v.height / v.rowHeight);
  if (index < top) return scrollTopFor(index, v);
  if (index >= top + rowsInView - 1) return scrollTopFor(Math.max(0, index - rowsInView + 1), v);
  return v.scrollTop;
}

export function clampIndex(i: number, total: number): number {
  if (total <= 0) return -1;
  return Math.max(0, Math.min(total - 1, i));
}
