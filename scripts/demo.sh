#!/usr/bin/env bash
# The README's first command: installs what is missing, builds avlens and runs its demo on the
# embedded default (a tiny Qwen2.5-Omni-shaped checkpoint that avlens writes itself).
#   scripts/demo.sh [--out DIR]      (default DIR: demo/)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
"$here/scripts/install-deps.sh"
jobs=${AVL_JOBS:-$(nproc)}
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >build-cmake.log 2>&1 || { cat build-cmake.log; exit 1; }
rm -f build-cmake.log
cmake --build build -j"$jobs" --target avlens_cli >/dev/null
exec "$here/build/avlens" demo "$@"
