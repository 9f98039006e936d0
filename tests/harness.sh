#!/usr/bin/env bash
# harness.sh: `lra sweep` / `lra run` / `lra runs` end to end on tiny configs:
# the rows a sweep writes, --resume skipping finished runs, resume after
# kill -9 and after Ctrl-C giving the same results as an uninterrupted run,
# concurrent writers on one database, divergence handling, a bad sweep point
# failing before any training. Needs the sqlite3 shell (make deps installs it).
# Prints the runner's closing line like the C test programs.
set -u
LRA=${LRA:-build/lra}
TINY=tests/harness/tiny.yaml
pass=0; fail=0
ok() { echo "ok   harness/$1"; pass=$((pass + 1)); }
bad() { echo "FAIL harness/$1: $2"; fail=$((fail + 1)); }
check() {  # check NAME CONDITION-COMMAND... (message from the last command's output)
    local name=$1; shift
    if "$@"; then ok "$name"; else bad "$name" "$*"; fi
}
if ! command -v sqlite3 >/dev/null; then
    echo "harness: sqlite3 shell not found (make deps installs it)"; echo "0 passed, 1 failed"; exit 1
fi
tmp=$(mktemp -d /tmp/lra_harness_XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
common=(--set "out_dir=$tmp/runs" --set "cache=$tmp/cache" --quiet)
q() { sqlite3 -batch -noheader "$1" "$2"; }

# ---- a tiny sweep: the rows it writes ----
db=$tmp/a.db
out=$("$LRA" sweep $TINY --db "$db" "${common[@]}" 2>&1); rc=$?
check sweep_exit test "$rc" -eq 0
check sweep_table grep -qE '^4 +tiny/model.mixer=s4d,seed=2 +done' <<<"$out"
check runs_done test "$(q "$db" "SELECT count(*) FROM runs WHERE status = 'done' AND step = 40")" = 4
check runs_hashes test "$(q "$db" "SELECT count(DISTINCT hash) FROM runs")" = 4
check runs_identity test "$(q "$db" "SELECT count(*) FROM runs WHERE git_commit <> '' AND build_flags <> '' AND host <> ''
    AND device <> '' AND n_params > 0 AND config LIKE '%model.mixer = %' AND started_at <= ended_at")" = 4
check metrics_train test "$(q "$db" "SELECT count(*) FROM metrics WHERE split = 'train'")" = 32   # 40 / 5 per run
check metrics_val test "$(q "$db" "SELECT count(*) FROM metrics WHERE split = 'val'")" = 16       # every 10 steps
check metrics_test_at_best test "$(q "$db" "SELECT count(*) FROM runs r JOIN metrics m ON m.run_id = r.id
    AND m.split = 'test' AND m.step = r.best_step AND abs(m.acc - r.test_acc) < 1e-12")" = 4
check perf_rows test "$(q "$db" "SELECT count(*) FROM perf WHERE tokens_per_s > 0 AND step_ms_p50 > 0
    AND peak_backend_bytes > 0 AND peak_rss_bytes > 0")" = 8
check schema_version test "$(q "$db" "PRAGMA user_version")" = 1
check wal_mode test "$(q "$db" "PRAGMA journal_mode")" = wal
check checkpoints test -s "$tmp/runs/run-1/best.safetensors" -a -s "$tmp/runs/run-4/last.safetensors"

# --resume: every run is done, nothing trains again; without it, a new repetition
out=$("$LRA" sweep $TINY --db "$db" "${common[@]}" --resume 2>&1); rc=$?
check resume_skips grep -q '0 done, 0 diverged, 0 failed, 4 skipped' <<<"$out"
check resume_no_rows test "$(q "$db" "SELECT count(*) FROM runs")" = 4
"$LRA" sweep $TINY --db "$db" "${common[@]}" --set seed=1 >/dev/null 2>&1
check rerun_new_rows test "$(q "$db" "SELECT count(*) FROM runs")" = 6

# lra runs and lra run
check runs_filter test "$("$LRA" runs --db "$db" --mixer s4d --status done | grep -c ' s4d ')" = 3
check runs_limit test "$("$LRA" runs --db "$db" --limit 2 | tail -n +2 | wc -l)" = 2
out=$("$LRA" run $TINY --db "$db" "${common[@]}" 2>&1); rc=$?
check run_needs_one_point test "$rc" -eq 2 -a -n "$(grep 'expands to 4 runs: use lra sweep' <<<"$out")"

# ---- a bad sweep point fails the sweep before anything trains ----
printf 'task: {name: listops, seq_len: 32, min_length: 10, max_length: 30}\nsweep:\n  optim.lr: [0.01, -1]\n' > "$tmp/bad.yaml"
out=$("$LRA" sweep "$tmp/bad.yaml" --db "$tmp/bad.db" "${common[@]}" 2>&1); rc=$?
check bad_point_rc test "$rc" -eq 1
check bad_point_msg grep -qF "bad.yaml:3:20: optim.lr: expected a number in [1e-12, 10], got '-1' (sweep point 2 of 2: optim.lr=-1)" <<<"$out"
check bad_point_no_db test ! -e "$tmp/bad.db"

# ---- divergence: marked with the step and tensor, the sweep goes on ----
out=$(LRA_DEBUG_NAN=7:blocks.0.mixer.kernel.C "$LRA" sweep $TINY --db "$tmp/nan.db" "${common[@]}" 2>&1); rc=$?
check diverged_rc test "$rc" -eq 0
check diverged_rows test "$(q "$tmp/nan.db" "SELECT group_concat(status, ',') FROM runs")" = "done,done,diverged,diverged"
check diverged_msg test "$(q "$tmp/nan.db" "SELECT DISTINCT error FROM runs WHERE status = 'diverged'")" = \
    "step 7: gradient norm is nan; first non-finite gradient: blocks.0.mixer.kernel.C"

# ---- resume after kill -9 and after Ctrl-C equals the uninterrupted run ----
long=(--set model.mixer=attention --set seed=1 --set train.steps=1500 --set train.eval_every=20 --set train.log_every=10)
"$LRA" sweep $TINY --db "$tmp/ref.db" "${common[@]}" "${long[@]}" >/dev/null 2>&1
curve() { q "$1" "SELECT split, step, loss, acc, lr, grad_norm, examples FROM metrics ORDER BY split, step"; }
final() { q "$1" "SELECT status, step, best_step, best_val_acc, test_acc, test_loss FROM runs"; }
interrupt() {  # interrupt NAME SIGNAL: start the long run, stop it mid-way with SIGNAL, resume, compare
    local name=$1 sig=$2 d=$tmp/$1.db
    "$LRA" sweep $TINY --db "$d" "${common[@]}" "${long[@]}" >/dev/null 2>&1 &
    local pid=$! s=0
    for _ in $(seq 600); do
        s=$(q "$d" "SELECT step FROM runs" 2>/dev/null); s=${s:-0}
        [ "$s" -ge 200 ] && break; sleep 0.02
    done
    kill -"$sig" $pid; { wait $pid; } 2>/dev/null; local rc=$?
    local st; st=$(q "$d" "SELECT status || ' ' || step FROM runs")
    if [ "$sig" = KILL ]; then
        check "${name}_killed_mid_run" test "$rc" -eq 137 -a "${st% *}" = running -a "${st#* }" -lt 1500
    else
        check "${name}_marked_interrupted" test "$rc" -eq 130 -a "${st% *}" = interrupted -a "${st#* }" -lt 1500
    fi
    "$LRA" sweep $TINY --db "$d" "${common[@]}" "${long[@]}" --resume >/dev/null 2>&1
    check "${name}_resumed_same_curve" test "$(curve "$d")" = "$(curve "$tmp/ref.db")"
    check "${name}_resumed_same_result" test "$(final "$d")" = "$(final "$tmp/ref.db")"
    check "${name}_one_run_row" test "$(q "$d" "SELECT count(*) FROM runs")" = 1
}
interrupt kill9 KILL
interrupt ctrl_c INT

# ---- concurrent writers: two workers share one sweep, a third writes another ----
conc=(--set train.steps=150 --set train.eval_every=10 --set train.log_every=1)
d=$tmp/conc.db
"$LRA" sweep $TINY --db "$d" "${common[@]}" "${conc[@]}" --resume >"$tmp/w1" 2>&1 & p1=$!
"$LRA" sweep $TINY --db "$d" "${common[@]}" "${conc[@]}" --resume >"$tmp/w2" 2>&1 & p2=$!
"$LRA" sweep $TINY --db "$d" "${common[@]}" "${conc[@]}" --set name=other --set data_seed=2 >"$tmp/w3" 2>&1 & p3=$!
wait $p1; r1=$?; wait $p2; r2=$?; wait $p3; r3=$?
check concurrent_exit test "$r1$r2$r3" = 000
check concurrent_each_once test "$(q "$d" "SELECT count(*) || ' ' || count(DISTINCT hash) FROM runs WHERE status = 'done'")" = "8 8"
check concurrent_rows test "$(q "$d" "SELECT count(*) FROM metrics WHERE split = 'train'")" = 1200
check concurrent_integrity test "$(q "$d" "PRAGMA integrity_check")" = ok

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
