// A bounded cache of fixed-size pages of rows, evicting the least recently used page, so scrolling
// through a million flows keeps only a few thousand rows in memory.
export class PageCache<T> {
  private readonly pages = new Map<number, T[]>();

  constructor(
    readonly pageSize: number,
    readonly maxPages: number,
  ) {}

  get size(): number {
    return this.pages.size;
  }

  has(page: number): boolean {
    return this.pages.has(page);
  }

  set(page: number, rows: T[]): void {
    this.pages.delete(page);
    this.pages.set(page, rows);
    while (this.pages.size > this.maxPages) {
      const oldest = this.pages.keys().next().value as number;
      this.pages.delete(oldest);
    }
  }

  /** Row by absolute index, marking its page as recently used. */
  row(index: number): T | undefined {
    const page = Math.floor(index / this.pageSize);
    const rows = this.pages.get(page);
    if (!rows) return undefined;
    this.pages.delete(page);
    this.pages.set(page, rows);
    return rows[index - page * this.pageSize];
  }

  clear(): void {
    this.pages.clear();
  }
}
