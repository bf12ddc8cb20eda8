// Text about HTTP exchanges that the exports and the app both show.

/**
 * Header bytes (names and values) a message keeps. why: HPACK and QPACK name a table entry of up to 4 KiB in a byte,
 * again and again: a 16 KB header block can make 64 MB of headers (an "HPACK bomb"), which a HAR export and the flow's
 * detail would spell out for each request. The pseudo-headers are read from all of them (see addHeaders in
 * dissect/http2.ts). Here, not there: the app shows the text below, and the dissector's module loads HPACK.
 */
export const HEADER_BYTES_CAP = 64 * 1024;

/** What a request or response says of the headers it does not list. */
export function headersDroppedText(n: number): string {
  return `${n} more header${n === 1 ? '' : 's'} not kept: past ${HEADER_BYTES_CAP / 1024} KiB of headers (HPACK/QPACK can name one table entry again and again)`;
}
