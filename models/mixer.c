// mixer.c: the registry of sequence mixers, and a mixer on its own with its
// parameters, gradients and buffers (tests, benchmarks, reference dumps).
#include "layer.h"

#include <string.h>

extern const lra_mixer_vtable lra_mixer_attention, lra_mixer_s4d, lra_mixer_s4;
extern const lra_mixer_vtable lra_mixer_lru;
extern const lra_mixer_vtable lra_mixer_hyena;
extern const lra_mixer_vtable lra_mixer_attention, lra_mixer_s4d, lra_mixer_s4, lra_mixer_s5;
extern const lra_mixer_vtable lra_mixer_attention, lra_mixer_s4d, lra_mixer_s4, lra_mixer_mega;

static const lra_mixer_vtable *const mixers[] = {
    &lra_mixer_attention,
    &lra_mixer_s4d,
    &lra_mixer_s4,
    &lra_mixer_lru,
    &lra_mixer_hyena,
    &lra_mixer_s5,
    &lra_mixer_mega,
};

int lra_mixer_count(void) { return (int)(sizeof mixers / sizeof mixers[0]); }
const lra_mixer_vtable *lra_mixer_at(int i) { return i >= 0 && i < lra_mixer_count() ? mixers[i] : NULL; }

const lra_mixer_vtable *lra_mixer_find(const char *name, lra_err *err) {
    char list[256] = "";
    for (int i = 0; i < lra_mixer_count(); i++) {
        if (!strcmp(mixers[i]->name, name)) return mixers[i];
        if (i) strncat(list, ", ", sizeof list - strlen(list) - 1);
        strncat(list, mixers[i]->name, sizeof list - strlen(list) - 1);
    }
    lra_err_set(err, LRA_EINVAL, "unknown mixer '%s' (known: %s)", name, list);
    return NULL;
}

void lra_mixer_solo_free(lra_mixer_solo *s) {
    if (!s->be) return;
    if (s->m.vt && s->m.vt->free) s->m.vt->free(&s->m, s->be);
    s->be->free(s->be, s->params);
    s->be->free(s->be, s->grads);
    s->be->free(s->be, s->m.act);
    s->be->free(s->be, s->m.scratch);
    free(s->m.p);
    free(s->m.g);
    free(s->specs);
    memset(s, 0, sizeof *s);
}

static lra_real *solo_alloc(lra_backend *be, int64_t n, lra_err *err) {
    lra_real *p = be->alloc(be, (size_t)(n > 0 ? n : 1) * sizeof(lra_real), err);
    if (p) be->zero(be, p, (size_t)(n > 0 ? n : 1) * sizeof(lra_real));
    return p;
}

int lra_mixer_solo_new(lra_mixer_solo *s, lra_backend *be, const char *name, const lra_kv *kv, int n_kv,
                       int D, int B_max, int L_max, uint64_t seed, lra_err *err) {
    memset(s, 0, sizeof *s);
    const lra_mixer_vtable *vt = lra_mixer_find(name, err);
    if (!vt) return err ? err->code : LRA_EINVAL;
    s->be = be;
    s->B_max = B_max;
    s->m.D = D;
    s->m.L_max = L_max;
    int rc = vt->configure(&s->m, kv, n_kv, err);
    s->m.vt = vt;  // set after configure: free() releases only what configure made
    if (rc) goto fail;
    int n = vt->param_specs(&s->m, NULL);
    s->specs = calloc((size_t)n + 1, sizeof *s->specs);
    s->m.p = calloc((size_t)n + 1, sizeof *s->m.p);
    s->m.g = calloc((size_t)n + 1, sizeof *s->m.g);
    lra_real **host = calloc((size_t)n + 1, sizeof *host);
    if (!s->specs || !s->m.p || !s->m.g || !host) {
        free(host);
        rc = lra_err_set(err, LRA_ENOMEM, "mixer %s: out of host memory", name);
        goto fail;
    }
    vt->param_specs(&s->m, s->specs);
    s->m.n_params = n;
    int64_t total = 0;
    for (int i = 0; i < n; i++) total += lra_spec_numel(&s->specs[i]);
    s->n_real = total;
    lra_real *flat = calloc((size_t)(total > 0 ? total : 1), sizeof *flat);
    s->params = solo_alloc(be, total, err);
    s->grads = solo_alloc(be, total, err);
    s->m.act = solo_alloc(be, vt->act_size(&s->m, B_max, L_max), err);
    s->m.scratch = solo_alloc(be, vt->scratch_size(&s->m, B_max, L_max), err);
    if (!flat || !s->params || !s->grads || !s->m.act || !s->m.scratch) {
        free(flat);
        free(host);
        rc = err && err->code ? err->code : lra_err_set(err, LRA_ENOMEM, "mixer %s: out of memory", name);
        goto fail;
    }
    int64_t off = 0;
    for (int i = 0; i < n; i++) {
        host[i] = flat + off;
        s->m.p[i] = s->params + off;
        s->m.g[i] = s->specs[i].group == LRA_GROUP_BUFFER ? NULL : s->grads + off;
        off += lra_spec_numel(&s->specs[i]);
    }
    vt->init(&s->m, host, seed);
    be->upload(be, s->params, flat, (size_t)total * sizeof(lra_real));
    free(flat);
    free(host);
    return LRA_OK;
fail:
    lra_mixer_solo_free(s);
    return rc;
}
