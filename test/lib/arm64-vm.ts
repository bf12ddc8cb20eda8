// Boots a real aarch64 Linux kernel (Debian's cloud-arm64 kernel) under qemu-system-aarch64 with TCG, from an
// initramfs built here (busybox, an arm64 userland with openssl, gnutls-cli and tstclnt, the caller's files), runs a
// shell script in it as root and returns the console output and the files the script exported. For testing
// the aarch64 helper's eBPF mode on an arm64 kernel from this x86-64 machine (qemu-user has no BPF syscall).
//
// The kernel and userland are Debian arm64 packages, fetched once with `apt-get download` and unpacked with
// `dpkg-deb -x` into native/build-arm64/vm/ (gitignored). why not `apt-get install` of :arm64 packages:
// installing them side by side (multiarch) upgraded the host's libssl3 and openssl once.
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, readlink, lstat, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { encodeNewc, type CpioEntry } from './cpio-newc.js';
import { elfNeeded, isElf } from './elf-needed.js';
import { run } from './lab.js';

const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ARM64_VM_DIR = join(REPO, 'native', 'build-arm64', 'vm');
const QEMU = 'qemu-system-aarch64';
const MANIFEST_FORMAT = 1;

/** The metapackage whose dependency is Debian's current cloud kernel for arm64 (BTF, uprobes, BPF, PL011 built in). */
const KERNEL_METAPACKAGE = 'linux-image-cloud-arm64';
const BUSYBOX_PACKAGE = 'busybox-static';
/**
 * The guest's userland beside busybox: openssl, gnutls-cli and NSS's tstclnt with their runtime closure, checked against the
 * NEEDED entries by `guestSysrootFiles` (a package missing here fails there, naming the soname).
 */
const USERLAND_PACKAGES = [
  'libc6', 'libgcc-s1', 'openssl', 'libssl3',
  'gnutls-bin', 'libgnutls30', 'libgnutls-dane0', 'libunbound8', 'libevent-2.1-7', 'libnettle8', 'libhogweed6',
  'libgmp10', 'libp11-kit0', 'libffi8', 'libidn2-0', 'libunistring2', 'libtasn1-6',
  'libnss3-tools', 'libnss3', 'libnspr4', 'libsqlite3-0', 'zlib1g',
];
/** Programs the guest gets from the sysroot; their libraries follow from NEEDED. */
const GUEST_PROGRAMS = ['usr/bin/openssl', 'usr/bin/gnutls-cli', 'usr/bin/tstclnt'];
/**
 * Files the guest needs that no NEEDED entry names: the loader at the path in every program's PT_INTERP,
 * libgcc_s (glibc dlopens it for thread cancellation), openssl's config and its legacy provider, and the NSS
 * modules NSS dlopens (its softoken, with the checksums it verifies, and freebl).
 */
const GUEST_EXTRAS = [
  'lib/ld-linux-aarch64.so.1', 'lib/aarch64-linux-gnu/libgcc_s.so.1', 'etc/ssl/openssl.cnf', 'usr/lib/ssl/openssl.cnf',
  'usr/lib/aarch64-linux-gnu/ossl-modules/legacy.so',
  ...['libsoftokn3.so', 'libsoftokn3.chk', 'libfreebl3.so', 'libfreebl3.chk', 'libfreeblpriv3.so', 'libfreeblpriv3.chk'].map((f) => `usr/lib/aarch64-linux-gnu/${f}`),
];
/** Where the guest's loader looks for libraries (Debian's multiarch directories; no ld.so.cache in the guest). */
const LIBRARY_DIRS = ['lib/aarch64-linux-gnu', 'usr/lib/aarch64-linux-gnu', 'lib', 'usr/lib'];

export interface DebUsed { package: string; version: string; architecture: string }

export interface Arm64VmAssets {
  dir: string;
  /** The kernel's uncompressed arm64 `Image` (Debian's /boot/vmlinuz-RELEASE). */
  kernel: string;
  /** e.g. `6.1.0-56-cloud-arm64` */
  kernelRelease: string;
  /** The kernel's build config (Debian's /boot/config-RELEASE), for tests that check a feature is built in. */
  kernelConfig: string;
  busybox: string;
  /** Every userland package unpacked; the guest gets `sysrootFiles` of it. */
  sysroot: string;
  /** Paths relative to `sysroot` (regular files and symlinks) that go into the guest. */
  sysrootFiles: string[];
  /** Every .deb used, the kernel's first. */
  packages: DebUsed[];
}

interface Manifest {
  format: number;
  /** What was asked for: a change to the lists above fetches again. */
  requested: string[];
  kernelRelease: string;
  packages: DebUsed[];
}

function requestedPackages(): string[] {
  return [KERNEL_METAPACKAGE, BUSYBOX_PACKAGE, ...USERLAND_PACKAGES];
}

async function must(cmd: string, args: string[], cwd?: string): Promise<string> {
  const r = await run(cmd, args, { timeoutMs: 300_000, cwd }).catch((e: Error) => ({ code: -1, stdout: '', stderr: e.message }));
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr.trim().split('\n').slice(-5).join(' / ')}`);
  return r.stdout;
}

// ---- the sysroot's closure ----

/** `rel` and every symlink on the way to the file it names, all relative to `root`; throws when it leads nowhere. */
function resolveInRoot(root: string, rel: string): string[] {
  const chain = [rel];
  let current = rel;
  for (let hops = 0; hops < 16; hops++) {
    let st;
    try { st = lstatSync(join(root, current)); } catch {
      throw new Error(`arm64 VM sysroot: /${current} is missing${current === rel ? '' : ` (reached from /${rel})`} in ${root}`);
    }
    if (!st.isSymbolicLink()) return chain;
    const target = readlinkSync(join(root, current));
    // why: absolute links in a .deb point into the guest's root, not the host's
    current = target.startsWith('/') ? posix.normalize(target).slice(1) : posix.normalize(posix.join(posix.dirname(current), target));
    chain.push(current);
  }
  throw new Error(`arm64 VM sysroot: /${rel} is a symlink loop`);
}

/** why lstat: existsSync follows a symlink, and an absolute one would be followed on this host, not in `root` */
function presentInRoot(root: string, rel: string): boolean {
  try { lstatSync(join(root, rel)); return true; } catch { return false; }
}

function findLibrary(root: string, soname: string): string | undefined {
  return LIBRARY_DIRS.map((d) => `${d}/${soname}`).find((rel) => presentInRoot(root, rel));
}

/**
 * The files of `sysroot` the guest needs: `roots` (GUEST_PROGRAMS and GUEST_EXTRAS) and every library they
 * need, followed through NEEDED recursively, with each symlink on the way. Throws naming the first soname no
 * LIBRARY_DIRS directory holds.
 */
export function guestSysrootFiles(sysroot: string, roots: readonly string[] = [...GUEST_PROGRAMS, ...GUEST_EXTRAS]): string[] {
  const included = new Set<string>();
  const read = new Set<string>();
  const queue = [...roots];
  for (let rel = queue.shift(); rel !== undefined; rel = queue.shift()) {
    const chain = resolveInRoot(sysroot, rel);
    for (const p of chain) included.add(p);
    const file = chain[chain.length - 1]!;
    if (read.has(file)) continue;
    read.add(file);
    const bytes = readFileSync(join(sysroot, file));
    if (!isElf(bytes)) continue;
    for (const soname of elfNeeded(bytes)) {
      const lib = findLibrary(sysroot, soname);
      if (!lib) {
        throw new Error(`arm64 VM sysroot: ${soname}, needed by /${file}, is in none of ${LIBRARY_DIRS.map((d) => `/${d}`).join(', ')}: `
          + 'add the Debian package that ships it to USERLAND_PACKAGES in test/lib/arm64-vm.ts');
      }
      queue.push(lib);
    }
  }
  return [...included].sort();
}

// ---- fetching and caching ----

async function kernelPackage(): Promise<string> {
  const out = await must('apt-cache', ['depends', `${KERNEL_METAPACKAGE}:arm64`]).catch((e: Error) => {
    throw new Error(`${e.message} (no arm64 package lists? scripts/install-deps.sh adds them)`);
  });
  const m = /Depends: (linux-image-[^\s:]+-cloud-arm64)/.exec(out);
  if (!m) throw new Error(`${KERNEL_METAPACKAGE}:arm64 depends on no linux-image-*-cloud-arm64 package: ${out.trim()}`);
  return m[1]!;
}

async function debInfo(deb: string): Promise<DebUsed> {
  const [pkg = '', version = '', architecture = ''] = (await must('dpkg-deb', ['-f', deb, 'Package', 'Version', 'Architecture']))
    .split('\n').map((l) => l.replace(/^\w+: /, '').trim());
  return { package: pkg, version, architecture };
}

/** Downloads `packages` (arm64) into `dir`; returns each .deb's path and what it is, in the order asked. */
async function downloadDebs(packages: string[], dir: string): Promise<Array<{ deb: string; info: DebUsed }>> {
  // why: as root, apt downloads as the _apt user, who cannot write here; it then warns and downloads as root anyway
  const sandbox = process.getuid?.() === 0 ? ['-o', 'APT::Sandbox::User=root'] : [];
  await must('apt-get', ['download', '-q', ...sandbox, ...packages.map((p) => `${p}:arm64`)], dir).catch((e: Error) => {
    throw new Error(`${e.message} (no arm64 package lists? scripts/install-deps.sh adds them)`);
  });
  const debs = await Promise.all((await readdir(dir)).filter((f) => f.endsWith('.deb')).map(async (f) => ({ deb: join(dir, f), info: await debInfo(join(dir, f)) })));
  return packages.map((p) => {
    const found = debs.find((d) => d.info.package === p);
    if (!found) throw new Error(`apt-get download ${p}:arm64 left no ${p} .deb in ${dir}`);
    return found;
  });
}

/** Unpacks the kernel's .deb and keeps only its Image and config (its modules are 100+ MB the guest does not load). */
async function unpackKernel(deb: string, stage: string): Promise<string> {
  const tmp = join(stage, 'kernel-deb');
  await must('dpkg-deb', ['-x', deb, tmp]);
  const image = (await readdir(join(tmp, 'boot'))).find((f) => f.startsWith('vmlinuz-'));
  if (!image) throw new Error(`${deb} has no /boot/vmlinuz-*`);
  const release = image.slice('vmlinuz-'.length);
  await mkdir(join(stage, 'kernel'));
  await copyFile(join(tmp, 'boot', image), join(stage, 'kernel', 'Image'));
  await copyFile(join(tmp, 'boot', `config-${release}`), join(stage, 'kernel', 'config'));
  await rm(tmp, { recursive: true, force: true });
  return release;
}

function assetsIn(dir: string, manifest: Manifest): Arm64VmAssets {
  const sysroot = join(dir, 'sysroot');
  return {
    dir,
    kernel: join(dir, 'kernel', 'Image'),
    kernelRelease: manifest.kernelRelease,
    kernelConfig: join(dir, 'kernel', 'config'),
    busybox: join(dir, 'busybox'),
    sysroot,
    sysrootFiles: guestSysrootFiles(sysroot),
    packages: manifest.packages,
  };
}

/** The cached assets when the manifest asks for what the lists above ask for and the files are there. */
async function cachedAssets(): Promise<Arm64VmAssets | null> {
  let manifest: Manifest;
  try { manifest = JSON.parse(await readFile(join(ARM64_VM_DIR, 'manifest.json'), 'utf8')) as Manifest; } catch { return null; }
  if (manifest.format !== MANIFEST_FORMAT || manifest.requested.join(' ') !== requestedPackages().join(' ')) return null;
  const assets = assetsIn(ARM64_VM_DIR, manifest);
  return [assets.kernel, assets.kernelConfig, assets.busybox].every((f) => existsSync(f)) ? assets : null;
}

async function fetchAssets(): Promise<Arm64VmAssets> {
  // why: built beside the cache and renamed into place, so an interrupted fetch never looks like a cache
  const stage = `${ARM64_VM_DIR}.partial-${process.pid}`;
  await rm(stage, { recursive: true, force: true });
  await mkdir(join(stage, 'debs'), { recursive: true });
  try {
    const kernelPkg = await kernelPackage();
    const [kernel, busybox, ...userland] = await downloadDebs([kernelPkg, BUSYBOX_PACKAGE, ...USERLAND_PACKAGES], join(stage, 'debs'));
    const kernelRelease = await unpackKernel(kernel!.deb, stage);
    await must('dpkg-deb', ['-x', busybox!.deb, join(stage, 'busybox-deb')]);
    await rename(join(stage, 'busybox-deb', 'bin', 'busybox'), join(stage, 'busybox'));
    for (const u of userland) await must('dpkg-deb', ['-x', u.deb, join(stage, 'sysroot')]);
    // why: docs, man pages and locales are most of the unpacked size and nothing in the guest reads them
    await rm(join(stage, 'sysroot', 'usr', 'share'), { recursive: true, force: true });
    await Promise.all(['debs', 'busybox-deb'].map((d) => rm(join(stage, d), { recursive: true, force: true })));
    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      requested: requestedPackages(),
      kernelRelease,
      packages: [kernel!, busybox!, ...userland].map((d) => d.info),
    };
    guestSysrootFiles(join(stage, 'sysroot'));
    await writeFile(join(stage, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    await rm(ARM64_VM_DIR, { recursive: true, force: true });
    await rename(stage, ARM64_VM_DIR);
    return assetsIn(ARM64_VM_DIR, manifest);
  } catch (e) {
    await rm(stage, { recursive: true, force: true });
    throw e;
  }
}

let assetsPromise: Promise<Arm64VmAssets> | undefined;

/**
 * The kernel, busybox and arm64 sysroot, fetched on first use and reused from native/build-arm64/vm/ after
 * (manifest.json there names each .deb's version). Throws saying what could not be fetched or is missing.
 */
export function ensureArm64VmAssets(): Promise<Arm64VmAssets> {
  assetsPromise ??= cachedAssets().then((c) => c ?? fetchAssets()).catch((e: unknown) => {
    assetsPromise = undefined;
    throw e;
  });
  return assetsPromise;
}

/** null when `runInArm64Vm` can run here; otherwise why not, for a skip message or (in CI) a failure. */
export async function arm64VmAvailable(): Promise<string | null> {
  const qemu = await run(QEMU, ['--version'], { timeoutMs: 30_000 }).catch(() => null);
  if (!qemu || qemu.code !== 0) return `${QEMU} is not installed (scripts/install-deps.sh installs qemu-system-arm)`;
  try {
    await ensureArm64VmAssets();
    return null;
  } catch (e) {
    return `the arm64 VM's kernel and userland are not available: ${(e as Error).message}`;
  }
}

// ---- the initramfs ----

export interface GuestFile { path: string; data: Buffer | string; mode?: number }

const EXPORT_BEGIN = '===TAPSCOPE-EXPORT';
const EXPORT_END = '===TAPSCOPE-END===';
const SCRIPT_START = '===TAPSCOPE-SCRIPT-START===';
const EXIT_MARK = '===TAPSCOPE-EXIT';
// why not anchored at the start: output without a final newline runs into the marker's line
const EXPORT_LINE = new RegExp(`${EXPORT_BEGIN} (.+) (\\d+)===$`);
const EXIT_LINE = new RegExp(`^${EXIT_MARK} (\\d+)===$`, 'm');

/** Shell functions the caller's script can use. */
const GUEST_LIB = `# Sourced before the test script (test/lib/arm64-vm.ts).
# export_file PATH: prints PATH's bytes (base64) to the console, where the host returns them in \`exported\` by basename.
export_file() {
  [ -f "$1" ] || { echo "export_file: $1 is not a file" >&2; return 1; }
  echo "${EXPORT_BEGIN} $(basename "$1") $(wc -c < "$1")==="
  base64 "$1"
  echo "${EXPORT_END}"
}
`;

const INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root
mnt() { mount -t "$1" "$1" "$2" || echo "init: could not mount $1 on $2"; }
mnt proc /proc
mnt sysfs /sys
mnt devtmpfs /dev
mnt tracefs /sys/kernel/tracing
mnt debugfs /sys/kernel/debug
mnt bpf /sys/fs/bpf
mnt cgroup2 /sys/fs/cgroup
ip link set lo up
# why: kernel messages reach the serial console between any two bytes the script writes, even inside an
# exported file's base64; the script reads them with dmesg
dmesg -n 1
cd /root
echo "${SCRIPT_START}"
sh -c '. /tapscope/lib.sh; . /tapscope/script.sh' </dev/null
printf '\\n${EXIT_MARK} %d===\\n' $?
poweroff -f
`;

/** Entries keyed by path, each directory before what is in it (see `encodeNewc`). */
class InitramfsTree {
  readonly entries = new Map<string, CpioEntry>();

  add(entry: CpioEntry): void {
    const path = entry.path.replace(/^\/+/, '');
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!this.entries.has(dir)) this.entries.set(dir, { type: 'dir', path: dir });
    }
    this.entries.set(path, { ...entry, path });
  }
}

async function sysrootEntry(sysroot: string, rel: string): Promise<CpioEntry> {
  const st = await lstat(join(sysroot, rel));
  if (st.isSymbolicLink()) return { type: 'symlink', path: rel, target: await readlink(join(sysroot, rel)) };
  return { type: 'file', path: rel, data: await readFile(join(sysroot, rel)), mode: st.mode & 0o7777 };
}

function checkGuestPath(path: string): void {
  if (!path.startsWith('/') || path.endsWith('/') || path.split('/').includes('..')) {
    throw new Error(`runInArm64Vm: file path ${JSON.stringify(path)} must be absolute, without ".." or a trailing slash`);
  }
}

/** The gzipped newc archive the guest boots: busybox, the sysroot's closure, /init, the script and the caller's files. */
export async function buildInitramfs(assets: Arm64VmAssets, files: readonly GuestFile[], script: string): Promise<Buffer> {
  const tree = new InitramfsTree();
  for (const dir of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'dev', 'proc', 'sys', 'root', 'run', 'etc']) tree.add({ type: 'dir', path: dir });
  tree.add({ type: 'file', path: 'etc/hosts', data: Buffer.from('127.0.0.1 localhost\n::1 localhost\n') });
  tree.add({ type: 'dir', path: 'tmp', mode: 0o1777 });
  // why: the kernel opens /dev/console for init's stdio before init can mount devtmpfs
  tree.add({ type: 'chardev', path: 'dev/console', major: 5, minor: 1 });
  tree.add({ type: 'file', path: 'bin/busybox', data: await readFile(assets.busybox), mode: 0o755 });
  for (const rel of assets.sysrootFiles) tree.add(await sysrootEntry(assets.sysroot, rel));
  tree.add({ type: 'file', path: 'init', data: Buffer.from(INIT), mode: 0o755 });
  tree.add({ type: 'file', path: 'tapscope/lib.sh', data: Buffer.from(GUEST_LIB) });
  tree.add({ type: 'file', path: 'tapscope/script.sh', data: Buffer.from(script) });
  for (const f of files) {
    checkGuestPath(f.path);
    tree.add({ type: 'file', path: f.path, data: Buffer.isBuffer(f.data) ? f.data : Buffer.from(f.data), mode: f.mode ?? 0o644 });
  }
  return promisify(gzip)(encodeNewc([...tree.entries.values()]));
}

// ---- the console ----

/**
 * The files `export_file` printed in `console` (CR LF already made LF), by basename. Throws when one is cut
 * off or its bytes do not add up to the size the guest printed.
 */
export function parseExports(console: string): Map<string, Buffer> {
  const exported = new Map<string, Buffer>();
  const lines = console.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = EXPORT_LINE.exec(lines[i]!);
    if (!m) continue;
    const [, name = '', size] = m;
    const end = lines.indexOf(EXPORT_END, i + 1);
    if (end < 0) throw new Error(`export_file ${name}: the console output ends before ${EXPORT_END}`);
    const data = Buffer.from(lines.slice(i + 1, end).join(''), 'base64');
    if (data.length !== Number(size)) throw new Error(`export_file ${name}: the guest sent ${size} bytes, ${data.length} arrived`);
    exported.set(name, data);
    i = end;
  }
  return exported;
}

/** The script's exit status, or null when the guest never printed it (the kernel died, or the script powered off). */
export function parseExitCode(console: string): number | null {
  const m = EXIT_LINE.exec(console);
  return m ? Number(m[1]) : null;
}

function lastLines(text: string, n: number): string {
  return text.split('\n').slice(-n).join('\n');
}

// ---- running ----

export interface Arm64VmRun {
  /** Everything on the serial console (the kernel's boot messages, then the script's output), LF line ends. */
  console: string;
  exported: Map<string, Buffer>;
  /** The script's exit status; null when it never returned (see `parseExitCode`). */
  exitCode: number | null;
  /** From starting qemu to the script starting. */
  bootMs: number;
}

export interface Arm64VmOptions {
  /** Put into the guest before it boots; absolute paths, parent directories are created. */
  files: GuestFile[];
  /** Run by busybox `sh` as root in /root, with `export_file PATH` defined; stdin is /dev/null. */
  script: string;
  /** The whole run, boot included; default 150 s. */
  timeoutMs?: number;
  /** Guest RAM (the initramfs lives in it); default 1024. */
  memoryMb?: number;
}

function qemuArgs(assets: Arm64VmAssets, initrd: string, memoryMb: number): string[] {
  return [
    // why pauth-impdef: TCG emulates pointer authentication's architected cipher (QARMA) slowly; the
    // implementation-defined one keeps `max`'s features and boots faster
    '-M', 'virt', '-accel', 'tcg', '-cpu', 'max,pauth-impdef=on', '-smp', '2', '-m', String(memoryMb),
    // why -nic none: the default NIC wants efi-virtio.rom, which qemu-system-arm's Depends do not install
    '-nographic', '-monitor', 'none', '-nic', 'none', '-no-reboot',
    '-kernel', assets.kernel, '-initrd', initrd,
    '-append', 'console=ttyAMA0 rdinit=/init quiet panic=-1',
  ];
}

/** Runs qemu until it exits; the console and when the script started, or a timeout error with the console's tail. */
function runQemu(args: string[], timeoutMs: number): Promise<{ console: string; bootMs: number | null }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(QEMU, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    let bootMs: number | null = null;
    let seen = '';
    const text = () => Buffer.concat(out).toString('utf8').replace(/\r\n?/g, '\n');
    child.stdout.on('data', (d: Buffer) => {
      out.push(d);
      if (bootMs === null) {
        // why: keep only a marker's length of the previous chunk, the marker may straddle two chunks
        seen = (seen + d.toString('latin1')).slice(-(SCRIPT_START.length + d.length));
        if (seen.includes(SCRIPT_START)) bootMs = Date.now() - started;
      }
    });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(new Error(`could not start ${QEMU}: ${e.message}`)); });
    // why settle on close: the caller learns of a timeout only once qemu is gone
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) {
        const qemuSaid = stderr ? `\nqemu: ${stderr.trim()}` : '';
        reject(new Error(`the arm64 VM did not power off within ${timeoutMs} ms and was killed; its last console lines:\n${lastLines(text(), 40)}${qemuSaid}`));
        return;
      }
      if (code !== 0) {
        reject(new Error(`${QEMU} exited with ${code ?? signal}: ${stderr.trim()}\nlast console lines:\n${lastLines(text(), 40)}`));
        return;
      }
      resolve({ console: text(), bootMs });
    });
  });
}

/**
 * Boots the arm64 kernel with an initramfs holding `files` and runs `script` as root. The guest has busybox,
 * openssl, gnutls-cli and tstclnt (NSS), lo up, `localhost` in /etc/hosts, and proc, sysfs, devtmpfs, tracefs (/sys/kernel/tracing), debugfs, bpffs
 * (/sys/fs/bpf) and cgroup2 (/sys/fs/cgroup) mounted; no other network. Throws when the script never starts
 * or the VM outlives `timeoutMs`, with the console's last lines.
 */
export async function runInArm64Vm(opts: Arm64VmOptions): Promise<Arm64VmRun> {
  const assets = await ensureArm64VmAssets();
  const dir = await mkdtemp(join(tmpdir(), 'tapscope-arm64-vm-'));
  try {
    const initrd = join(dir, 'initrd.gz');
    await writeFile(initrd, await buildInitramfs(assets, opts.files, opts.script));
    const timeoutMs = opts.timeoutMs ?? 150_000;
    const { console, bootMs } = await runQemu(qemuArgs(assets, initrd, opts.memoryMb ?? 1024), timeoutMs);
    if (bootMs === null) throw new Error(`the arm64 VM powered off before the script started; its last console lines:\n${lastLines(console, 40)}`);
    return { console, exported: parseExports(console), exitCode: parseExitCode(console), bootMs };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
