#!/usr/bin/env bash
# The test command of the README and of CI: installs what is missing, builds avlens twice
# (release with gcc; debug with clang under AddressSanitizer + UndefinedBehaviorSanitizer, with
# the libFuzzer targets), runs every test but the `slow` label in the release build, and the
# unit, fuzz-replay and cli tests under the sanitizers.
#   scripts/test.sh            everything
#   scripts/test.sh --fast     release build only
#   AVL_JOBS=N                 parallel build jobs (default: number of cores)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
"$here/scripts/install-deps.sh" --render   # chromium: tests/cli/test_demo.sh renders the demo report
jobs=${AVL_JOBS:-$(nproc)}

echo "== release build (gcc) =="
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >build-cmake.log 2>&1 || { cat build-cmake.log; exit 1; }
cmake --build build -j"$jobs" >/dev/null
ctest --test-dir build -LE slow --output-on-failure -j"$jobs"

if [ "${1:-}" != "--fast" ]; then
  echo "== debug build (clang, ASan + UBSan, libFuzzer targets) =="
  CC=clang CXX=clang++ cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DAVL_SANITIZE=ON -DAVL_FUZZ=ON \
    >build-cmake.log 2>&1 || { cat build-cmake.log; exit 1; }
  cmake --build build-asan -j"$jobs" >/dev/null
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir build-asan -L 'unit|fuzz|cli' --output-on-failure -j"$jobs"
fi
rm -f build-cmake.log
