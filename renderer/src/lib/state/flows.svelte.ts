// The Flows view's state: the current session's flows as a virtual list fetched page by page via
// queryFlows, the filter (checked by the core before it is applied), selection and the detail pane.
import type { FlowDetail } from '../../../../src/api/contract.js';
import type { Flow } from '../../../../src/model/flow.js';
import { getApi } from '../api.js';
import { withTerm } from '../filter-terms.js';
import { PageCache } from '../page-cache.js';
import { clampIndex, pagesFor } from '../virtual.js';
import { ui } from './ui.svelte.js';

export const PAGE_SIZE = 200;
const MAX_PAGES = 40;
/** Page requests in flight at once; further wanted pages wait and are dropped if scrolled past. */
const MAX_INFLIGHT = 3;

export class FlowsState {
  sessionId = $state<string | null>(null);
  /** The filter in effect. */
  filter = $state('');
  /** What is typed in the filter bar. */
  draft = $state('');
  filterError = $state<{ message: string; position: number } | null>(null);
  total = $state(0);
  loading = $state(false);
  /** Whether the core has answered for the current session, filter and sort (until then `total` is not known). */
  answered = $state(false);
  /** Bumped when a new filter or sort result replaces the rows, so the table returns to the top. */
  epoch = $state(0);
  selectedIndex = $state(-1);
  selected = $state<Flow | null>(null);
  detail = $state<FlowDetail | null>(null);
  detailError = $state<string | null>(null);
  follow = $state(false);
  /** Bumped when rows arrive, so rows read through rowAt() re-render. */
  version = $state(0);
  /** Row order; the core sorts (time ascending unless chosen). */
  sort = $state<{ field: 'firstSeen' | 'bytes' | 'packets'; dir: 'asc' | 'desc' }>({ field: 'firstSeen', dir: 'asc' });
  /** ms of the last completed query (shown in the status bar). */
  lastQueryMs = $state(0);

  private cache = new PageCache<Flow>(PAGE_SIZE, MAX_PAGES);
  // why: bookkeeping only; the UI re-renders on `version`, not on this set.
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  private inflight = new Set<number>();
  /** Pages wanted for the current range, nearest first, not yet requested. */
  private queue: number[] = [];
  private gen = 0;
  private detailSeq = 0;
  private range = { first: 0, end: 0 };
  private direction = 1;
  /** A new filter or sort is on its way; the previous result stays on screen until it lands. */
  private replacing = false;
  private refreshTimer: ReturnType<typeof setTimeout> | null = null;

  rowAt(index: number): Flow | undefined {
    void this.version;
    return this.cache.row(index);
  }

  /** Switches to a session, or re-queries the current one after a filter or sort change. */
  async load(sessionId: string | null): Promise<void> {
    // why: re-querying the same session keeps its rows and total on screen until the new result arrives,
    // so the table never flashes "Loading…" or a zero count, and an empty result reads as such at once.
    const replace = sessionId !== null && sessionId === this.sessionId && this.answered;
    this.sessionId = sessionId;
    if (replace) {
      this.gen++;
      this.inflight.clear();
      this.queue = [];
      this.replacing = true;
    } else this.reset();
    if (sessionId) await this.fetchPage(0, this.gen);
  }

  private reset(): void {
    this.gen++;
    this.cache.clear();
    this.inflight.clear();
    this.queue = [];
    this.loading = false;
    this.replacing = false;
    this.answered = false;
    this.total = 0;
    this.clearSelection();
    this.version++;
  }

  private clearSelection(): void {
    this.selectedIndex = -1;
    this.selected = null;
    this.detailSeq++;
    this.detail = null;
    this.detailError = null;
  }

  /** Called by the table with the rows it is about to draw. */
  ensure(first: number, end: number): void {
    if (first !== this.range.first) this.direction = first > this.range.first ? 1 : -1;
    this.range = { first, end };
    if (this.replacing) return;
    const wanted = pagesFor(first, end, PAGE_SIZE);
    // why: prefetch a page ahead in the direction of scrolling (and a little behind) so wheel scrolling
    // rarely shows placeholder rows; visible pages are requested first.
    const before = this.direction < 0 ? PAGE_SIZE : PAGE_SIZE / 4;
    const after = this.direction > 0 ? PAGE_SIZE : PAGE_SIZE / 4;
    const ahead = pagesFor(Math.max(0, first - before), Math.min(Math.max(this.total, end), end + after), PAGE_SIZE);
    // why: dragging the scrollbar across a million rows passes hundreds of pages; requesting each would
    // queue seconds of core work ahead of the page finally shown (and of a filter applied next).
    this.queue = [...wanted, ...ahead.filter((x) => !wanted.includes(x))].filter((p) => !this.cache.has(p) && !this.inflight.has(p));
    this.pump();
  }

  private pump(): void {
    while (this.inflight.size < MAX_INFLIGHT && this.queue.length > 0) {
      const p = this.queue.shift() as number;
      if (!this.cache.has(p) && !this.inflight.has(p)) void this.fetchPage(p, this.gen);
    }
  }

  private async fetchPage(page: number, gen: number): Promise<void> {
    const sessionId = this.sessionId;
    if (!sessionId) return;
    this.inflight.add(page);
    this.loading = true;
    const t0 = performance.now();
    try {
      const res = await getApi().queryFlows(this.query(sessionId, page));
      if (gen !== this.gen) return;
      if (this.replacing) {
        this.replacing = false;
        this.cache.clear();
        this.clearSelection();
        this.epoch++;
        this.version++;
      }
      this.cache.set(page, res.rows);
      this.total = res.total;
      this.answered = true;
      this.lastQueryMs = performance.now() - t0;
      // why: a prefetched page off screen changes nothing drawn; re-rendering the rows for it costs frames.
      const start = page * PAGE_SIZE;
      if (start < this.range.end && start + PAGE_SIZE > this.range.first) this.version++;
      else if (this.range.end === 0) this.version++;
      if (this.selectedIndex >= 0 && !this.selected) {
        this.selected = this.cache.row(this.selectedIndex) ?? null;
        if (this.selected) void this.loadDetail();
      }
    } catch (e) {
      if (gen === this.gen) {
        ui.error(e);
        this.replacing = false;
      }
    } finally {
      if (gen === this.gen) {
        this.inflight.delete(page);
        this.loading = this.inflight.size > 0;
        this.pump();
      }
    }
  }

  private query(sessionId: string, page: number) {
    return { sessionId, offset: page * PAGE_SIZE, limit: PAGE_SIZE, sort: { ...this.sort }, ...(this.filter ? { filter: this.filter } : {}) };
  }

  /** Orders by a column: a new column starts descending for sizes, ascending for time; again flips it. */
  async sortBy(field: 'firstSeen' | 'bytes' | 'packets'): Promise<void> {
    this.sort = this.sort.field === field ? { field, dir: this.sort.dir === 'asc' ? 'desc' : 'asc' } : { field, dir: field === 'firstSeen' ? 'asc' : 'desc' };
    await this.load(this.sessionId);
  }

  /** Re-reads the visible pages (live capture): keeps rows on screen until fresh ones arrive. */
  async refresh(): Promise<void> {
    // why: a pending filter or sort result is fresher than what a refresh would re-read.
    if (!this.sessionId || this.replacing) return;
    this.gen++;
    const gen = this.gen;
    this.inflight.clear();
    this.queue = [];
    this.loading = false;
    this.replacing = false;
    const pages = pagesFor(this.range.first, Math.max(this.range.end, 1), PAGE_SIZE);
    const keep = new PageCache<Flow>(PAGE_SIZE, MAX_PAGES);
    await Promise.all(
      pages.map(async (p) => {
        const sessionId = this.sessionId as string;
        const res = await getApi().queryFlows(this.query(sessionId, p));
        if (gen !== this.gen) return;
        keep.set(p, res.rows);
        this.total = res.total;
      }),
    ).catch((e: unknown) => ui.error(e));
    if (gen !== this.gen) return;
    this.cache = keep;
    this.answered = true;
    this.version++;
    // why: an open detail follows its live flow as the rows do (a new request, plaintext, its counts)
    const sel = this.selected;
    const row = sel && this.selectedIndex >= 0 ? keep.row(this.selectedIndex) : undefined;
    if (sel && row && row.id === sel.id && rowChanged(sel, row)) {
      this.selected = row;
      void this.loadDetail();
    }
  }

  /** Live updates arrive about once a second per node; coalesce them. */
  scheduleRefresh(delayMs = 400): void {
    if (this.refreshTimer) return;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      void this.refresh();
    }, delayMs);
  }

  /** Validates the draft with the core; applies it only when valid. Returns whether it applied. */
  async applyFilter(text: string = this.draft): Promise<boolean> {
    this.draft = text;
    const trimmed = text.trim();
    if (trimmed) {
      try {
        const r = await getApi().checkFilter({ filter: trimmed });
        if (!r.ok) {
          this.filterError = { message: r.message, position: r.position };
          return false;
        }
      } catch (e) {
        this.filterError = { message: ui.error(e), position: 0 };
        return false;
      }
    }
    this.filterError = null;
    this.filter = trimmed;
    await this.load(this.sessionId);
    return true;
  }

  /** "Apply as filter": narrows the filter in effect to a term of the detail (or excludes it), as Wireshark does. */
  filterOn(term: string, exclude = false): Promise<boolean> {
    return this.applyFilter(withTerm(this.filter, term, exclude));
  }

  select(index: number): void {
    const i = clampIndex(index, this.total);
    this.selectedIndex = i;
    this.selected = i >= 0 ? (this.cache.row(i) ?? null) : null;
    void this.loadDetail();
  }

  move(delta: number): void {
    this.select(this.selectedIndex < 0 ? 0 : this.selectedIndex + delta);
  }

  /** Closes the detail pane: the pane shows while a row is selected, so the selection goes too. */
  closeDetail(): void {
    this.clearSelection();
  }

  private async loadDetail(): Promise<void> {
    const seq = ++this.detailSeq;
    const flow = this.selected;
    if (!flow || !this.sessionId) {
      this.detail = null;
      return;
    }
    try {
      const d = await getApi().flowDetail({ sessionId: this.sessionId, flowId: flow.id });
      if (seq === this.detailSeq) {
        this.detail = d;
        this.detailError = null;
      }
    } catch (e) {
      if (seq === this.detailSeq) this.detailError = (e as Error).message;
    }
  }
}

/** What the detail pane shows of a flow changed between two reads of its row. */
function rowChanged(a: Flow, b: Flow): boolean {
  return a.packets !== b.packets || a.bytes !== b.bytes || a.lastSeen !== b.lastSeen || a.http.length !== b.http.length || a.app !== b.app
    || a.process?.pid !== b.process?.pid || a.tls?.client?.plaintext !== b.tls?.client?.plaintext || a.tls?.server?.plaintext !== b.tls?.server?.plaintext
    // (an answer's status, or the end of a capture marking exchanges unfinished, changes no count)
    || a.http.some((h, i) => h.status !== b.http[i]!.status || h.unfinished !== b.http[i]!.unfinished);
}

export const flows = new FlowsState();
