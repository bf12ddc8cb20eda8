#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages that building the helper and running the suite need.
# Idempotent: does nothing when every package is already there. Needs root (or sudo).
set -euo pipefail
PKGS=(
  # build: C helper + eBPF objects
  make clang llvm libbpf-dev libelf-dev zlib1g-dev libzstd-dev bpftool gcc libc6-dev pkg-config
  # capture peers and network plumbing for tests and benchmarks
  tshark tcpdump iproute2 iperf3 procps time
  # real TLS clients and servers from several libraries
  curl wget openssl gnutls-bin libnss3-tools libnss3-dev openjdk-17-jdk-headless golang-go python3
  android-libboringssl android-libboringssl-dev
  # SSH targets
  openssh-server openssh-client sudo
  # UI tests
  chromium xvfb
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} system packages present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: run as root or install sudo (missing: ${missing[*]})" >&2; exit 1; }
  SUDO="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
