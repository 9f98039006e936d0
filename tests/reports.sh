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
check table_unknown_sweep 1 "no sweep named 'nope' in .* \(sweeps: quick, scaling\)" -- "$LRA" table --db "$db" --sweep nope
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
#@REGRESS@
#@REPORT@
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
