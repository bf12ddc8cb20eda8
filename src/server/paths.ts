// Where web mode finds the built renderer and keeps files dropped into the browser.
import { join } from 'node:path';
import { dataRoot, packageRoot } from '../util/paths.js';

export function rendererDir(): string {
  return process.env.TAPSCOPE_RENDERER_DIR ?? join(packageRoot(), 'dist', 'renderer');
}

/** Uploaded captures stay here: the session opened from one refers to the file, so it must outlive the server. */
export function uploadsDir(): string {
  return join(dataRoot(), 'uploads');
}
