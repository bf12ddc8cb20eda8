// UI: the Connect view's node table says which nodes this build cannot capture — nothing to add for x86-64 and
// aarch64 (both helpers have eBPF), "not captured" (and no checkbox) for an architecture without a helper — in
// Chromium over web mode, the real CoreService and a stand-in target's nodes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { standInTarget } from '../lib/standin-target.js';
import { openFileUi, type FileUi } from './support.js';

let app: FileUi;

beforeAll(async () => {
  const t = standInTarget();
  t.target.listNodes = async () => [
    { name: 'amd-1', ready: true, kernel: '6.1.0', arch: 'x86_64' },
    { name: 'arm-1', ready: true, kernel: '6.1.0', arch: 'aarch64' },
    { name: 'ibm-1', ready: true, kernel: '6.1.0', arch: 's390x' },
  ];
  app = await openFileUi('tsu-node-arch-', undefined, { createTarget: () => t.target });
});

afterAll(async () => {
  await app?.close();
});

describe('the node table', () => {
  it('marks an s390x node not captured (unchecked, disabled), x86-64 and aarch64 nodes not', async () => {
    const { page } = app.ui;
    await page.locator('[data-testid="target"][data-uri="local"]').click();
    await page.getByTestId('nodes').waitFor({ timeout: 20_000 });
    const row = (name: string) => page.locator('[data-testid="nodes"] tbody tr', { hasText: name });
    const cell = async (name: string) => ((await row(name).getByTestId('node-arch').textContent()) ?? '').replace(/\s+/g, ' ').trim();
    expect(await cell('amd-1')).toBe('x86_64');
    expect(await cell('arm-1')).toBe('aarch64');
    expect(await cell('ibm-1')).toBe('s390x not captured');
    const box = (name: string) => row(name).getByRole('checkbox');
    expect([await box('amd-1').isChecked(), await box('arm-1').isChecked(), await box('ibm-1').isChecked()]).toEqual([true, true, false]);
    expect(await box('ibm-1').isDisabled()).toBe(true);
    expect(await box('arm-1').isDisabled()).toBe(false);
    expect(app.ui.pageErrors).toEqual([]);
  });
});
