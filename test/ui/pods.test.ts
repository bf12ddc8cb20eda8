// UI: a Kubernetes target's pods in the Connect view — picked by namespace/name from the cluster's list, refused when
// they cannot be captured apart from their node (host network, no address yet), and asked of the core as the
// capture's `pods` (which then runs on their nodes) — in Chromium over web mode, the real CoreService and a stand-in
// Kubernetes target's nodes and pods.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CaptureOptions } from '../../src/targets/target.js';
import { standInTarget } from '../lib/standin-target.js';
import { screenshot } from './browser.js';
import { openFileUi, type FileUi } from './support.js';

let app: FileUi;
const started: CaptureOptions[] = [];

beforeAll(async () => {
  const t = standInTarget();
  const target = { ...t.target, kind: 'k8s' as const, uri: 'k8s://lab' };
  target.listNodes = async () => [
    { name: 'node-a', ready: true, kernel: '6.1.0', arch: 'x86_64' },
    { name: 'node-b', ready: true, kernel: '6.1.0', arch: 'x86_64' },
  ];
  target.listPods = async () => [
    { namespace: 'shop', name: 'web-7d9f5c6b8-x2x9k', node: 'node-a', ips: ['10.244.1.7'], hostNetwork: false, phase: 'Running' },
    { namespace: 'shop', name: 'db-0', node: 'node-b', ips: ['10.244.2.9', 'fd00::9'], hostNetwork: false, phase: 'Running' },
    { namespace: 'monitoring', name: 'node-exporter-q8', node: 'node-a', ips: ['10.0.0.5'], hostNetwork: true, phase: 'Running' },
    { namespace: 'shop', name: 'queued', node: null, ips: [], hostNetwork: false, phase: 'Pending' },
  ];
  const start = target.start;
  target.start = async (opts, h) => {
    started.push(opts);
    return start(opts, h);
  };
  app = await openFileUi('tsu-pods-', undefined, { createTarget: () => target });
});

afterAll(async () => {
  await app?.close();
});

describe('pods of a Kubernetes target', () => {
  it('adds pods by name, refuses those it cannot capture apart, and starts a capture of the chosen pods', async () => {
    const { page } = app.ui;
    await page.getByTestId('target-uri').fill('k8s://lab');
    await page.getByTestId('target-uri').press('Enter');
    await page.getByTestId('nodes').waitFor({ timeout: 20_000 });
    await page.getByTestId('pods').waitFor();
    // the suggestions: every pod with an address of its own
    await expect.poll(async () => page.locator('#pod-choices option').evaluateAll((os) => os.map((o) => (o as unknown as { value: string }).value)))
      .toEqual(['shop/web-7d9f5c6b8-x2x9k', 'shop/db-0']);
    const add = async (ref: string) => {
      await page.getByTestId('pod-input').fill(ref);
      await page.getByTestId('pod-add').click();
    };
    await add('monitoring/node-exporter-q8');
    expect(await page.getByTestId('pod-error').textContent()).toBe("monitoring/node-exporter-q8 uses its node's network: capture its node with a filter on its ports");
    await add('shop/queued');
    expect(await page.getByTestId('pod-error').textContent()).toBe('shop/queued has no address yet (Pending)');
    await add('shop/nope');
    expect(await page.getByTestId('pod-error').textContent()).toBe('no pod shop/nope in this context');
    await add('shop/web-7d9f5c6b8-x2x9k');
    await add('shop/db-0');
    expect(await page.getByTestId('pod-error').count()).toBe(0);
    expect(await page.getByTestId('pod-chip').evaluateAll((cs) => cs.map((c) => c.firstChild?.textContent?.trim()))).toEqual(['shop/web-7d9f5c6b8-x2x9k', 'shop/db-0']);
    // the nodes the capture will run on: the pods', not to be picked by hand
    const boxes = async () => page.locator('[data-testid="nodes"] input[type=checkbox]').evaluateAll((bs) => bs.map((b) => {
      const box = b as unknown as { checked: boolean; disabled: boolean };
      return `${box.checked ? 'on' : 'off'}${box.disabled ? ' fixed' : ''}`;
    }));
    expect(await boxes()).toEqual(['on fixed', 'on fixed']);
    await page.getByRole('button', { name: 'Remove shop/db-0' }).click();
    expect(await page.getByTestId('pod-chip').count()).toBe(1);
    expect(await boxes()).toEqual(['on fixed', 'off fixed']);
    // without pods, the nodes are picked again
    await page.getByRole('button', { name: 'Remove shop/web-7d9f5c6b8-x2x9k' }).click();
    expect(await boxes()).toEqual(['on', 'on']);
    await add('shop/web-7d9f5c6b8-x2x9k');
    await screenshot(page, 'connect-pods');
    await page.getByTestId('start-capture').click();
    await expect.poll(() => started.length, { timeout: 10_000 }).toBe(1);
    // the pods, and not the node list: the capture runs on the pods' nodes
    expect(started[0]).toMatchObject({ pods: ['shop/web-7d9f5c6b8-x2x9k'] });
    expect(started[0]!.nodes).toBeUndefined();
  });
});
