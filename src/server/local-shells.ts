// Local terminal shells ('local-pty' target) for the UI's Terminal view, run with node-pty in the
// process that hosts the API (web-mode server or Electron main). Shells on nodes go through the core.
import { randomUUID } from 'node:crypto';
import { homedir } from 'node:os';
import { createRequire } from 'node:module';
import { TapscopeError } from '../errors.js';
import type { ApiEvents } from '../api/contract.js';

interface Pty {
  onData(cb: (d: string) => void): { dispose(): void };
  onExit(cb: (e: { exitCode: number; signal?: number }) => void): { dispose(): void };
  write(d: string): void;
  resize(c: number, r: number): void;
  kill(sig?: string): void;
}
interface NodePty {
  spawn(file: string, args: string[], opts: { name: string; cols: number; rows: number; cwd: string; env: Record<string, string> }): Pty;
}

export const LOCAL_PTY_TARGET = 'local-pty';

type Emit = <E extends 'shellData' | 'shellExit'>(event: E, payload: ApiEvents[E]) => void;

export class LocalShells {
  private readonly shells = new Map<string, Pty>();
  private pty: NodePty | null = null;

  constructor(private readonly emit: Emit) {}

  owns(shellId: string): boolean {
    return this.shells.has(shellId);
  }

  open(cols: number, rows: number): { shellId: string } {
    const pty = this.load();
    const shell = process.env.SHELL && process.env.SHELL.length > 0 ? process.env.SHELL : '/bin/bash';
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
    env.TERM = 'xterm-256color';
    const shellId = `local-${randomUUID()}`;
    const p = pty.spawn(shell, [], { name: 'xterm-256color', cols, rows, cwd: homedir(), env });
    this.shells.set(shellId, p);
    p.onData((data) => this.emit('shellData', { shellId, data }));
    p.onExit(({ exitCode }) => {
      this.shells.delete(shellId);
      this.emit('shellExit', { shellId, code: exitCode });
    });
    return { shellId };
  }

  input(shellId: string, data: string): void {
    this.get(shellId).write(data);
  }

  resize(shellId: string, cols: number, rows: number): void {
    this.get(shellId).resize(cols, rows);
  }

  close(shellId: string): void {
    const p = this.shells.get(shellId);
    if (!p) return;
    this.shells.delete(shellId);
    p.kill();
  }

  closeAll(): void {
    for (const id of [...this.shells.keys()]) this.close(id);
  }

  private get(shellId: string): Pty {
    const p = this.shells.get(shellId);
    if (!p) throw new TapscopeError('E_USAGE', `Shell ${shellId} is closed; open a new terminal tab.`);
    return p;
  }

  private load(): NodePty {
    if (this.pty) return this.pty;
    try {
      // why: node-pty is a native addon; loading it lazily keeps the server usable (minus local
      // terminals) where the addon was not built for this Node/Electron ABI.
      this.pty = createRequire(import.meta.url)('node-pty') as NodePty;
      return this.pty;
    } catch (e) {
      throw new TapscopeError('E_INTERNAL', `Local terminals need the node-pty addon, which failed to load (${(e as Error).message}); run \`npm rebuild node-pty\`.`);
    }
  }
}
