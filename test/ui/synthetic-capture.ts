// Writes a synthetic pcapng with N distinct TCP flows (one SYN each, in the format the helper writes)
// for the UI benchmark and the renderer/server unit tests, which open it through the real CoreService.
// Destination ports vary (443 for every 4th flow, 80, 8080-8086) so filters have something to select.
// Cached by N under /tmp.
import { createWriteStream, existsSync, renameSync } from 'node:fs';
import { once } from 'node:events';
import { encodeEpb, encodeIdb, encodeShb, tsFromMs } from '../../src/pcapng/writer.js';
import { ethernet, ipPacket } from '../unit/core-packet-builder.js';

export async function benchCapture(flows: number): Promise<string> {
  const path = `/tmp/tapscope-ui-bench-${flows}.pcapng`;
  if (existsSync(path)) return path;
  const tmp = `${path}.${process.pid}.partial`;
  const out = createWriteStream(tmp);
  const write = async (b: Buffer) => {
    if (!out.write(b)) await once(out, 'drain');
  };
  await write(encodeShb({ hardware: 'x86_64', os: 'Linux bench', userappl: 'tapscope ui-bench' }));
  await write(encodeIdb({ linkType: 1, snapLen: 262144, name: 'eth0', description: 'ifindex=2', tsresol: 9 }));
  let ts = 1_732_620_000_000;
  for (let i = 0; i < flows; i++) {
    const src = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    const dport = i % 4 === 0 ? 443 : i % 4 === 1 ? 80 : 8080 + (i % 7);
    const frame = ethernet(ipPacket('tcp', { src, dst: '10.250.0.1', sport: 20000 + (i % 40000), dport, seq: i, flags: 0x02 }));
    ts += 0.05;
    await write(encodeEpb({ interfaceId: 0, ...tsFromMs(Math.floor(ts)), data: frame, flags: null, comments: [] }));
  }
  out.end();
  await once(out, 'finish');
  renameSync(tmp, path);
  return path;
}
