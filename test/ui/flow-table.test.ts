// UI: the virtualized flow table in Chromium over web mode with the real CoreService on a 20,000-flow
// synthetic session — rows drawn in order at the right place wherever the table is scrolled (across the
// table's row-offset chunks), the same rows the core returns, keyboard End, and filter results that
// replace the rows without a "Loading…" flash.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Flow } from '../../src/model/flow.js';
import { openSyntheticSession, type CoreSession } from './core-session.js';
import { openUi, type UiHarness } from './support.js';

const FLOWS = 20_000;
const ROW = 26;
let core: CoreSession;
let ui: UiHarness;
let order: Flow[];

beforeAll(async () => {
  core = await openSyntheticSession(FLOWS);
  order = [];
  // why: the core caps a page's size; read the whole order page by page.
  while (order.length < FLOWS) {
    const { rows } = await core.service.queryFlows({ sessionId: core.session.id, offset: order.length, limit: 1000 });
    if (rows.length === 0) break;
    order.push(...rows);
  }
  ui = await openUi(core.service, { openSessionId: core.session.id });
  await ui.page.getByTestId('flow-row').first().waitFor({ timeout: 30_000 });
});
afterAll(async () => {
  await ui?.close();
  await core?.close();
});

interface Shown {
  scrollTop: number;
  rows: { index: number; top: number; src: string }[];
}

/** Rows whose box intersects the scroller's box, top to bottom, with their offset from the scroller's top. */
async function shown(): Promise<Shown> {
  // why: a string expression runs through CDP evaluate, so the app's strict CSP (no eval) stays on.
  return ui.page.evaluate(`(() => {
    const el = document.querySelector('[data-testid=flow-scroller]');
    const box = el.getBoundingClientRect();
    const rows = [...el.querySelectorAll('[data-testid=flow-row]')].map((r) => {
      const b = r.getBoundingClientRect();
      return { index: Number(r.dataset.index), top: b.top - box.top, bottom: b.bottom - box.top, src: r.children[3].textContent };
    }).filter((r) => r.bottom > 0 && r.top < box.height).sort((a, b) => a.top - b.top);
    return { scrollTop: el.scrollTop, rows: rows.map(({ index, top, src }) => ({ index, top, src })) };
  })()`);
}

async function scrollTo(px: number): Promise<void> {
  await ui.page.evaluate(`document.querySelector('[data-testid=flow-scroller]').scrollTop = ${px}`);
}

function endpoint(f: Flow): string {
  return `${f.src.ip}:${f.src.port}`;
}

describe('flow table', () => {
  it('draws the core rows in order, one row height apart, wherever it is scrolled', async () => {
    // why: 511/512 and 1023/1024 straddle the table's row-offset chunks; the last position is the very end.
    for (const row of [0, 37.5, 505, 511, 512.5, 1023, 7777.25, FLOWS]) {
      await scrollTo(row * ROW);
      await expect
        .poll(async () => {
          const s = await shown();
          return s.rows.length > 10 && s.rows[0]!.index === Math.floor(s.scrollTop / ROW) && s.rows.every((r, k) => r.index === s.rows[0]!.index + k);
        })
        .toBe(true);
      const s = await shown();
      s.rows.forEach((r, k) => {
        expect(r.index).toBe(s.rows[0]!.index + k);
        expect(r.top).toBeCloseTo(r.index * ROW - s.scrollTop, 0);
        expect(r.src).toBe(endpoint(order[r.index]!));
      });
      if (row === FLOWS) expect(s.rows.at(-1)?.index).toBe(FLOWS - 1);
    }
  });

  it('moves the selection to the last flow with End and keeps it in view', async () => {
    await scrollTo(0);
    await ui.page.getByTestId('flow-scroller').focus();
    await ui.page.keyboard.press('End');
    await expect.poll(async () => ui.page.locator('[data-testid=flow-row][aria-selected=true]').getAttribute('data-index')).toBe(String(FLOWS - 1));
    const s = await shown();
    expect(s.rows.at(-1)?.index).toBe(FLOWS - 1);
  });

  it('replaces the rows with an empty filter result without showing "Loading…", and returns to the top', async () => {
    const { page } = ui;
    await scrollTo(3000 * ROW);
    await page.evaluate(`(() => {
      const el = document.querySelector('[data-testid=flow-scroller]');
      window.__sawLoading = false;
      new MutationObserver(() => { if (el.textContent.includes('Loading')) window.__sawLoading = true; })
        .observe(el, { subtree: true, childList: true, characterData: true });
    })()`);
    await page.getByTestId('filter').fill('dst.port == 1');
    await page.getByTestId('filter').press('Enter');
    await expect.poll(async () => page.getByTestId('flow-scroller').textContent()).toContain('No flow matches the filter.');
    expect(await page.getByTestId('flow-total').textContent()).toMatch(/^0 matching flows/);
    expect(await page.getByTestId('flow-row').count()).toBe(0);
    await page.getByTestId('filter').fill('dst.port == 443');
    await page.getByTestId('filter').press('Enter');
    await expect.poll(async () => (await shown()).rows[0]?.index).toBe(0);
    const s = await shown();
    expect(s.scrollTop).toBe(0);
    expect(await page.getByTestId('flow-total').textContent()).toMatch(/^5,000 matching flows/);
    expect(s.rows[0]?.src).toBe(endpoint(order.find((f) => f.dst.port === 443)!));
    expect(await page.evaluate('window.__sawLoading')).toBe(false);
    expect(ui.pageErrors).toEqual([]);
  });
});
