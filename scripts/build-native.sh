#!/usr/bin/env bash
# Builds the capture helpers: x86-64 (eBPF + AF_PACKET) always, aarch64 (the same, cross-compiled; native/Makefile)
# when the cross compiler and the arm64 package lists are there (scripts/install-deps.sh sets them up); without
# them, Kubernetes and SSH targets leave aarch64 nodes out and say so.
set -euo pipefail
cd "$(dirname "$0")/.."
make -C native
# Debian's arm64 static libbpf, libelf, zlib, zstd, libpcap and libdbus, unpacked (not installed: see install-deps.sh) into a sysroot
SYSROOT=native/build-arm64/sysroot
ARM64_LIBS=(libbpf-dev:arm64 libelf-dev:arm64 zlib1g-dev:arm64 libzstd-dev:arm64 libpcap0.8-dev:arm64 libdbus-1-dev:arm64)
if ! command -v aarch64-linux-gnu-gcc >/dev/null; then
  echo "build-native: no aarch64 cross compiler (scripts/install-deps.sh installs gcc-aarch64-linux-gnu): the aarch64 helper is not built" >&2
  exit 0
fi
if [ ! -f "$SYSROOT/usr/lib/aarch64-linux-gnu/libbpf.a" ] || [ ! -f "$SYSROOT/usr/lib/aarch64-linux-gnu/libelf.a" ] \
  || [ ! -f "$SYSROOT/usr/lib/aarch64-linux-gnu/libpcap.a" ] || [ ! -f "$SYSROOT/usr/lib/aarch64-linux-gnu/libdbus-1.a" ]; then
  debs=$(mktemp -d)
  trap 'rm -rf "$debs"' EXIT
  if ! (cd "$debs" && apt-get download -qq "${ARM64_LIBS[@]}" >/dev/null 2>&1); then
    echo "build-native: could not download ${ARM64_LIBS[*]} (no arm64 package lists: scripts/install-deps.sh adds them): the aarch64 helper is not built" >&2
    exit 0
  fi
  mkdir -p "$SYSROOT"
  for d in "$debs"/*.deb; do dpkg-deb -x "$d" "$SYSROOT"; done
fi
make -C native HELPER_ARCH=arm64 ARM64_SYSROOT="$PWD/$SYSROOT"
