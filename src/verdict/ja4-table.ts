// JA4 -> TLS library lookup over resources/fingerprints/ja4.json (generated on a real machine by
// scripts/gen-fingerprints.mjs from real clients). Exact matches are strongest; a match on the cipher
// and extension hashes alone (JA4_b + JA4_c: same library build, different SNI/ALPN) and a match on
// JA4_a + JA4_b (same cipher list) are weaker; sharing across libraries lowers confidence further.
import { TLS_LIBRARIES, type TlsLibrary } from '../model/flow.js';
import table from '../../resources/fingerprints/ja4.json' with { type: 'json' };

export interface Ja4Entry {
  ja4: string;
  ja3?: string | null;
  library: TlsLibrary;
  libraryVersion: string | null;
  client: string;
  source: string;
}

export interface Ja4Match {
  library: TlsLibrary;
  version: string | null;
  client: string;
  confidence: number;
}

const EXACT = 1;
const SAME_HASHES = 0.8;
const SAME_CIPHERS = 0.5;

function validEntries(raw: unknown): Ja4Entry[] {
  const list = (raw as { entries?: unknown }).entries;
  if (!Array.isArray(list)) return [];
  return list.filter((e): e is Ja4Entry => {
    const o = e as Partial<Ja4Entry>;
    return typeof o.ja4 === 'string' && typeof o.library === 'string' && (TLS_LIBRARIES as readonly string[]).includes(o.library);
  });
}

const entries = validEntries(table);

function index(list: Ja4Entry[], key: (ja4: string) => string | null): Map<string, Ja4Entry[]> {
  const m = new Map<string, Ja4Entry[]>();
  for (const e of list) {
    const k = key(e.ja4);
    if (k === null) continue;
    const found = m.get(k) ?? [];
    found.push(e);
    m.set(k, found);
  }
  return m;
}

function parts(ja4: string): [string, string, string] | null {
  const p = ja4.split('_');
  return p.length === 3 ? [p[0]!, p[1]!, p[2]!] : null;
}
const keyBC = (j: string): string | null => { const p = parts(j); return p ? `${p[1]}_${p[2]}` : null; };
const keyAB = (j: string): string | null => { const p = parts(j); return p ? `${p[0]}_${p[1]}` : null; };

function pick(list: Ja4Entry[] | undefined, base: number): Ja4Match | null {
  if (!list || list.length === 0) return null;
  const byLib = new Map<TlsLibrary, Ja4Entry[]>();
  for (const e of list) byLib.set(e.library, [...(byLib.get(e.library) ?? []), e]);
  const ranked = [...byLib.entries()].sort((a, b) => b[1].length - a[1].length);
  const [library, mine] = ranked[0]!;
  const versions = [...new Set(mine.map((e) => e.libraryVersion).filter((v): v is string => !!v))];
  // why: when several libraries produced this fingerprint, the share of entries is all we know, and
  // even a majority is a guess, so a shared fingerprint never gets more than 0.8 of the base
  const share = mine.length / list.length;
  return {
    library,
    version: versions.length === 1 ? versions[0]! : null,
    client: [...new Set(mine.map((e) => e.client))].join(', '),
    confidence: Math.round(base * (byLib.size === 1 ? 1 : share * 0.8) * 100) / 100,
  };
}

/** A lookup function over a fingerprint table (exported for tests with synthetic tables). */
export function buildJa4Lookup(list: Ja4Entry[]): (ja4: string) => Ja4Match | null {
  const byExact = index(list, (j) => j);
  const byBC = index(list, keyBC);
  const byAB = index(list, keyAB);
  // why: every TLS flow's verdict looks its JA4 up, and a capture holds few distinct ones
  const memo = new Map<string, Ja4Match | null>();
  return (ja4) => {
    const known = memo.get(ja4);
    if (known !== undefined) return known;
    const bc = keyBC(ja4);
    const ab = keyAB(ja4);
    const m = pick(byExact.get(ja4), EXACT)
      ?? (bc ? pick(byBC.get(bc), SAME_HASHES) : null)
      ?? (ab ? pick(byAB.get(ab), SAME_CIPHERS) : null);
    if (memo.size >= 4096) memo.clear();
    memo.set(ja4, m);
    return m;
  };
}

/** The library a JA4 fingerprint points to (from resources/fingerprints/ja4.json), or null. */
export const lookupJa4: (ja4: string) => Ja4Match | null = buildJa4Lookup(entries);

/** All fingerprint entries (for the UI's "known fingerprints" view and tests). */
export function ja4Entries(): readonly Ja4Entry[] {
  return entries;
}
