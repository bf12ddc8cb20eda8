// App-level UI state: the current view, theme choice and transient notices (errors, confirmations).
export type View = 'connect' | 'flows' | 'libraries' | 'terminal' | 'sessions';
export type ThemeChoice = 'system' | 'light' | 'dark';

export interface Notice {
  id: number;
  /** info goes by itself after a while; error and warn stay until dismissed */
  kind: 'error' | 'warn' | 'info';
  text: string;
  code?: string;
}

export const VIEWS: { id: View; label: string; key: string }[] = [
  { id: 'connect', label: 'Connect', key: '1' },
  { id: 'flows', label: 'Flows', key: '2' },
  { id: 'libraries', label: 'TLS libraries', key: '3' },
  { id: 'terminal', label: 'Terminal', key: '4' },
  { id: 'sessions', label: 'Sessions', key: '5' },
];

export class UiState {
  view = $state<View>('connect');
  theme = $state<ThemeChoice>('system');
  /** The OS preference, kept current by App through matchMedia. */
  systemDark = $state(false);
  notices = $state<Notice[]>([]);
  connected = $state(true);
  private nextId = 1;

  show(view: View): void {
    this.view = view;
  }

  notify(kind: Notice['kind'], text: string, code?: string): number {
    const id = this.nextId++;
    this.notices = [...this.notices, code ? { id, kind, text, code } : { id, kind, text }].slice(-5);
    return id;
  }

  /** Shows a failed call's message; returns it for callers that also render it inline. */
  error(e: unknown): string {
    const err = e as { code?: string; message?: string };
    const text = err?.message ?? String(e);
    this.notify('error', text, err?.code);
    return text;
  }

  dismiss(id: number): void {
    this.notices = this.notices.filter((n) => n.id !== id);
  }

  /** The theme actually shown: the choice, or the OS preference when the choice is 'system'. */
  get resolvedTheme(): 'light' | 'dark' {
    return this.theme === 'system' ? (this.systemDark ? 'dark' : 'light') : this.theme;
  }

  cycleTheme(): void {
    this.theme = this.theme === 'system' ? 'dark' : this.theme === 'dark' ? 'light' : 'system';
  }
}

export const ui = new UiState();
