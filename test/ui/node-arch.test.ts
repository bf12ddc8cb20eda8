// UI: the Connect view's node table says which nodes this build cannot capture — nothing to add for x86-64 and
// aarch64 (both helpers have eBPF), "not captured" (and no checkbox) for an architecture without a helper — and
// each node's checks (the target's preflight: problems listed under the node) — in Chromium over web mode, the
// real CoreService and a stand-in target's nodes and preflight.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { standInTarget } from '../lib/standin-target.js';
import { screenshot } from './browser.js';
import { openFileUi, type FileUi } from './support.js';

let app: FileUi;
const asked: Array<string[] | undefined> = [];

beforeAll(async () => {
  const t = standInTarget();
  t.target.listNodes = async () => [
    { name: 'amd-1', ready: true, kernel: '6.1.0', arch: 'x86_64' },
    { name: 'arm-1', ready: true, kernel: '6.1.0', arch: 'aarch64' },
    { name: 'ibm-1', ready: true, kernel: '6.1.0', arch: 's390x' },
  ];
  t.target.preflight = async (nodes) => {
    asked.push(nodes);
    return [
      { node: 'amd-1', arch: 'x86_64', kernel: '6.1.0', btf: true, privileged: 'root', helperVersion: 'tapscope-helper 0.1.0', problems: [] },
      { node: 'arm-1', arch: 'aarch64', kernel: '6.1.0', btf: false, privileged: 'sudo-password', helperVersion: 'tapscope-helper 0.1.0',
        problems: ['The kernel has no BTF (/sys/kernel/btf/vmlinux): eBPF mode is unavailable, AF_PACKET will be used.'] },
      { node: 'ibm-1', arch: 's390x', kernel: '6.1.0', btf: null, privileged: 'none', helperVersion: null,
        problems: ['No helper is built for s390x.', 'RBAC: cannot create pods/exec in namespace tapscope.'] },
    ];
  };
  app = await openFileUi('tsu-node-arch-', undefined, { createTarget: () => t.target });
});

afterAll(async () => {
  await app?.close();
});

describe('the node table', () => {
  it('marks an s390x node not captured (unchecked, disabled), x86-64 and aarch64 nodes not, and lists each node\'s problems', async () => {
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
    // the checks: asked with the list (each time the target is chosen), for the listed nodes, and shown per node
    expect(asked.length).toBeGreaterThan(0);
    for (const nodes of asked) expect(nodes).toEqual(['amd-1', 'arm-1', 'ibm-1']);
    const check = (name: string) => row(name).getByTestId('node-check');
    expect((await check('amd-1').textContent())?.trim()).toBe('OK');
    expect(await check('amd-1').locator('.pill').getAttribute('title')).toBe('Runs the helper as root · BTF: yes (eBPF mode) · helper tapscope-helper 0.1.0');
    expect((await check('arm-1').textContent())?.trim()).toBe('1 problem');
    expect(await check('arm-1').locator('.pill').getAttribute('title')).toBe('Runs the helper as sudo (asks for the password) · BTF: no (AF_PACKET mode) · helper tapscope-helper 0.1.0');
    expect((await check('ibm-1').textContent())?.trim()).toBe('2 problems');
    const problems = await page.getByTestId('node-problems').evaluateAll((uls) => uls.map((ul) => [...ul.querySelectorAll('li')].map((li) => li.textContent)));
    expect(problems).toEqual([
      ['The kernel has no BTF (/sys/kernel/btf/vmlinux): eBPF mode is unavailable, AF_PACKET will be used.'],
      ['No helper is built for s390x.', 'RBAC: cannot create pods/exec in namespace tapscope.'],
    ]);
    await screenshot(page, 'connect-checks');
    expect(app.ui.pageErrors).toEqual([]);
  });
});
