#!/usr/bin/env bash
# reports.sh: checks of the report commands (lra table, plot, regress, report)
# on the fixture database tests/fixtures/reports.sql: golden outputs under
# tests/golden/ (regenerate with UPDATE_GOLDEN=1 after checking the change),
# regression detection on synthetic slower and faster sample sets, and no
# regression on identical ones. Prints the runner's closing line.
set -u
LRA=${LRA:-build/lra}
here=$(cd "$(dirname "$0")" && pwd)
pass=0; fail=0; skip=0
ok()   { echo "ok   reports/$1"; pass=$((pass + 1)); }
bad()  { echo "FAIL reports/$1: $2"; fail=$((fail + 1)); }
skipped() { echo "skip reports/$1: $2"; skip=$((skip + 1)); }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# the fixture: lra creates the schema, sqlite3 loads the rows
if ! command -v sqlite3 >/dev/null; then
    echo "skip reports: the sqlite3 shell is not installed"; echo "0 passed, 0 failed, 1 skipped"; exit 0
fi
db=$tmp/fx.db
: > "$db"
"$LRA" table --db "$db" >/dev/null 2>&1 && sqlite3 "$db" < "$here/fixtures/reports.sql" || { bad fixture "could not build"; }

golden() {  # golden NAME -- command...: stdout compared with tests/golden/NAME
    local name=$1; shift 2
    local out rc
    out=$("$@" 2>&1); rc=$?
    if [ "${UPDATE_GOLDEN:-0}" = 1 ]; then printf '%s\n' "$out" > "$here/golden/$name"; fi
    if [ "$rc" -eq 0 ] && diff -u "$here/golden/$name" <(printf '%s\n' "$out") > "$tmp/diff"; then ok "golden_$name"
    else bad "golden_$name" "rc=$rc, differs from tests/golden/$name:"; head -40 "$tmp/diff" | sed 's/^/    /'; fi
}
check() {  # check NAME EXPECTED_RC PATTERN -- command...
    local name=$1 want_rc=$2 pat=$3; shift 4
    local out rc
    out=$("$@" 2>&1); rc=$?
    if [ "$rc" -eq "$want_rc" ] && grep -qE -- "$pat" <<<"$out"; then ok "$name"
    else bad "$name" "rc=$rc (want $want_rc), output:"; sed 's/^/    /' <<<"$out" | head -20; fi
}

# ---- lra table ----
golden table_quick.md -- "$LRA" table --db "$db" --sweep quick --kind accuracy
golden table_quick.csv -- "$LRA" table --db "$db" --sweep quick --kind accuracy --format csv
golden table_quick.tex -- "$LRA" table --db "$db" --sweep quick --kind accuracy --format latex
golden table_speed.md -- "$LRA" table --db "$db" --sweep scaling --kind speed
golden table_speed.csv -- "$LRA" table --db "$db" --sweep scaling --kind speed --format csv
golden table_all.md -- "$LRA" table --db "$db"
golden table_solo.md -- "$LRA" table --db "$db" --sweep solo --kind speed
golden table_solo.csv -- "$LRA" table --db "$db" --sweep solo --kind speed --format csv
golden table_empty_speed.md -- "$LRA" table --db "$db" --sweep quick --kind speed
check table_unknown_sweep 1 "no sweep named 'nope' in .* \(sweeps: quick, scaling, solo\)" -- "$LRA" table --db "$db" --sweep nope
check table_missing_db 1 "no such database" -- "$LRA" table --db "$tmp/none.db"
check table_bad_format 2 "--format: expected md, csv, latex or html, got 'pdf'" -- "$LRA" table --db "$db" --format pdf
"$LRA" table --db "$db" --out "$tmp/t.md" --sweep quick --kind accuracy
if cmp -s "$tmp/t.md" <("$LRA" table --db "$db" --sweep quick --kind accuracy); then ok table_out_file; else bad table_out_file "--out differs from stdout"; fi
# ---- lra plot ----
check plot_bad_kind 2 "--kind: expected scaling or curves, got 'pie'" -- "$LRA" plot --db "$db" --kind pie --out "$tmp/p.png"
check plot_no_out 2 "--out: missing" -- "$LRA" plot --db "$db" --kind scaling
check plot_bad_ext 2 "--out: expected a .png or .svg file name, got '$tmp/p.gif'" -- "$LRA" plot --db "$db" --out "$tmp/p.gif"
check plot_no_run 1 "--runs: no run with id 999 in" -- "$LRA" plot --db "$db" --kind curves --runs 999 --out "$tmp/p.svg"
check plot_no_perf 1 "no training perf rows of task 'image'" -- "$LRA" plot --db "$db" --task image --out "$tmp/p.svg"
if command -v gnuplot >/dev/null; then
    check plot_scaling_png 0 "written" -- "$LRA" plot --db "$db" --sweep scaling --kind scaling --out "$tmp/s.png"
    sig=$(head -c 8 "$tmp/s.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')
    if [ "$sig" = "89504e470d0a1a0a" ] && [ "$(stat -c %s "$tmp/s.png")" -gt 5000 ]; then ok plot_png_signature
    else bad plot_png_signature "'$sig'"; fi
    check plot_curves_svg 0 "written" -- "$LRA" plot --db "$db" --kind curves --runs 1,11 --out "$tmp/c.svg"
    if grep -q '<svg' "$tmp/c.svg" && grep -q '11: s4d listops seed 1' "$tmp/c.svg" && grep -q '1: attention listops seed 1' "$tmp/c.svg"
    then ok plot_svg_labels; else bad plot_svg_labels "the SVG lacks <svg> or the run labels"; fi
    "$LRA" plot --db "$db" --sweep scaling --metric steps --out "$tmp/s.svg" >/dev/null 2>&1
    if grep -q "training steps/s" "$tmp/s.svg" && grep -q ">4K<" "$tmp/s.svg"; then ok plot_svg_axes
    else bad plot_svg_axes "the SVG lacks the steps/s label or the 4K tic"; fi
else
    skipped plot_images "gnuplot is not installed (apt-get install gnuplot-nox)"
fi
# ---- lra regress ----
# synthetic sets: 8 samples around 100 ms and 200 ms, then the same scaled
mkset() {  # mkset FILE FACTOR [ACC]: a baseline file with timings times FACTOR and accuracies ACC
    local f=$1 k=$2 acc=${3:-0.61}
    { echo "# set: synthetic x$k"
      echo "kind,mixer,B,L,H,config,status,median_ms,value,samples"
      echo "layer,s4d,16,1024,256,,ok,0,0,$(for x in 100 101 99 102 98 100.5 99.5 101.5; do awk -v x=$x -v k=$k 'BEGIN{printf "%g ", x*k}'; done)"
      echo "layer,attention,16,1024,256,\"mixer.heads=4,d_ffn=512\",ok,0,0,$(for x in 200 202 198 204 196 201 199 203; do awk -v x=$x -v k=$k 'BEGIN{printf "%g ", x*k}'; done)"
      echo "layer,s4,16,1024,256,,ok,0,0,$(for x in 50 51 49; do awk -v x=$x -v k=$k 'BEGIN{printf "%g ", x*k}'; done)"
      echo "accuracy,s4d,0,1024,0,task=listops,ok,0,$acc,$acc $acc"; } > "$f"
}
mkset "$tmp/base.csv" 1
mkset "$tmp/slow.csv" 1.2
mkset "$tmp/fast.csv" 0.8
mkset "$tmp/near.csv" 1.02
mkset "$tmp/dumb.csv" 1 0.55
check regress_identical 0 "0 regression\(s\)" -- "$LRA" regress --db "$tmp/none.db" --baseline "$tmp/base.csv" --new "$tmp/base.csv"
check regress_identical_same 0 "\| layer \| s4d \| 16 \| 1024 \| 256 \| — \| 100.2 ms \| 100.2 ms \| \+0.0% \| 1 \| same \|" -- "$LRA" regress --db "$tmp/none.db" --baseline "$tmp/base.csv" --new "$tmp/base.csv"
# fully separated 8 against 8: exact two-sided p = 2 / C(16, 8) = 0.000155
check regress_slower 1 "\| layer \| s4d \| 16 \| 1024 \| 256 \| — \| 100.2 ms \| 120.3 ms \| \+20.0% \| 0.000155 \| REGRESSION \|" -- "$LRA" regress --db "$tmp/none.db" --baseline "$tmp/base.csv" --new "$tmp/slow.csv"
check regress_slower_count 1 "3 regression\(s\)" -- "$LRA" regress --db "$tmp/none.db" --baseline "$tmp/base.csv" --new "$tmp/slow.csv"
check regress_slower_quoted_config 1 "\| attention \| 16 \| 1024 \| 256 \| mixer.heads=4,d_ffn=512 \| 200.5 ms \| 240.6 ms \| \+20.0% \| 0.000155 \| REGRESSION" -- "$LRA" regress --db "$tmp/none.db" --baseline "$tmp/base.csv" --new "$tmp/slow.csv"
# 3 against 3 cannot reach p < 0.05 (the least p is 0.1): the median decides
check regress_few_samples 1 "\| s4 \| .* \| \+20.0% \| — \(n=3,3\) \| REGRESSION \(few samples: median only\)" -- "$LRA" regress --db "$tmp/none.db" --baseline "$tmp/base.csv" --new "$tmp/slow.csv"
check regress_faster 0 "\| s4d \| .* \| -20.0% \| 0.000155 \| improvement \|" -- "$LRA" regress --db "$tmp/none.db" --baseline "$tmp/base.csv" --new "$tmp/fast.csv"
check regress_within_threshold 0 "\| s4d \| .* \| \+2.0% \| 0.[0-9]+ \| same \|" -- "$LRA" regress --db "$tmp/none.db" --baseline "$tmp/base.csv" --new "$tmp/near.csv"
check regress_threshold_option 1 "\| s4d \| .* \| \+2.0% \| 0.[0-9]+ \| REGRESSION \|" -- "$LRA" regress --db "$tmp/none.db" --baseline "$tmp/base.csv" --new "$tmp/near.csv" --threshold 1
check regress_accuracy_drop 1 "\| accuracy \| s4d \| 0 \| 1024 \| 0 \| task=listops \| 61.00% \| 55.00% \| -6.00 pts \| — \| REGRESSION \|" -- "$LRA" regress --db "$tmp/none.db" --baseline "$tmp/base.csv" --new "$tmp/dumb.csv"
check regress_accuracy_tolerance 0 "\| -6.00 pts \| — \| same \|" -- "$LRA" regress --db "$tmp/none.db" --baseline "$tmp/base.csv" --new "$tmp/dumb.csv" --tolerance 7
check regress_missing_db 1 "no such database" -- "$LRA" regress --db "$tmp/none.db" --baseline quick
check regress_no_baseline 2 "--baseline: missing" -- "$LRA" regress --db "$db"
# sets in the database: lra bench records one, export and compare it with itself
bdb=$tmp/bench.db
if "$LRA" bench --mixers s4d --lengths 32,64 --batch 2 --width 8 --repeats 3 --threads 1 --db "$bdb" --name one >/dev/null 2>&1 &&
   "$LRA" bench --mixers s4d --lengths 32 --batch 2 --width 8 --repeats 3 --warmup 0 --threads 1 --db "$bdb" --name two >/dev/null 2>&1; then
    rows=$(sqlite3 "$bdb" "SELECT count(*), sum(repeats = 3), sum(length(samples_ms) - length(replace(samples_ms, ',', '')) = 2), sum(median_ms BETWEEN min_ms AND max_ms) FROM bench WHERE status = 'ok'")
    meta=$(sqlite3 "$bdb" "SELECT count(*) FROM bench_sets WHERE name IN ('one', 'two') AND git_commit IS NOT NULL AND build_flags IS NOT NULL AND device IS NOT NULL AND host IS NOT NULL")
    if [ "$rows" = "3|3|3|3" ] && [ "$meta" = 2 ]; then ok bench_db_rows; else bad bench_db_rows "rows '$rows', sets '$meta'"; fi
    "$LRA" bench --mixers s4d --lengths 16,32 --batch 1,2 --width 8 --repeats 2 --threads 1 --db "$bdb" --name grid >/dev/null 2>&1
    "$LRA" bench --kind step --layers 2 --mixers s4d --lengths 32 --batch 2 --width 8 --repeats 2 --threads 1 --db "$bdb" --name step >/dev/null 2>&1
    "$LRA" bench --kind recurrent --mixers s4d,attention --lengths 16 --batch 2 --width 8 --repeats 2 --threads 1 --db "$bdb" --name rec >/dev/null 2>&1
    rec=$(sqlite3 "$bdb" "SELECT group_concat(kind || ':' || mixer || ':' || status || ':' || COALESCE(median_ms > 0, '') || ':' || COALESCE(note, ''), ' ') FROM bench WHERE set_id = (SELECT id FROM bench_sets WHERE name = 'rec')")
    if [[ "$rec" == "recurrent:s4d:ok:1:fwd_ms="*" recurrent:attention:skipped::skipped (attention has no recurrent mode)" ]]; then ok bench_recurrent
    else bad bench_recurrent "rows '$rec'"; fi
    grid=$(sqlite3 "$bdb" "SELECT group_concat(kind || ':' || B || 'x' || L || ':' || config, ' ') FROM bench WHERE set_id IN (SELECT id FROM bench_sets WHERE name IN ('grid', 'step'))")
    if [ "$grid" = "layer:1x16: layer:1x32: layer:2x16: layer:2x32: step:2x32:n_layers=2" ]; then ok bench_grid_and_step
    else bad bench_grid_and_step "rows '$grid'"; fi
    check regress_db_export 0 "2 entries of one \(set 1" -- "$LRA" regress --db "$bdb" --export one --out "$tmp/one.csv"
    check regress_db_vs_own_file 0 "\| s4d \| 2 \| 64 \| 8 \| — \| .* \| \+0.0% \| — \(n=3,3\) \| same \|" -- "$LRA" regress --db "$bdb" --baseline "$tmp/one.csv" --new one
    # the newest set (two) against one: s4d at 64 is missing from two
    check regress_db_newest 0 "missing from the new set" -- "$LRA" regress --db "$bdb" --baseline one --new two --threshold 1000
    check regress_db_default_newest 0 "\\| recurrent \\| s4d \\| 2 \\| 16 \\| 8 \\| — \\| .*new \\(not in the baseline\\)" -- "$LRA" regress --db "$bdb" --baseline one
    check regress_db_newest_is_baseline 1 "the new set is the baseline itself \\(set 5\\); pass --new" -- "$LRA" regress --db "$bdb" --baseline rec
    "$LRA" bench --kind recurrent --mixers s4d --lengths 16 --batch 2 --width 8 --repeats 2 --threads 1 --db "$bdb" --name rec >/dev/null 2>&1
    check regress_db_same_name 0 "New: rec \\(set 6,.*Baseline: rec \\(set 5," -- bash -c "'$LRA' regress --db '$bdb' --baseline rec --new rec | tr '\\n' ' '"
    check regress_db_same_name_first 1 "no earlier bench set named 'grid'" -- "$LRA" regress --db "$bdb" --baseline grid --new grid
    check regress_db_unknown 1 "no bench set named 'nine'" -- "$LRA" regress --db "$bdb" --baseline nine
    if command -v gnuplot >/dev/null; then
        "$LRA" plot --db "$bdb" --bench one --out "$tmp/b.svg" >/dev/null 2>&1
        if grep -q "Speed, bench set one" "$tmp/b.svg" && grep -q "fwd+bwd tokens/s" "$tmp/b.svg"; then ok plot_bench_set
        else bad plot_bench_set "the SVG lacks the bench set's title or axis"; fi
    fi
    check plot_bench_unknown 1 "no measured layer rows in bench set 'nine'" -- "$LRA" plot --db "$bdb" --bench nine --out "$tmp/b.svg"
else bad bench_db "lra bench --db failed"; fi
# accuracy snapshots of a sweep
check regress_snapshot 0 "set 'acc' \(id 1\): 13 entries recorded" -- "$LRA" regress --db "$db" --snapshot quick --name acc
check regress_new_sweep_same 0 "\| accuracy \| s4d \| 0 \| 1024 \| 0 \| task=listops \| 59.00% \| 59.00% \| \+0.00 pts \| — \| same \|" -- "$LRA" regress --db "$db" --baseline acc --new-sweep quick
sqlite3 "$db" "UPDATE runs SET test_acc = test_acc - 0.05 WHERE mixer = 's4d' AND task = 'image' AND sweep_id = 1"
check regress_new_sweep_drop 1 "\| task=image \| 87.50% \| 82.50% \| -5.00 pts \| — \| REGRESSION \|" -- "$LRA" regress --db "$db" --baseline acc --new-sweep quick
sqlite3 "$db" "UPDATE runs SET test_acc = test_acc + 0.05 WHERE mixer = 's4d' AND task = 'image' AND sweep_id = 1"
# ---- lra report ----
check report_no_out 2 "--out: missing" -- "$LRA" report --db "$db"
for name in one two; do
    "$LRA" bench --mixers s4d --lengths 32 --batch 2 --width 8 --repeats 3 --threads 1 --db "$db" --name $name >/dev/null 2>&1
done
check report_written 0 "written" -- "$LRA" report --db "$db" --out "$tmp/r.html"
html=$tmp/r.html
n_runs=$(sqlite3 "$db" "SELECT count(*) FROM runs")
missing=""
for want in "<h2>LRA Table 1: accuracy</h2>" "<h2>LRA Table 2: speed and memory on Text</h2>" "<h2>Training curves</h2>" \
            "<h2>Runs</h2>" "<h2>Benchmark sets</h2>" "<h2>Regressions</h2>" "<td>S4D-LegS</td>" "$n_runs runs." \
            "<td>non-finite loss at step 40</td>" "<td>one</td>" "<td>two</td>" \
            "<caption>Benchmark and accuracy changes against the baseline</caption>" "</html>"; do
    grep -qF -- "$want" "$html" || missing="$missing [$want]"
done
if [ -z "$missing" ]; then ok report_sections; else bad report_sections "missing:$missing"; fi
# self-contained: nothing fetched from elsewhere
if grep -qE '<(script|link|img|iframe)[^>]*(src|href)=' "$html"; then bad report_self_contained "external resource"; else ok report_self_contained; fi
if command -v gnuplot >/dev/null; then
    if [ "$(grep -c '<svg' "$html")" -eq 2 ]; then ok report_inline_svg; else bad report_inline_svg "want 2 inline <svg> plots"; fi
fi
# headless Chromium parses and draws it (skipped when Chromium is absent)
chrome=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -n "$chrome" ]; then
    flags="--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --user-data-dir=$tmp/chrome"
    dom=$(timeout 120 "$chrome" $flags --dump-dom "file://$html" 2>/dev/null)
    if grep -q "LRA Table 1" <<<"$dom" && grep -q "<svg" <<<"$dom" && grep -q "<td>S4D-LegS</td>" <<<"$dom"; then ok report_chromium_dom
    else bad report_chromium_dom "Chromium's DOM lacks the tables or plots"; fi
    timeout 120 "$chrome" $flags --window-size=1280,2000 --screenshot="$tmp/r.png" "file://$html" >/dev/null 2>&1
    sig=$(head -c 8 "$tmp/r.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')
    if [ "$sig" = "89504e470d0a1a0a" ] && [ "$(stat -c %s "$tmp/r.png")" -gt 20000 ]; then ok report_chromium_screenshot
    else bad report_chromium_screenshot "no screenshot or a blank one"; fi
else
    skipped report_chromium "Chromium is not installed (apt-get install chromium)"
fi
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
