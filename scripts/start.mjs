// `npm start`: the Electron app when it can run here (a display and the Electron binary), otherwise
// the same UI in web mode on 127.0.0.1, saying in one line why.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { join } from 'node:path';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);

function electronBinary() {
  try {
    const p = require('electron');
    return typeof p === 'string' && existsSync(p) ? p : null;
  } catch {
    return null;
  }
}

function whyNotElectron(bin) {
  const reasons = [];
  if (!process.env.DISPLAY && !process.env.WAYLAND_DISPLAY && process.platform === 'linux') reasons.push('no display');
  if (!bin) reasons.push('Electron binary not downloaded');
  return reasons;
}

const need = [join(root, 'dist/renderer/index.html'), join(root, 'dist/src/server/index.js')];
const missing = need.filter((p) => !existsSync(p));
if (missing.length > 0) {
  console.error(`Tapscope is not built (${missing.map((m) => m.slice(root.length)).join(', ')} missing); run \`npm run build\` first.`);
  process.exit(1);
}

const bin = electronBinary();
const reasons = whyNotElectron(bin);
if (reasons.length === 0 && existsSync(join(root, 'dist/electron/main.js'))) {
  const child = spawn(bin, [root, ...process.argv.slice(2)], { stdio: 'inherit' });
  child.on('exit', (code) => process.exit(code ?? 0));
} else {
  if (reasons.length === 0) reasons.push('dist/electron is not built');
  console.log(`Electron cannot start here (${reasons.join(' / ')}); serving the same UI in web mode`);
  const { startWebServer } = await import(pathToFileURL(join(root, 'dist/src/server/index.js')).href);
  const { loadCoreService } = await import(pathToFileURL(join(root, 'dist/src/server/load-service.js')).href);
  const port = process.env.TAPSCOPE_PORT ? Number(process.env.TAPSCOPE_PORT) : 0;
  const service = await loadCoreService({});
  const server = await startWebServer({ service, port });
  console.log(server.url);
  const stop = async () => {
    await server.close();
    await service.close();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
