// Table tests for the remembered window geometry.
import { describe, expect, it } from 'vitest';
import { captureWindowState, DEFAULT_SIZE, MIN_SIZE, restoreWindowState, type Rect } from './window-state.js';

const laptop: Rect = { x: 0, y: 0, width: 1920, height: 1080 };
const right: Rect = { x: 1920, y: 0, width: 2560, height: 1440 };

describe('restoreWindowState', () => {
  const cases: { name: string; saved: unknown; displays: Rect[]; want: ReturnType<typeof restoreWindowState> }[] = [
    { name: 'nothing saved: default size, centred by Electron', saved: undefined, displays: [laptop], want: { ...DEFAULT_SIZE, maximized: false } },
    { name: 'garbage saved', saved: 'x', displays: [laptop], want: { ...DEFAULT_SIZE, maximized: false } },
    { name: 'NaN sizes are ignored', saved: { width: NaN, height: 700, maximized: true }, displays: [laptop], want: { ...DEFAULT_SIZE, maximized: true } },
    { name: 'valid position kept', saved: { x: 100, y: 50, width: 1200, height: 800, maximized: false }, displays: [laptop], want: { x: 100, y: 50, width: 1200, height: 800, maximized: false } },
    { name: 'on the second display', saved: { x: 2000, y: 100, width: 1600, height: 900, maximized: true }, displays: [laptop, right], want: { x: 2000, y: 100, width: 1600, height: 900, maximized: true } },
    { name: 'second display unplugged: moves to primary', saved: { x: 2000, y: 100, width: 1600, height: 900, maximized: false }, displays: [laptop], want: { width: 1600, height: 900, maximized: false } },
    { name: 'too small is grown to the minimum', saved: { x: 10, y: 10, width: 200, height: 100, maximized: false }, displays: [laptop], want: { x: 10, y: 10, ...MIN_SIZE, maximized: false } },
    { name: 'larger than the display is shrunk to fit', saved: { x: 0, y: 0, width: 5000, height: 3000, maximized: false }, displays: [laptop], want: { x: 0, y: 0, width: 1920, height: 1080, maximized: false } },
    { name: 'partly off the right edge is pulled back', saved: { x: 1800, y: 0, width: 1000, height: 700, maximized: false }, displays: [laptop], want: { x: 920, y: 0, width: 1000, height: 700, maximized: false } },
    { name: 'barely visible counts as off-screen', saved: { x: 1900, y: 0, width: 1000, height: 700, maximized: false }, displays: [laptop], want: { width: 1000, height: 700, maximized: false } },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(restoreWindowState(c.saved, c.displays)).toEqual(c.want);
    });
  }

  it('round-trips through captureWindowState', () => {
    const saved = captureWindowState({ x: 10.4, y: 20.6, width: 1000.2, height: 700 }, true);
    expect(saved).toEqual({ x: 10, y: 21, width: 1000, height: 700, maximized: true });
    expect(restoreWindowState(JSON.parse(JSON.stringify(saved)), [laptop])).toEqual(saved);
  });
});
