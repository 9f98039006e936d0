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
check unknown_backend 1 "unknown backend 'tpu' \(known: cpu, cuda, cuda-tf32\)" -- "$LRA" demo --backend tpu
# without a GPU (or without CUDA in the build) the cuda backend is refused with the reason
if ! "$LRA" backends | grep -qE '^cuda +yes'; then
    check cuda_refused 1 "backend 'cuda'( is unavailable: this lra binary was built without CUDA|: no CUDA device available)" \
        -- "$LRA" demo --backend cuda
fi
check bad_steps 2 "--steps: expected an integer in \\[1, 1073741824\\], got 'abc'" -- "$LRA" demo --steps abc
check unknown_option_last 2 "unknown option '--bogus' for 'lra demo'" -- "$LRA" demo --bogus
check missing_value 2 "--steps: missing value" -- "$LRA" demo --steps
check lr_overflow 2 "--lr: expected a positive number, got '1e99'" -- "$LRA" demo --lr 1e99
# two runs with one seed print the same losses and accuracies (timings aside)
a=$("$LRA" demo --steps 50 --length 256 --threads 2 2>&1 | sed -E 's/ +[0-9]+ tokens\/s//; /^(training time|backend )/d')
b=$("$LRA" demo --steps 50 --length 256 --threads 1 2>&1 | sed -E 's/ +[0-9]+ tokens\/s//; /^(training time|backend )/d')
if [ -n "$a" ] && [ "$a" = "$b" ]; then echo "ok   cli/demo_reproducible"; pass=$((pass + 1)); else
    echo "FAIL cli/demo_reproducible: runs differ"; diff <(echo "$a") <(echo "$b") | head; fail=$((fail + 1)); fi
check demo_learns 0 'final test accuracy (0\.9[5-9]|1\.000)' -- "$LRA" demo --threads 2
# ---- lra data ----
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
short="--param min_length=10 --param max_length=40 --param seq_len=48"
check data_list 0 'pathfinder +1024 +256 +2 ' -- "$LRA" data list
check data_show_listops 0 'value [0-9], label [0-9], length [0-9]+ tokens' -- "$LRA" data show listops $short --index 7
check data_show_png 0 "image written to $tmp/p.png \(32x32\)" -- "$LRA" data show pathfinder --out "$tmp/p.png"
sig=$(head -c 8 "$tmp/p.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')
if [ "$sig" = "89504e470d0a1a0a" ]; then echo "ok   cli/data_png_signature"; pass=$((pass + 1)); else
    echo "FAIL cli/data_png_signature: '$sig'"; fail=$((fail + 1)); fi
for sp in train val test; do "$LRA" data export listops --split $sp --out "$tmp/lo" --n 5 $short >/dev/null 2>&1; done
gen=$("$LRA" data show listops --split val --index 3 $short | tail -2)
back=$("$LRA" data show listops --split val --index 3 --param data_dir="$tmp/lo" | tail -2)
if [ -n "$gen" ] && [ "$gen" = "$back" ]; then echo "ok   cli/data_export_roundtrip"; pass=$((pass + 1)); else
    echo "FAIL cli/data_export_roundtrip: '$gen' vs '$back'"; fail=$((fail + 1)); fi
check data_build 0 'cache: built .*listops-[0-9a-f]{16}\.lds' -- "$LRA" data build listops --cache "$tmp/c" $short
check data_build_again 0 'cache: loaded ' -- "$LRA" data build listops --cache "$tmp/c" $short
check data_unknown_task 1 "unknown task 'nope' \(known: listops, text, retrieval, image, pathfinder, pathx\)" -- "$LRA" data show nope
check data_bad_param 1 '--param: listops.foo: unknown parameter \(known: ' -- "$LRA" data show listops --param foo=1
check data_bad_split 2 "--split: unknown split 'dev' \(choices: train, val, test\)" -- "$LRA" data show listops --split dev
check data_no_subcommand 2 "missing subcommand" -- "$LRA" data
check data_missing_dir 1 "basic_train.tsv" -- "$LRA" data show listops --param data_dir="$tmp/none"
# ---- lra dump and lra bench ----
tiny="--model mixer=attention --model d_model=8 --model n_layers=1"
check dump_writes 0 "wrote $tmp/b.safetensors: attention, [0-9]+ parameter tensors .*batch 2 of listops/train, loss [0-9.]+" \
    -- "$LRA" dump listops $short $tiny --batch 2 --out "$tmp/b.safetensors"
check dump_missing_out 2 "missing --out FILE" -- "$LRA" dump listops
check dump_bad_model_key 1 "--model: model.d_modle: unknown parameter" -- "$LRA" dump listops $short --model d_modle=8 --out "$tmp/x"
check dump_bad_mixer_key 1 "--model: mixer.attention.head: unknown parameter" \
    -- "$LRA" dump listops $short --model mixer=attention --model mixer.head=2 --out "$tmp/x"
check dump_bad_mode 2 "--mode: expected eval or train, got 'test'" -- "$LRA" dump listops --mode test --out "$tmp/x"
check bench_runs 0 "attention +64 +[0-9.]+ +[0-9.]+" -- "$LRA" bench --mixers attention --lengths 64 --batch 2 --width 8 --repeats 1 --out "$tmp/bench.csv"
check bench_csv 0 "^impl,device,threads,mixer" -- head -1 "$tmp/bench.csv"
check bench_bad_mixer 2 "--mixers: unknown mixer 'transformer'" -- "$LRA" bench --mixers transformer

echo "$pass passed, $fail failed, 0 skipped"
[ "$fail" -eq 0 ]
