// Electron main process: a thin shell around the core. One sandboxed, context-isolated window that
// loads the built renderer; IPC handlers (sender-checked, requests validated) call the CoreService;
// navigation and new windows are denied; only https links leave, to the system browser.
import { app, BrowserWindow, dialog, ipcMain, Menu, screen, session, shell, type IpcMainInvokeEvent, type MenuItemConstructorOptions } from 'electron';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { API_CALLS, API_EVENTS, callChannel, eventChannel } from '../src/api/channels.js';
import { errorToWire } from '../src/api/client.js';
import { createApiHost, type ApiHost } from '../src/server/api-host.js';
import { loadCoreService } from '../src/server/load-service.js';
import { isSafeExternalUrl, isTrustedSender } from './policy.js';
import { captureWindowState, restoreWindowState } from './window-state.js';

const MENU_CHANNEL = 'tapscope:menu';
const here = dirname(fileURLToPath(import.meta.url));
const rendererIndex = join(here, '..', 'renderer', 'index.html');
const rendererUrl = pathToFileURL(rendererIndex).href;
const stateFile = () => join(app.getPath('userData'), 'window-state.json');

let win: BrowserWindow | null = null;
let host: ApiHost | null = null;
let core: Awaited<ReturnType<typeof loadCoreService>> | null = null;
const pendingFiles: string[] = [];

function pcapngArgs(argv: string[]): string[] {
  return argv.filter((a) => /\.(pcapng|pcap)$/i.test(a) && existsSync(a));
}

function send(action: string, arg?: string): void {
  win?.webContents.send(MENU_CHANNEL, arg === undefined ? { action } : { action, arg });
}

async function openCaptureFile(path: string): Promise<void> {
  if (!host || !win) {
    pendingFiles.push(path);
    return;
  }
  try {
    const s = (await host.call('openFile', { path })) as { id: string };
    send('open-session', s.id);
  } catch (e) {
    const w = errorToWire(e);
    dialog.showErrorBox('Cannot open capture', `${w.code}: ${w.message}`);
  }
}

// why: only our own window's top frame, showing our own renderer, may call the core.
function senderOk(e: IpcMainInvokeEvent): boolean {
  const frame = e.senderFrame;
  const main = win?.webContents.mainFrame;
  return isTrustedSender(
    {
      senderId: e.sender.id,
      windowId: win ? win.webContents.id : null,
      frameUrl: frame ? frame.url : null,
      isMainFrame: !!frame && !!main && frame.processId === main.processId && frame.routingId === main.routingId,
    },
    rendererUrl,
  );
}

function registerIpc(h: ApiHost): void {
  for (const call of API_CALLS) {
    ipcMain.handle(callChannel(call), async (e, req: unknown) => {
      if (!senderOk(e)) throw new Error('E_USAGE: IPC from an unexpected sender was refused');
      try {
        return await h.call(call, req);
      } catch (err) {
        const w = errorToWire(err);
        throw new Error(`${w.code}: ${w.message}`);
      }
    });
  }
  for (const event of API_EVENTS) {
    h.on(event, (payload) => {
      if (win && !win.isDestroyed()) win.webContents.send(eventChannel(event), payload);
    });
  }
}

function buildMenu(): void {
  const isMac = process.platform === 'darwin';
  const view = (label: string, id: string, key: string): MenuItemConstructorOptions => ({ label, accelerator: `CmdOrCtrl+${key}`, click: () => send('view', id) });
  const template: MenuItemConstructorOptions[] = [
    ...(isMac ? [{ role: 'appMenu' as const }] : []),
    {
      label: 'File',
      submenu: [
        {
          label: 'Open…',
          accelerator: 'CmdOrCtrl+O',
          click: async () => {
            if (!win) return;
            const r = await dialog.showOpenDialog(win, { properties: ['openFile'], filters: [{ name: 'Captures', extensions: ['pcapng', 'pcap', 'gz'] }] });
            const path = r.filePaths[0];
            if (!r.canceled && path) await openCaptureFile(path);
          },
        },
        { label: 'Export…', accelerator: 'CmdOrCtrl+E', click: () => send('export') },
        { type: 'separator' },
        isMac ? { role: 'close' } : { role: 'quit' },
      ],
    },
    {
      label: 'View',
      submenu: [
        view('Connect', 'connect', '1'),
        view('Flows', 'flows', '2'),
        view('TLS libraries', 'libraries', '3'),
        view('Terminal', 'terminal', '4'),
        view('Sessions', 'sessions', '5'),
        { type: 'separator' },
        { label: 'Filter flows', accelerator: 'CmdOrCtrl+F', click: () => send('focus-filter') },
        { label: 'Switch theme', click: () => send('theme') },
        { type: 'separator' },
        { role: 'resetZoom' },
        { role: 'zoomIn' },
        { role: 'zoomOut' },
        { role: 'togglefullscreen' },
        ...(app.isPackaged ? [] : [{ role: 'toggleDevTools' as const }]),
      ],
    },
    {
      label: 'Help',
      submenu: [
        { label: 'Documentation', click: () => void shell.openExternal('https://github.com/tapscope/tapscope#readme') },
        { label: 'About Tapscope', click: () => void dialog.showMessageBox({ message: `Tapscope ${app.getVersion()}`, detail: 'See what really crosses the wire, with an honest TLS verdict per flow.' }) },
      ],
    },
  ];
  Menu.setApplicationMenu(Menu.buildFromTemplate(template));
}

function loadWindowState(): unknown {
  try {
    return JSON.parse(readFileSync(stateFile(), 'utf8'));
  } catch {
    return undefined;
  }
}

function createWindow(): void {
  const displays = [screen.getPrimaryDisplay(), ...screen.getAllDisplays().filter((d) => d.id !== screen.getPrimaryDisplay().id)].map((d) => d.workArea);
  const st = restoreWindowState(loadWindowState(), displays);
  win = new BrowserWindow({
    ...(st.x !== undefined && st.y !== undefined ? { x: st.x, y: st.y } : {}),
    width: st.width,
    height: st.height,
    minWidth: 900,
    minHeight: 560,
    show: false,
    title: 'Tapscope',
    backgroundColor: '#0d1117',
    webPreferences: {
      preload: join(here, 'preload.cjs'),
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      experimentalFeatures: false,
      spellcheck: false,
      // why: middle-click (auxclick) can open links in new windows outside the window-open handler.
      disableBlinkFeatures: 'Auxclick',
    },
  });
  if (st.maximized) win.maximize();
  win.once('ready-to-show', () => win?.show());
  win.on('close', () => {
    if (!win) return;
    try {
      mkdirSync(dirname(stateFile()), { recursive: true });
      writeFileSync(stateFile(), JSON.stringify(captureWindowState(win.getNormalBounds(), win.isMaximized())));
    } catch {
      // losing the window geometry is harmless
    }
  });
  win.on('closed', () => {
    win = null;
  });
  void win.loadFile(rendererIndex);
  win.webContents.once('did-finish-load', () => {
    for (const p of pendingFiles.splice(0)) void openCaptureFile(p);
  });
}

function hardenContents(): void {
  app.on('web-contents-created', (_e, contents) => {
    contents.on('will-navigate', (ev) => ev.preventDefault());
    contents.on('will-redirect', (ev) => ev.preventDefault());
    contents.on('will-attach-webview', (ev) => ev.preventDefault());
    contents.setWindowOpenHandler(({ url }) => {
      if (isSafeExternalUrl(url)) void shell.openExternal(url);
      return { action: 'deny' };
    });
  });
}

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  app.on('second-instance', (_e, argv) => {
    if (win) {
      if (win.isMinimized()) win.restore();
      win.focus();
    }
    for (const p of pcapngArgs(argv)) void openCaptureFile(p);
  });
  app.on('open-file', (e, path) => {
    e.preventDefault();
    void openCaptureFile(path);
  });
  app.enableSandbox();
  hardenContents();
  pendingFiles.push(...pcapngArgs(process.argv.slice(1)));

  void app.whenReady().then(async () => {
    session.defaultSession.setPermissionRequestHandler((_wc, _perm, cb) => cb(false));
    session.defaultSession.setPermissionCheckHandler(() => false);
    session.defaultSession.webRequest.onHeadersReceived((details, cb) => {
      // why: same policy as renderer/index.html's meta tag, also sent as a header for anything loaded over a protocol.
      cb({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': ["default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"] } });
    });
    buildMenu();
    try {
      core = await loadCoreService();
      host = createApiHost(core);
      registerIpc(host);
    } catch (e) {
      const w = errorToWire(e);
      dialog.showErrorBox('Tapscope could not start its core', `${w.code}: ${w.message}`);
      app.quit();
      return;
    }
    createWindow();
    app.on('activate', () => {
      if (BrowserWindow.getAllWindows().length === 0) createWindow();
    });
  });

  app.on('window-all-closed', () => {
    if (process.platform !== 'darwin') app.quit();
  });
  app.on('will-quit', () => {
    host?.close();
    // why: stops live captures so no helper keeps running on a node after the window is gone.
    void core?.close();
  });
}
