// The core on mutated captures for FUZZ_SECONDS (default 300) from FUZZ_SEED (default: the time): see
// test/lib/core-fuzz.ts. Prints iterations and outcomes; each distinct failure's capture is kept in FUZZ_OUT (default
// /tmp/tapscope-fuzz) to replay with `tapscope flows FILE`. Exit 1 on any failure.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FUZZ_INPUTS, fuzzCore } from '../lib/core-fuzz.js';

const seconds = Number(process.env.FUZZ_SECONDS ?? 300);
const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 0x7fffffff);
const out = process.env.FUZZ_OUT ?? '/tmp/tapscope-fuzz';
mkdirSync(out, { recursive: true });
const t0 = Date.now();
const r = await fuzzCore({ inputs: FUZZ_INPUTS, seed, dir: out, seconds });
const s = (Date.now() - t0) / 1000;
console.log(`core-fuzz: seed ${seed}, ${r.iterations} mutated captures in ${s.toFixed(0)} s (${(r.iterations / s).toFixed(1)}/s); outcomes ${JSON.stringify(Object.fromEntries(r.outcomes))}`);
r.failures.forEach((f, i) => {
  const file = join(out, `failure-${seed}-${i + 1}.pcapng`);
  writeFileSync(file, f.capture);
  console.log(`  FAILURE ${i + 1} at ${f.step} (from ${f.input}; kept ${file}):\n    ${f.error.split('\n').slice(0, 8).join('\n    ')}`);
});
process.exitCode = r.failures.length > 0 ? 1 : 0;
