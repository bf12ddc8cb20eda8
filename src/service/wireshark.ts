// "Open in Wireshark" for a session. A saved session opens as a pcapng export (`wireshark -r FILE`). A live one
// opens as a capture Wireshark reads from a pipe while it grows (`wireshark -k -i -`, as with `tcpdump -w - |
// wireshark -k -i -`): the node files followed from their first block until the capture ends (follow.ts), so
// Wireshark gets the packets from before it was opened, and a slow Wireshark slows only that reader and loses
// nothing. The binary: $TAPSCOPE_WIRESHARK (a path or a name on PATH), else `wireshark` on PATH.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { TapscopeError } from '../errors.js';
import { followCapture, type Follower, type GrowingFiles } from './follow.js';

/** Where the installers put Wireshark when it is not on PATH (a macOS app bundle, Windows' Program Files). */
const INSTALLED: Partial<Record<NodeJS.Platform, string[]>> = {
  darwin: ['/Applications/Wireshark.app/Contents/MacOS/Wireshark'],
  win32: ['C:\\Program Files\\Wireshark\\Wireshark.exe'],
};

/** The Wireshark executable to run, or E_WIRESHARK_NOT_FOUND saying what to do. */
export function findWireshark(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string {
  const want = env.TAPSCOPE_WIRESHARK || 'wireshark';
  const isPath = isAbsolute(want) || /[\\/]/.test(want);
  const candidates = isPath ? [want] : (env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => join(d, want));
  if (!env.TAPSCOPE_WIRESHARK) candidates.push(...(INSTALLED[platform] ?? []));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // not here
    }
  }
  throw new TapscopeError('E_WIRESHARK_NOT_FOUND', env.TAPSCOPE_WIRESHARK
    ? `TAPSCOPE_WIRESHARK names ${want}, which is not an executable file${isPath ? '' : ' on PATH'}`
    : 'Wireshark was not found on PATH: install it (the wireshark package), or set TAPSCOPE_WIRESHARK to its path');
}

export interface WiresharkRun {
  child: ChildProcess;
  /** the follow of the capture's files into Wireshark's standard input (see follow.ts) */
  follower: Follower;
}

/** Starts Wireshark on a pipe and feeds it the capture's files, followed until they end; `pollMs` between looks. */
export function followInWireshark(bin: string, src: GrowingFiles, pollMs = 100): WiresharkRun {
  const child = spawn(bin, ['-k', '-i', '-'], { stdio: ['pipe', 'ignore', 'ignore'] });
  const exited = new AbortController();
  child.on('error', () => exited.abort());
  child.on('exit', () => exited.abort());
  const follower = followCapture(src, child.stdin!, { app: 'tapscope (open in Wireshark)', pollMs, signal: exited.signal, end: true });
  return { child, follower };
}

/** Starts Wireshark on a capture file; `onExit` runs when it is closed. */
export function openFileInWireshark(bin: string, path: string, onExit: () => void): ChildProcess {
  const child = spawn(bin, ['-r', path], { stdio: 'ignore' });
  child.on('error', onExit);
  child.on('exit', onExit);
  return child;
}
