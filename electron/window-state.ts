// Window geometry remembered between runs: pure logic (validate what was saved, keep the window on a
// display that still exists, clamp its size) so it can be table-tested without Electron.

export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface WindowState {
  x?: number;
  y?: number;
  width: number;
  height: number;
  maximized: boolean;
}

export const DEFAULT_SIZE = { width: 1360, height: 860 };
export const MIN_SIZE = { width: 900, height: 560 };
/** How much of the window must overlap a display for the saved position to be kept. */
const MIN_VISIBLE = 80;

function isNum(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

function overlap(a: Rect, b: Rect): { w: number; h: number } {
  return {
    w: Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x),
    h: Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y),
  };
}

/**
 * What to open the window with, given whatever was saved (possibly garbage) and the work areas of the
 * displays attached now. The first display is the primary one.
 */
export function restoreWindowState(saved: unknown, displays: Rect[]): WindowState {
  const primary = displays[0] ?? { x: 0, y: 0, ...DEFAULT_SIZE };
  const fit = (w: number, h: number, area: Rect) => ({
    width: Math.max(Math.min(MIN_SIZE.width, area.width), Math.min(w, area.width)),
    height: Math.max(Math.min(MIN_SIZE.height, area.height), Math.min(h, area.height)),
  });
  const s = (saved && typeof saved === 'object' ? saved : {}) as Record<string, unknown>;
  const maximized = s.maximized === true;
  if (!isNum(s.width) || !isNum(s.height)) {
    return { ...fit(DEFAULT_SIZE.width, DEFAULT_SIZE.height, primary), maximized };
  }
  if (isNum(s.x) && isNum(s.y)) {
    const win = { x: s.x, y: s.y, width: s.width, height: s.height };
    const home = displays.find((d) => {
      const o = overlap(win, d);
      return o.w >= MIN_VISIBLE && o.h >= MIN_VISIBLE;
    });
    if (home) {
      const size = fit(s.width, s.height, home);
      // why: keep the whole title bar reachable even if the window was saved partly off-screen.
      const x = Math.min(Math.max(s.x, home.x), home.x + home.width - size.width);
      const y = Math.min(Math.max(s.y, home.y), home.y + home.height - size.height);
      return { x, y, ...size, maximized };
    }
  }
  return { ...fit(s.width, s.height, primary), maximized };
}

/** What to save when the window closes: the normal (unmaximized) bounds plus the maximized flag. */
export function captureWindowState(normalBounds: Rect, maximized: boolean): WindowState {
  return {
    x: Math.round(normalBounds.x),
    y: Math.round(normalBounds.y),
    width: Math.round(normalBounds.width),
    height: Math.round(normalBounds.height),
    maximized,
  };
}
