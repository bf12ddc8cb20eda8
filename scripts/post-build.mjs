// After tsc: make the CLI entry executable (npm links it as the `tapscope` bin).
import { chmodSync, existsSync } from 'node:fs';
const cli = new URL('../dist/src/cli/main.js', import.meta.url);
if (existsSync(cli)) chmodSync(cli, 0o755);
