// bench.c: `lra bench`: forward and backward time and peak memory of one
// residual block per mixer (the model with n_layers = 1: embedding, the
// block as the mixer's paper builds it, mean pooling, a linear head) over
// sequence lengths, batches and widths; with --kind step, the training step
// (forward, backward, AdamW) of a model of --layers blocks; with --kind
// recurrent, the latency of one recurrent step (generation) of a mixer alone. Writes a table and, with --out,
// CSV rows that tests/ref/bench_torch.py writes too for the same layers in
// PyTorch, so the two can be compared line by line. With --db, the set is
// recorded in the results database (bench_sets, bench): machine, build,
// commit and every repeat's time, which `lra regress` compares.
#include "bench.h"

#include "buildinfo.h"
#include "db.h"

#include "../models/model.h"
#include "args.h"
#include "progress.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

static const char bench_usage[] =
    "usage: lra bench [options]\n"
    "  --mixers LIST     comma-separated mixers (default: all registered)\n"
    "  --lengths LIST    sequence lengths (default 1024,4096,16384)\n"
    "  --batch LIST      batch sizes B (default 16)\n"
    "  --width LIST      model widths H (default 256)\n"
    "  --kind K          layer: fwd+bwd of one block (default); step: a training step\n"
    "                    (fwd, bwd, AdamW) of a model of --layers blocks; recurrent: one\n"
    "                    step of the mixer alone (ms per position over L steps; mixers\n"
    "                    without a recurrent mode are skipped; --model mixer.KEY=V applies)\n"
    "  --layers N        blocks of the --kind step model (default 4)\n"
    "  --repeats N       timed iterations per point, median reported (default 3)\n"
    "  --warmup N        untimed iterations before them (default 1)\n"
    "  --model KEY=VALUE extra model parameter for every mixer (repeatable)\n"
    "  --backend NAME    cpu (default) or cuda;  --threads N  CPU threads (default: all cores)\n"
    "  --max-gib X       skip points whose activations would pass X GiB (default 16)\n"
    "  --out FILE        append CSV rows (header written when the file is new)\n"
    "  --db FILE         record the set in this results database (every repeat's time)\n"
    "  --name NAME       the set's name there (default bench-<UTC time>)\n";

static const char *const bench_options[] = { "--mixers", "--lengths", "--batch", "--width", "--repeats", "--model",
                                             "--backend", "--threads", "--max-gib", "--out", "--warmup",
                                             "--db", "--name", "--kind", "--layers", NULL };

#define BENCH_MAX 16

typedef struct {
    char        mixers[BENCH_MAX][32];
    int         n_mixers, lengths[BENCH_MAX], n_lengths, B, H, repeats, warmup, threads, layers;
    int         batches[BENCH_MAX], n_batches, widths[BENCH_MAX], n_widths;  // the grid; B, H: the current point
    double      max_gib;
    const char *backend, *out, *db, *name, *kind;
    lra_kv      model[32];
    int         n_model;
} bench_args;

static int parse_list(const char *opt, const char *v, int *out, int *n, lra_err *err) {
    *n = 0;
    for (const char *s = v; *s;) {
        char *end;
        long x = strtol(s, &end, 10);
        if (end == s || x < 1 || x > (1 << 26) || (*end && *end != ',') || *n == BENCH_MAX)
            return lra_err_set(err, LRA_EUSAGE, "%s: expected up to %d comma-separated positive integers, got '%s'", opt,
                               BENCH_MAX, v);
        out[(*n)++] = (int)x;
        s = *end ? end + 1 : end;
    }
    return *n ? LRA_OK : lra_err_set(err, LRA_EUSAGE, "%s: empty list", opt);
}

static int parse_mixers(const char *v, bench_args *a, lra_err *err) {
    a->n_mixers = 0;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", v);
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        lra_err e = { 0 };
        if (!lra_mixer_find(t, &e)) return lra_err_set(err, LRA_EUSAGE, "--mixers: %s", e.msg);
        if (a->n_mixers == BENCH_MAX || strlen(t) >= sizeof a->mixers[0])
            return lra_err_set(err, LRA_EUSAGE, "--mixers: too many or too long");
        strcpy(a->mixers[a->n_mixers++], t);
    }
    return LRA_OK;
}

static int parse(int argc, char **argv, bench_args *a, lra_err *err) {
    memset(a, 0, sizeof *a);
    for (int i = 0; i < lra_mixer_count() && i < BENCH_MAX; i++) strcpy(a->mixers[a->n_mixers++], lra_mixer_at(i)->name);
    a->lengths[0] = 1024, a->lengths[1] = 4096, a->lengths[2] = 16384, a->n_lengths = 3;
    a->B = a->batches[0] = 16, a->H = a->widths[0] = 256, a->n_batches = a->n_widths = 1;
    a->repeats = 3, a->warmup = 1, a->max_gib = 16, a->backend = "cpu", a->kind = "layer", a->layers = 4;
    for (int i = 0; i < argc; i += 2) {
        const char *o = argv[i];
        char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
            fputs(bench_usage, stdout);
            return -1;
        }
        int rc = lra_arg_option(o, v, bench_options, "lra bench", err);
        if (rc) return rc;
        if (!strcmp(o, "--mixers")) rc = parse_mixers(v, a, err);
        else if (!strcmp(o, "--lengths")) rc = parse_list(o, v, a->lengths, &a->n_lengths, err);
        else if (!strcmp(o, "--batch")) rc = parse_list(o, v, a->batches, &a->n_batches, err);
        else if (!strcmp(o, "--width")) rc = parse_list(o, v, a->widths, &a->n_widths, err);
        else if (!strcmp(o, "--layers")) rc = lra_arg_int(o, v, 1, &a->layers, err);
        else if (!strcmp(o, "--kind")) {
            a->kind = v;
            if (strcmp(v, "layer") && strcmp(v, "step") && strcmp(v, "recurrent"))
                rc = lra_err_set(err, LRA_EUSAGE, "--kind: expected layer, step or recurrent, got '%s'", v);
        }
        else if (!strcmp(o, "--repeats")) rc = lra_arg_int(o, v, 1, &a->repeats, err);
        else if (!strcmp(o, "--threads")) rc = lra_arg_int(o, v, 0, &a->threads, err);
        else if (!strcmp(o, "--backend")) a->backend = v;
        else if (!strcmp(o, "--warmup")) rc = lra_arg_int(o, v, 0, &a->warmup, err);
        else if (!strcmp(o, "--out")) a->out = v;
        else if (!strcmp(o, "--db")) a->db = v;
        else if (!strcmp(o, "--name")) a->name = v;
        else if (!strcmp(o, "--max-gib")) {
            char *end;
            a->max_gib = strtod(v, &end);
            if (*end || !(a->max_gib > 0)) rc = lra_err_set(err, LRA_EUSAGE, "--max-gib: expected a positive number, got '%s'", v);
        } else if (!strcmp(o, "--model")) {
            rc = lra_arg_kv(o, v, a->model, &a->n_model, 32, err);
        }
        if (rc) return rc;
    }
    return LRA_OK;
}

typedef struct {
    double fwd_ms, bwd_ms, peak_mib, rss_mib;
    int64_t n_params, peak_bytes;
    double *total_ms;  // every repeat's fwd+bwd time, in measurement order (caller's array)
} bench_point;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// One (mixer, L) point: build, `warmup` untimed iterations, `repeats` timed ones.
static int bench_one(const bench_args *a, lra_backend *be, const char *mixer, int L, bench_point *pt, lra_err *err) {
    char d[16], layers[16];
    int step = !strcmp(a->kind, "step");
    snprintf(d, sizeof d, "%d", a->H);
    snprintf(layers, sizeof layers, "%d", step ? a->layers : 1);
    lra_kv kv[40] = { { "mixer", mixer, NULL }, { "d_model", d, NULL }, { "n_layers", layers, NULL },
                      { "dropout", "0", NULL }, { "pool", "mean", NULL }, { "head_hidden", "none", NULL } };
    int n = 6;
    for (int i = 0; i < a->n_model; i++) kv[n++] = a->model[i];
    lra_model_config cfg;
    int rc = lra_model_config_parse(&cfg, kv, n, err);
    if (rc) return rc;
    const lra_model_task task = { .vocab = 16, .n_classes = 2, .n_inputs = 1, .seq_len = L };
    lra_model m;
    be->mem_reset_peak(be);
    if ((rc = lra_model_build(&m, &cfg, &task, be, a->B, 1, err))) return rc;
    int32_t *tok = malloc((size_t)a->B * L * sizeof *tok), len[4096], lab[4096];
    for (int64_t i = 0; tok && i < (int64_t)a->B * L; i++) tok[i] = 1 + (int32_t)(lra_rand_bits(7, (uint64_t)i) % 15);
    for (int e = 0; e < a->B && e < 4096; e++) len[e] = L, lab[e] = e % 2;
    lra_batch b = { a->B, tok, len, lab };
    lra_optim_config opt;
    lra_optim_defaults(&opt);
    double *fw = calloc((size_t)a->repeats, sizeof *fw), *bw = calloc((size_t)a->repeats, sizeof *bw);
    if (!tok || !fw || !bw) rc = lra_err_set(err, LRA_ENOMEM, "out of memory");
    for (int r = -a->warmup; r < a->repeats && !rc; r++) {
        double t0 = lra_now();
        rc = lra_model_forward(&m, &b, 1, (uint64_t)r, err);
        be->sync(be);
        double t1 = lra_now();
        if (!rc) {
            lra_model_zero_grad(&m);
            rc = lra_model_backward(&m, err);
            if (!rc && step) rc = lra_model_step(&m, &opt, r + a->warmup, NULL, err);
            be->sync(be);
        }
        double t2 = lra_now();
        if (r >= 0) fw[r] = (t1 - t0) * 1e3, bw[r] = (t2 - t1) * 1e3, pt->total_ms[r] = (t2 - t0) * 1e3;
    }
    if (!rc) {
        qsort(fw, (size_t)a->repeats, sizeof *fw, cmp_double);
        qsort(bw, (size_t)a->repeats, sizeof *bw, cmp_double);
        lra_mem_stats ms;
        be->mem_stats(be, &ms);
        pt->fwd_ms = fw[a->repeats / 2], pt->bwd_ms = bw[a->repeats / 2];
        pt->peak_mib = ms.bytes_peak / 1048576.0, pt->rss_mib = ms.host_rss_peak / 1048576.0;
        pt->n_params = m.n_trainable, pt->peak_bytes = (int64_t)ms.bytes_peak;
    }
    free(tok);
    free(fw);
    free(bw);
    lra_model_free(&m);
    return rc;
}

// Positions one sample covers: the batch's sequences, or one position of
// each sequence for a recurrent step.
static double bench_positions(const bench_args *a, int L) {
    return !strcmp(a->kind, "recurrent") ? a->B : (double)a->B * L;
}

// Recurrent latency: `repeats` samples, each the mean time of one step over
// L steps from an empty state (x, one position per sequence, stays fixed).
// A mixer without a recurrent mode returns LRA_EUNSUPPORTED.
static int bench_recurrent(const bench_args *a, lra_backend *be, const char *mixer, int L, bench_point *pt,
                           lra_err *err) {
    lra_kv kv[32];
    int n = 0;
    for (int i = 0; i < a->n_model; i++)
        if (!strncmp(a->model[i].key, "mixer.", 6)) kv[n] = a->model[i], kv[n++].key += 6;
    lra_mixer_solo s;
    be->mem_reset_peak(be);
    int rc = lra_mixer_solo_new(&s, be, mixer, kv, n, a->H, a->B, L, 1, err);
    if (rc) return rc;
    if (!s.m.vt->step) {
        lra_mixer_solo_free(&s);
        return lra_err_set(err, LRA_EUNSUPPORTED, "%s has no recurrent mode", mixer);
    }
    size_t bytes = (size_t)a->B * a->H * sizeof(lra_real), sbytes = 0;
    lra_real *host = malloc(bytes), *x = NULL, *y = NULL, *state = NULL;
    if (!host) rc = lra_err_set(err, LRA_ENOMEM, "out of memory");
    if (!rc) rc = s.m.vt->step_prepare(&s.m, be, err);
    if (!rc) sbytes = (size_t)s.m.vt->state_size(&s.m, a->B) * sizeof(lra_real);
    if (!rc && (!(x = be->alloc(be, bytes, err)) || !(y = be->alloc(be, bytes, err)) ||
                !(state = be->alloc(be, sbytes, err))))
        rc = err->code;
    if (!rc) {
        for (int64_t i = 0; i < (int64_t)a->B * a->H; i++) host[i] = (lra_real)(lra_rand_bits(9, (uint64_t)i) % 1000) / 1000;
        be->upload(be, x, host, bytes);
    }
    lra_ctx ctx = { .be = be, .B = a->B, .L = 1, .training = 0, .seed = 1 };
    for (int r = -a->warmup; r < a->repeats && !rc; r++) {
        be->zero(be, state, sbytes);
        be->sync(be);
        double t0 = lra_now();
        for (int t = 0; t < L && !rc; t++) rc = s.m.vt->step(&s.m, &ctx, state, y, x, err);
        be->sync(be);
        if (r >= 0) pt->total_ms[r] = (lra_now() - t0) * 1e3 / L;
    }
    if (!rc) {
        double *v = malloc((size_t)a->repeats * sizeof *v);
        if (!v) rc = lra_err_set(err, LRA_ENOMEM, "out of memory");
        else {
            memcpy(v, pt->total_ms, (size_t)a->repeats * sizeof *v);
            qsort(v, (size_t)a->repeats, sizeof *v, cmp_double);
            pt->fwd_ms = v[a->repeats / 2], pt->bwd_ms = 0;
            free(v);
        }
        lra_mem_stats ms;
        be->mem_stats(be, &ms);
        pt->peak_mib = ms.bytes_peak / 1048576.0, pt->rss_mib = ms.host_rss_peak / 1048576.0;
        pt->n_params = s.n_real, pt->peak_bytes = (int64_t)ms.bytes_peak;
    }
    if (x) be->free(be, x);
    if (y) be->free(be, y);
    if (state) be->free(be, state);
    free(host);
    lra_mixer_solo_free(&s);
    return rc;
}

// Rough activation size, to skip points that cannot fit (attention's
// backward temporaries grow with L; the model arena with B L H).
static double bench_estimate_gib(const bench_args *a, int L) {
    return (double)a->B * L * a->H * sizeof(lra_real) * 24 / (1024.0 * 1024 * 1024);
}

// ---- the results database --------------------------------------------------------------

// A new bench_sets row: the machine, the build and the command line.
static int bench_db_set(lra_db *db, const bench_args *a, const lra_backend *be, int argc, char **argv, int64_t *set_id,
                        lra_err *err) {
    char now[32], name[128], host[256] = "", cmd[1024] = "lra bench";
    lra_db_now(now);
    snprintf(name, sizeof name, "%s", a->name ? a->name : "");
    if (!a->name) snprintf(name, sizeof name, "bench-%s", now);
    if (gethostname(host, sizeof host - 1)) host[0] = 0;
    for (int i = 0; i < argc; i++) {
        size_t n = strlen(cmd);
        snprintf(cmd + n, sizeof cmd - n, " %s", argv[i]);
    }
    sqlite3_stmt *st;
    if (lra_db_prepare(db,
                       "INSERT INTO bench_sets (name, command, backend, device, threads, git_commit, build_flags, host,"
                       " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       &st, err))
        return err->code;
    const char *text[] = { name, cmd, a->backend, be->device };
    for (int i = 0; i < 4; i++) sqlite3_bind_text(st, i + 1, text[i], -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 5, be->n_threads);
    sqlite3_bind_text(st, 6, lra_git_commit(), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, lra_build_flags(), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 8, host, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 9, now, -1, SQLITE_TRANSIENT);
    int rc = lra_db_done(db, st, err);
    sqlite3_finalize(st);
    *set_id = sqlite3_last_insert_rowid(db->db);
    if (!rc) printf("recording set '%s' (id %lld) in %s\n", name, (long long)*set_id, db->path);
    return rc;
}

// One bench row (kind layer): every repeat's fwd+bwd time, their median and range.
static int bench_db_row(lra_db *db, int64_t set_id, const bench_args *a, const char *mixer, int L, const bench_point *pt,
                        const char *status, lra_err *err) {
    char config[512] = "", samples[4096] = "", note[160];
    if (!strcmp(a->kind, "step")) snprintf(config, sizeof config, "n_layers=%d", a->layers);
    for (int i = 0; i < a->n_model; i++) {
        size_t n = strlen(config);
        snprintf(config + n, sizeof config - n, "%s%s=%s", n ? "," : "", a->model[i].key, a->model[i].value);
    }
    int ok = !strcmp(status, "ok");
    double sorted[4096 / 8], med = 0;
    int n = ok ? (a->repeats < 4096 / 8 ? a->repeats : 4096 / 8) : 0;
    for (int r = 0; r < n; r++) {
        size_t k = strlen(samples);
        snprintf(samples + k, sizeof samples - k, "%s%.4f", r ? "," : "", pt->total_ms[r]);
        sorted[r] = pt->total_ms[r];
    }
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_double);
    if (n) med = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    snprintf(note, sizeof note, "fwd_ms=%.3f bwd_ms=%.3f params=%lld rss_mib=%.1f", pt->fwd_ms, pt->bwd_ms,
             (long long)pt->n_params, pt->rss_mib);
    sqlite3_stmt *st;
    if (lra_db_prepare(db,
                       "INSERT INTO bench (set_id, mixer, B, L, H, config, status, repeats, samples_ms, median_ms,"
                       " min_ms, max_ms, tokens_per_s, peak_bytes, note, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
                       " ?, ?, ?, ?, ?, ?)",
                       &st, err))
        return err->code;
    const char *short_status = ok ? "ok" : strstr(status, "memory") ? "oom" : "skipped";
    sqlite3_bind_int64(st, 1, set_id);
    sqlite3_bind_text(st, 16, a->kind, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, mixer, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 3, a->B);
    sqlite3_bind_int(st, 4, L);
    sqlite3_bind_int(st, 5, a->H);
    sqlite3_bind_text(st, 6, config, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 7, short_status, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 8, n);
    if (ok) {
        sqlite3_bind_text(st, 9, samples, -1, SQLITE_TRANSIENT);
        sqlite3_bind_double(st, 10, med);
        sqlite3_bind_double(st, 11, sorted[0]);
        sqlite3_bind_double(st, 12, sorted[n - 1]);
        sqlite3_bind_double(st, 13, bench_positions(a, L) / (med / 1e3));
        sqlite3_bind_int64(st, 14, pt->peak_bytes);
        sqlite3_bind_text(st, 15, note, -1, SQLITE_TRANSIENT);
    } else {
        sqlite3_bind_text(st, 15, status, -1, SQLITE_STATIC);
    }
    int rc = lra_db_done(db, st, err);
    sqlite3_finalize(st);
    return rc;
}

// ---- the command ---------------------------------------------------------------------------

static FILE *bench_csv(const char *path, lra_err *err) {
    FILE *probe = fopen(path, "r");
    int fresh = !probe;
    if (probe) fclose(probe);
    FILE *csv = fopen(path, "a");
    if (!csv) lra_err_set(err, LRA_EIO, "%s: cannot open for appending", path);
    else if (fresh)
        fprintf(csv, "impl,device,threads,mixer,B,H,L,fwd_ms,bwd_ms,total_ms,tokens_per_s,peak_mib,rss_mib,params,status\n");
    return csv;
}

int lra_cmd_bench(int argc, char **argv, lra_err *err) {
    bench_args a;
    int rc = parse(argc, argv, &a, err);
    if (rc) return rc < 0 ? LRA_OK : rc;
    lra_backend *be = lra_backend_init(a.backend, a.threads, err);
    if (!be) return err->code;
    FILE *csv = NULL;
    lra_db db = { 0 };
    int64_t set_id = 0;
    double *samples = calloc((size_t)a.repeats, sizeof *samples);
    if (!samples) rc = lra_err_set(err, LRA_ENOMEM, "out of memory");
    if (!rc && a.out && !(csv = bench_csv(a.out, err))) rc = err->code;
    if (!rc && a.db && !(rc = lra_db_open(&db, a.db, err))) rc = bench_db_set(&db, &a, be, argc, argv, &set_id, err);
    int step = !strcmp(a.kind, "step"), recurrent = !strcmp(a.kind, "recurrent");
    if (!rc) {
        if (recurrent)
            printf("lra bench on %s: one recurrent step of each mixer alone, ms per position over L steps, median of %d "
                   "after %d warm-up\n", be->device, a.repeats, a.warmup);
        else if (step)
            printf("lra bench on %s: training step (fwd, bwd, AdamW) of a %d-block model per mixer, median of %d after %d "
                   "warm-up\n", be->device, a.layers, a.repeats, a.warmup);
        else
            printf("lra bench on %s: one block per mixer, fwd+bwd, median of %d after %d warm-up\n", be->device,
                   a.repeats, a.warmup);
        printf("%-10s %7s %5s %5s %10s %10s %10s %12s %10s %10s\n", "mixer", "L", "B", "H", recurrent ? "step ms" : "fwd ms",
               step ? "bwd+opt ms" : "bwd ms", "total ms", "tokens/s", "peak MiB", "params");
    }
    for (int i = 0; i < a.n_mixers && !rc; i++)
        for (int k = 0; k < a.n_batches * a.n_widths * a.n_lengths && !rc; k++) {
            a.B = a.batches[k / (a.n_widths * a.n_lengths)], a.H = a.widths[k / a.n_lengths % a.n_widths];
            int L = a.lengths[k % a.n_lengths];
            bench_point pt = { .total_ms = samples };
            const char *status = "ok";
            char why[160];
            lra_err e = { 0 };
            if (bench_estimate_gib(&a, L) > a.max_gib && !recurrent) status = "skipped (over --max-gib)";
            else if (recurrent && bench_recurrent(&a, be, a.mixers[i], L, &pt, &e) && e.code != LRA_ENOMEM) {
                snprintf(why, sizeof why, "skipped (%.140s)", e.msg);  // no recurrent mode, or not causal
                status = why;
            } else if (recurrent && e.code == LRA_ENOMEM) {
                status = "out of memory";
            } else if (!recurrent && bench_one(&a, be, a.mixers[i], L, &pt, &e)) {
                if (e.code != LRA_ENOMEM) {
                    *err = e;
                    rc = e.code;
                    break;
                }
                status = "out of memory";
            }
            int ok = !strcmp(status, "ok");
            double total = pt.fwd_ms + pt.bwd_ms, tps = ok ? bench_positions(&a, L) / (total / 1e3) : 0;
            if (ok && recurrent)
                printf("%-10s %7d %5d %5d %10.4f %10s %10.4f %12.0f %10.1f %10lld\n", a.mixers[i], L, a.B, a.H,
                       pt.fwd_ms, "", total, tps, pt.peak_mib, (long long)pt.n_params);
            else if (ok)
                printf("%-10s %7d %5d %5d %10.1f %10.1f %10.1f %12.0f %10.0f %10lld\n", a.mixers[i], L, a.B, a.H,
                       pt.fwd_ms, pt.bwd_ms, total, tps, pt.peak_mib, (long long)pt.n_params);
            else
                printf("%-10s %7d %5d %5d %s\n", a.mixers[i], L, a.B, a.H, status);
            fflush(stdout);
            if (csv)
                fprintf(csv, "lra,\"%s\",%d,%s,%d,%d,%d,%.3f,%.3f,%.3f,%.1f,%.1f,%.1f,%lld,%s\n", be->device, be->n_threads,
                        a.mixers[i], a.B, a.H, L, pt.fwd_ms, pt.bwd_ms, total, tps, pt.peak_mib, pt.rss_mib,
                        (long long)pt.n_params, status);
            if (a.db) rc = bench_db_row(&db, set_id, &a, a.mixers[i], L, &pt, status, err);
        }
    if (csv) fclose(csv);
    lra_db_close(&db);
    free(samples);
    lra_backend_free(be);
    return rc;
}
