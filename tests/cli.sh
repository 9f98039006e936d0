#!/usr/bin/env bash
# cli.sh: checks of the lra command itself (exit codes and messages).
# Prints the runner's closing line like the C test programs.
set -u
LRA=${LRA:-build/lra}
pass=0; fail=0
check() {  # check NAME EXPECTED_RC PATTERN -- command...
    local name=$1 want_rc=$2 pat=$3; shift 4
    local out rc
    out=$("$@" 2>&1); rc=$?
    if [ "$rc" -eq "$want_rc" ] && grep -qE -- "$pat" <<<"$out"; then
        echo "ok   cli/$name"; pass=$((pass + 1))
    else
        echo "FAIL cli/$name: rc=$rc (want $want_rc), output:"; sed 's/^/    /' <<<"$out" | head -20
        fail=$((fail + 1))
    fi
}
check help 0 'usage: lra' -- "$LRA" --help
check unknown_command 2 "unknown command 'frobnicate'" -- "$LRA" frobnicate
check backends 0 'cpu +yes' -- "$LRA" backends
check unknown_backend 1 "unknown backend 'tpu' \(known: cpu, cuda\)" -- "$LRA" demo --backend tpu
# without a GPU (or without CUDA in the build) the cuda backend is refused with the reason
if ! "$LRA" backends | grep -qE '^cuda +yes'; then
    check cuda_refused 1 "backend 'cuda'( is unavailable: this lra binary was built without CUDA|: no CUDA device available)" \
        -- "$LRA" demo --backend cuda
fi
check bad_steps 1 "--steps: expected a positive integer, got 'abc'" -- "$LRA" demo --steps abc
# two runs with one seed print the same losses and accuracies (timings aside)
a=$("$LRA" demo --steps 50 --length 256 --threads 2 2>&1 | sed -E 's/ +[0-9]+ tokens\/s//; /^(training time|backend )/d')
b=$("$LRA" demo --steps 50 --length 256 --threads 1 2>&1 | sed -E 's/ +[0-9]+ tokens\/s//; /^(training time|backend )/d')
if [ -n "$a" ] && [ "$a" = "$b" ]; then echo "ok   cli/demo_reproducible"; pass=$((pass + 1)); else
    echo "FAIL cli/demo_reproducible: runs differ"; diff <(echo "$a") <(echo "$b") | head; fail=$((fail + 1)); fi
check demo_learns 0 'final test accuracy (0\.9[5-9]|1\.000)' -- "$LRA" demo --threads 2
echo "$pass passed, $fail failed, 0 skipped"
[ "$fail" -eq 0 ]
