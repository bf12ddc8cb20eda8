// Command-line values that used to be taken wrongly: a --duration too long to count (it stopped the capture at once,
// in the helper too), a negative one (its message cut to "ambiguous"), an empty --target (taken as local), an empty
// --iface; and kubeconfig files that are no kubeconfig (reported as a missing context).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { MAX_DURATION_S, parseCommand } from '../../src/cli/args.js';
import { kubeConfigFor, mergeKubeconfigs } from '../../src/targets/k8s/kubeconfig.js';
import { isTapscopeError } from '../../src/errors.js';

const ROOT = join(import.meta.dirname, '../..');
let tmp: string;

beforeAll(() => { tmp = mkdtempSync(join(tmpdir(), 'tsx-cli-args-')); });
afterAll(() => { rmSync(tmp, { recursive: true, force: true }); });

/** The usage error parseCommand throws for argv (the test fails when it parses). */
function usageError(argv: string[]): string {
  try {
    parseCommand(argv);
  } catch (e) {
    expect(isTapscopeError(e, 'E_USAGE'), `${argv.join(' ')}: ${String(e)}`).toBe(true);
    return (e as Error).message;
  }
  throw new Error(`${argv.join(' ')} was accepted`);
}

describe('capture --duration', () => {
  it('takes up to 100 years and refuses more, saying the limit', () => {
    expect(MAX_DURATION_S).toBe(3_153_600_000);
    expect(parseCommand(['capture', '--out', 'x', '--duration', '3153600000'])).toMatchObject({ duration: MAX_DURATION_S });
    expect(parseCommand(['capture', '--out', 'x', '--duration', '0.5'])).toMatchObject({ duration: 0.5 });
    for (const d of ['1e12', '3153600001', '1e308']) {
      expect(usageError(['capture', '--out', 'x', '--duration', d])).toBe(`capture: --duration must be at most 3153600000 seconds (100 years), got '${d}'; see tapscope --help`);
    }
  });

  it('refuses a negative number as what it is, however it is written', () => {
    for (const argv of [['--duration', '-1'], ['--duration=-1'], ['--duration', '-0.5'], ['--duration', '-.5']]) {
      const v = argv.length === 2 ? argv[1]! : argv[0]!.split('=')[1]!;
      expect(usageError(['capture', '--out', 'x', ...argv])).toBe(`capture: --duration must be a positive number, got '${v}'; see tapscope --help`);
    }
    // (a positional after -- is not a value)
    expect(parseCommand(['flows', '--', '-1'])).toMatchObject({ file: '-1' });
  });

  it('an option whose value is missing says how to give one that starts with a dash', () => {
    expect(usageError(['capture', '--out', '--duration', '5'])).toBe('capture: --out needs a value; a value that starts with a dash is written --out=-VALUE; see tapscope --help');
    expect(usageError(['flows', 'f.pcapng', '-Y', '--json'])).toBe('flows: -Y needs a value; a value that starts with a dash is written --filter=-VALUE; see tapscope --help');
  });
});

describe('capture and check --target, --iface', () => {
  it('an empty or blank --target is a usage error, not the local machine', () => {
    for (const argv of [['capture', '--out', 'x', '--target', ''], ['capture', '--out', 'x', '--target=  '], ['check', '--target', '']]) {
      expect(usageError(argv)).toMatch(/^(capture|check): --target needs a value: local, ssh:\/\/\[user@\]host\[:port\] or k8s:\/\/CONTEXT\[\/NODE\]/);
    }
    expect(parseCommand(['capture', '--out', 'x'])).toMatchObject({ target: 'local' });
    expect(parseCommand(['check', '--target', 'local'])).toMatchObject({ target: 'local' });
  });

  it('an empty --iface is a usage error', () => {
    expect(usageError(['capture', '--out', 'x', '--iface', 'lo', '--iface', ''])).toMatch(/^capture: --iface needs an interface name/);
  });

  it('the CLI exits 2 with the message, before anything is started or written', () => {
    const out = join(tmp, 'never.pcapng');
    // (no helper to run: were the duration taken, the capture fails to start instead of capturing)
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'capture', '--duration', '1e12', '--out', out], {
      encoding: 'utf8', cwd: ROOT, env: { ...process.env, TAPSCOPE_HOME: join(tmp, 'home'), TAPSCOPE_HELPER: join(tmp, 'no-helper') },
    });
    expect([r.status, r.stderr]).toEqual([2, "tapscope: capture: --duration must be at most 3153600000 seconds (100 years), got '1e12'; see tapscope --help (E_USAGE)\n"]);
    expect(existsSync(out)).toBe(false);
  });
});

describe('the capture helper\'s --duration', () => {
  // why the built helper: this is the C side of the limit (native/main.c), run as it ships; a helper built before the
  // fix took 1e12 and stopped at once (the nanosecond deadline overflowed). TAPSCOPE_HELPER points at another build.
  const helper = process.env.TAPSCOPE_HELPER ?? join(ROOT, 'resources/helper/linux-x64/tapscope-helper');

  it('refuses what it cannot count (more than 100 years, NaN, infinity) before capturing anything', () => {
    for (const d of ['1e12', '3153600001', 'nan', 'inf']) {
      // (an interface that does not exist: a helper that took the duration fails to start, it captures nothing)
      const r = spawnSync(helper, ['--mode', 'afpacket', '--iface', 'tsx-none0', '--duration', d], { encoding: 'utf8', timeout: 10_000 });
      expect([r.status, r.stdout], d).toEqual([1, '']);
      expect(r.stderr.split('\n')[0]).toBe(`tapscope-helper: bad --duration: ${d} (seconds > 0, at most 3153600000: 100 years)`);
    }
  });
});

describe('a kubeconfig that is no kubeconfig', () => {
  const file = (name: string, text: string): string => {
    const f = join(tmp, name);
    writeFileSync(f, text);
    return f;
  };

  it('is an error naming the file and what is wrong, not a context missing from it', () => {
    const cases: [string, string, RegExp][] = [
      ['garbage.yaml', ':::: not yaml [\n', /it is not a kubeconfig: none of its fields \(:::\) is a kubeconfig's/],
      ['list.yaml', '[1, 2, 3]\n', /its YAML is a list, not a kubeconfig/],
      ['scalar.yaml', 'hello\n', /its YAML is a string, not a kubeconfig/],
      ['clusters.yaml', 'apiVersion: v1\nkind: Config\nclusters: 5\n', /its clusters is not a list/],
      ['kind.yaml', 'apiVersion: v1\nkind: Pod\ncontexts: []\n', /its kind is "Pod", not Config/],
      ['broken.yaml', 'contexts: [\n', /not valid YAML: .* at line 2, column 1/],
    ];
    for (const [name, text, why] of cases) {
      const f = file(name, text);
      let e: unknown;
      try { mergeKubeconfigs([f]); } catch (x) { e = x; }
      expect(isTapscopeError(e, 'E_KUBECONFIG'), `${name}: ${String(e)}`).toBe(true);
      const m = (e as Error).message;
      expect(m.startsWith(`Cannot read kubeconfig ${f}: `), m).toBe(true);
      expect(m).toMatch(why);
      expect(m).not.toMatch(/\n/);
    }
  });

  it('empty, or as kubectl writes an empty one, is a kubeconfig with nothing in it, and merges with the others', () => {
    const empty = file('empty.yaml', '');
    const comment = file('comment.yaml', '# nothing yet\n');
    const nulls = file('nulls.yaml', 'apiVersion: v1\nclusters: null\ncontexts: null\ncurrent-context: ""\nkind: Config\npreferences: {}\nusers: null\n');
    const good = file('good.yaml', [
      'apiVersion: v1', 'kind: Config', 'current-context: ctx1', 'clusters:', '- name: c1', '  cluster:', '    server: https://127.0.0.1:6443',
      'users:', '- name: u1', '  user:', '    token: abc', 'contexts:', '- name: ctx1', '  context:', '    cluster: c1', '    user: u1', '',
    ].join('\n'));
    const m = mergeKubeconfigs([empty, comment, nulls, good]);
    expect(m.files).toEqual([empty, comment, nulls, good]);
    expect(m.contexts.map((c) => c.name)).toEqual(['ctx1']);
    expect(kubeConfigFor(m, 'ctx1').getCurrentCluster()?.server).toBe('https://127.0.0.1:6443');
    expect(() => kubeConfigFor(mergeKubeconfigs([empty]), 'ctx1')).toThrow(`Context "ctx1" is not in ${empty}. Known contexts: none.`);
  });

  it('the CLI says so in one line', () => {
    const f = file('cli-list.yaml', '- a\n- b\n');
    const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'check', '--target', 'k8s://ctx1', '--kubeconfig', f], {
      encoding: 'utf8', cwd: ROOT, env: { ...process.env, TAPSCOPE_HOME: join(tmp, 'home') }, timeout: 60_000,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`tapscope: Cannot read kubeconfig ${f}: its YAML is a list, not a kubeconfig (a mapping with clusters, contexts and users). Fix the file or point KUBECONFIG elsewhere. (E_KUBECONFIG)\n`);
  });
});
