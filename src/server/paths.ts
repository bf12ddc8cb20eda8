// Where the built renderer lives, found from this module's location so it works both from src/
// (tsx, tests) and from the compiled dist/src/ tree.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'tapscope') return dir;
      } catch {
        // keep walking up: a package.json we cannot read is not ours
      }
    }
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return process.cwd();
}

export function rendererDir(): string {
  return process.env.TAPSCOPE_RENDERER_DIR ?? join(packageRoot(), 'dist', 'renderer');
}
