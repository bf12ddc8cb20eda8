// Shared set-up for the UI tests: make sure the renderer is built, start web mode on a service, open
// Chromium on it, and collect page errors so a test fails on any uncaught renderer exception.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startWebServer, type WebServer, type WebServerOptions } from '../../src/server/index.js';
import { launchBrowser } from './browser.js';

/** The newest modification time of the files below `dir` (0 when there are none). */
function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) newest = Math.max(newest, statSync(join(e.parentPath ?? e.path, e.name)).mtimeMs);
  }
  return newest;
}

/** Builds the renderer when it is missing or older than its sources (the app's, and the core's it imports). */
export function ensureRendererBuilt(): void {
  const index = join(process.cwd(), 'dist', 'renderer', 'index.html');
  // why: a build left from before an edit would test the old app and pass or fail for the wrong reason
  if (existsSync(index) && statSync(index).mtimeMs >= Math.max(...['renderer/src', 'src'].map((d) => newestMtime(join(process.cwd(), d))))) return;
  execFileSync('npx', ['vite', 'build', '--config', 'renderer/vite.config.ts', '--logLevel', 'error'], { stdio: 'inherit' });
}

export interface UiHarness {
  server: WebServer;
  browser: Browser;
  context: BrowserContext;
  page: Page;
  pageErrors: string[];
  close(): Promise<void>;
}

export async function openUi(service: WebServerOptions['service'], opts: { colorScheme?: 'light' | 'dark'; openSessionId?: string } = {}): Promise<UiHarness> {
  ensureRendererBuilt();
  const server = await startWebServer(opts.openSessionId ? { service, openSessionId: opts.openSessionId } : { service });
  const browser = await launchBrowser();
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 }, colorScheme: opts.colorScheme ?? 'light', acceptDownloads: true });
  const page = await context.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(server.url);
  return {
    server,
    browser,
    context,
    page,
    pageErrors,
    async close() {
      await browser.close().catch(() => undefined);
      await server.close();
    },
  };
}

/** Web mode on a real CoreService over a private store, and Chromium on it (see openFileUi). */
export interface FileUi {
  ui: UiHarness;
  service: import('../../src/service/core-service.js').CoreService;
  /** the private directory: the store, and the capture files a test writes */
  home: string;
  close(): Promise<void>;
}

/**
 * A private home and store, web mode and Chromium; with `capture` (it writes a capture file into home and returns its
 * path), that file opened and shown with its first row drawn. `options` go to the CoreService (a stand-in target).
 */
export async function openFileUi(
  prefix: string, capture?: (home: string) => string, options: Omit<import('../../src/service/core-service.js').CoreServiceOptions, 'store'> = {},
): Promise<FileUi> {
  const { CoreService } = await import('../../src/service/core-service.js');
  const { SessionStore } = await import('../../src/store/session-store.js');
  const home = mkdtempSync(join(tmpdir(), prefix));
  const service = new CoreService({ ...options, store: new SessionStore(join(home, 'sessions')) });
  let ui: UiHarness | null = null;
  try {
    const s = capture ? await service.openFile({ path: capture(home) }) : null;
    ui = await openUi(service, s ? { openSessionId: s.id } : {});
    if (s) await ui.page.getByTestId('flow-row').first().waitFor({ timeout: 30_000 });
  } catch (e) {
    await ui?.close().catch(() => undefined);
    await service.close().catch(() => undefined);
    rmSync(home, { recursive: true, force: true });
    throw e;
  }
  const shown = ui;
  return {
    ui: shown, service, home,
    async close() {
      await shown.close().catch(() => undefined);
      await service.close().catch(() => undefined);
      rmSync(home, { recursive: true, force: true });
    },
  };
}
