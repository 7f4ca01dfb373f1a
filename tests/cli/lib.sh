# tests/cli/lib.sh: what every CLI test begins with; a test sources it right after `set -euo pipefail`:
#   . "$AVL_SOURCE_DIR/tests/cli/lib.sh"
# It checks the environment ctest gives (tests/CMakeLists.txt), empties the test's scratch folder
# $work, and defines the counters and checks below. A test ends with `finish`, which prints the
# "N passed, M failed" line ctest shows and fails when M > 0.
cli=${AVL_CLI:?}
work=${AVL_TEST_WORK:?}
rm -rf "$work" && mkdir -p "$work"
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*" >&2; fail=$((fail + 1)); }
# ff ARGS: the ffmpeg program, quiet, overwriting, never reading stdin (clips for the tests)
ff() { ffmpeg -hide_banner -loglevel error -nostdin -y "$@"; }

# expect STATUS SUBSTRING CMD...: runs CMD, checks its exit status and that stderr holds
# SUBSTRING (and, for status 1, is one line: errors are one line naming the file and the problem).
expect() {
  local want=$1 sub=$2; shift 2
  local got=0
  "$@" >"$work/out" 2>"$work/err" || got=$?
  if [ "$got" != "$want" ]; then bad "$* exited $got, wanted $want: $(cat "$work/err")"; return; fi
  if ! grep -qF -- "$sub" "$work/err"; then bad "$*: stderr lacks '$sub': $(cat "$work/err")"; return; fi
  if [ "$want" = 1 ] && [ "$(wc -l <"$work/err")" != 1 ]; then bad "$*: stderr is not one line: $(cat "$work/err")"; return; fi
  ok
}

finish() {
  echo "$pass passed, $fail failed"
  [ "$fail" = 0 ]
}
