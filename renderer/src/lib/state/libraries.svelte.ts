// The TLS libraries view's state: the core's per-library breakdown (each flow counted once per library, and the
// per-side rows), one bar per library with the reasons plaintext was not captured.
import type { LibraryBreakdown } from '../../../../src/api/contract.js';
import { libraryBars } from '../library-bars.js';
import { getApi } from '../api.js';
import { ui } from './ui.svelte.js';

export { libraryBars, libraryFilter, type LibraryBar } from '../library-bars.js';

export class LibrariesState {
  breakdown = $state<LibraryBreakdown | null>(null);
  loading = $state(false);
  bars = $derived(libraryBars(this.breakdown));
  maxFlows = $derived(Math.max(1, ...this.bars.map((b) => b.flows)));
  maxBytes = $derived(Math.max(1, ...this.bars.map((b) => b.bytes)));

  private reloadTimer: ReturnType<typeof setTimeout> | null = null;

  /** A live capture changed: load again, at most once per `delayMs` (the view stays as it is meanwhile). */
  scheduleLoad(sessionId: string, delayMs = 1000): void {
    if (this.reloadTimer) return;
    this.reloadTimer = setTimeout(() => {
      this.reloadTimer = null;
      void this.load(sessionId);
    }, delayMs);
  }

  async load(sessionId: string | null, filter?: string): Promise<void> {
    if (!sessionId) {
      this.breakdown = null;
      return;
    }
    this.loading = true;
    try {
      this.breakdown = await getApi().libraries(filter ? { sessionId, filter } : { sessionId });
    } catch (e) {
      ui.error(e);
    } finally {
      this.loading = false;
    }
  }
}

export const libraries = new LibrariesState();
