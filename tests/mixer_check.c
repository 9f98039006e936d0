// mixer_check.c: shared gradient and step checks of sequence mixers.
#include "mixer_check.h"

#include <math.h>
#include <string.h>

typedef struct {
    lra_mixer_solo *s;
    lra_ctx         ctx;
    lra_real       *x, *y, *R;
    int64_t         n;
} mix_fd;

static double mix_loss(void *p) {
    mix_fd *f = p;
    lra_err err = { 0 };
    int rc = f->s->m.vt->forward(&f->s->m, &f->ctx, f->y, f->x, &err);
    T_CHECK(rc == 0, "forward failed: %s", err.msg);
    return t_project(f->y, f->R, f->n);
}

static uint8_t *mix_mask(lra_backend *be, const t_mixer_case *c, lra_real **maskf) {
    *maskf = NULL;
    if (!c->mask) return NULL;
    int64_t n = (int64_t)c->B * c->L;
    uint8_t *m = be->alloc(be, (size_t)n, NULL);
    lra_real *f = be->alloc(be, (size_t)n * sizeof(lra_real), NULL);
    memcpy(m, c->mask, (size_t)n);
    for (int64_t i = 0; i < n; i++) f[i] = c->mask[i] ? 1 : 0;
    *maskf = f;
    return m;
}

int t_mixer_gradcheck(const t_mixer_case *c) { return t_mixer_gradcheck_opt(c, 0, 0); }

int t_mixer_gradcheck_opt(const t_mixer_case *c, int rand_params, double fd_step) {
    lra_backend *be = t_backend();
    lra_mixer_solo s;
    lra_err err = { 0 };
    if (lra_mixer_solo_new(&s, be, c->name, c->kv, c->n_kv, c->D, c->B, c->L, 7, &err)) {
        t_fail_at(__FILE__, __LINE__, "%s: %s", c->name, err.msg);
        return 0;
    }
    int fails0 = t_case_failures;
    int64_t n = (int64_t)c->B * c->L * c->D;
    mix_fd f = { .s = &s, .n = n };
    for (int i = 0; rand_params && i < s.m.n_params; i++)
        if (s.m.g[i]) t_rand_fill(s.m.p[i], lra_spec_numel(&s.specs[i]), 50 + (uint64_t)i, -1, 1);
    lra_real *maskf;
    uint8_t *mask = mix_mask(be, c, &maskf);
    f.ctx = (lra_ctx){ .be = be, .B = c->B, .L = c->L, .training = c->training, .seed = 99, .mask = mask,
                       .maskf = maskf };
    f.x = calloc((size_t)n, sizeof(lra_real));
    f.y = calloc((size_t)n, sizeof(lra_real));
    f.R = calloc((size_t)n, sizeof(lra_real));
    lra_real *y2 = calloc((size_t)n, sizeof(lra_real)), *dx = calloc((size_t)n, sizeof(lra_real));
    lra_real *g1 = calloc((size_t)s.n_real + 1, sizeof(lra_real));
    t_rand_fill(f.x, n, 1, -1, 1);
    t_rand_fill(f.R, n, 2, -1, 1);
    mix_loss(&f);
    memcpy(y2, f.y, (size_t)n * sizeof(lra_real));
    mix_loss(&f);
    T_CHECK(memcmp(y2, f.y, (size_t)n * sizeof(lra_real)) == 0, "%s: forward is not deterministic", c->name);
    be->zero(be, s.grads, (size_t)s.n_real * sizeof(lra_real));
    T_CHECK(s.m.vt->backward(&s.m, &f.ctx, dx, f.R, f.x, &err) == 0, "%s: backward: %s", c->name, err.msg);
    memcpy(g1, s.grads, (size_t)s.n_real * sizeof(lra_real));
    memcpy(y2, dx, (size_t)n * sizeof(lra_real));
    // accumulation: a second backward adds the same amounts again
    T_CHECK(s.m.vt->backward(&s.m, &f.ctx, dx, f.R, f.x, &err) == 0, "%s: backward: %s", c->name, err.msg);
    for (int64_t i = 0; i < n; i++)
        if (fabs((double)dx[i] - 2.0 * y2[i]) > 1e-5 * (1 + fabs((double)y2[i]))) {
            t_fail_at(__FILE__, __LINE__, "%s: dx does not accumulate at [%lld]", c->name, (long long)i);
            break;
        }
    for (int64_t i = 0; i < s.n_real; i++)
        if (fabs((double)s.grads[i] - 2.0 * g1[i]) > 1e-5 * (1 + fabs((double)g1[i]))) {
            t_fail_at(__FILE__, __LINE__, "%s: parameter gradients do not accumulate at [%lld]", c->name,
                      (long long)i);
            break;
        }
    char what[160];
    snprintf(what, sizeof what, "%s: dx", c->name);
    double step = fd_step > 0 ? fd_step : T_FD_STEP;
    t_gradcheck_step_at(__FILE__, __LINE__, what, mix_loss, &f, f.x, n, y2, c->tol, step);
    for (int i = 0; i < s.m.n_params; i++) {
        if (!s.m.g[i]) continue;
        snprintf(what, sizeof what, "%s: d%s", c->name, s.specs[i].name);
        t_gradcheck_step_at(__FILE__, __LINE__, what, mix_loss, &f, s.m.p[i], lra_spec_numel(&s.specs[i]),
                            g1 + (s.m.g[i] - s.grads), c->tol, step);
    }
    free(f.x);
    free(f.y);
    free(f.R);
    free(y2);
    free(dx);
    free(g1);
    be->free(be, mask);
    be->free(be, maskf);
    lra_mixer_solo_free(&s);
    return t_case_failures == fails0;
}

int t_mixer_stepcheck(const t_mixer_case *c, double tol) {
    lra_backend *be = t_backend();
    lra_mixer_solo s;
    lra_err err = { 0 };
    if (lra_mixer_solo_new(&s, be, c->name, c->kv, c->n_kv, c->D, c->B, c->L, 7, &err)) {
        t_fail_at(__FILE__, __LINE__, "%s: %s", c->name, err.msg);
        return 0;
    }
    if (!s.m.vt->step) {
        lra_mixer_solo_free(&s);
        return 1;
    }
    int fails0 = t_case_failures;
    int B = c->B, L = c->L, D = c->D;
    int64_t n = (int64_t)B * L * D;
    lra_real *x = calloc((size_t)n, sizeof(lra_real)), *y = calloc((size_t)n, sizeof(lra_real));
    lra_real *xt = calloc((size_t)B * D, sizeof(lra_real)), *yt = calloc((size_t)B * D, sizeof(lra_real));
    t_rand_fill(x, n, 3, -1, 1);
    lra_ctx ctx = { .be = be, .B = B, .L = L, .training = 0, .seed = 5 };
    T_CHECK(s.m.vt->forward(&s.m, &ctx, y, x, &err) == 0, "%s: forward: %s", c->name, err.msg);
    T_CHECK(s.m.vt->step_prepare(&s.m, be, &err) == 0, "%s: step_prepare: %s", c->name, err.msg);
    int64_t ns = s.m.vt->state_size(&s.m, B);
    lra_real *state = be->alloc(be, (size_t)ns * sizeof(lra_real), &err);
    be->zero(be, state, (size_t)ns * sizeof(lra_real));
    double ymax = 0, worst = 0;
    int wt = -1;
    for (int64_t i = 0; i < n; i++) ymax = fmax(ymax, fabs((double)y[i]));
    lra_ctx sctx = ctx;
    sctx.L = 1;
    for (int t = 0; t < L && t_case_failures == fails0; t++) {
        for (int b = 0; b < B; b++) memcpy(xt + (int64_t)b * D, x + ((int64_t)b * L + t) * D, (size_t)D * sizeof(lra_real));
        T_CHECK(s.m.vt->step(&s.m, &sctx, state, yt, xt, &err) == 0, "%s: step: %s", c->name, err.msg);
        for (int b = 0; b < B; b++)
            for (int d = 0; d < D; d++) {
                double e = fabs((double)yt[(int64_t)b * D + d] - (double)y[((int64_t)b * L + t) * D + d]);
                if (!(e <= worst)) { worst = isnan(e) ? INFINITY : e; wt = t; }
            }
    }
    T_CHECK(worst <= tol * fmax(ymax, 1e-30), "%s: step vs convolution: error %.3g (max |y| %.3g) at t = %d",
            c->name, worst, ymax, wt);
    be->free(be, state);
    free(x);
    free(y);
    free(xt);
    free(yt);
    lra_mixer_solo_free(&s);
    return t_case_failures == fails0;
}

// Reads a tensor of any real dtype as doubles.
static double *ref_read_real(lra_st_file *f, const char *path, const char *name, int64_t numel) {
    const lra_st_tensor *t = lra_st_find(f, name);
    if (!t || (t->dtype != LRA_ST_F64 && t->dtype != LRA_ST_F32) || t->numel != numel) {
        t_fail_at(__FILE__, __LINE__, "%s: tensor %s missing, not real or not %lld elements", path, name, (long long)numel);
        return NULL;
    }
    void *raw = malloc((size_t)t->nbytes + 1);
    double *out = malloc((size_t)numel * sizeof(double) + 1);
    lra_err err = { 0 };
    if (lra_st_read(f, name, raw, t->nbytes, &err)) t_fail_at(__FILE__, __LINE__, "%s", err.msg);
    for (int64_t i = 0; i < numel; i++) out[i] = t->dtype == LRA_ST_F64 ? ((double *)raw)[i] : ((float *)raw)[i];
    free(raw);
    return out;
}

static int ref_meta_int(lra_st_file *f, const char *path, const char *key) {
    const char *v = lra_st_metadata(f, key);
    if (!v) t_fail_at(__FILE__, __LINE__, "%s: metadata %s missing", path, key);
    return v ? atoi(v) : 0;
}

int t_mixer_refcheck(const char *path, double tol_out, double tol_grad) {
    int fails0 = t_case_failures;
    lra_err err = { 0 };
    lra_st_file *f;
    if (lra_st_open(path, &f, &err)) {
        t_fail_at(__FILE__, __LINE__, "%s", err.msg);
        return 0;
    }
    const char *name = lra_st_metadata(f, "mixer"), *kvs = lra_st_metadata(f, "kv");
    char kvbuf[1024];
    snprintf(kvbuf, sizeof kvbuf, "%s", kvs ? kvs : "");
    lra_kv kv[32];
    int n_kv = lra_kv_split(kvbuf, kv, 32, "reference file");
    if (n_kv < 0) {
        t_fail_at(__FILE__, __LINE__, "%s: malformed kv metadata", path);
        n_kv = 0;
    }
    int D = ref_meta_int(f, path, "D"), B = ref_meta_int(f, path, "B"), L = ref_meta_int(f, path, "L");
    lra_backend *be = t_backend();
    lra_mixer_solo s;
    if (!name || t_case_failures != fails0 ||
        lra_mixer_solo_new(&s, be, name, kv, n_kv, D, B, L, 1, &err)) {
        t_fail_at(__FILE__, __LINE__, "%s: %s", path, err.msg);
        lra_st_close(f);
        return 0;
    }
    int64_t n = (int64_t)B * L * D;
    double *x = ref_read_real(f, path, "x", n), *dy = ref_read_real(f, path, "dy", n);
    double *y = ref_read_real(f, path, "y", n), *dx = ref_read_real(f, path, "dx", n);
    lra_real *xr = calloc((size_t)n, sizeof(lra_real)), *dyr = calloc((size_t)n, sizeof(lra_real));
    lra_real *yr = calloc((size_t)n, sizeof(lra_real)), *dxr = calloc((size_t)n, sizeof(lra_real));
    uint8_t *mask = NULL;
    lra_real *maskf = NULL;
    if (lra_st_find(f, "mask")) {
        mask = be->alloc(be, (size_t)B * L, &err);
        maskf = be->alloc(be, (size_t)B * L * sizeof(lra_real), &err);
        if (lra_st_read(f, "mask", mask, (int64_t)B * L, &err)) t_fail_at(__FILE__, __LINE__, "%s", err.msg);
        for (int64_t i = 0; i < (int64_t)B * L; i++) maskf[i] = mask[i] ? 1 : 0;
    }
    char key[LRA_PARAM_NAME_MAX + 16];
    for (int i = 0; i < s.m.n_params && t_case_failures == fails0; i++) {
        int64_t np = lra_spec_numel(&s.specs[i]);
        snprintf(key, sizeof key, "param.%s", s.specs[i].name);
        const lra_st_tensor *t = lra_st_find(f, key);
        int same = t && t->ndim == s.specs[i].ndim;
        for (int d = 0; same && d < t->ndim; d++) same = t->shape[d] == s.specs[i].shape[d];
        if (!same) {
            t_fail_at(__FILE__, __LINE__, "%s: %s missing or of another shape", path, key);
            break;
        }
        double *v = ref_read_real(f, path, key, np);
        for (int64_t j = 0; v && j < np; j++) s.m.p[i][j] = (lra_real)v[j];
        free(v);
    }
    if (x && dy && y && dx && t_case_failures == fails0) {
        for (int64_t i = 0; i < n; i++) { xr[i] = (lra_real)x[i]; dyr[i] = (lra_real)dy[i]; }
        lra_ctx ctx = { .be = be, .B = B, .L = L, .training = 0, .seed = 1, .mask = mask, .maskf = maskf };
        T_CHECK(s.m.vt->forward(&s.m, &ctx, yr, xr, &err) == 0, "%s: forward: %s", path, err.msg);
        t_close("y vs reference", yr, y, n, tol_out);
        be->zero(be, s.grads, (size_t)s.n_real * sizeof(lra_real));
        T_CHECK(s.m.vt->backward(&s.m, &ctx, dxr, dyr, xr, &err) == 0, "%s: backward: %s", path, err.msg);
        t_close("dx vs reference", dxr, dx, n, tol_grad);
        for (int i = 0; i < s.m.n_params; i++) {
            if (!s.m.g[i]) continue;
            int64_t np = lra_spec_numel(&s.specs[i]);
            snprintf(key, sizeof key, "grad.%s", s.specs[i].name);
            double *g = ref_read_real(f, path, key, np);
            if (g) t_close(key, s.m.g[i], g, np, tol_grad);
            free(g);
        }
    }
    free(x); free(dy); free(y); free(dx);
    free(xr); free(dyr); free(yr); free(dxr);
    be->free(be, mask);
    be->free(be, maskf);
    lra_mixer_solo_free(&s);
    lra_st_close(f);
    return t_case_failures == fails0;
}

static int32_t *ref_read_i32(lra_st_file *f, const char *path, const char *name, int64_t numel) {
    const lra_st_tensor *t = lra_st_find(f, name);
    int32_t *out = calloc((size_t)numel + 1, sizeof *out);
    lra_err err = { 0 };
    if (!t || t->dtype != LRA_ST_I32 || t->numel != numel || lra_st_read(f, name, out, numel * 4, &err))
        t_fail_at(__FILE__, __LINE__, "%s: tensor %s missing, not I32 or not %lld elements", path, name, (long long)numel);
    return out;
}

int t_model_refcheck(const char *path, double tol_out, double tol_grad) {
    int fails0 = t_case_failures;
    lra_err err = { 0 };
    lra_st_file *f;
    if (lra_st_open(path, &f, &err)) {
        t_fail_at(__FILE__, __LINE__, "%s", err.msg);
        return 0;
    }
    const char *cfgs = lra_st_metadata(f, "lra.model"), *shape = lra_st_metadata(f, "lra.task_shape");
    const char *mode = lra_st_metadata(f, "lra.mode");
    const lra_st_tensor *lab = lra_st_find(f, "input.labels");
    char buf[4096];
    lra_kv kv[64];
    snprintf(buf, sizeof buf, "%s", cfgs ? cfgs : "");
    int n_kv = lra_kv_split(buf, kv, 64, path);
    lra_model_task task;
    lra_model_config cfg;
    lra_model m;
    if (!cfgs || !shape || !mode || !lab || n_kv < 0 || lra_task_shape_parse(shape, &task, &err) ||
        lra_model_config_parse(&cfg, kv, n_kv, &err) ||
        lra_model_build(&m, &cfg, &task, t_backend(), (int)lab->numel, 1, &err)) {
        t_fail_at(__FILE__, __LINE__, "%s: bad bundle: %s", path, err.msg);
        lra_st_close(f);
        return 0;
    }
    int B = (int)lab->numel, K = task.n_classes;
    int64_t nt = (int64_t)B * task.n_inputs * task.seq_len;
    int32_t *tok = ref_read_i32(f, path, "input.tokens", nt);
    int32_t *len = ref_read_i32(f, path, "input.lengths", (int64_t)B * task.n_inputs);
    int32_t *labels = ref_read_i32(f, path, "input.labels", B);
    double *logits = ref_read_real(f, path, "logits", (int64_t)B * K), *loss = ref_read_real(f, path, "loss", 1);
    if (lra_checkpoint_load_set(&m, f, path, "param.", 1, m.params, &err)) t_fail_at(__FILE__, __LINE__, "%s", err.msg);
    lra_batch b = { B, tok, len, labels };
    if (t_case_failures == fails0) {
        int train = !strcmp(mode, "train");
        T_CHECK(lra_model_forward(&m, &b, train, 1, &err) == 0, "%s: forward: %s", path, err.msg);
        t_close("logits vs reference", m.logits, logits, (int64_t)B * K, tol_out);
        T_CHECK(fabs(m.loss - loss[0]) <= tol_out * fabs(loss[0]), "%s: loss %.9g vs reference %.9g", path, m.loss,
                loss[0]);
        lra_model_zero_grad(&m);
        T_CHECK(lra_model_backward(&m, &err) == 0, "%s: backward: %s", path, err.msg);
        for (int i = 0; i < m.n_params; i++) {
            if (!m.g[i]) continue;
            char key[LRA_PARAM_NAME_MAX + 16];
            snprintf(key, sizeof key, "grad.%s", m.specs[i].name);
            int64_t np = lra_spec_numel(&m.specs[i]);
            double *g = ref_read_real(f, path, key, np);
            if (g) t_close(key, m.g[i], g, np, tol_grad);
            free(g);
        }
    }
    free(tok); free(len); free(labels); free(logits); free(loss);
    lra_model_free(&m);
    lra_st_close(f);
    return t_case_failures == fails0;
}
