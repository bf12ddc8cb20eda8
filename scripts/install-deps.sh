#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages that building the helper and running the suite need.
# Idempotent: does nothing when every package is already there. Needs root (or sudo).
set -euo pipefail
PKGS=(
  # build: C helper + eBPF objects
  make clang llvm libbpf-dev libelf-dev zlib1g-dev libzstd-dev bpftool gcc libc6-dev pkg-config
  # the capture filter (--filter): libpcap compiles it; its static archive brings libdbus's
  libpcap0.8-dev libdbus-1-dev
  # capture peers and network plumbing for tests and benchmarks
  tshark tcpdump iproute2 iperf3 procps time
  # compressed captures: files of the compressors tapscope names (it reads gzip itself)
  zstd xz-utils bzip2
  # real TLS clients and servers from several libraries
  curl wget openssl gnutls-bin libnss3-tools libnss3-dev openjdk-17-jdk-headless golang-go python3
  android-libboringssl android-libboringssl-dev
  # database clients that switch to TLS in place (Postgres SSLRequest, MySQL SSL request): libpq and MariaDB's, both OpenSSL
  postgresql-client mariadb-client-core
  # an LDAP client that switches to TLS in place (StartTLS): OpenLDAP's ldapsearch, on GnuTLS
  ldap-utils
  # a NATS server (its clients start TLS after its INFO line) and SQL Server's client from FreeTDS (tsql, on GnuTLS:
  # TLS inside TDS PRELOGIN packets)
  nats-server freetds-bin
  # an HTTP/3 client and server over QUIC (ngtcp2 on GnuTLS, nghttp3) that write SSLKEYLOGFILE
  ngtcp2-client ngtcp2-server
  # a web server that takes HTTP/2 by upgrade from cleartext HTTP/1.1 (Upgrade: h2c; mod_http2)
  apache2
  # a load balancer that sends (and a service that takes) the PROXY protocol header
  haproxy
  # DNS over TCP: a server and a client that asks over TCP (dig +tcp)
  dnsmasq-base bind9-dnsutils
  # a Service's DNAT on a node, as kube-proxy's rules make it (nft)
  nftables
  # SSH targets
  openssh-server openssh-client sudo
  # UI tests
  chromium xvfb
)
# the aarch64 helper: a cross compiler and qemu to run it in tests (host packages); Debian's arm64 static libraries
# are downloaded and unpacked by scripts/build-native.sh, not installed: installing arm64 libraries side by side
# (multiarch) pulls arm64 libc6-dev, libkrb5 and libssl3, and upgrades the host's libssl3 and openssl to match.
# qemu-system-arm (x86-64, provides qemu-system-aarch64): the tests boot an aarch64 kernel to test the aarch64
# helper's eBPF mode, which qemu-user cannot run (no BPF syscall); test/lib/arm64-vm.ts downloads that kernel
# and its userland with `apt-get download`, like build-native.sh
ARM64_PKGS=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user-static qemu-system-arm)

# Lets this machine run aarch64 binaries through qemu (the tests run the aarch64 helper): binfmt_misc's
# qemu-aarch64 entry, registered from the file qemu-user-static installs. Root only; says why it could not.
register_arm64_exec() {
  [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] && return 0
  [ "$(id -u)" = 0 ] || { echo "install-deps: not root: cannot register qemu-aarch64 with binfmt_misc (the aarch64 helper tests need it)" >&2; return 0; }
  local conf=/usr/lib/binfmt.d/qemu-aarch64.conf
  [ -f "$conf" ] || { echo "install-deps: $conf missing: aarch64 binaries will not run here" >&2; return 0; }
  [ -e /proc/sys/fs/binfmt_misc/register ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || return 0
  cat "$conf" > /proc/sys/fs/binfmt_misc/register && echo "install-deps: registered qemu-aarch64 with binfmt_misc"
}
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
missing=()
for p in "${PKGS[@]}"; do installed "$p" || missing+=("$p"); done
arm64_missing=()
for p in "${ARM64_PKGS[@]}"; do installed "$p" || arm64_missing+=("$p"); done
# the arm64 package lists, for scripts/build-native.sh's `apt-get download` of libelf-dev:arm64 and the rest
arm64_lists() { apt-cache show libelf-dev:arm64 >/dev/null 2>&1; }
if [ ${#missing[@]} -eq 0 ] && [ ${#arm64_missing[@]} -eq 0 ] && arm64_lists; then
  echo "install-deps: all $(( ${#PKGS[@]} + ${#ARM64_PKGS[@]} )) system packages present"
  register_arm64_exec
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo (missing: ${missing[*]})" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ ${#arm64_missing[@]} -gt 0 ] || ! arm64_lists; then
  # why apart: the arm64 package lists come from the distribution's arm64 archive (Debian's mirrors carry it;
  # Ubuntu's arm64 packages live on ports.ubuntu.com): without them the x86-64 build and its tests go on, and
  # the aarch64 helper is not built (scripts/build-native.sh says so)
  echo "install-deps: the aarch64 helper's toolchain and package lists${arm64_missing[*]:+ (installing ${arm64_missing[*]})}"
  if ! { dpkg --print-foreign-architectures | grep -qx arm64 || $SUDO dpkg --add-architecture arm64; } || ! $SUDO apt-get update -qq \
    || { [ ${#arm64_missing[@]} -gt 0 ] && ! $SUDO apt-get install -y -qq --no-install-recommends "${arm64_missing[@]}" >/dev/null; }; then
    echo "install-deps: could not set up the aarch64 build (${arm64_missing[*]:-arm64 package lists}): the aarch64 helper will not be built" >&2
  fi
fi
register_arm64_exec
echo "install-deps: done"
