// The TLS libraries view's state: the core's per-library breakdown, merged into one bar per library
// (client and server sides summed) with the reasons plaintext was not captured.
import type { LibraryBreakdownRow } from '../../../../src/model/flow.js';
import { mergeRows } from '../library-bars.js';
import { getApi } from '../api.js';
import { ui } from './ui.svelte.js';

export { libraryFilter, mergeRows, type LibraryBar } from '../library-bars.js';

export class LibrariesState {
  rows = $state<LibraryBreakdownRow[]>([]);
  loading = $state(false);
  bars = $derived(mergeRows(this.rows));
  maxFlows = $derived(Math.max(1, ...this.bars.map((b) => b.flows)));
  maxBytes = $derived(Math.max(1, ...this.bars.map((b) => b.bytes)));
  totals = $derived(
    this.bars.reduce((t, b) => ({ flows: t.flows + b.flows, plaintext: t.plaintext + b.plaintextFlows }), { flows: 0, plaintext: 0 }),
  );

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
      this.rows = [];
      return;
    }
    this.loading = true;
    try {
      this.rows = await getApi().libraries(filter ? { sessionId, filter } : { sessionId });
    } catch (e) {
      ui.error(e);
    } finally {
      this.loading = false;
    }
  }
}

export const libraries = new LibrariesState();
