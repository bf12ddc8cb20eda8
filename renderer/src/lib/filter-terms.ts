// "Apply as filter", as in Wireshark: the filter terms a flow's detail offers for its values (node, pod,
// process, addresses, SNI, fingerprint, each side's TLS library, an exchange's host, a PROXY header's client), and how a term joins the
// filter in effect. Each term is written in the core's filter language (src/filter), so it selects this flow.
import type { Flow, HttpExchangeSummary } from '../../../src/model/flow.js';

/** A string literal of the filter language: double quotes, with backslash, quote, newline and tab escaped. */
export function filterString(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`).replace(/\n/g, '\\n').replace(/\t/g, '\\t')}"`;
}

/** The detail's values a filter can name, each with its term (see FlowTerms). */
export interface FlowTerms {
  app: string;
  node: string;
  pod: string | null;
  process: string | null;
  peer: string | null;
  src: string;
  dst: string;
  sni: string | null;
  ja4: string | null;
  client: string | null;
  server: string | null;
  db: string | null;
  /** the client a PROXY protocol header named */
  proxy: string | null;
  /** this flow and the other leg of its TLS session */
  session: string | null;
  /** TLS taken up in the middle (its handshake came before the capture) */
  midstream: string | null;
  /** its decryption with a key log: decrypted, no-secrets, failed */
  keylog: string | null;
}

/** An address as the filter language reads it: bare (IPv4 and IPv6 literals are words there). */
const ip = (a: string): string => (/^[0-9A-Fa-f.:]+$/.test(a) ? a : filterString(a));

export function flowTerms(f: Flow): FlowTerms {
  const s = filterString;
  return {
    app: `app == ${s(f.app)}`,
    node: `node == ${s(f.node)}`,
    pod: f.pod ? `pod.namespace == ${s(f.pod.namespace)} && pod.name == ${s(f.pod.name)}` : null,
    process: f.process ? `process.comm == ${s(f.process.comm)}` : null,
    peer: f.peerProcess ? `peer.comm == ${s(f.peerProcess.comm)}` : null,
    src: `src.ip == ${ip(f.src.ip)}`,
    dst: `dst.ip == ${ip(f.dst.ip)} && dst.port == ${f.dst.port}`,
    sni: f.tls?.sni ? `tls.sni == ${s(f.tls.sni)}` : null,
    ja4: f.tls?.ja4 ? `tls.ja4 == ${s(f.tls.ja4)}` : null,
    client: f.tls?.client ? `tls.client.library == ${s(f.tls.client.library)}` : null,
    server: f.tls?.server ? `tls.server.library == ${s(f.tls.server.library)}` : null,
    db: f.db?.database ? `db.name == ${s(f.db.database)}` : f.db?.user ? `db.user == ${s(f.db.user)}` : null,
    proxy: f.proxy?.src ? `proxy.src.ip == ${ip(f.proxy.src.ip)}` : null,
    session: f.tls?.sameSessionAs ? `(id == ${s(f.id)} || id == ${s(f.tls.sameSessionAs)})` : null,
    midstream: f.tls?.midstream ? 'tls.midstream' : null,
    keylog: f.tls?.keylog ? `tls.keylog == ${s(f.tls.keylog.status)}` : null,
  };
}

/** An exchange's host as a term (null when it has none). */
export function hostTerm(ex: Pick<HttpExchangeSummary, 'host'>): string | null {
  return ex.host ? `http.host == ${filterString(ex.host)}` : null;
}

/**
 * The filter after "filter on" a term: the term alone when no filter is in effect, else the filter narrowed by
 * it (`(filter) && term`); `exclude` negates the term (Wireshark's "Not Selected"). A term already in effect
 * leaves the filter as it is.
 */
export function withTerm(filter: string, term: string, exclude = false): string {
  const t = exclude ? `!(${term})` : term.includes('&&') ? `(${term})` : term;
  const current = filter.trim();
  if (!current) return exclude ? t : term;
  if (current === term || current === t || current.endsWith(` && ${t}`)) return current;
  return `(${current}) && ${t}`;
}
