// UI: the Sessions view's "Export only flows matching the current filter": the filter in effect in Flows narrows the
// export of whichever session is exported, the one open or another, and the view names it; with no filter set the
// option is off and says so — in Chromium over web mode with the real CoreService.
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openFileUi, type FileUi } from './support.js';

const FIX = join(import.meta.dirname, '../fixtures/pcapng');
const FILTER = 'http && !tls';
let app: FileUi;
let other: string;

beforeAll(async () => {
  app = await openFileUi('tsu-sessions-export-', (home) => {
    const file = join(home, 'open.pcapng');
    copyFileSync(join(FIX, 'ebpf-lo-hooks.pcapng'), file);
    return file;
  });
  // (a second session of the same capture, not the one open in Flows)
  const file = join(app.home, 'other.pcapng');
  copyFileSync(join(FIX, 'ebpf-lo-hooks.pcapng'), file);
  other = (await app.service.openFile({ path: file })).id;
});

afterAll(async () => {
  await app?.close();
});

describe('exporting the flows a filter matches', () => {
  it('narrows the export of a session other than the one open to the filter in effect, and says which filter', async () => {
    const { page } = app.ui;
    const option = page.getByTestId('export-filtered');
    await page.click('[data-view=sessions]');
    await page.getByRole('button', { name: 'Refresh' }).click();
    await page.locator(`[data-testid=session-row][data-session="${other}"]`).waitFor({ timeout: 10_000 });
    // no filter set: nothing to narrow to, and the option says so
    expect(await option.getByRole('checkbox').isDisabled()).toBe(true);
    expect((await option.textContent())!.trim()).toBe('Export only flows matching the current filter (none set)');

    await page.click('[data-view=flows]');
    await page.getByTestId('filter').fill(FILTER);
    await page.getByTestId('filter').press('Enter');
    await expect.poll(async () => page.getByTestId('flow-total').textContent(), { timeout: 10_000 }).toMatch(/^\s*3 matching flows\s*$/);
    await page.click('[data-view=sessions]');
    expect((await option.textContent())!.trim()).toBe(`Export only flows matching the current filter: ${FILTER}`);
    await option.getByRole('checkbox').check();
    await page.locator(`[data-testid=session-row][data-session="${other}"]`).getByTestId('export-json').click();
    await expect.poll(async () => page.getByTestId('last-export-filter').textContent(), { timeout: 15_000 }).toBe(FILTER);
    const path = (await page.getByTestId('last-export').locator('code').textContent())!.trim();
    const exported = readFileSync(path, 'utf8').split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { id: string }).id);
    const matching = (await app.service.queryFlows({ sessionId: other, filter: FILTER, offset: 0, limit: 100 })).rows.map((f) => f.id);
    expect(matching).toHaveLength(3);
    expect(exported.sort()).toEqual(matching.sort());
    expect(app.ui.pageErrors).toEqual([]);
  });
});
