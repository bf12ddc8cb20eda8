// Builds the Electron shell with esbuild into dist/electron/: main as ESM that loads the compiled core
// from dist/src/ at run time (built by build:core), preload as one self-contained CommonJS file
// (sandboxed preloads cannot require anything but 'electron').
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const common = { absWorkingDir: root, bundle: true, platform: 'node', target: 'node20', sourcemap: true, logLevel: 'warning' };

await build({
  ...common,
  entryPoints: ['electron/main.ts'],
  outfile: 'dist/electron/main.js',
  format: 'esm',
  packages: 'external',
  // why: the core stays the one compiled copy in dist/src (shared with the CLI); main imports it.
  external: ['electron', '../src/*'],
  plugins: [
    {
      name: 'core-to-dist',
      setup(b) {
        b.onResolve({ filter: /^\.\.\/src\// }, (args) => ({ path: args.path, external: true }));
      },
    },
  ],
});

await build({
  ...common,
  entryPoints: ['electron/preload.ts'],
  outfile: 'dist/electron/preload.cjs',
  format: 'cjs',
  platform: 'browser',
  minify: true,
  external: ['electron'],
});

console.log('built dist/electron/main.js and dist/electron/preload.cjs');
