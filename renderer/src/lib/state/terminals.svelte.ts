// Terminal tabs: each tab is one shell (local pty or a node's shell through its target). Output that
// arrives before the tab's xterm is mounted is buffered, so the first prompt is never lost.
import { getApi } from '../api.js';
import { ui } from './ui.svelte.js';

export interface TerminalTab {
  id: number;
  shellId: string;
  title: string;
  exited: boolean;
  exitCode: number | null;
}

export class TerminalsState {
  tabs = $state<TerminalTab[]>([]);
  activeId = $state<number | null>(null);
  opening = $state(false);
  active = $derived(this.tabs.find((t) => t.id === this.activeId) ?? null);
  private nextId = 1;
  // why: routing tables for terminal output, not UI state; xterm renders the data itself.
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  private writers = new Map<string, (data: string) => void>();
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  private buffered = new Map<string, string[]>();

  async open(target: string, title: string, node?: string, cols = 100, rows = 30): Promise<TerminalTab | null> {
    this.opening = true;
    try {
      const { shellId } = await getApi().openShell(node ? { target, node, cols, rows } : { target, cols, rows });
      const tab: TerminalTab = { id: this.nextId++, shellId, title, exited: false, exitCode: null };
      this.tabs = [...this.tabs, tab];
      this.activeId = tab.id;
      return tab;
    } catch (e) {
      ui.error(e);
      return null;
    } finally {
      this.opening = false;
    }
  }

  /** Routes shell output to its tab's terminal (or buffers it until the terminal attaches). */
  data(shellId: string, data: string): void {
    const w = this.writers.get(shellId);
    if (w) w(data);
    else this.buffered.set(shellId, [...(this.buffered.get(shellId) ?? []), data]);
  }

  exited(shellId: string, code: number | null): void {
    const t = this.tabs.find((x) => x.shellId === shellId);
    if (t) {
      t.exited = true;
      t.exitCode = code;
    }
  }

  attach(shellId: string, write: (data: string) => void): () => void {
    this.writers.set(shellId, write);
    for (const d of this.buffered.get(shellId) ?? []) write(d);
    this.buffered.delete(shellId);
    return () => this.writers.delete(shellId);
  }

  input(shellId: string, data: string): void {
    getApi().shellInput({ shellId, data }).catch(() => undefined);
  }

  resize(shellId: string, cols: number, rows: number): void {
    getApi().shellResize({ shellId, cols, rows }).catch(() => undefined);
  }

  close(id: number): void {
    const t = this.tabs.find((x) => x.id === id);
    if (!t) return;
    this.tabs = this.tabs.filter((x) => x.id !== id);
    if (this.activeId === id) this.activeId = this.tabs.at(-1)?.id ?? null;
    this.writers.delete(t.shellId);
    this.buffered.delete(t.shellId);
    if (!t.exited) getApi().shellClose({ shellId: t.shellId }).catch(() => undefined);
  }
}

export const terminals = new TerminalsState();
