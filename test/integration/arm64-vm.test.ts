// The arm64 VM harness (test/lib/arm64-vm.ts): one boot of Debian's arm64 cloud kernel under qemu TCG with our
// initramfs, checking what the aarch64 helper's eBPF tests will rely on: an aarch64 kernel with BTF, files in
// and out byte for byte, the script's exit status, and openssl and gnutls-cli completing TLS 1.3 handshakes in
// the guest. A second boot checks that a VM that never powers off is killed with its console's tail.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../lib/lab.js';
import { arm64VmAvailable, ensureArm64VmAssets, runInArm64Vm, type Arm64VmRun } from '../lib/arm64-vm.js';

const unavailable = await arm64VmAvailable();
if (unavailable !== null) console.warn(`arm64 VM tests skipped: ${unavailable}`);

// why: CI installs everything the VM needs (scripts/install-deps.sh), so there a missing piece fails instead of skipping
describe.runIf(unavailable !== null && Boolean(process.env.CI))('the arm64 VM in CI', () => {
  it('is available', () => { expect.fail(`the arm64 VM is not available: ${unavailable}`); });
});

const PORT = 4433;
/** Every byte value, newlines and CRs among random bytes: what a console transfer would mangle first. */
const payload = Buffer.concat([Buffer.from([...Array(256).keys()]), Buffer.from('\r\n\n\r\0'), randomBytes(64 * 1024 + 3)]);

/** Waits in the guest until a TCP port listens on 127.0.0.1 (busybox netstat), up to ~30 s. */
const WAIT_LISTEN = `wait_listen() {
  for i in $(seq 150); do netstat -ltn | grep -q "127.0.0.1:$1 " && return 0; sleep 0.2; done
  echo "nothing listens on $1" >&2; return 1
}`;

const SCRIPT = `${WAIT_LISTEN}
mkdir -p /tmp/out
uname -m > /tmp/out/uname.txt
ls -l /sys/kernel/btf/vmlinux > /tmp/out/btf.txt 2>&1
sha256sum /root/payload.bin | cut -d' ' -f1 > /tmp/out/payload.sha256
cp /root/payload.bin /tmp/out/payload.bin

# why the sleep: s_server reads its stdin and shuts down at its end, and a background job's stdin is /dev/null
sleep 300 | openssl s_server -accept 127.0.0.1:${PORT} -cert /root/tls/cert.pem -key /root/tls/key.pem -tls1_3 -naccept 2 \\
  > /tmp/out/s_server.log 2>&1 &
server=$!
wait_listen ${PORT}
echo hello-from-openssl | openssl s_client -connect 127.0.0.1:${PORT} -servername tapscope.test -CAfile /root/tls/cert.pem \\
  -verify_return_error -tls1_3 -brief > /tmp/out/s_client.log 2>&1
echo "s_client exit $?" >> /tmp/out/s_client.log
echo hello-from-gnutls | gnutls-cli --x509cafile /root/tls/cert.pem --port ${PORT} --priority NORMAL:-VERS-ALL:+VERS-TLS1.3 \\
  127.0.0.1 > /tmp/out/gnutls-cli.log 2>&1
echo "gnutls-cli exit $?" >> /tmp/out/gnutls-cli.log
# s_server exits after its second connection; wait for it (its log complete), but not forever
for i in $(seq 50); do kill -0 $server 2>/dev/null || break; sleep 0.2; done
kill $server 2>/dev/null

for f in /tmp/out/*; do export_file "$f"; done
exit 3
`;

let vm: Arm64VmRun;
let tlsDir: string;
const text = (name: string) => vm.exported.get(name)?.toString('utf8') ?? `(${name} was not exported)`;

describe.skipIf(unavailable !== null)('the arm64 VM', () => {
  beforeAll(async () => {
    tlsDir = await mkdtemp(join(tmpdir(), 'tsi-arm64-vm-'));
    // why EC: every handshake runs emulated; P-256 keeps it fast where RSA key operations would not
    const req = await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
      '-subj', '/CN=tapscope.test', '-addext', 'subjectAltName=DNS:tapscope.test,IP:127.0.0.1',
      '-keyout', join(tlsDir, 'key.pem'), '-out', join(tlsDir, 'cert.pem')], { timeoutMs: 30_000 });
    expect(req.code, req.stderr).toBe(0);
    const started = Date.now();
    vm = await runInArm64Vm({
      files: [
        { path: '/root/payload.bin', data: payload },
        { path: '/root/tls/cert.pem', data: await readFile(join(tlsDir, 'cert.pem')) },
        { path: '/root/tls/key.pem', data: await readFile(join(tlsDir, 'key.pem')), mode: 0o600 },
      ],
      script: SCRIPT,
      timeoutMs: 170_000,
    });
    const assets = await ensureArm64VmAssets();
    console.log(`arm64 VM: kernel ${assets.kernelRelease}, booted in ${vm.bootMs} ms, whole run ${Date.now() - started} ms`);
  }, 180_000);

  afterAll(async () => { if (tlsDir) await rm(tlsDir, { recursive: true, force: true }); });

  it('runs an aarch64 kernel with BTF, and reports the script exit status', () => {
    expect(vm.exitCode, vm.console).toBe(3);
    expect(text('uname.txt').trim()).toBe('aarch64');
    expect(text('btf.txt')).toMatch(/^-r--r--r-- .* \/sys\/kernel\/btf\/vmlinux$/m);
  });

  it('gets files into the guest and back byte for byte', () => {
    expect(text('payload.sha256').trim()).toBe(createHash('sha256').update(payload).digest('hex'));
    const back = vm.exported.get('payload.bin');
    expect(back?.length).toBe(payload.length);
    expect(back!.equals(payload)).toBe(true);
  });

  it('completes a TLS 1.3 handshake between openssl s_server and s_client on 127.0.0.1', () => {
    const client = text('s_client.log');
    expect(client, vm.console).toContain('s_client exit 0');
    expect(client).toContain('CONNECTION ESTABLISHED');
    expect(client).toContain('Protocol version: TLSv1.3');
    expect(client).toContain('Verification: OK');
    expect(text('s_server.log')).toContain('hello-from-openssl');
  });

  it('completes a TLS 1.3 handshake from gnutls-cli to openssl s_server', () => {
    const client = text('gnutls-cli.log');
    expect(client, vm.console).toContain('gnutls-cli exit 0');
    expect(client).toContain('Handshake was completed');
    expect(client).toMatch(/Description: \(TLS1\.3/);
    expect(text('s_server.log')).toContain('hello-from-gnutls');
  });

  it('kills a VM that does not power off in time and shows the last console lines', async () => {
    // why from the first boot: TCG on a loaded 2-core machine boots several times slower than on an idle one
    const timeoutMs = Math.max(12_000, vm.bootMs * 4);
    const started = Date.now();
    await expect(runInArm64Vm({ files: [], script: 'echo still-running; sleep 600', timeoutMs }))
      .rejects.toThrow(/did not power off within \d+ ms and was killed; its last console lines:[^]*still-running/);
    expect(Date.now() - started).toBeLessThan(timeoutMs + 15_000);
  }, 180_000);
});
