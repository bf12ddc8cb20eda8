// Preload (sandboxed, CommonJS): exposes exactly the API contract as window.tapscope, carried over IPC,
// plus the few host helpers the renderer needs (dropped file paths, menu actions). Nothing else.
import { contextBridge, ipcRenderer, webUtils, type IpcRendererEvent } from 'electron';
import { callChannel, eventChannel } from '../src/api/channels.js';
import { createApiClient, errorFromWire } from '../src/api/client.js';

const MENU_CHANNEL = 'tapscope:menu';

const client = createApiClient({
  async invoke(call, req) {
    try {
      return await ipcRenderer.invoke(callChannel(call), req);
    } catch (e) {
      const err = errorFromWire(e);
      // why: only an Error's message survives contextBridge; keep the stable code inside it.
      throw new Error(`${err.code}: ${err.message}`);
    }
  },
  subscribe(event, cb) {
    const listener = (_e: IpcRendererEvent, payload: unknown) => cb(payload);
    ipcRenderer.on(eventChannel(event), listener);
    return () => {
      ipcRenderer.removeListener(eventChannel(event), listener);
    };
  },
});

contextBridge.exposeInMainWorld('tapscope', { ...client });
contextBridge.exposeInMainWorld('tapscopeHost', {
  kind: 'electron',
  pathForFile: (file: File) => webUtils.getPathForFile(file),
  onMenu(cb: (msg: { action: string; arg?: string }) => void) {
    const listener = (_e: IpcRendererEvent, msg: { action: string; arg?: string }) => cb(msg);
    ipcRenderer.on(MENU_CHANNEL, listener);
    return () => {
      ipcRenderer.removeListener(MENU_CHANNEL, listener);
    };
  },
});
