// Channel names for the API carriers: the runtime lists of every call and event in the contract, and
// the Electron IPC channel each one travels on. The web-mode WebSocket uses the same names in its messages.
import type { ApiCallName, ApiEventName } from './contract.js';

export const API_CALLS = [
  'listTargets', 'listNodes', 'listPods', 'startCapture', 'stopCapture', 'listSessions', 'openSession', 'openFile', 'addKeyLog',
  'renameSession', 'deleteSession', 'queryFlows', 'flowDetail', 'flowStream', 'flowPackets', 'packetBytes', 'tcpStates', 'libraries', 'checkFilter', 'checkCaptureFilter', 'exportSession',
  'openInWireshark', 'openShell', 'shellInput', 'shellResize', 'shellClose', 'answerPrompt',
] as const satisfies readonly ApiCallName[];

export const API_EVENTS = [
  'nodeStatus', 'counters', 'sessionChanged', 'prompt', 'shellData', 'shellExit', 'exportProgress',
] as const satisfies readonly ApiEventName[];

// why: compile-time proof that the lists above name every call and event of the contract, so a call
// added to contract.ts without a channel fails typechecking instead of silently being unreachable.
type Missing<All, Listed> = Exclude<All, Listed>;
const _allCalls: Missing<ApiCallName, (typeof API_CALLS)[number]> extends never ? true : never = true;
const _allEvents: Missing<ApiEventName, (typeof API_EVENTS)[number]> extends never ? true : never = true;
void _allCalls;
void _allEvents;

/** IPC channel of one call (ipcRenderer.invoke / ipcMain.handle). */
export function callChannel(call: ApiCallName): `tapscope:call:${ApiCallName}` {
  return `tapscope:call:${call}`;
}

/** IPC channel of one event (webContents.send / ipcRenderer.on). */
export function eventChannel(event: ApiEventName): `tapscope:event:${ApiEventName}` {
  return `tapscope:event:${event}`;
}

export function isApiCall(name: unknown): name is ApiCallName {
  return typeof name === 'string' && (API_CALLS as readonly string[]).includes(name);
}

export function isApiEvent(name: unknown): name is ApiEventName {
  return typeof name === 'string' && (API_EVENTS as readonly string[]).includes(name);
}
