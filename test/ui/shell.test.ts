// UI: the app frame in Chromium over web mode with the real CoreService — navigation, keyboard
// shortcuts, and a local terminal tab running a real shell through node-pty.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { screenshot } from './browser.js';
import { execSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreService } from '../../src/service/core-service.js';
import { SessionStore } from '../../src/store/session-store.js';
import { openUi, type UiHarness } from './support.js';

let ui: UiHarness;
let service: CoreService;
let home: string;

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'tsu-ui-shell-'));
  service = new CoreService({ store: new SessionStore(join(home, 'sessions')) });
  ui = await openUi(service);
});
afterAll(async () => {
  await ui?.close();
  await service?.close();
  if (home) rmSync(home, { recursive: true, force: true });
});

describe('app frame', () => {
  it('shows Connect with this machine and its node first', async () => {
    const { page } = ui;
    await page.getByTestId('target').first().waitFor();
    expect(await page.getByTestId('target').first().textContent()).toContain('This machine');
    await page.getByTestId('nodes').waitFor();
    expect(await page.getByTestId('nodes').textContent()).toMatch(/Ready/);
    expect(await page.getByTestId('nodes').textContent()).toContain(execSync('uname -r').toString().trim());
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
    await expect.poll(async () => (await page.locator('[data-testid=terminal] .xterm-rows').first().textContent()) ?? '', { timeout: 15_000 }).toContain('hi-42');
    await screenshot(page, 'terminal');
    expect(ui.pageErrors).toEqual([]);
  });
});
