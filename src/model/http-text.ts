// Text about HTTP exchanges that the exports and the app both show.

/** What a request or response says of the headers it does not list (see HEADER_BYTES_CAP in dissect/http2.ts). */
export function headersDroppedText(n: number): string {
  return `${n} more header${n === 1 ? '' : 's'} not kept: past 64 KiB of headers (HPACK/QPACK can name one table entry again and again)`;
}
