// train.c: the training loop (train.h).
#include "train.h"
#include "progress.h"
#include "../models/checkpoint.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

void lra_train_state_init(lra_train_state *st) {
    memset(st, 0, sizeof *st);
    st->best_step = -1;
}

// ---- batches ----------------------------------------------------------------------
typedef struct {
    const lra_dataset *ds;
    int        n_in, L, K;
    int32_t   *tok, *len, *lab;   // host batch (B_max examples)
    lra_real  *logits;            // host copy (B_max, K)
    int64_t   *perm;              // training order of the current epoch
    int64_t    epoch;             // epoch of perm, -1: none
    uint64_t   seed;
    double    *eval_ms;           // milliseconds of each evaluation batch
    int64_t    n_eval_ms, cap_eval_ms;
} batcher;

// Fisher-Yates shuffle of the training split for epoch e (a function of seed, e).
static void shuffle(batcher *b, int64_t e) {
    int64_t N = b->ds->task->info.split_size[LRA_SPLIT_TRAIN];
    uint64_t s = lra_mix64(b->seed ^ lra_mix64(0x5348554646ull + (uint64_t)e));
    for (int64_t i = 0; i < N; i++) b->perm[i] = i;
    for (int64_t i = N - 1; i > 0; i--) {
        int64_t j = (int64_t)(lra_rand_bits(s, (uint64_t)i) % (uint64_t)(i + 1));
        int64_t t = b->perm[i];
        b->perm[i] = b->perm[j];
        b->perm[j] = t;
    }
    b->epoch = e;
}

static int load_example(batcher *b, lra_split split, int64_t index, int e, lra_err *err) {
    lra_example ex = { b->tok + (int64_t)e * b->n_in * b->L, b->len + (int64_t)e * b->n_in, 0 };
    int rc = lra_dataset_example(b->ds, split, index, &ex, err);
    b->lab[e] = ex.label;
    return rc;
}

// Training examples [first, first + n) of the endless stream of epochs.
static int load_train(batcher *b, int64_t first, int n, lra_batch *out, lra_err *err) {
    int64_t N = b->ds->task->info.split_size[LRA_SPLIT_TRAIN];
    for (int e = 0; e < n; e++) {
        int64_t c = first + e;
        if (c / N != b->epoch) shuffle(b, c / N);
        int rc = load_example(b, LRA_SPLIT_TRAIN, b->perm[c % N], e, err);
        if (rc) return rc;
    }
    *out = (lra_batch){ n, b->tok, b->len, b->lab };
    return LRA_OK;
}

// Correct predictions of the last forward pass over n examples.
static int count_correct(batcher *b, lra_model *m, int n) {
    m->be->download(m->be, b->logits, m->logits, sizeof(lra_real) * (size_t)n * (size_t)b->K);
    int correct = 0;
    for (int e = 0; e < n; e++) {
        const lra_real *z = b->logits + (int64_t)e * b->K;
        int best = 0;
        for (int k = 1; k < b->K; k++)
            if (z[k] > z[best]) best = k;
        correct += best == b->lab[e];
    }
    return correct;
}

// ---- evaluation ---------------------------------------------------------------------
static int evaluate(batcher *b, lra_model *m, lra_split split, int64_t limit, int eval_batch, double *loss,
                    double *acc, lra_perf *perf, lra_err *err) {
    int64_t total = b->ds->task->info.split_size[split];
    if (limit > 0 && limit < total) total = limit;
    double sum_loss = 0, correct = 0, t0 = lra_now();
    for (int64_t first = 0; first < total; first += eval_batch) {
        int n = (int)(total - first < eval_batch ? total - first : eval_batch);
        for (int e = 0; e < n; e++) {
            int rc = load_example(b, split, first + e, e, err);
            if (rc) return rc;
        }
        lra_batch batch = { n, b->tok, b->len, b->lab };
        int rc = lra_model_forward(m, &batch, 0, 0, err);
        if (rc) return rc;
        sum_loss += m->loss * n;
        correct += count_correct(b, m, n);
        m->be->sync(m->be);
        if (b->n_eval_ms == b->cap_eval_ms) {
            int64_t cap = b->cap_eval_ms ? 2 * b->cap_eval_ms : 256;
            double *nm = realloc(b->eval_ms, sizeof *nm * (size_t)cap);
            if (!nm) return lra_err_set(err, LRA_ENOMEM, "out of host memory");
            b->eval_ms = nm;
            b->cap_eval_ms = cap;
        }
        double t1 = lra_now();
        b->eval_ms[b->n_eval_ms++] = 1000 * (t1 - t0);
        perf->seconds += t1 - t0;
        t0 = t1;
        perf->steps++;
        perf->tokens += (int64_t)n * b->n_in * b->L;
    }
    *loss = sum_loss / (double)total;
    *acc = correct / (double)total;
    return LRA_OK;
}

// ---- checkpoints ----------------------------------------------------------------------
static int save(lra_model *m, const char *path, const char *hash, const lra_train_state *st, double elapsed,
                lra_err *err) {
    char v[14][48];
    const char *keys[14] = { "train.step", "train.best_step", "train.best_val_acc", "train.best_val_loss",
                             "train.test_acc", "train.test_loss", "train.evals_since_best", "train.sum_loss",
                             "train.sum_correct", "train.sum_gnorm", "train.n_examples", "train.n_steps",
                             "train.train_loss", "train.elapsed" };
    snprintf(v[0], 48, "%lld", (long long)st->step);
    snprintf(v[1], 48, "%lld", (long long)st->best_step);
    const double d[] = { st->best_val_acc, st->best_val_loss, st->test_acc, st->test_loss };
    for (int i = 0; i < 4; i++) snprintf(v[2 + i], 48, "%.17g", d[i]);
    snprintf(v[6], 48, "%d", st->evals_since_best);
    snprintf(v[7], 48, "%.17g", st->sum_loss);
    snprintf(v[8], 48, "%.17g", st->sum_correct);
    snprintf(v[9], 48, "%.17g", st->sum_gnorm);
    snprintf(v[10], 48, "%lld", (long long)st->n_examples);
    snprintf(v[11], 48, "%lld", (long long)st->n_steps);
    snprintf(v[12], 48, "%.17g", st->train_loss);
    snprintf(v[13], 48, "%.17g", elapsed);
    lra_kv extra[15];
    for (int i = 0; i < 14; i++) extra[i] = (lra_kv){ keys[i], v[i], NULL };
    extra[14] = (lra_kv){ "run.hash", hash, NULL };
    return lra_checkpoint_save(m, path, extra, 15, err);
}

static int meta_num(lra_st_file *f, const char *path, const char *key, double *out, lra_err *err) {
    const char *s = lra_st_metadata(f, key);
    char *end;
    if (s) *out = strtod(s, &end);
    if (!s || end == s || *end) return lra_err_set(err, LRA_EIO, "%s: not a training checkpoint (metadata %s)", path, key);
    return LRA_OK;
}

int lra_train_load(lra_model *m, const char *path, const char *hash, lra_train_state *st, lra_err *err) {
    lra_st_file *f;
    int rc = lra_st_open(path, &f, err);
    if (rc) return rc;
    const char *h = lra_st_metadata(f, "run.hash");
    if (!h || strcmp(h, hash)) {
        rc = lra_err_set(err, LRA_EIO, "%s: checkpoint of another run (hash %s, expected %s)", path, h ? h : "none", hash);
        lra_st_close(f);
        return rc;
    }
    const char *keys[] = { "train.step", "train.best_step", "train.best_val_acc", "train.best_val_loss",
                           "train.test_acc", "train.test_loss", "train.evals_since_best", "train.sum_loss",
                           "train.sum_correct", "train.sum_gnorm", "train.n_examples", "train.n_steps",
                           "train.train_loss", "train.elapsed" };
    double v[14];
    for (int i = 0; i < 14 && !rc; i++) rc = meta_num(f, path, keys[i], &v[i], err);
    lra_st_close(f);
    if (rc) return rc;
    if ((rc = lra_checkpoint_load(m, path, 1, err))) return rc;
    lra_train_state_init(st);
    st->step = (int64_t)v[0];
    st->best_step = (int64_t)v[1];
    st->best_val_acc = v[2];
    st->best_val_loss = v[3];
    st->test_acc = v[4];
    st->test_loss = v[5];
    st->evals_since_best = (int)v[6];
    st->sum_loss = v[7];
    st->sum_correct = v[8];
    st->sum_gnorm = v[9];
    st->n_examples = (int64_t)v[10];
    st->n_steps = (int64_t)v[11];
    st->train_loss = v[12];
    st->elapsed = v[13];
    return LRA_OK;
}

// ---- the loop ----------------------------------------------------------------------------
static void progress_of(const lra_train_state *st, const lra_train_io *io, lra_run_progress *p) {
    memset(p, 0, sizeof *p);
    p->step = st->step;
    p->best_step = st->best_step;
    p->best_val_acc = st->best_val_acc;
    p->best_val_loss = st->best_val_loss;
    p->test_acc = st->test_acc;
    p->test_loss = st->test_loss;
    p->train_loss = st->train_loss;
    snprintf(p->checkpoint, sizeof p->checkpoint, "%s", io->ckpt_last);
    if (st->best_step >= 0) snprintf(p->best_checkpoint, sizeof p->best_checkpoint, "%s", io->ckpt_best);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(const double *v, int64_t n, double q) {
    if (n <= 0) return 0;
    double pos = q * (double)(n - 1);
    int64_t i = (int64_t)pos;
    return i + 1 < n ? v[i] + (pos - (double)i) * (v[i + 1] - v[i]) : v[n - 1];
}

static void step_stats(double *ms, int64_t n, lra_perf *p) {
    if (n <= 0) return;
    qsort(ms, (size_t)n, sizeof *ms, cmp_double);
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += ms[i];
    p->ms_mean = s / (double)n;
    p->ms_min = ms[0];
    p->ms_max = ms[n - 1];
    p->ms_p10 = pct(ms, n, 0.1);
    p->ms_p50 = pct(ms, n, 0.5);
    p->ms_p90 = pct(ms, n, 0.9);
}

static void fmt_eta(double s, char out[32]) {
    if (!(s >= 0) || s > 1e7) snprintf(out, 32, "?");
    else if (s >= 3600) snprintf(out, 32, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else if (s >= 60) snprintf(out, 32, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else snprintf(out, 32, "%ds", (int)s);
}

// One progress line: redrawn on a terminal, else printed at logged steps.
static void show(const lra_run_spec *r, const lra_train_io *io, const lra_train_state *st, double loss, double acc,
                 double tok_s, double step_s, int final) {
    if (!io->progress) return;
    char eta[32];
    fmt_eta((double)(r->train.steps - st->step) * step_s, eta);
    int tty = isatty(2);
    char bar[24] = "";
    if (tty) {  // [#########...........]
        int w = (int)(20 * st->step / (r->train.steps > 0 ? r->train.steps : 1));
        bar[0] = '[';
        for (int i = 0; i < 20; i++) bar[1 + i] = i < w ? '#' : '.';
        bar[21] = ']';
        bar[22] = ' ';
        bar[23] = 0;
    }
    fprintf(stderr, "%s%s %sstep %lld/%lld  loss %.4f  acc %5.1f%%  %.0f tok/s  ETA %s%s", tty ? "\r\033[K" : "",
            io->label, bar, (long long)st->step, (long long)r->train.steps, loss, 100 * acc, tok_s, eta,
            tty && !final ? "" : "\n");
    fflush(stderr);
}

static void log_eval(const lra_train_io *io, const lra_train_state *st, double vloss, double vacc, int best) {
    if (!io->progress) return;
    char test[64] = "";
    if (best) snprintf(test, sizeof test, "  (best: test acc %.2f%%)", 100 * st->test_acc);
    fprintf(stderr, "%s%s step %lld  val loss %.4f  val acc %.2f%%%s\n", isatty(2) ? "\r\033[K" : "", io->label,
            (long long)st->step, vloss, 100 * vacc, test);
}

// The first parameter whose gradient is not finite.
static const char *first_nonfinite(const lra_model *m) {
    for (int i = 0; i < m->n_params; i++) {
        if (!m->g[i]) continue;
        double s = m->be->sumsq(m->be, m->g[i], lra_spec_numel(&m->specs[i]));
        if (!isfinite(s)) return m->specs[i].name;
    }
    return "an unknown tensor";
}

static int push_train_row(const lra_run_spec *r, lra_train_io const *io, lra_train_state *st, double elapsed,
                          lra_err *err) {
    if (st->n_steps == 0) return LRA_OK;
    st->train_loss = st->sum_loss / (double)st->n_examples;
    lra_metric_row row = { "train", st->step, st->n_examples, st->train_loss,
                           st->sum_correct / (double)st->n_examples,
                           r->optim.lr * lra_schedule_factor(&r->optim.schedule, st->step - 1),
                           st->sum_gnorm / (double)st->n_steps, elapsed, 1 };
    st->sum_loss = st->sum_correct = st->sum_gnorm = 0;
    st->n_examples = st->n_steps = 0;
    return lra_rec_metric(io->rec, &row, err);
}

// Validation (and test when validation improves), records, checkpoints.
static int eval_point(const lra_run_spec *r, lra_model *m, batcher *b, lra_train_state *st, const lra_train_io *io,
                      lra_train_result *res, double elapsed, lra_err *err) {
    double vloss, vacc, tloss, tacc;
    int rc = evaluate(b, m, LRA_SPLIT_VAL, r->train.eval_examples, r->train.eval_batch, &vloss, &vacc, &res->eval, err);
    if (rc) return rc;
    lra_metric_row row = { "val", st->step, 0, vloss, vacc, 0, 0, elapsed, 0 };
    row.examples = r->train.eval_examples > 0 && r->train.eval_examples < r->task_info.split_size[LRA_SPLIT_VAL]
                       ? r->train.eval_examples
                       : r->task_info.split_size[LRA_SPLIT_VAL];
    if ((rc = lra_rec_metric(io->rec, &row, err))) return rc;
    if (!isfinite(vloss)) {
        res->outcome = LRA_TRAIN_DIVERGED;
        snprintf(res->why, sizeof res->why, "step %lld: validation loss is %g", (long long)st->step, vloss);
        return LRA_OK;
    }
    int best = st->best_step < 0 || vacc > st->best_val_acc;
    if (best) {
        if ((rc = evaluate(b, m, LRA_SPLIT_TEST, r->train.test_examples, r->train.eval_batch, &tloss, &tacc, &res->eval,
                           err)))
            return rc;
        lra_metric_row trow = { "test", st->step, 0, tloss, tacc, 0, 0, elapsed, 0 };
        trow.examples = r->train.test_examples > 0 && r->train.test_examples < r->task_info.split_size[LRA_SPLIT_TEST]
                            ? r->train.test_examples
                            : r->task_info.split_size[LRA_SPLIT_TEST];
        if ((rc = lra_rec_metric(io->rec, &trow, err))) return rc;
        st->best_step = st->step;
        st->best_val_acc = vacc;
        st->best_val_loss = vloss;
        st->test_acc = tacc;
        st->test_loss = tloss;
        st->evals_since_best = 0;
        if ((rc = save(m, io->ckpt_best, r->hash, st, elapsed, err))) return rc;
    } else {
        st->evals_since_best++;
    }
    log_eval(io, st, vloss, vacc, best);
    // records first, then the checkpoint: a kill between the two resumes
    // from the older checkpoint and drops the newer rows (lra_rec_truncate)
    lra_run_progress p;
    progress_of(st, io, &p);
    if ((rc = lra_rec_flush(io->rec, &p, err))) return rc;
    return save(m, io->ckpt_last, r->hash, st, elapsed, err);
}

static int train_step(const lra_run_spec *r, lra_model *m, batcher *b, lra_train_state *st, const lra_train_io *io,
                      lra_train_result *res, lra_err *err) {
    const lra_train_config *t = &r->train;
    int micro = t->batch / t->accum;
    int64_t s = st->step;
    double loss = 0, correct = 0, gnorm;
    lra_model_zero_grad(m);
    for (int a = 0; a < t->accum; a++) {
        lra_batch batch;
        int rc = load_train(b, s * t->batch + (int64_t)a * micro, micro, &batch, err);
        if (!rc) rc = lra_model_forward(m, &batch, 1, lra_mix64(r->seed ^ lra_mix64((uint64_t)s * 1024 + (uint64_t)a + 1)), err);
        if (rc) return rc;
        if (!isfinite(m->loss)) {
            res->outcome = LRA_TRAIN_DIVERGED;
            snprintf(res->why, sizeof res->why, "step %lld: training loss is %g", (long long)s + 1, m->loss);
            return LRA_OK;
        }
        loss += m->loss * micro;
        correct += count_correct(b, m, micro);
        if ((rc = lra_model_backward(m, err))) return rc;
    }
    if (io->nan_step == s + 1) {
        int i = lra_model_find_param(m, io->nan_param ? io->nan_param : "");
        if (i >= 0 && m->g[i]) m->be->fill(m->be, m->g[i], (lra_real)NAN, 1);
    }
    if (t->accum > 1) m->be->axpby(m->be, m->grads, 0, m->grads, (lra_real)(1.0 / t->accum), m->n_real);
    int rc = lra_model_step(m, &r->optim, s, &gnorm, err);
    if (rc && !isfinite(gnorm)) {
        res->outcome = LRA_TRAIN_DIVERGED;
        snprintf(res->why, sizeof res->why, "step %lld: gradient norm is %g; first non-finite gradient: %s",
                 (long long)s + 1, gnorm, first_nonfinite(m));
        return LRA_OK;
    }
    if (rc) return rc;
    st->step++;
    st->sum_loss += loss;
    st->sum_correct += correct;
    st->sum_gnorm += gnorm;
    st->n_examples += t->batch;
    st->n_steps++;
    return LRA_OK;
}

int lra_train(const lra_run_spec *r, lra_model *m, const lra_dataset *ds, lra_train_state *st,
              const lra_train_io *io, lra_train_result *res, lra_err *err) {
    memset(res, 0, sizeof *res);
    const lra_train_config *t = &r->train;
    int micro = t->batch / t->accum, B_max = micro > t->eval_batch ? micro : t->eval_batch;
    batcher b = { ds, r->task_info.n_inputs, r->task_info.seq_len, r->task_info.n_classes, NULL, NULL, NULL, NULL,
                  NULL, -1, r->seed, NULL, 0, 0 };
    int64_t N = r->task_info.split_size[LRA_SPLIT_TRAIN], remaining = t->steps - st->step;
    b.tok = malloc(sizeof(int32_t) * (size_t)B_max * (size_t)b.n_in * (size_t)b.L);
    b.len = malloc(sizeof(int32_t) * (size_t)B_max * (size_t)b.n_in);
    b.lab = malloc(sizeof(int32_t) * (size_t)B_max);
    b.logits = malloc(sizeof(lra_real) * (size_t)B_max * (size_t)b.K);
    b.perm = malloc(sizeof(int64_t) * (size_t)N);
    double *ms = malloc(sizeof(double) * (size_t)(remaining > 0 ? remaining : 1));
    int rc = LRA_OK;
    if (!b.tok || !b.len || !b.lab || !b.logits || !b.perm || !ms) rc = lra_err_set(err, LRA_ENOMEM, "out of host memory");
    lra_backend *be = m->be;
    be->mem_reset_peak(be);
    double t_start = lra_now(), t_show = 0, tokens_per_step = (double)t->batch * b.n_in * b.L;
    int64_t n_ms = 0;
    while (!rc && st->step < t->steps && res->outcome == LRA_TRAIN_DONE) {
        if (io->stop && *io->stop) {
            res->outcome = LRA_TRAIN_INTERRUPTED;
            snprintf(res->why, sizeof res->why, "interrupted at step %lld", (long long)st->step);
            lra_run_progress p;
            progress_of(st, io, &p);
            double elapsed = st->elapsed + lra_now() - t_start;
            if (!(rc = save(m, io->ckpt_last, r->hash, st, elapsed, err))) rc = lra_rec_flush(io->rec, &p, err);
            break;
        }
        double t0 = lra_now();
        if ((rc = train_step(r, m, &b, st, io, res, err)) || res->outcome != LRA_TRAIN_DONE) break;
        be->sync(be);
        double t1 = lra_now();
        ms[n_ms++] = 1000 * (t1 - t0);
        res->train.steps++;
        res->train.seconds += t1 - t0;
        res->train.tokens += (int64_t)tokens_per_step;
        double elapsed = st->elapsed + t1 - t_start, step_s = res->train.seconds / (double)res->train.steps;
        int eval_now = st->step % t->eval_every == 0 || st->step == t->steps;
        double loss_now = st->n_examples ? st->sum_loss / (double)st->n_examples : st->train_loss;
        double acc_now = st->n_examples ? st->sum_correct / (double)st->n_examples : 0;
        if (st->step % t->log_every == 0 || eval_now) {
            if (!isatty(2)) show(r, io, st, loss_now, acc_now, tokens_per_step / step_s, step_s, 1);
            if ((rc = push_train_row(r, io, st, elapsed, err))) break;
        }
        if (isatty(2) && (t1 - t_show > 0.25 || eval_now)) {
            show(r, io, st, loss_now, acc_now, tokens_per_step / step_s, step_s, 0);
            t_show = t1;
        }
        if (eval_now) {
            if ((rc = eval_point(r, m, &b, st, io, res, elapsed, err))) break;
            if (t->early_stop && st->evals_since_best >= t->early_stop && st->step < t->steps) {
                res->early_stopped = 1;
                snprintf(res->why, sizeof res->why, "early stop at step %lld: no better validation accuracy in %d evaluations",
                         (long long)st->step, t->early_stop);
                break;
            }
        }
    }
    step_stats(ms, n_ms, &res->train);
    lra_mem_stats mem;
    be->mem_stats(be, &mem);
    res->train.peak_backend_bytes = res->eval.peak_backend_bytes = mem.bytes_peak;
    res->train.peak_rss_bytes = res->eval.peak_rss_bytes = mem.host_rss_peak;
    step_stats(b.eval_ms, b.n_eval_ms, &res->eval);
    free(b.eval_ms);
    free(b.tok);
    free(b.len);
    free(b.lab);
    free(b.logits);
    free(b.perm);
    free(ms);
    return rc;
}
