#!/usr/bin/env bash
# One-time set-up on a fresh Debian/Ubuntu machine: the OpenBLAS development package (OpenMP
# build: one threading runtime shared with our kernels), npm dependencies, the native addon and
# the TypeScript build. With --run it then runs the main job.
set -euo pipefail
cd "$(dirname "$0")/.."

need_blas=1
for h in /usr/include/x86_64-linux-gnu/cblas.h /usr/include/aarch64-linux-gnu/cblas.h /usr/include/cblas.h; do
  [ -f "$h" ] && need_blas=0
done
if [ "$need_blas" = 1 ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "[setup] installing libopenblas-openmp-dev"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libopenblas-openmp-dev g++ make python3
fi

# Debian's chromium, for the browser tests of `stackwise serve` (driven by playwright-core).
if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "[setup] installing chromium (browser tests of stackwise serve)"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
fi

echo "[setup] installing npm dependencies and building the native addon"
npm ci --no-audit --no-fund
echo "[setup] compiling TypeScript"
npm run build --silent

if [ "${1:-}" = "--run" ]; then
  node bin/stackwise.js
fi
