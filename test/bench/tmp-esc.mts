import { writeFileSync } from 'node:fs';
import { CaptureBuilder, tcpConversation } from '../unit/core-packet-builder.js';
const b = new CaptureBuilder();
tcpConversation(b, { ip: '10.77.0.1', port: 40000 }, { ip: '10.78.0.1', port: 80 }, [Buffer.from('GET /\x1b[31mred\x1b[0m HTTP/1.1\r\nHost: evil\x1b]0;pwned\x07\x1b[2J.test\r\n\r\n', 'latin1')], [Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')]);
writeFileSync('/tmp/hz/esc.pcapng', b.build());
