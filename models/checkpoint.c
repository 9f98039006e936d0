// checkpoint.c: saving and loading model parameters and optimiser state in
// the safetensors format.
#include "checkpoint.h"

#include <string.h>

int lra_checkpoint_add_params(const lra_model *m, lra_st_writer *w, const char *prefix, const lra_real *src,
                              int with_buffers, lra_real **hold, lra_err *err) {
    *hold = malloc((size_t)(m->n_real > 0 ? m->n_real : 1) * sizeof(lra_real));
    if (!*hold) return lra_err_set(err, LRA_ENOMEM, "checkpoint: out of host memory");
    m->be->download(m->be, *hold, src, (size_t)m->n_real * sizeof(lra_real));
    int64_t off = 0;
    for (int i = 0; i < m->n_params; i++) {
        const lra_param_spec *s = &m->specs[i];
        int64_t k = lra_spec_numel(s);
        char name[LRA_PARAM_NAME_MAX + 64];
        snprintf(name, sizeof name, "%s%s", prefix, s->name);
        int rc = !with_buffers && s->group == LRA_GROUP_BUFFER
                     ? LRA_OK
                     : lra_st_writer_add(w, name, LRA_ST_REAL, s->ndim, s->shape, *hold + off,
                                         k * (int64_t)sizeof(lra_real), err);
        if (rc) return rc;
        off += k;
    }
    return LRA_OK;
}

int lra_checkpoint_save(const lra_model *m, const char *path, const lra_kv *extra, int n_extra, lra_err *err) {
    lra_st_writer *w = NULL;
    lra_real *hp = NULL, *hm = NULL, *hv = NULL;
    char cfg[4096], step[32];
    int rc = lra_st_writer_new(&w, err);
    if (!rc && lra_model_describe(m, cfg, sizeof cfg))
        rc = lra_err_set(err, LRA_EINVAL, "%s: model config does not fit the checkpoint header", path);
    snprintf(step, sizeof step, "%lld", (long long)m->opt_step);
    if (!rc) rc = lra_st_writer_metadata(w, "lra.format", "checkpoint", err);
    if (!rc) rc = lra_st_writer_metadata(w, "lra.version", LRA_CHECKPOINT_VERSION, err);
    if (!rc) rc = lra_st_writer_metadata(w, "lra.model", cfg, err);
    if (!rc) rc = lra_st_writer_metadata(w, "lra.optim_step", step, err);
    for (int i = 0; !rc && i < n_extra; i++) {
        if (!strncmp(extra[i].key, "lra.", 4))
            rc = lra_err_set(err, LRA_EINVAL, "%s: metadata key '%s' is reserved", path, extra[i].key);
        else rc = lra_st_writer_metadata(w, extra[i].key, extra[i].value, err);
    }
    if (!rc) rc = lra_checkpoint_add_params(m, w, "", m->params, 1, &hp, err);
    if (!rc) rc = lra_checkpoint_add_params(m, w, "optim.exp_avg.", m->adam_m, 0, &hm, err);
    if (!rc) rc = lra_checkpoint_add_params(m, w, "optim.exp_avg_sq.", m->adam_v, 0, &hv, err);
    if (!rc) rc = lra_st_writer_write(w, path, err);
    lra_st_writer_free(w);
    free(hp);
    free(hm);
    free(hv);
    return rc;
}

// Reads tensor `name` of shape spec into host (converted to lra_real).
static int load_tensor(lra_st_file *f, const char *path, const char *name, const lra_param_spec *s, lra_real *host,
                       lra_err *err) {
    const lra_st_tensor *t = lra_st_find(f, name);
    if (!t) return lra_err_set(err, LRA_EIO, "%s: tensor %s missing", path, name);
    int same = t->ndim == s->ndim;
    for (int d = 0; same && d < s->ndim; d++) same = t->shape[d] == s->shape[d];
    if (!same) {
        char want[96] = "", got[96] = "";
        for (int d = 0; d < s->ndim; d++) snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? ", " : "", (long long)s->shape[d]);
        for (int d = 0; d < t->ndim; d++) snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        return lra_err_set(err, LRA_EIO, "%s: tensor %s has shape (%s), the model expects (%s)", path, name, got, want);
    }
    if (t->dtype != LRA_ST_F32 && t->dtype != LRA_ST_F64)
        return lra_err_set(err, LRA_EIO, "%s: tensor %s is %s, expected F32 or F64", path, name, lra_st_dtype_name(t->dtype));
    void *buf = malloc((size_t)t->nbytes + 1);
    if (!buf) return lra_err_set(err, LRA_ENOMEM, "%s: out of host memory", path);
    int rc = lra_st_read(f, name, buf, t->nbytes, err);
    for (int64_t i = 0; !rc && i < t->numel; i++)
        host[i] = t->dtype == LRA_ST_F32 ? (lra_real)((float *)buf)[i] : (lra_real)((double *)buf)[i];
    free(buf);
    return rc;
}

// Loads every tensor under prefix into dst (backend memory, flat layout).
int lra_checkpoint_load_set(lra_model *m, lra_st_file *f, const char *path, const char *prefix, int buffers,
                            lra_real *dst, lra_err *err) {
    lra_real *host = malloc((size_t)(m->n_real > 0 ? m->n_real : 1) * sizeof *host);
    if (!host) return lra_err_set(err, LRA_ENOMEM, "%s: out of host memory", path);
    m->be->download(m->be, host, dst, (size_t)m->n_real * sizeof *host);
    int rc = LRA_OK;
    int64_t off = 0;
    for (int i = 0; i < m->n_params && !rc; i++) {
        const lra_param_spec *s = &m->specs[i];
        char name[LRA_PARAM_NAME_MAX + 64];
        snprintf(name, sizeof name, "%s%s", prefix, s->name);
        if (buffers || s->group != LRA_GROUP_BUFFER) rc = load_tensor(f, path, name, s, host + off, err);
        off += lra_spec_numel(s);
    }
    if (!rc) m->be->upload(m->be, dst, host, (size_t)m->n_real * sizeof *host);
    free(host);
    return rc;
}

// Every tensor of the file must belong to the model (a checkpoint of another
// configuration is an error, not a partial load).
static int check_no_extra(const lra_model *m, lra_st_file *f, const char *path, lra_err *err) {
    for (int64_t i = 0; i < lra_st_count(f); i++) {
        const char *name = lra_st_tensor_at(f, i)->name, *base = name;
        if (!strncmp(name, "optim.exp_avg.", 14)) base = name + 14;
        else if (!strncmp(name, "optim.exp_avg_sq.", 17)) base = name + 17;
        if (lra_model_find_param(m, base) < 0)
            return lra_err_set(err, LRA_EIO, "%s: tensor %s is not a parameter of this model", path, name);
    }
    return LRA_OK;
}

int lra_checkpoint_load(lra_model *m, const char *path, int with_optimizer, lra_err *err) {
    lra_st_file *f = NULL;
    int rc = lra_st_open(path, &f, err);
    if (rc) return rc;
    const char *fmt = lra_st_metadata(f, "lra.format");
    if (!fmt || strcmp(fmt, "checkpoint"))
        rc = lra_err_set(err, LRA_EIO, "%s: not an lra checkpoint (metadata lra.format is %s)", path,
                         fmt ? fmt : "missing");
    if (!rc) rc = check_no_extra(m, f, path, err);
    if (!rc) rc = lra_checkpoint_load_set(m, f, path, "", 1, m->params, err);
    if (!rc && with_optimizer) {
        rc = lra_checkpoint_load_set(m, f, path, "optim.exp_avg.", 0, m->adam_m, err);
        if (!rc) rc = lra_checkpoint_load_set(m, f, path, "optim.exp_avg_sq.", 0, m->adam_v, err);
        const char *st = lra_st_metadata(f, "lra.optim_step");
        char *end = NULL;
        long long v = st ? strtoll(st, &end, 10) : -1;
        if (!rc && (!st || *end || v < 0))
            rc = lra_err_set(err, LRA_EIO, "%s: metadata lra.optim_step missing or malformed", path);
        if (!rc) m->opt_step = v;
    }
    lra_st_close(f);
    return rc;
}

int lra_task_shape_string(const lra_model_task *t, char *out, size_t cap) {
    int w = snprintf(out, cap, "vocab=%d;n_classes=%d;n_inputs=%d;seq_len=%d;scalar_input=%d;scalar_mean=%.9g;scalar_std=%.9g",
                     t->vocab, t->n_classes, t->n_inputs, t->seq_len, t->scalar_input, t->scalar_mean, t->scalar_std);
    return w >= 0 && (size_t)w < cap ? LRA_OK : LRA_EINVAL;
}

int lra_task_shape_parse(const char *s, lra_model_task *t, lra_err *err) {
    char buf[512];
    lra_kv kv[16];
    snprintf(buf, sizeof buf, "%s", s);
    int n = lra_kv_split(buf, kv, 16, "lra.task_shape");
    static const char *const keys[] = { "vocab", "n_classes", "n_inputs", "seq_len", "scalar_input", "scalar_mean",
                                        "scalar_std", NULL };
    if (n < 0) return lra_err_set(err, LRA_EIO, "lra.task_shape: malformed '%s'", s);
    int rc = lra_kv_check_known(kv, n, "task_shape", keys, err);
    int64_t v[5];
    double mean, std;
    for (int i = 0; i < 5 && !rc; i++)
        rc = lra_kv_int(kv, n, "task_shape", keys[i], i == 2 ? 1 : i == 4 ? 0 : -1, i == 4 ? 0 : 1, 1 << 30, &v[i], err);
    if (!rc) rc = lra_kv_double(kv, n, "task_shape", "scalar_mean", 0, -1e9, 1e9, &mean, err);
    if (!rc) rc = lra_kv_double(kv, n, "task_shape", "scalar_std", 1, 1e-30, 1e9, &std, err);
    if (rc) return rc;
    *t = (lra_model_task){ (int)v[0], (int)v[1], (int)v[2], (int)v[3], (int)v[4], (float)mean, (float)std };
    return LRA_OK;
}

int lra_bundle_write(const lra_model *m, const lra_batch *b, const char *path, const lra_kv *extra, int n_extra,
                     lra_err *err) {
    if (!m->have_labels || b->B != m->B)
        return lra_err_set(err, LRA_EINVAL, "%s: bundle needs the forward and backward pass of this batch", path);
    const lra_model_task *t = &m->task;
    int B = b->B, K = t->n_classes;
    lra_st_writer *w = NULL;
    lra_real *hp = NULL, *hg = NULL, *logits = malloc((size_t)B * K * sizeof(lra_real));
    lra_real loss = (lra_real)m->loss;
    char cfg[4096], shape[512];
    int rc = lra_st_writer_new(&w, err);
    if (!rc && !logits) rc = lra_err_set(err, LRA_ENOMEM, "%s: out of host memory", path);
    if (!rc && (lra_model_describe(m, cfg, sizeof cfg) || lra_task_shape_string(t, shape, sizeof shape)))
        rc = lra_err_set(err, LRA_EINVAL, "%s: configuration does not fit the header", path);
    if (!rc) rc = lra_st_writer_metadata(w, "lra.format", "bundle", err);
    if (!rc) rc = lra_st_writer_metadata(w, "lra.version", LRA_CHECKPOINT_VERSION, err);
    if (!rc) rc = lra_st_writer_metadata(w, "lra.model", cfg, err);
    if (!rc) rc = lra_st_writer_metadata(w, "lra.task_shape", shape, err);
    if (!rc) rc = lra_st_writer_metadata(w, "lra.mode", m->training ? "train" : "eval", err);
    for (int i = 0; !rc && i < n_extra; i++) {
        if (!strncmp(extra[i].key, "lra.", 4))
            rc = lra_err_set(err, LRA_EINVAL, "%s: metadata key '%s' is reserved", path, extra[i].key);
        else rc = lra_st_writer_metadata(w, extra[i].key, extra[i].value, err);
    }
    if (!rc) rc = lra_checkpoint_add_params(m, w, "param.", m->params, 1, &hp, err);
    if (!rc) rc = lra_checkpoint_add_params(m, w, "grad.", m->grads, 0, &hg, err);
    if (!rc) {
        m->be->download(m->be, logits, m->logits, (size_t)B * K * sizeof(lra_real));
        int64_t n_in = t->n_inputs, L = t->seq_len;
        rc = lra_st_writer_add(w, "input.tokens", LRA_ST_I32, 3, LRA_SHAPE(B, n_in, L), b->tokens,
                               (int64_t)B * n_in * L * 4, err);
        if (!rc) rc = lra_st_writer_add(w, "input.lengths", LRA_ST_I32, 2, LRA_SHAPE(B, n_in), b->lengths, (int64_t)B * n_in * 4, err);
        if (!rc) rc = lra_st_writer_add(w, "input.labels", LRA_ST_I32, 1, LRA_SHAPE(B), b->labels, (int64_t)B * 4, err);
        if (!rc) rc = lra_st_writer_add(w, "logits", LRA_ST_REAL, 2, LRA_SHAPE(B, K), logits, (int64_t)B * K * (int64_t)sizeof(lra_real), err);
        if (!rc) rc = lra_st_writer_add(w, "loss", LRA_ST_REAL, 0, NULL, &loss, sizeof loss, err);
    }
    if (!rc) rc = lra_st_writer_write(w, path, err);
    lra_st_writer_free(w);
    free(hp);
    free(hg);
    free(logits);
    return rc;
}
