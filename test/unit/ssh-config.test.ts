// ssh_config resolution: first value wins, IdentityFile accumulates, Host patterns with * ? and !,
// ProxyJump chains with user@host:port, quoting and key=value syntax, Include.
import { describe, it, expect } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
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

describe('ssh_config', () => {
  const entries = parseSshConfig(CONFIG);

  it('applies the first value per keyword across matching blocks and accumulates IdentityFile', () => {
    const r = resolveHost(entries, 'web-01');
    expect(r.user).toBe('deploy');
    expect(r.port).toBe(2222);
    expect(r.hostName).toBe('web-01');
    expect(r.identityFiles).toEqual([join(homedir(), '.ssh/web_key'), '/keys/with space', join(homedir(), '.ssh/id_deploy')]);
    expect(r.serverAliveIntervalMs).toBe(7000);
  });

  it('honours negated patterns', () => {
    const r = resolveHost(entries, 'web-legacy');
    expect(r.user).toBe('fallback');
    expect(r.port).toBe(22);
  });

  it('lets the URI override user and port, as ssh -l/-p do', () => {
    const r = resolveHost(entries, 'web-01', { user: 'alice', port: 22 });
    expect([r.user, r.port]).toEqual(['alice', 22]);
    expect(r.identityFiles).toContain(join(homedir(), '.ssh/id_alice'));
  });

  it('parses ProxyJump chains with user@host:port', () => {
    const r = resolveHost(entries, 'inner');
    expect(r.hostName).toBe('10.0.0.5');
    expect(r.proxyJump).toEqual([
      { host: 'bastion', user: null, port: null },
      { host: 'hop2', user: 'admin', port: 2200 },
    ]);
    expect(r.strictHostKeyChecking).toBe('accept-new');
    expect(resolveHost(entries, 'bastion')).toMatchObject({ hostName: '198.51.100.7', user: 'jump', proxyJump: [] });
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

  it('follows Include files relative to ~/.ssh or absolute', () => {
    const d = mkdtempSync(join(tmpdir(), 'tss-unit-'));
    writeFileSync(join(d, 'extra.conf'), 'Host included\n  HostName 192.0.2.9\n  Port 2022\n');
    const e = parseSshConfig(`Include ${d}/*.conf\nHost other\n  User o\n`);
    expect(resolveHost(e, 'included')).toMatchObject({ hostName: '192.0.2.9', port: 2022 });
    expect(resolveHost(e, 'other').user).toBe('o');
    rmSync(d, { recursive: true, force: true });
  });

  it('reads GlobalKnownHostsFile (first line wins, several files, ~, none) and defaults to /etc/ssh/ssh_known_hosts{,2}', () => {
    expect(resolveHost(entries, 'db').globalKnownHostsFiles).toEqual(['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2']);
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
    expect(resolveHost(g, 'fleet-1').globalKnownHostsFiles).toEqual([join(homedir(), 'fleet_kh'), '/srv/kh/%h']);
    expect(resolveHost(g, 'off').globalKnownHostsFiles).toEqual([]);
    expect(resolveHost(g, 'other').globalKnownHostsFiles).toEqual(['/ignored/because/first/wins']);
  });

  it('skips Match blocks (not evaluated) instead of applying them to every host', () => {
    const e = parseSshConfig('Match host x\n  User matched\nHost *\n  User all\n');
    expect(resolveHost(e, 'x').user).toBe('all');
  });

  it('parses destinations and URIs, including IPv6', () => {
    expect(parseJump('[fd00::1]:2222')).toEqual({ host: 'fd00::1', user: null, port: 2222 });
    expect(parseSshUri('ssh://root@10.0.0.1:2200')).toEqual({ host: '10.0.0.1', user: 'root', port: 2200 });
    expect(parseSshUri('ssh://alias')).toEqual({ host: 'alias', user: null, port: null });
    expect(() => parseSshUri('ssh://host:99999')).toThrow(/user@host:port/);
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
    expect(resolveHost(e, 'via-cmd')).toMatchObject({ proxyCommand: 'ssh -W %h:%p bastion', proxyJump: [] });
    expect(resolveHost(e, 'jump-first')).toMatchObject({ proxyCommand: null, proxyJump: [{ host: 'bastion' }] });
    expect(resolveHost(e, 'cmd-first')).toMatchObject({ proxyCommand: 'nc %h %p', proxyJump: [] });
    expect(resolveHost(e, 'cmd-none')).toMatchObject({ proxyCommand: null, proxyJump: [{ host: 'bastion' }] });
    expect(resolveHost(e, 'other').proxyCommand).toBeNull();
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
