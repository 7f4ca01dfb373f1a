#!/usr/bin/env bash
# tests/cli/test_backend.sh: `avlens backend` names a backend, its ISA and the thread count.
set -euo pipefail
pass=0
ok() { pass=$((pass + 1)); }

out=$("$AVL_CLI" backend)
case "$out" in onednn:*isa*|openblas:*core*) ok ;; *) echo "unexpected: $out"; exit 1 ;; esac
out=$("$AVL_CLI" backend --threads 1 openblas)
case "$out" in "openblas: "*"; 1 threads") ok ;; *) echo "unexpected: $out"; exit 1 ;; esac
[ "$("$AVL_CLI" backend ref)" = "ref: plain C reference (single-threaded)" ] && ok
[ "$("$AVL_CLI" backend --all | wc -l)" -eq 4 ] && ok
"$AVL_CLI" backend --help | grep -q "usage: avlens backend" && ok
set +e
err=$("$AVL_CLI" backend cuda 2>&1 >/dev/null); rc=$?
set -e
[ $rc -eq 1 ] && [ "$err" = "avlens backend: gemm backend 'cuda': unknown (expected auto, ref, onednn or openblas)" ] && ok
set +e
"$AVL_CLI" backend --bogus >/dev/null 2>&1; rc=$?
set -e
[ $rc -eq 2 ] && ok
echo "$pass passed, 0 failed"
