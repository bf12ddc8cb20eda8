// Where web mode finds the built renderer.
import { join } from 'node:path';
import { packageRoot } from '../util/paths.js';

export function rendererDir(): string {
  return process.env.TAPSCOPE_RENDERER_DIR ?? join(packageRoot(), 'dist', 'renderer');
}
