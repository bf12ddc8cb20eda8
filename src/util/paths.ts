// Where things are: the package root (works from src/ under tsx and from dist/src/ after tsc), the app-data
// folder for sessions and uploads, the helper binary, and a user's `~` in a path.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

let cachedRoot: string | null = null;

export function packageRoot(): string {
  if (cachedRoot) return cachedRoot;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    const pj = join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === 'tapscope') {
          cachedRoot = dir;
          return dir;
        }
      } catch {
        // why: an unreadable package.json on the way up is not ours; keep walking.
      }
    }
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  cachedRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
  return cachedRoot;
}

export function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

/**
 * Root of Tapscope's data, absolute: $TAPSCOPE_HOME, else $XDG_DATA_HOME/tapscope, else ~/.local/share/tapscope. A
 * relative one is taken from the working folder, and a leading `~` is the home folder (see userPath).
 * why absolute: sessions record absolute paths (userPath), and whether an upload is a session's is told by its path
 * (SessionStore.removeOrphanUploads); a relative root made every upload look like no session's.
 */
export function dataRoot(): string {
  const env = process.env.TAPSCOPE_HOME;
  if (env) return userPath(env);
  const xdg = process.env.XDG_DATA_HOME;
  return join(xdg ? userPath(xdg) : join(homedir(), '.local', 'share'), 'tapscope');
}

export function sessionsRoot(): string {
  return join(dataRoot(), 'sessions');
}

/**
 * Where web mode keeps the files dropped into the browser (src/server/uploads.ts), absolute: `uploads` beside a
 * sessions root, Tapscope's by default. The one place this is derived: a SessionStore's uploads folder is this of its
 * root, and the web server stores into its service's store's folder.
 */
export function uploadsDir(sessions: string = sessionsRoot()): string {
  return join(dirname(resolve(sessions)), 'uploads');
}

/** A path as a shell reads a leading `~`: `~` and `~/...` are in the home directory; any other path is as it is. */
export function expandTilde(p: string): string {
  if (p === '~') return homedir();
  if (p.startsWith('~/')) return join(homedir(), p.slice(2));
  return p;
}

/** A path a person typed or set, absolute: a leading `~` is the home folder (expandTilde), a relative one is from the working folder. */
export function userPath(p: string): string {
  return resolve(expandTilde(p));
}

/**
 * The helper binary for this machine: resources/helper/linux-x64/ or linux-arm64/ by its architecture, or the one
 * $TAPSCOPE_HELPER ($TAPSCOPE_HELPER_ARM64 on aarch64) names (as the remote targets read them: targets/deploy.ts).
 */
export function helperPath(): string {
  const arm = process.arch === 'arm64';
  return (arm ? process.env.TAPSCOPE_HELPER_ARM64 : process.env.TAPSCOPE_HELPER)
    ?? join(packageRoot(), 'resources', 'helper', arm ? 'linux-arm64' : 'linux-x64', 'tapscope-helper');
}

/** Whether `path` is a regular file (following links); false for anything else, or nothing there. */
export function isFile(path: string): boolean {
  return statSync(path, { throwIfNoEntry: false })?.isFile() ?? false;
}
