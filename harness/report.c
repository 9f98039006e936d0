// report.c: `lra report` (see report.h).
#include "report.h"

#include "args.h"
#include "buildinfo.h"
#include "plot.h"
#include "regress.h"
#include "table.h"

#include <string.h>
#include <unistd.h>

static const char style[] =
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}"
    "h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ccc}"
    "table{border-collapse:collapse;margin:1em 0;font-size:0.85em}"
    "caption{text-align:left;font-weight:600;padding:0.3em 0}"
    "th,td{border:1px solid #ccc;padding:0.25em 0.5em;white-space:nowrap}th{background:#f0f0f0}"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}tr:nth-child(even) td{background:#fafafa}"
    "td.bad{color:#b00;font-weight:600}td.good{color:#070}"
    ".note{color:#555;font-size:0.85em}.plot svg{max-width:100%;height:auto}";

typedef struct {
    const char *db, *sweep, *out, *baseline, *fresh;
} report_args;

// ---- plots as inline SVG ---------------------------------------------------------------------------

// Draws the plot into a temporary SVG and copies it from its <svg> element
// on; a plot without data or without gnuplot becomes a note.
static int embed_plot(FILE *f, lra_db *db, const lra_plot_opts *o, lra_err *err) {
    char path[] = "/tmp/lra_report_XXXXXX.svg";
    int fd = mkstemps(path, 4);
    if (fd < 0) return lra_err_set(err, LRA_EIO, "cannot create a temporary file for a plot");
    close(fd);
    lra_err e = { 0 };
    int rc = lra_plot(db, o, path, &e);
    FILE *in = rc ? NULL : fopen(path, "r");
    if (rc == LRA_EINVAL || rc == LRA_EUNSUPPORTED) {
        fputs("<p class=\"note\">No plot: ", f);
        lra_html_escape(f, e.msg);
        fputs(".</p>\n", f);
        rc = LRA_OK;
    } else if (rc) {
        *err = e;
    } else if (!in) {
        rc = lra_err_set(err, LRA_EIO, "%s: cannot read the plot back", path);
    } else {
        char buf[8192];
        int started = 0;
        fputs("<div class=\"plot\">\n", f);
        while (fgets(buf, sizeof buf, in)) {
            char *s = started ? buf : strstr(buf, "<svg");
            if (s) started = 1, fputs(s, f);
        }
        fputs("</div>\n", f);
        fclose(in);
    }
    unlink(path);
    return rc;
}

// ---- sections ----------------------------------------------------------------------------------------

static int section_tables(FILE *f, lra_db *db, const char *sweep, lra_grid *g, lra_err *err) {
    fputs("<h2>LRA Table 1: accuracy</h2>\n", f);
    if (lra_table_accuracy(db, sweep, 0, g, err)) return err->code;
    lra_grid_write(g, "html", f);
    fputs("<h2>LRA Table 2: speed and memory on Text</h2>\n", f);
    if (lra_table_speed(db, sweep, 0, g, err)) return err->code;
    lra_grid_write(g, "html", f);
    lra_plot_opts o;
    lra_plot_defaults(&o);
    o.sweep = sweep;
    if (embed_plot(f, db, &o, err)) return err->code;
    fputs("<h2>Training curves</h2>\n", f);
    o.kind = "curves";
    return embed_plot(f, db, &o, err);
}

static void td(FILE *f, const char *cls, const char *text) {
    fprintf(f, "<td%s%s%s>", cls ? " class=\"" : "", cls ? cls : "", cls ? "\"" : "");
    lra_html_escape(f, text ? text : "");
    fputs("</td>", f);
}

static int section_runs(FILE *f, lra_db *db, const char *sweep, lra_err *err) {
    sqlite3_stmt *st;
    if (lra_db_prepare(db,
                       "SELECT r.id, COALESCE(s.name, ''), r.task, r.mixer, r.seq_len, r.seed, r.status,"
                       " r.step || '/' || r.total_steps, "
                       " CASE WHEN r.best_val_acc IS NULL THEN '' ELSE printf('%.2f', 100 * r.best_val_acc) END,"
                       " CASE WHEN r.test_acc IS NULL THEN '' ELSE printf('%.2f', 100 * r.test_acc) END,"
                       " CASE r.synthetic WHEN 1 THEN 'generated' ELSE 'official' END, r.backend || COALESCE(' ' || r.device, ''),"
                       " COALESCE(r.started_at, ''), COALESCE(r.error, '') FROM runs r LEFT JOIN sweeps s ON s.id = r.sweep_id"
                       " WHERE (?1 IS NULL OR s.name = ?1) ORDER BY r.id LIMIT 2000",
                       &st, err))
        return err->code;
    if (sweep) sqlite3_bind_text(st, 1, sweep, -1, SQLITE_STATIC);
    static const char *const head[] = { "id", "sweep", "task", "mixer", "L", "seed", "status", "step", "best val %",
                                        "test %", "data", "backend", "started", "error" };
    fputs("<h2>Runs</h2>\n<table>\n<tr>", f);
    for (int c = 0; c < 14; c++) fprintf(f, "<th>%s</th>", head[c]);
    fputs("</tr>\n", f);
    int n = 0, rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        fputs("<tr>", f);
        for (int c = 0; c < 14; c++) {
            const char *v = (const char *)sqlite3_column_text(st, c);
            int num = c == 0 || c == 4 || c == 5 || c == 7 || c == 8 || c == 9;
            const char *cls = num ? "num" : NULL;
            if (c == 6 && v && strcmp(v, "done") && strcmp(v, "running") && strcmp(v, "queued")) cls = "bad";
            td(f, cls, v);
        }
        fputs("</tr>\n", f);
        n++;
    }
    sqlite3_finalize(st);
    fprintf(f, "</table>\n<p class=\"note\">%d runs%s.</p>\n", n, n == 2000 ? " (the first 2000)" : "");
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? LRA_OK : lra_db_fail(db, "reading runs", err);
}

// The bench sets, then the comparison: --baseline/--new, or else the newest
// set against the one before it.
static int section_bench(FILE *f, lra_db *db, const report_args *a, lra_grid *g, lra_err *err) {
    sqlite3_stmt *st;
    if (lra_db_prepare(db,
                       "SELECT b.id, b.name, COALESCE(b.device, ''), COALESCE(b.git_commit, ''), COALESCE(b.build_flags, ''),"
                       " COALESCE(b.host, ''), b.created_at, (SELECT count(*) FROM bench WHERE set_id = b.id)"
                       " FROM bench_sets b ORDER BY b.id DESC LIMIT 100",
                       &st, err))
        return err->code;
    static const char *const head[] = { "id", "name", "device", "commit", "build", "host", "created", "entries" };
    fputs("<h2>Benchmark sets</h2>\n<table>\n<tr>", f);
    for (int c = 0; c < 8; c++) fprintf(f, "<th>%s</th>", head[c]);
    fputs("</tr>\n", f);
    int64_t ids[2] = { 0, 0 };
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (n < 2) ids[n] = sqlite3_column_int64(st, 0);
        n++;
        fputs("<tr>", f);
        for (int c = 0; c < 8; c++) td(f, c == 0 || c == 7 ? "num" : NULL, (const char *)sqlite3_column_text(st, c));
        fputs("</tr>\n", f);
    }
    sqlite3_finalize(st);
    fputs("</table>\n<h2>Regressions</h2>\n", f);
    char base[32], fresh[32];
    const char *b = a->baseline, *nw = a->fresh;
    if (!b && n >= 2) {
        snprintf(base, sizeof base, "@%lld", (long long)ids[1]);
        snprintf(fresh, sizeof fresh, "@%lld", (long long)ids[0]);
        b = base, nw = fresh;
    }
    if (!b) {
        fputs("<p class=\"note\">Fewer than two benchmark sets and no --baseline: nothing to compare.</p>\n", f);
        return LRA_OK;
    }
    lra_regress_opts o;
    lra_regress_defaults(&o);
    int n_reg = 0;
    if (lra_regress(db, b, nw, 0, &o, g, &n_reg, err)) return err->code;
    lra_grid_write(g, "html", f);
    return LRA_OK;
}

static int write_report(FILE *f, lra_db *db, const report_args *a, lra_grid *g, lra_err *err) {
    char now[32];
    lra_db_now(now);
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>lra report: ");
    lra_html_escape(f, a->db);
    fprintf(f, "</title>\n<style>%s</style>\n</head>\n<body>\n<h1>lra report</h1>\n<p class=\"note\">Database ", style);
    lra_html_escape(f, a->db);
    if (a->sweep) {
        fputs(", sweep ", f);
        lra_html_escape(f, a->sweep);
    }
    fprintf(f, "; written %s by lra %s (%s).</p>\n", now, lra_git_commit(), lra_build_flags());
    int rc = section_tables(f, db, a->sweep, g, err);
    if (!rc) rc = section_runs(f, db, a->sweep, err);
    if (!rc) rc = section_bench(f, db, a, g, err);
    fputs("</body>\n</html>\n", f);
    return rc;
}

// ---- the command ---------------------------------------------------------------------------------

static const char report_usage[] =
    "usage: lra report --out FILE.html [options]\n"
    "  --db FILE        results database (default " LRA_DB_DEFAULT ")\n"
    "  --sweep NAME     only the runs of this sweep (default: all)\n"
    "  --baseline X     compare bench set X (name, @ID or .csv file) with --new (default: the\n"
    "                   newest set); without it, the newest set against the one before\n"
    "  --new X          the new set of that comparison\n"
    "  --out FILE       the HTML page (plots need gnuplot; without it they are left out)\n";

static const char *const report_options[] = { "--db", "--sweep", "--out", "--baseline", "--new", NULL };

int lra_cmd_report(int argc, char **argv, lra_err *err) {
    report_args a = { LRA_DB_DEFAULT, NULL, NULL, NULL, NULL };
    for (int i = 0; i < argc; i += 2) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            fputs(report_usage, stdout);
            return LRA_OK;
        }
        if (lra_arg_option(o, v, report_options, "lra report", err)) return err->code;
        if (!strcmp(o, "--db")) a.db = v;
        else if (!strcmp(o, "--sweep")) a.sweep = v;
        else if (!strcmp(o, "--out")) a.out = v;
        else if (!strcmp(o, "--baseline")) a.baseline = v;
        else if (!strcmp(o, "--new")) a.fresh = v;
    }
    if (!a.out) return lra_err_set(err, LRA_EUSAGE, "--out: missing (the .html file to write)");
    lra_db db;
    if (lra_db_open_existing(&db, a.db, err)) return err->code;
    lra_grid *g = malloc(sizeof *g);
    FILE *f = NULL;
    int rc = g ? lra_sweep_check(&db, a.sweep, err) : lra_err_set(err, LRA_ENOMEM, "out of memory");
    if (!rc && !(f = fopen(a.out, "w"))) rc = lra_err_set(err, LRA_EIO, "%s: cannot open for writing", a.out);
    if (!rc) rc = write_report(f, &db, &a, g, err);
    if (f && fclose(f) && !rc) rc = lra_err_set(err, LRA_EIO, "%s: write failed", a.out);
    if (!rc) printf("%s written\n", a.out);
    free(g);
    lra_db_close(&db);
    return rc;
}
