#!/usr/bin/env bash
# One-time setup on a fresh Debian/Ubuntu machine: system packages, then npm ci (which builds the
# TypeScript and the native oneDNN addon). Safe to re-run; installs only what is missing.
#   VILG_SETUP_TORCH=0  skip PyTorch + OpenBLAS (only the benchmark baseline and fixture generator need them)
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(libdnnl-dev g++ make)
if [ "${VILG_SETUP_TORCH:-1}" = 1 ]; then pkgs+=(python3-torch libopenblas0-pthread); fi
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
npm ci --no-audit --no-fund
node dist/src/cli/main.js info
