// bench.c: `lra bench`: forward and backward time and peak memory of one
// residual block per mixer (the model with n_layers = 1: embedding, the
// block as the mixer's paper builds it, mean pooling, a linear head) over
// sequence lengths, at a batch and width. Writes a table and, with --out,
// CSV rows that tests/ref/bench_torch.py writes too for the same layers in
// PyTorch, so the two can be compared line by line.
#include "bench.h"

#include "../models/model.h"
#include "args.h"
#include "progress.h"

#include <math.h>
#include <string.h>

static const char bench_usage[] =
    "usage: lra bench [options]\n"
    "  --mixers LIST     comma-separated mixers (default: all registered)\n"
    "  --lengths LIST    sequence lengths (default 1024,4096,16384)\n"
    "  --batch N         batch size B (default 16)\n"
    "  --width N         model width H (default 256)\n"
    "  --repeats N       timed iterations per point, median reported (default 3)\n"
    "  --model KEY=VALUE extra model parameter for every mixer (repeatable)\n"
    "  --backend NAME    cpu (default) or cuda;  --threads N  CPU threads (default: all cores)\n"
    "  --max-gib X       skip points whose activations would pass X GiB (default 16)\n"
    "  --out FILE        append CSV rows (header written when the file is new)\n";

static const char *const bench_options[] = { "--mixers", "--lengths", "--batch", "--width", "--repeats", "--model",
                                             "--backend", "--threads", "--max-gib", "--out", NULL };

#define BENCH_MAX 16

typedef struct {
    char        mixers[BENCH_MAX][32];
    int         n_mixers, lengths[BENCH_MAX], n_lengths, B, H, repeats, threads;
    double      max_gib;
    const char *backend, *out;
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
    a->B = 16, a->H = 256, a->repeats = 3, a->max_gib = 16, a->backend = "cpu";
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
        else if (!strcmp(o, "--batch")) rc = lra_arg_int(o, v, 1, &a->B, err);
        else if (!strcmp(o, "--width")) rc = lra_arg_int(o, v, 1, &a->H, err);
        else if (!strcmp(o, "--repeats")) rc = lra_arg_int(o, v, 1, &a->repeats, err);
        else if (!strcmp(o, "--threads")) rc = lra_arg_int(o, v, 0, &a->threads, err);
        else if (!strcmp(o, "--backend")) a->backend = v;
        else if (!strcmp(o, "--out")) a->out = v;
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
    int64_t n_params;
} bench_point;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// One (mixer, L) point: build, one untimed iteration, `repeats` timed ones.
static int bench_one(const bench_args *a, lra_backend *be, const char *mixer, int L, bench_point *pt, lra_err *err) {
    char d[16];
    snprintf(d, sizeof d, "%d", a->H);
    lra_kv kv[40] = { { "mixer", mixer, NULL }, { "d_model", d, NULL }, { "n_layers", "1", NULL },
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
    double *fw = calloc((size_t)a->repeats, sizeof *fw), *bw = calloc((size_t)a->repeats, sizeof *bw);
    if (!tok || !fw || !bw) rc = lra_err_set(err, LRA_ENOMEM, "out of memory");
    for (int r = -1; r < a->repeats && !rc; r++) {
        double t0 = lra_now();
        rc = lra_model_forward(&m, &b, 1, (uint64_t)r, err);
        be->sync(be);
        double t1 = lra_now();
        if (!rc) {
            lra_model_zero_grad(&m);
            rc = lra_model_backward(&m, err);
            be->sync(be);
        }
        double t2 = lra_now();
        if (r >= 0) fw[r] = (t1 - t0) * 1e3, bw[r] = (t2 - t1) * 1e3;
    }
    if (!rc) {
        qsort(fw, (size_t)a->repeats, sizeof *fw, cmp_double);
        qsort(bw, (size_t)a->repeats, sizeof *bw, cmp_double);
        lra_mem_stats ms;
        be->mem_stats(be, &ms);
        *pt = (bench_point){ fw[a->repeats / 2], bw[a->repeats / 2], ms.bytes_peak / 1048576.0,
                             ms.host_rss_peak / 1048576.0, m.n_trainable };
    }
    free(tok);
    free(fw);
    free(bw);
    lra_model_free(&m);
    return rc;
}

// Rough activation size, to skip points that cannot fit (attention's
// backward temporaries grow with L; the model arena with B L H).
static double bench_estimate_gib(const bench_args *a, int L) {
    return (double)a->B * L * a->H * sizeof(lra_real) * 24 / (1024.0 * 1024 * 1024);
}

int lra_cmd_bench(int argc, char **argv, lra_err *err) {
    bench_args a;
    int rc = parse(argc, argv, &a, err);
    if (rc) return rc < 0 ? LRA_OK : rc;
    lra_backend *be = lra_backend_init(a.backend, a.threads, err);
    if (!be) return err->code;
    FILE *csv = NULL;
    if (a.out) {
        FILE *probe = fopen(a.out, "r");
        int fresh = !probe;
        if (probe) fclose(probe);
        csv = fopen(a.out, "a");
        if (!csv) rc = lra_err_set(err, LRA_EIO, "%s: cannot open for appending", a.out);
        else if (fresh) fprintf(csv, "impl,device,threads,mixer,B,H,L,fwd_ms,bwd_ms,total_ms,tokens_per_s,peak_mib,rss_mib,params,status\n");
    }
    printf("lra bench on %s: one block per mixer, B=%d, H=%d, fwd+bwd, median of %d\n", be->device, a.B, a.H, a.repeats);
    printf("%-10s %7s %10s %10s %10s %12s %10s %10s\n", "mixer", "L", "fwd ms", "bwd ms", "total ms", "tokens/s",
           "peak MiB", "params");
    for (int i = 0; i < a.n_mixers && !rc; i++)
        for (int j = 0; j < a.n_lengths && !rc; j++) {
            int L = a.lengths[j];
            bench_point pt = { 0 };
            const char *status = "ok";
            lra_err e = { 0 };
            if (bench_estimate_gib(&a, L) > a.max_gib) status = "skipped (over --max-gib)";
            else if (bench_one(&a, be, a.mixers[i], L, &pt, &e)) {
                if (e.code != LRA_ENOMEM) {
                    *err = e;
                    rc = e.code;
                    break;
                }
                status = "out of memory";
            }
            int ok = !strcmp(status, "ok");
            double total = pt.fwd_ms + pt.bwd_ms, tps = ok ? a.B * (double)L / (total / 1e3) : 0;
            if (ok)
                printf("%-10s %7d %10.1f %10.1f %10.1f %12.0f %10.0f %10lld\n", a.mixers[i], L, pt.fwd_ms, pt.bwd_ms,
                       total, tps, pt.peak_mib, (long long)pt.n_params);
            else
                printf("%-10s %7d %s\n", a.mixers[i], L, status);
            fflush(stdout);
            if (csv)
                fprintf(csv, "lra,\"%s\",%d,%s,%d,%d,%d,%.3f,%.3f,%.3f,%.1f,%.1f,%.1f,%lld,%s\n", be->device, be->n_threads,
                        a.mixers[i], a.B, a.H, L, pt.fwd_ms, pt.bwd_ms, total, tps, pt.peak_mib, pt.rss_mib,
                        (long long)pt.n_params, status);
        }
    if (csv) fclose(csv);
    lra_backend_free(be);
    return rc;
}
