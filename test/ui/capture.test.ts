// UI end to end, in Chromium over web mode with the real CoreService: connect to this machine (the
// helper runs inside a private lab namespace) with a capture filter, capture real TLS clients, watch flows arrive live,
// filter (with an inline syntax error first), open a flow's verdict and decrypted HTTP, use the TLS
// library chart to filter, rename and export the session, and check the exported files with tshark.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CoreService } from '../../src/service/core-service.js';
import { SessionStore } from '../../src/store/session-store.js';
import { TSHARK_TLS_PORTS, createLab, startHttpsServers, type HttpsServers, type Lab } from '../lib/lab.js';
import { tlsClient, type TlsClient } from '../lib/tls-clients.js';
import { helloCount, pipeReaderEnded, wiresharkStandIn } from '../lib/wireshark-standin.js';
import { screenshot } from './browser.js';
import { openUi, type UiHarness } from './support.js';

let lab: Lab;
let servers: HttpsServers;
let service: CoreService;
let ui: UiHarness;
let home: string;
const PORT = 8443;
const clients: TlsClient[] = [];

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'tsu-ui-home-'));
  lab = await createLab('tsu-cap-', '10.203.1');
  servers = await startHttpsServers(lab, [PORT]);
  // java: a library with no hook, so the libraries view has a reason to show
  for (const name of ['curl', 'wget', 'go', 'java']) {
    const c = tlsClient(name);
    if (await c.available()) clients.push(c);
  }
  service = new CoreService({ store: new SessionStore(join(home, 'sessions')), targetOptions: { netns: lab.nodeNs }, countersIntervalMs: 250 });
  ui = await openUi(service);
});

afterAll(async () => {
  await ui?.close().catch(() => undefined);
  await service?.close().catch(() => undefined);
  await servers?.stop().catch(() => undefined);
  await lab?.close();
  if (home) rmSync(home, { recursive: true, force: true });
});

async function rowsText(): Promise<string> {
  return (await ui.page.getByTestId('flow-scroller').textContent()) ?? '';
}

describe('capture from the UI', () => {
  it('starts a capture on this machine and shows per-node progress', async () => {
    const { page } = ui;
    await page.locator('[data-testid=target][data-uri=local]').waitFor();
    await page.getByTestId('nodes').waitFor();
    // a filter libpcap cannot compile: said under the field, and no capture can start with it
    await page.getByTestId('capture-filter-input').fill('tcp port');
    await expect.poll(async () => page.getByTestId('capture-filter-error').textContent().catch(() => null), { timeout: 10_000 })
      .toBe("can't parse filter expression: syntax error");
    expect(await page.getByTestId('start-capture').isDisabled()).toBe(true);
    // (every client below talks to PORT: the filter leaves out nothing the later steps look for)
    await page.getByTestId('capture-filter-input').fill(`tcp port ${PORT}`);
    await expect.poll(() => page.getByTestId('capture-filter-error').count(), { timeout: 10_000 }).toBe(0);
    // a key log on the node that is not there: refused before anything starts, and said under the button
    await page.getByTestId('node-keylogs-input').fill('/nonexistent/tapscope-keys.log');
    await page.getByTestId('start-capture').click();
    await expect.poll(async () => page.getByTestId('start-error').textContent().catch(() => null), { timeout: 10_000 })
      .toContain('no such key log: /nonexistent/tapscope-keys.log');
    await page.getByTestId('node-keylogs-input').fill('');
    await page.getByTestId('start-capture').click();
    // (the progress shows from the start; 600 ms later the app moves on to the flows, whose top bar has a chip per node
    // with its phase: a node that reaches streaming after that says so there)
    await page.getByTestId('start-progress').or(page.getByTestId('node-chip')).first().waitFor();
    // (streaming: the helper's sockets and hooks are in place; `running` comes at its start, before that, and traffic
    // made then is not seen)
    const phases = async (): Promise<string[]> => [
      ...(await page.getByTestId('start-progress').allTextContents()),
      ...(await page.getByTestId('node-chip').evaluateAll((els) => els.map((e) => e.getAttribute('data-phase') ?? ''))),
    ];
    await expect.poll(phases, { timeout: 60_000 }).toContainEqual(expect.stringMatching(/streaming/));
    await screenshot(page, 'connect');
    expect(await page.getByTestId('start-error').count()).toBe(0);
    // the header says what the nodes were told to capture
    expect(await page.getByTestId('capture-filter').textContent()).toBe(`filter: tcp port ${PORT}`);
  });

  it('shows flows of real TLS clients arriving live, with live counters', async () => {
    const { page } = ui;
    await page.getByTestId('flow-scroller').waitFor({ timeout: 10_000 });
    expect(clients.length).toBeGreaterThanOrEqual(2);
    for (const c of clients) {
      const sni = `${c.name}.tapscope.test`;
      const r = await c.request(lab, `https://${sni}:${PORT}/ui-${c.name}`, { ca: servers.ca, sni, serverIp: lab.serverIp });
      expect(r.ok, `${c.name}: ${r.stderr}`).toBe(true);
    }
    // Live: rows appear while the capture still runs (no reload, no stop).
    for (const c of clients) {
      await expect.poll(rowsText, { timeout: 30_000, interval: 200 }).toContain(`${c.name}.tapscope.test`);
    }
    // the plaintext mark: curl's own hook (filled); Java's exchange was read on the hooked server's side only (outlined,
    // and the hover says which side)
    const row = (name: string) => page.getByTestId('flow-row').filter({ hasText: `${name}.tapscope.test` });
    await expect.poll(async () => row('curl').getByTestId('pt-mark').getAttribute('class')).not.toMatch(/\bother\b/);
    if (clients.some((c) => c.name === 'java')) {
      await expect.poll(async () => row('java').getByTestId('pt-mark').getAttribute('class'), { timeout: 10_000 }).toMatch(/\bother\b/);
      const title = (await row('java').getByTestId('tls-badge').getAttribute('title')) ?? '';
      expect(title).toMatch(/^client java-jsse .*no plaintext: java-jsse has no hook/m);
      expect(title).toMatch(/^server openssl \(via hook.*plaintext captured by its hook$/m);
    }
    expect(await page.locator('.pill.live, .live').count()).toBeGreaterThan(0);
    expect(await page.getByTestId('counters').textContent()).toMatch(/[1-9][\d,]* flows/);
    expect(await page.getByTestId('drops').textContent()).toMatch(/dropped/);
    await screenshot(page, 'flows-live');
  });

  it('shows a filter syntax error inline, then filters with a valid one', async () => {
    const { page } = ui;
    await page.keyboard.press('Escape');
    await page.locator('body').click({ position: { x: 5, y: 880 } });
    await page.keyboard.press('/');
    await page.keyboard.type('tls.sni contains');
    await page.keyboard.press('Enter');
    await page.getByTestId('filter-error').waitFor();
    expect(await page.getByTestId('filter-error').textContent()).toMatch(/\S/);
    await screenshot(page, 'flows-filter-error');
    // why: uprobes see TLS in every namespace, so other labs' clients can show up too; pin our server.
    await page.getByTestId('filter').fill(`tls.sni contains "curl" && dst.ip == ${lab.serverIp}`);
    await page.keyboard.press('Enter');
    await page.getByTestId('filter-error').waitFor({ state: 'detached' });
    await expect.poll(rowsText).not.toContain('wget.tapscope.test');
    const text = await rowsText();
    expect(text).toContain('curl.tapscope.test');
    expect(await page.getByTestId('flow-total').textContent()).toMatch(/^1 matching flows/);
  });

  it("opens a flow's detail: TLS verdict with plaintext captured and the decrypted HTTP exchange", async () => {
    const { page } = ui;
    await page.getByTestId('flow-row').first().click();
    await page.getByTestId('detail').waitFor();
    await page.getByTestId('verdict').first().waitFor();
    const verdicts = await page.getByTestId('verdict').allTextContents();
    expect(verdicts.join(' ')).toContain('openssl');
    expect(verdicts.join(' ')).toContain('plaintext captured');
    await screenshot(page, 'flow-detail');
    await page.getByTestId('tab-http').click();
    await page.getByTestId('exchange').first().waitFor({ timeout: 15_000 });
    const ex = await page.getByTestId('exchange').first().textContent();
    expect(ex).toContain('/ui-curl');
    expect(ex).toContain('decrypted');
    await screenshot(page, 'flow-http');
    await page.getByTestId('tab-hex').click();
    await page.getByTestId('hex').first().waitFor();
    // Arrow keys move the selection in the table.
    await page.getByTestId('flow-scroller').focus();
    await page.keyboard.press('ArrowDown');
    expect(await page.locator('[data-testid=flow-row][aria-selected=true]').count()).toBe(1);
  });

  it('opens the selected flow, then the live capture, in Wireshark', async () => {
    const { page } = ui;
    process.env.TAPSCOPE_WIRESHARK = wiresharkStandIn(home);
    // the flow of the detail pane (curl's, the filter's only match): its packets so far
    const one = join(home, 'wireshark-flow.pcapng');
    process.env.WS_OUT = one;
    await page.getByTestId('flow-wireshark').click();
    await page.getByText('Opened in Wireshark', { exact: true }).waitFor({ timeout: 15_000 });
    await expect.poll(() => existsSync(`${one}.err`), { timeout: 15_000 }).toBe(true);
    expect(await helloCount(one, 'curl.tapscope.test')).toBe(1);
    expect(await helloCount(one, 'wget.tapscope.test')).toBe(0);
    process.env.WS_OUT = join(home, 'wireshark-live.pcapng');
    await page.getByTestId('open-wireshark').click();
    await page.getByText(/Opened in Wireshark: it shows the capture from its first packet/).waitFor({ timeout: 15_000 });
  });

  it('stops the capture and the session becomes saved', async () => {
    const { page } = ui;
    await page.getByTestId('stop-capture').click();
    await page.getByTestId('stop-capture').waitFor({ state: 'detached', timeout: 30_000 });
    expect(await page.locator('header .pill').first().textContent()).toContain('saved');
    // Wireshark's pipe ended with the capture; it had the clients' connections, made before it was opened
    const out = process.env.WS_OUT!;
    await pipeReaderEnded(out);
    expect(await helloCount(out, 'curl.tapscope.test')).toBeGreaterThan(0);
    delete process.env.TAPSCOPE_WIRESHARK;
  });

  it('charts flows per TLS library and filters by a library on click', async () => {
    const { page } = ui;
    await page.click('[data-view=libraries]');
    await page.getByTestId('library-chart').waitFor({ timeout: 15_000 });
    const libs = await page.getByTestId('library-bar').evaluateAll((els) => els.map((e) => e.getAttribute('data-library')));
    expect(libs).toContain('openssl');
    expect(libs).toContain('gnutls');
    if (clients.some((c) => c.name === 'go')) expect(libs).toContain('go-crypto-tls');
    if (clients.some((c) => c.name === 'java')) {
      // the flow is there, with why its plaintext is not
      expect(libs).toContain('java-jsse');
      const why = (await page.locator('[data-testid=library-reasons][data-library=java-jsse]').textContent()) ?? '';
      expect(why).toMatch(/java-jsse has no hook/);
    }
    await screenshot(page, 'libraries');
    await page.locator('[data-testid=library-bar][data-library=gnutls]').click();
    await page.getByTestId('flow-scroller').waitFor();
    expect(await page.getByTestId('filter').inputValue()).toBe('tls.library == "gnutls"');
    await expect.poll(rowsText, { timeout: 15_000 }).toContain('wget.tapscope.test');
    expect(await rowsText()).not.toContain('curl.tapscope.test');
  });

  it('renames the session and exports pcapng and HAR that tshark and JSON read back', async () => {
    const { page } = ui;
    await page.click('[data-view=sessions]');
    await page.getByTestId('session-row').first().waitFor();
    // the saved session says the capture filter it ran with
    expect(await page.getByTestId('session-row').first().getByTestId('session-filter').textContent()).toBe(`filter: tcp port ${PORT}`);
    await page.getByTestId('rename').first().click();
    await page.getByTestId('rename-input').fill('UI lab capture');
    await page.keyboard.press('Enter');
    await expect.poll(async () => (await page.getByTestId('session-row').first().textContent()) ?? '').toContain('UI lab capture');
    expect(await page.getByTestId('session-name').textContent()).toBe('UI lab capture');

    await page.getByTestId('export-pcapng').first().click();
    await page.getByTestId('last-export').waitFor({ timeout: 30_000 });
    const lastExport = async () => (await page.getByTestId('last-export').textContent()) ?? '';
    await expect.poll(lastExport).toContain('PCAPNG');
    const pcap = (await page.locator('[data-testid=last-export] code').textContent()) ?? '';
    expect(existsSync(pcap)).toBe(true);
    expect(readFileSync(pcap).readUInt32LE(0)).toBe(0x0a0d0d0a);
    const snis = execFileSync('tshark', ['-r', pcap, ...TSHARK_TLS_PORTS, '-Y', 'tls.handshake.type==1', '-T', 'fields', '-e', 'tls.handshake.extensions_server_name'], { encoding: 'utf8' });
    for (const c of clients) expect(snis).toContain(`${c.name}.tapscope.test`);
    await screenshot(page, 'sessions');

    await page.getByTestId('export-har').first().click();
    await expect.poll(lastExport, { timeout: 30_000 }).toContain('HAR');
    const har = (await page.locator('[data-testid=last-export] code').textContent()) ?? '';
    const parsed = JSON.parse(readFileSync(har, 'utf8')) as { log: { entries: { request: { url: string } }[] } };
    expect(parsed.log.entries.some((e) => e.request.url.includes('/ui-curl'))).toBe(true);

    // Web mode offers the export for download, and only exports.
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('[data-testid=last-export] a').click()]);
    const saved = await download.path();
    expect(readFileSync(saved).equals(readFileSync(har))).toBe(true);
    expect(ui.pageErrors).toEqual([]);
  });

  it('looks right in the dark theme too', async () => {
    const page = await ui.context.newPage();
    await page.emulateMedia({ colorScheme: 'dark' });
    const sessionId = (await service.listSessions())[0]?.id ?? '';
    await page.goto(`${ui.server.url}&session=${encodeURIComponent(sessionId)}`);
    await page.getByTestId('flow-row').first().waitFor({ timeout: 15_000 });
    await page.getByTestId('flow-row').nth(1).click();
    await page.getByTestId('verdict').first().waitFor();
    const bg = await page.evaluate('getComputedStyle(document.body).backgroundColor');
    expect(bg).not.toBe('rgb(244, 245, 247)');
    await screenshot(page, 'flows-dark');
    await page.close();
  });

  it('deletes the session after a confirmation, removing its files', async () => {
    const { page } = ui;
    const [session] = await service.listSessions();
    expect(session).toBeDefined();
    const dir = join(home, 'sessions', session!.id);
    expect(existsSync(dir)).toBe(true);
    await page.click('[data-view=sessions]');
    await page.getByRole('button', { name: `Delete ${session!.name}` }).click();
    await page.getByTestId('confirm-delete').click();
    await page.getByTestId('session-row').waitFor({ state: 'detached' });
    expect(existsSync(dir)).toBe(false);
    expect(await service.listSessions()).toEqual([]);
  });
});
