#!/usr/bin/env bash
# Builds the capture helpers: x86-64 (eBPF + AF_PACKET) always, aarch64 (AF_PACKET; native/Makefile) when
# the cross toolchain and Debian's arm64 libraries are installed (scripts/install-deps.sh installs them);
# without them, Kubernetes and SSH targets leave aarch64 nodes out and say so.
set -euo pipefail
cd "$(dirname "$0")/.."
make -C native
if command -v aarch64-linux-gnu-gcc >/dev/null && [ -f /usr/lib/aarch64-linux-gnu/libelf.a ]; then
  make -C native HELPER_ARCH=arm64
else
  echo "build-native: no aarch64 cross toolchain or arm64 libelf (scripts/install-deps.sh installs them): the aarch64 helper is not built" >&2
fi
