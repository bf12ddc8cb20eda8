// UI: the app frame in Chromium over web mode — navigation, keyboard shortcuts, theme, and a local
// terminal tab running a real shell through node-pty.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { screenshot } from './browser.js';
import { DevService } from './dev-service.js';
import { openUi, type UiHarness } from './support.js';

let ui: UiHarness;

beforeAll(async () => {
  ui = await openUi(new DevService(500));
});
afterAll(async () => {
  await ui?.close();
});

describe('app frame', () => {
  it('shows Connect with this machine and its node first', async () => {
    const { page } = ui;
    await page.getByTestId('target').first().waitFor();
    expect(await page.getByTestId('target').first().textContent()).toContain('This machine');
    await page.getByTestId('nodes').waitFor();
    expect(await page.getByTestId('nodes').textContent()).toContain('Ready');
  });

  it('switches views with Ctrl+digits and focuses the filter with /', async () => {
    const { page } = ui;
    await page.keyboard.press('Control+5');
    await page.getByRole('heading', { name: 'Sessions' }).waitFor();
    await page.locator('body').click({ position: { x: 700, y: 500 } });
    await page.keyboard.press('/');
    await page.getByTestId('filter').waitFor();
    expect(await page.evaluate('document.activeElement?.getAttribute("data-testid")')).toBe('filter');
  });

  it('runs `echo hi` in a local terminal tab', async () => {
    const { page } = ui;
    await page.click('[data-view=terminal]');
    await page.getByTestId('new-local-shell').click();
    const term = page.getByTestId('terminal').first();
    await term.waitFor();
    await page.locator('.xterm-helper-textarea').first().focus();
    await page.keyboard.type('echo hi-$((6*7))\n');
    await page.waitForFunction('document.querySelector("[data-testid=terminal] .xterm-rows")?.textContent?.includes("hi-42")', undefined, { timeout: 15_000 });
    await screenshot(page, 'terminal');
    expect(ui.pageErrors).toEqual([]);
  });
});
