// experiment.c: YAML configs to settings (includes merged), sweep axes, and
// the validated, resolved run spec of each sweep point.
#include "experiment.h"
#include "yamltree.h"
#include "db.h"
#include "../tasks/dataset.h"
#include "../backends/backend.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

const char *const lra_experiment_top_keys[] = { "include", "extends", "name", "description", "seed", "data_seed",
                                                "backend", "threads", "db", "out_dir", "cache", "task", "model",
                                                "optim", "train", "sweep", NULL };
// top-level settings (the rest of the keys above are sections or handled at load)
static const char *const run_keys[] = { "seed", "data_seed", "backend", "threads", "db", "out_dir", "cache", NULL };
const char *const lra_optim_keys[] = { "lr", "weight_decay", "ssm_lr", "dt_lr", "dt_global", "beta1", "beta2",
                                       "eps", "clip", "schedule", "warmup", "warmup_init", "min_lr_ratio", NULL };
const char *const lra_train_keys[] = { "steps", "epochs", "batch", "accum", "eval_batch", "eval_every",
                                       "eval_examples", "test_examples", "early_stop", "log_every", NULL };

#define MAX_INCLUDE_DEPTH 16
#define MAX_AXIS_VALUES 10000

static void join_list(char *out, size_t cap, const char *const *names) {
    out[0] = 0;
    for (int i = 0; names[i]; i++)
        snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? ", " : "", names[i]);
}

// ---- settings -------------------------------------------------------------------
static lra_setting *find_setting(lra_setting *set, int n, const char *key) {
    for (int i = 0; i < n; i++)
        if (!strcmp(set[i].key, key)) return &set[i];
    return NULL;
}

static void remove_setting(lra_experiment *e, int i) {
    free(e->set[i].value);
    memmove(&e->set[i], &e->set[i + 1], sizeof *e->set * (size_t)(e->n_set - i - 1));
    e->n_set--;
}

// Sets key (replacing an earlier value). A new model.mixer drops the
// inherited model.mixer.<key> settings, which belonged to the old mixer.
static int put(lra_experiment *e, const char *key, const char *value, const char *where, lra_err *err) {
    if (strlen(key) >= LRA_KEY_MAX) return lra_err_set(err, LRA_EINVAL, "%s: %s: key path too long", where, key);
    lra_setting *s = find_setting(e->set, e->n_set, key);
    if (s && !strcmp(key, "model.mixer") && strcmp(s->value, value))
        for (int i = e->n_set - 1; i >= 0; i--)
            if (!strncmp(e->set[i].key, "model.mixer.", 12)) remove_setting(e, i);
    s = find_setting(e->set, e->n_set, key);
    char *v = strdup(value);
    if (!v) return lra_err_set(err, LRA_ENOMEM, "out of memory");
    if (!s) {
        if (e->n_set == e->cap_set) {
            int cap = e->cap_set ? 2 * e->cap_set : 64;
            lra_setting *ns = realloc(e->set, sizeof *ns * (size_t)cap);
            if (!ns) {
                free(v);
                return lra_err_set(err, LRA_ENOMEM, "out of memory");
            }
            e->set = ns;
            e->cap_set = cap;
        }
        s = &e->set[e->n_set++];
        snprintf(s->key, sizeof s->key, "%s", key);
    } else {
        free(s->value);
    }
    s->value = v;
    snprintf(s->where, sizeof s->where, "%s", where);
    return LRA_OK;
}

// ---- flattening sections ---------------------------------------------------------
static int put_scalar(lra_experiment *e, const char *path, const lra_ynode *v, lra_err *err) {
    if (v->kind == LRA_Y_SEQ) {
        if (strcmp(path, "model.head_hidden"))
            return lra_err_set(err, LRA_EINVAL,
                               "%s: %s: expected a single value, not a list (values to try go in the sweep: section)",
                               v->where, path);
        char joined[256] = "";  // head_hidden: [256, 128] is "256,128"
        for (int i = 0; i < v->n; i++) {
            if (v->items[i]->kind != LRA_Y_SCALAR)
                return lra_err_set(err, LRA_EINVAL, "%s: %s: expected a list of numbers", v->items[i]->where, path);
            snprintf(joined + strlen(joined), sizeof joined - strlen(joined), "%s%s", i ? "," : "", v->items[i]->value);
        }
        return put(e, path, v->n ? joined : "none", v->where, err);
    }
    return put(e, path, v->value, v->where, err);
}

// Flattens a section mapping into "<prefix>.<key>" settings. In the model
// section, nested mappings are allowed (mixer: {name: s4d, d_state: 64} and
// per-mixer settings such as s4d: {d_state: 64}).
static int flatten(lra_experiment *e, const char *prefix, const lra_ynode *map, lra_err *err) {
    int nested_ok = !strncmp(prefix, "model", 5);
    for (int i = 0; i < map->n; i++) {
        char path[LRA_KEY_MAX * 2];
        snprintf(path, sizeof path, "%s.%s", prefix, map->keys[i]);
        const lra_ynode *v = map->items[i];
        int rc;
        if (v->kind != LRA_Y_MAP) rc = put_scalar(e, path, v, err);
        else if (!nested_ok)
            rc = lra_err_set(err, LRA_EINVAL, "%s: %s: expected a value, not a mapping", v->where, path);
        else if (!strcmp(path, "model.mixer")) {
            const lra_ynode *name = lra_ytree_get(v, "name");
            if (!name || name->kind != LRA_Y_SCALAR)
                return lra_err_set(err, LRA_EINVAL, "%s: model.mixer: a mixer mapping needs name: <mixer>", v->where);
            if ((rc = put(e, "model.mixer", name->value, name->where, err))) return rc;
            for (int j = 0; j < v->n && !rc; j++) {
                if (!strcmp(v->keys[j], "name")) continue;
                char sub[LRA_KEY_MAX * 2];
                snprintf(sub, sizeof sub, "model.mixer.%s", v->keys[j]);
                rc = v->items[j]->kind == LRA_Y_MAP
                         ? lra_err_set(err, LRA_EINVAL, "%s: %s: expected a value, not a mapping", v->items[j]->where, sub)
                         : put_scalar(e, sub, v->items[j], err);
            }
        } else
            rc = flatten(e, path, v, err);
        if (rc) return rc;
    }
    return LRA_OK;
}

// ---- sweep axes ------------------------------------------------------------------
static void axis_free(lra_sweep_axis *a) {
    for (int i = 0; i < a->n_keys * a->n_values; i++) free(a->values[i].value);
    free(a->values);
    free(a->keys);
    free(a->key_where);
    memset(a, 0, sizeof *a);
}

static int is_int(const char *s) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    (void)v;
    return *s && !*end && !errno;
}

static int range_number(const lra_ynode *range, const char *key, int required, double *out, lra_err *err) {
    const lra_ynode *v = lra_ytree_get(range, key);
    if (!v) {
        if (required) return lra_err_set(err, LRA_EINVAL, "%s: sweep range: missing '%s'", range->where, key);
        return LRA_OK;
    }
    char *end;
    if (v->kind != LRA_Y_SCALAR || (*out = strtod(v->value, &end), end == v->value || *end || !isfinite(*out)))
        return lra_err_set(err, LRA_EINVAL, "%s: sweep range: %s: expected a number", v->where, key);
    return LRA_OK;
}

// {from, to, step} (inclusive; integers stay integers) or {from, to, num, scale: linear|log}.
static int range_values(const lra_ynode *range, const char *path, char ***out, int *n, lra_err *err) {
    static const char *const known[] = { "from", "to", "step", "num", "scale", NULL };
    for (int i = 0; i < range->n; i++) {
        int ok = 0;
        for (int k = 0; known[k]; k++) ok |= !strcmp(range->keys[i], known[k]);
        if (!ok)
            return lra_err_set(err, LRA_EINVAL, "%s: sweep.%s.%s: unknown range key (known: from, to, step, num, scale)",
                               range->key_where[i], path, range->keys[i]);
    }
    double from, to, step = 0, num = 0;
    int rc;
    if ((rc = range_number(range, "from", 1, &from, err)) || (rc = range_number(range, "to", 1, &to, err)) ||
        (rc = range_number(range, "step", 0, &step, err)) || (rc = range_number(range, "num", 0, &num, err)))
        return rc;
    const lra_ynode *scale = lra_ytree_get(range, "scale");
    int log_scale = scale && scale->kind == LRA_Y_SCALAR && !strcmp(scale->value, "log");
    if (scale && !log_scale && (scale->kind != LRA_Y_SCALAR || strcmp(scale->value, "linear")))
        return lra_err_set(err, LRA_EINVAL, "%s: sweep.%s.scale: unknown value (choices: linear, log)", scale->where, path);
    int has_step = lra_ytree_get(range, "step") != NULL, has_num = lra_ytree_get(range, "num") != NULL;
    if (has_step == has_num)
        return lra_err_set(err, LRA_EINVAL, "%s: sweep.%s: a range needs exactly one of step and num", range->where, path);
    if (has_step && (log_scale || !(step != 0) || (to - from) / step < 0))
        return lra_err_set(err, LRA_EINVAL, "%s: sweep.%s.step: must be nonzero, towards 'to', with a linear scale",
                           range->where, path);
    if (has_num && (num < 1 || num != floor(num) || num > MAX_AXIS_VALUES))
        return lra_err_set(err, LRA_EINVAL, "%s: sweep.%s.num: expected an integer in [1, %d]", range->where, path,
                           MAX_AXIS_VALUES);
    if (log_scale && !(from > 0 && to > 0))
        return lra_err_set(err, LRA_EINVAL, "%s: sweep.%s: a log range needs positive from and to", range->where, path);
    int count = has_step ? (int)floor((to - from) / step + 1e-9) + 1 : (int)num;
    if (count > MAX_AXIS_VALUES)
        return lra_err_set(err, LRA_EINVAL, "%s: sweep.%s: more than %d values", range->where, path, MAX_AXIS_VALUES);
    int ints = has_step && is_int(lra_ytree_get(range, "from")->value) && is_int(lra_ytree_get(range, "step")->value);
    char **vals = calloc((size_t)count, sizeof *vals);
    if (!vals) return lra_err_set(err, LRA_ENOMEM, "out of memory");
    for (int i = 0; i < count; i++) {
        double t = count > 1 ? (double)i / (count - 1) : 0;
        double v = has_step ? from + i * step : log_scale ? from * pow(to / from, t) : from + (to - from) * t;
        char buf[64];
        if (ints) snprintf(buf, sizeof buf, "%lld", (long long)llround(v));
        else snprintf(buf, sizeof buf, "%.6g", v);
        vals[i] = strdup(buf);
    }
    *out = vals;
    *n = count;
    return LRA_OK;
}

// The values of one sweep key: a list of scalars, or a range mapping.
static int axis_values(const lra_ynode *v, const char *path, lra_setting **vals, int *n, lra_err *err) {
    *vals = NULL;
    *n = 0;
    if (v->kind == LRA_Y_SCALAR)
        return lra_err_set(err, LRA_EINVAL, "%s: sweep.%s: expected a list of values or a range {from, to, step|num}",
                           v->where, path);
    if (v->kind == LRA_Y_MAP) {
        char **r = NULL;
        int rc = range_values(v, path, &r, n, err);
        if (rc) return rc;
        *vals = calloc((size_t)*n, sizeof **vals);
        for (int i = 0; i < *n; i++) {
            (*vals)[i].value = r[i];
            snprintf((*vals)[i].where, LRA_WHERE_MAX, "%s", v->where);
        }
        free(r);
        return *vals ? LRA_OK : lra_err_set(err, LRA_ENOMEM, "out of memory");
    }
    if (v->n == 0) return lra_err_set(err, LRA_EINVAL, "%s: sweep.%s: empty list", v->where, path);
    if (v->n > MAX_AXIS_VALUES)
        return lra_err_set(err, LRA_EINVAL, "%s: sweep.%s: more than %d values", v->where, path, MAX_AXIS_VALUES);
    *vals = calloc((size_t)v->n, sizeof **vals);
    if (!*vals) return lra_err_set(err, LRA_ENOMEM, "out of memory");
    *n = v->n;
    for (int i = 0; i < v->n; i++) {
        const lra_ynode *it = v->items[i];
        snprintf((*vals)[i].where, LRA_WHERE_MAX, "%s", it->where);
        if (it->kind != LRA_Y_SCALAR)
            return lra_err_set(err, LRA_EINVAL, "%s: sweep.%s: each value must be a single value, not %s", it->where,
                               path, lra_ytree_kind_name(it->kind));
        if (!((*vals)[i].value = strdup(it->value))) return lra_err_set(err, LRA_ENOMEM, "out of memory");
    }
    return LRA_OK;
}

// A swept key must be a setting path: a top-level setting or a section key.
static int check_sweep_key(const char *path, const char *where, lra_err *err) {
    static const char *const sections[] = { "task.", "model.", "optim.", "train.", NULL };
    for (int i = 0; sections[i]; i++)
        if (!strncmp(path, sections[i], strlen(sections[i])) && path[strlen(sections[i])]) return LRA_OK;
    for (int i = 0; run_keys[i]; i++)
        if (!strcmp(path, run_keys[i])) return LRA_OK;
    return lra_err_set(err, LRA_EINVAL,
                       "%s: sweep.%s: not a setting (sweep a top-level setting: seed, data_seed, backend, threads, "
                       "or a section key such as model.d_model)",
                       where, path);
}

static int find_axis(const lra_experiment *e, const char *key, int *k) {
    for (int a = 0; a < e->n_axes; a++)
        for (int j = 0; j < e->axes[a].n_keys; j++)
            if (!strcmp(e->axes[a].keys[j], key)) {
                if (k) *k = j;
                return a;
            }
    return -1;
}

static void remove_axis(lra_experiment *e, int a) {
    axis_free(&e->axes[a]);
    memmove(&e->axes[a], &e->axes[a + 1], sizeof *e->axes * (size_t)(e->n_axes - a - 1));
    e->n_axes--;
}

// Adds an axis; an axis of an included file with one of its keys is replaced.
static int add_axis(lra_experiment *e, lra_sweep_axis *ax, lra_err *err) {
    for (int j = 0; j < ax->n_keys; j++) {
        int a = find_axis(e, ax->keys[j], NULL);
        if (a >= 0) remove_axis(e, a);
    }
    lra_sweep_axis *na = realloc(e->axes, sizeof *na * (size_t)(e->n_axes + 1));
    if (!na) {
        axis_free(ax);
        return lra_err_set(err, LRA_ENOMEM, "out of memory");
    }
    e->axes = na;
    e->axes[e->n_axes++] = *ax;
    return LRA_OK;
}

static int axis_alloc(lra_sweep_axis *ax, int n_keys) {
    memset(ax, 0, sizeof *ax);
    ax->n_keys = n_keys;
    ax->keys = calloc((size_t)n_keys, sizeof *ax->keys);
    ax->key_where = calloc((size_t)n_keys, sizeof *ax->key_where);
    return ax->keys && ax->key_where;
}

// zip: {key: [..], key: [..]}: one axis whose keys advance together.
static int parse_zip(lra_experiment *e, const lra_ynode *z, lra_err *err) {
    if (z->kind != LRA_Y_MAP || z->n == 0)
        return lra_err_set(err, LRA_EINVAL, "%s: sweep.zip: expected a mapping of keys to lists of equal length", z->where);
    lra_sweep_axis ax;
    if (!axis_alloc(&ax, z->n)) return lra_err_set(err, LRA_ENOMEM, "out of memory");
    int rc = LRA_OK;
    lra_setting **vals = calloc((size_t)z->n, sizeof *vals);
    int *counts = calloc((size_t)z->n, sizeof *counts);
    if (!vals || !counts) rc = lra_err_set(err, LRA_ENOMEM, "out of memory");
    for (int j = 0; j < z->n && !rc; j++) {
        snprintf(ax.keys[j], LRA_KEY_MAX, "%s", z->keys[j]);
        snprintf(ax.key_where[j], LRA_WHERE_MAX, "%s", z->key_where[j]);
        if ((rc = check_sweep_key(z->keys[j], z->key_where[j], err))) break;
        if ((rc = axis_values(z->items[j], z->keys[j], &vals[j], &counts[j], err))) break;
        if (counts[j] != counts[0])
            rc = lra_err_set(err, LRA_EINVAL, "%s: sweep.zip.%s: %d values, but %s has %d (zipped lists need equal lengths)",
                             z->items[j]->where, z->keys[j], counts[j], z->keys[0], counts[0]);
    }
    if (!rc) {
        ax.n_values = counts[0];
        ax.values = calloc((size_t)z->n * (size_t)counts[0], sizeof *ax.values);
        if (!ax.values) rc = lra_err_set(err, LRA_ENOMEM, "out of memory");
        for (int j = 0; j < z->n && !rc; j++)
            for (int v = 0; v < counts[0]; v++) {
                ax.values[j * counts[0] + v] = vals[j][v];
                vals[j][v].value = NULL;
            }
    }
    for (int j = 0; j < z->n && vals; j++) {
        for (int v = 0; v < counts[j]; v++) free(vals[j] ? vals[j][v].value : NULL);
        free(vals[j]);
    }
    free(vals);
    free(counts);
    if (rc) {
        axis_free(&ax);
        return rc;
    }
    return add_axis(e, &ax, err);
}

static int parse_sweep(lra_experiment *e, const char *prefix, const lra_ynode *map, lra_err *err) {
    if (map->kind != LRA_Y_MAP)
        return lra_err_set(err, LRA_EINVAL, "%s: sweep: expected a mapping of key paths to lists", map->where);
    for (int i = 0; i < map->n; i++) {
        const lra_ynode *v = map->items[i];
        char path[LRA_KEY_MAX * 2];
        snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", map->keys[i]);
        int rc;
        if (!*prefix && !strcmp(map->keys[i], "zip")) {
            if (v->kind == LRA_Y_SEQ) {
                for (int z = 0; z < v->n; z++)
                    if ((rc = parse_zip(e, v->items[z], err))) return rc;
                continue;
            }
            if ((rc = parse_zip(e, v, err))) return rc;
            continue;
        }
        if (v->kind == LRA_Y_MAP && !lra_ytree_get(v, "from")) {  // nested: sweep: {model: {d_model: [..]}}
            if ((rc = parse_sweep(e, path, v, err))) return rc;
            continue;
        }
        if (strlen(path) >= LRA_KEY_MAX) return lra_err_set(err, LRA_EINVAL, "%s: %s: key path too long", v->where, path);
        if ((rc = check_sweep_key(path, map->key_where[i], err))) return rc;
        lra_sweep_axis ax;
        if (!axis_alloc(&ax, 1)) return lra_err_set(err, LRA_ENOMEM, "out of memory");
        snprintf(ax.keys[0], LRA_KEY_MAX, "%.*s", LRA_KEY_MAX - 1, path);
        snprintf(ax.key_where[0], LRA_WHERE_MAX, "%s", map->key_where[i]);
        if ((rc = axis_values(v, path, &ax.values, &ax.n_values, err))) {
            ax.n_values = ax.values ? ax.n_values : 0;
            axis_free(&ax);
            return rc;
        }
        if ((rc = add_axis(e, &ax, err))) return rc;
    }
    return LRA_OK;
}

// ---- files and includes ----------------------------------------------------------
static int load_tree(lra_experiment *e, const lra_ynode *root, const char *path, const char *const *stack, int depth,
                     lra_err *err);

static int load_file(lra_experiment *e, const char *path, const char *from, const char *const *stack, int depth,
                     lra_err *err) {
    char real[PATH_MAX];
    if (!realpath(path, real)) {
        if (from) return lra_err_set(err, LRA_EIO, "%s: include: cannot open %s: %s", from, path, strerror(errno));
        return lra_err_set(err, LRA_EIO, "%s: cannot open: %s", path, strerror(errno));
    }
    for (int i = 0; i < depth; i++)
        if (!strcmp(stack[i], real))
            return lra_err_set(err, LRA_EINVAL, "%s: include: %s includes itself (an include cycle)", from, path);
    if (depth >= MAX_INCLUDE_DEPTH)
        return lra_err_set(err, LRA_EINVAL, "%s: include: more than %d nested includes", from, MAX_INCLUDE_DEPTH);
    lra_ynode *root;
    int rc = lra_ytree_load(path, &root, err);
    if (rc) return rc;
    const char *st[MAX_INCLUDE_DEPTH + 1];
    for (int i = 0; i < depth; i++) st[i] = stack[i];
    st[depth] = real;
    rc = load_tree(e, root, path, st, depth + 1, err);
    lra_ytree_free(root);
    return rc;
}

static int include_one(lra_experiment *e, const lra_ynode *inc, const char *path, const char *const *stack, int depth,
                       lra_err *err) {
    if (inc->kind != LRA_Y_SCALAR || !*inc->value)
        return lra_err_set(err, LRA_EINVAL, "%s: include: expected a file name or a list of file names", inc->where);
    char full[2048];
    const char *slash = strrchr(path, '/');
    if (inc->value[0] == '/' || !slash) snprintf(full, sizeof full, "%s", inc->value);
    else snprintf(full, sizeof full, "%.*s/%s", (int)(slash - path), path, inc->value);  // relative to the includer
    return load_file(e, full, inc->where, stack, depth, err);
}

static int set_text(char *dst, size_t cap, const lra_ynode *v, const char *key, lra_err *err) {
    if (v->kind != LRA_Y_SCALAR) return lra_err_set(err, LRA_EINVAL, "%s: %s: expected a single value", v->where, key);
    snprintf(dst, cap, "%s", v->value);
    return LRA_OK;
}

static int load_tree(lra_experiment *e, const lra_ynode *root, const char *path, const char *const *stack, int depth,
                     lra_err *err) {
    int rc;
    for (int pass = 0; pass < 2; pass++)  // includes first, whatever their position in the file
        for (int i = 0; i < root->n; i++) {
            const char *k = root->keys[i];
            const lra_ynode *v = root->items[i];
            int is_inc = !strcmp(k, "include") || !strcmp(k, "extends");
            if (pass == 0 && is_inc) {
                if (v->kind == LRA_Y_SEQ) {
                    for (int j = 0; j < v->n; j++)
                        if ((rc = include_one(e, v->items[j], path, stack, depth, err))) return rc;
                } else if ((rc = include_one(e, v, path, stack, depth, err)))
                    return rc;
            }
            if (pass == 0 || is_inc) continue;
            if (!strcmp(k, "name")) rc = depth == 1 ? set_text(e->name, sizeof e->name, v, k, err) : LRA_OK;
            else if (!strcmp(k, "description"))
                rc = depth == 1 ? set_text(e->description, sizeof e->description, v, k, err) : LRA_OK;
            else if (!strcmp(k, "sweep")) rc = parse_sweep(e, "", v, err);
            else if (!strcmp(k, "task") || !strcmp(k, "model") || !strcmp(k, "optim") || !strcmp(k, "train")) {
                if (v->kind == LRA_Y_SCALAR && !*v->value) continue;  // an empty section
                rc = v->kind == LRA_Y_MAP ? flatten(e, k, v, err)
                                          : lra_err_set(err, LRA_EINVAL, "%s: %s: expected a mapping of settings, not %s",
                                                        v->where, k, lra_ytree_kind_name(v->kind));
            } else {
                int known = 0;
                for (int j = 0; run_keys[j]; j++) known |= !strcmp(run_keys[j], k);
                if (!known) {
                    char list[512];
                    join_list(list, sizeof list, lra_experiment_top_keys);
                    return lra_err_set(err, LRA_EINVAL, "%s: %s: unknown key (known: %s)", root->key_where[i], k, list);
                }
                rc = v->kind == LRA_Y_SCALAR ? put(e, k, v->value, v->where, err)
                                             : lra_err_set(err, LRA_EINVAL,
                                                           "%s: %s: expected a single value, not %s (values to try go in "
                                                           "the sweep: section)",
                                                           v->where, k, lra_ytree_kind_name(v->kind));
            }
            if (rc) return rc;
        }
    return LRA_OK;
}

static void default_name(lra_experiment *e, const char *path) {
    if (e->name[0]) return;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    snprintf(e->name, sizeof e->name, "%.*s", (int)strcspn(base, "."), base);
}

int lra_experiment_load(lra_experiment *e, const char *path, lra_err *err) {
    memset(e, 0, sizeof *e);
    snprintf(e->file, sizeof e->file, "%s", path);
    int rc = load_file(e, path, NULL, NULL, 0, err);
    if (rc) lra_experiment_free(e);
    else default_name(e, path);
    return rc;
}

int lra_experiment_parse(lra_experiment *e, const char *text, const char *name, lra_err *err) {
    memset(e, 0, sizeof *e);
    snprintf(e->file, sizeof e->file, "%s", name);
    lra_ynode *root;
    int rc = lra_ytree_parse(text, strlen(text), name, &root, err);
    if (!rc) {
        const char *stack[1] = { name };
        rc = load_tree(e, root, name, stack, 1, err);
        lra_ytree_free(root);
    }
    if (rc) lra_experiment_free(e);
    else default_name(e, name);
    return rc;
}

void lra_experiment_free(lra_experiment *e) {
    for (int i = 0; i < e->n_set; i++) free(e->set[i].value);
    free(e->set);
    for (int a = 0; a < e->n_axes; a++) axis_free(&e->axes[a]);
    free(e->axes);
    memset(e, 0, sizeof *e);
}

int lra_experiment_set(lra_experiment *e, const char *key, const char *value, const char *where, lra_err *err) {
    int k, a = find_axis(e, key, &k);
    if (a >= 0) {
        if (e->axes[a].n_keys > 1)
            return lra_err_set(err, LRA_EINVAL, "%s: %s: zipped with other keys in the sweep; cannot be set alone", where,
                               key);
        remove_axis(e, a);
    }
    if (!strcmp(key, "name")) {
        snprintf(e->name, sizeof e->name, "%s", value);
        return LRA_OK;
    }
    if (strchr(key, '.') == NULL) {
        int known = 0;
        for (int j = 0; run_keys[j]; j++) known |= !strcmp(run_keys[j], key);
        if (!known) return lra_err_set(err, LRA_EINVAL, "%s: %s: unknown key (known: name, seed, data_seed, backend, threads, db, out_dir, cache, or a section key such as model.d_model)", where, key);
    } else {
        int rc = check_sweep_key(key, where, err);
        if (rc) return lra_err_set(err, LRA_EINVAL, "%s: %s: unknown key (a top-level setting or task.*, model.*, optim.*, train.*)", where, key);
    }
    return put(e, key, value, where, err);
}

int64_t lra_experiment_count(const lra_experiment *e) {
    int64_t n = 1;
    for (int a = 0; a < e->n_axes; a++) n *= e->axes[a].n_values;
    return n;
}

char *lra_experiment_source(const lra_experiment *e) {
    size_t cap = 256;
    for (int i = 0; i < e->n_set; i++) cap += strlen(e->set[i].key) + strlen(e->set[i].value) + 8;
    for (int a = 0; a < e->n_axes; a++)
        for (int j = 0; j < e->axes[a].n_keys; j++) {
            cap += strlen(e->axes[a].keys[j]) + 32;
            for (int v = 0; v < e->axes[a].n_values; v++) cap += strlen(e->axes[a].values[j * e->axes[a].n_values + v].value) + 2;
        }
    char *s = malloc(cap);
    if (!s) return NULL;
    size_t len = 0;
    for (int i = 0; i < e->n_set; i++)
        len += (size_t)snprintf(s + len, cap - len, "%s = %s\n", e->set[i].key, e->set[i].value);
    for (int a = 0; a < e->n_axes; a++)
        for (int j = 0; j < e->axes[a].n_keys; j++) {
            len += (size_t)snprintf(s + len, cap - len, "sweep%s.%s = [", e->axes[a].n_keys > 1 ? ".zip" : "",
                                    e->axes[a].keys[j]);
            for (int v = 0; v < e->axes[a].n_values; v++)
                len += (size_t)snprintf(s + len, cap - len, "%s%s", v ? ", " : "",
                                        e->axes[a].values[j * e->axes[a].n_values + v].value);
            len += (size_t)snprintf(s + len, cap - len, "]\n");
        }
    s[len] = 0;
    return s;
}

// ---- sweep points ------------------------------------------------------------------
void lra_run_spec_free(lra_run_spec *r) {
    for (int i = 0; i < r->n_set; i++) free(r->set[i].value);
    free(r->set);
    free(r->task_kv);
    free(r->model_kv);
    free(r->keybuf);
    free(r->config);
    memset(r, 0, sizeof *r);
}

// Replaces "<from>" by "<to>" once in the message (owner names of the task
// and mixer parsers become the config's key paths: "listops." -> "task.").
static void rename_owner(lra_err *err, const char *from, const char *to) {
    char *at = strstr(err->msg, from);
    if (!at) return;
    char tail[sizeof err->msg];
    snprintf(tail, sizeof tail, "%s", at + strlen(from));
    snprintf(at, sizeof err->msg - (size_t)(at - err->msg), "%s%s", to, tail);
}

// kv entries of the settings under prefix ("task." ...; "" = top level).
static int section_kv(lra_run_spec *r, const char *prefix, lra_kv **out, lra_err *err) {
    size_t n = strlen(prefix);
    int count = 0;
    *out = calloc((size_t)r->n_set + 1, sizeof **out);
    if (!*out) return lra_err_set(err, LRA_ENOMEM, "out of memory"), -1;
    for (int i = 0; i < r->n_set; i++) {
        const char *k = r->set[i].key;
        if (n ? strncmp(k, prefix, n) != 0 : strchr(k, '.') != NULL) continue;
        (*out)[count++] = (lra_kv){ k + n, r->set[i].value, r->set[i].where };
    }
    return count;
}

static int resolve_top(lra_run_spec *r, lra_err *err) {
    lra_kv *kv;
    int n = section_kv(r, "", &kv, err), rc;
    if (n < 0) return err->code;
    int64_t v;
    const char *names[16] = { 0 };
    for (int i = 0; i < lra_backend_count() && i < 15; i++) names[i] = lra_backend_name(i);
    int b;
    const char *s;
    if (!(rc = lra_kv_check_known(kv, n, "", run_keys, err)) &&
        !(rc = lra_kv_int(kv, n, "", "seed", 1, 0, INT64_MAX / 2, &v, err))) {
        r->seed = (uint64_t)v;
        if (!(rc = lra_kv_int(kv, n, "", "data_seed", 1, 0, INT64_MAX / 2, &v, err))) r->data_seed = (uint64_t)v;
    }
    if (!rc && !(rc = lra_kv_choice(kv, n, "", "backend", 0, names, &b, err)))
        snprintf(r->backend, sizeof r->backend, "%s", names[b]);
    if (!rc && !(rc = lra_kv_int(kv, n, "", "threads", 0, 0, 4096, &v, err))) r->threads = (int)v;
    if (!rc) {
        const char *cache = getenv("LRA_CACHE") ? getenv("LRA_CACHE") : ".cache/lra";
        lra_kv_string(kv, n, "db", LRA_DB_DEFAULT, &s);
        snprintf(r->db, sizeof r->db, "%s", s);
        lra_kv_string(kv, n, "out_dir", "results/runs", &s);
        snprintf(r->out_dir, sizeof r->out_dir, "%s", s);
        lra_kv_string(kv, n, "cache", cache, &s);
        snprintf(r->cache, sizeof r->cache, "%s", s);
        for (const char *const *k = (const char *const[]){ "db", "out_dir", "cache", NULL }; *k && !rc; k++) {
            const lra_kv *e = lra_kv_find(kv, n, *k);
            if (e && !*e->value) rc = lra_err_set(err, LRA_EINVAL, "%s: %s: expected a path, got an empty value", e->where, *k);
        }
    }
    free(kv);
    return rc;
}

static int resolve_task(lra_run_spec *r, const char *file, lra_err *err) {
    int n = section_kv(r, "task.", &r->task_kv, err);
    if (n < 0) return err->code;
    const lra_kv *name = lra_kv_find(r->task_kv, n, "name");
    char known[256] = "";
    for (int i = 0; i < lra_task_count(); i++)
        snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "", lra_task_vtable_at(i)->name);
    if (!name) return lra_err_set(err, LRA_EINVAL, "%s: task.name: missing (known tasks: %s)", file, known);
    if (strlen(name->value) >= sizeof r->task_name)
        return lra_err_set(err, LRA_EINVAL, "%s: task.name: unknown task '%s' (known: %s)", name->where, name->value, known);
    snprintf(r->task_name, sizeof r->task_name, "%s", name->value);
    r->n_task_kv = 0;  // the task's own parameters: every task.* key but name
    for (int i = 0; i < n; i++)
        if (strcmp(r->task_kv[i].key, "name")) r->task_kv[r->n_task_kv++] = r->task_kv[i];
    lra_task t;
    int rc = lra_task_open(&t, r->task_name, r->task_kv, r->n_task_kv, r->data_seed, err);
    if (rc) {
        char from[64];
        snprintf(from, sizeof from, ": %s.", r->task_name);
        if (strstr(err->msg, from)) rename_owner(err, from, ": task.");
        else {
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            lra_err_set(err, rc, "%s: task.name: %s", name->where, msg);
        }
        return rc;
    }
    r->task_info = t.info;
    lra_task_close(&t);
    lra_task_info *in = &r->task_info;
    r->mtask = (lra_model_task){ in->vocab, in->n_classes, in->n_inputs, in->seq_len, in->scalar_input, in->scalar_mean,
                                 in->scalar_std };
    return LRA_OK;
}

static int resolve_model(lra_run_spec *r, char *desc, size_t cap, lra_err *err) {
    lra_kv *kv;
    int n = section_kv(r, "model.", &kv, err);
    if (n < 0) return err->code;
    const lra_kv *mk = lra_kv_find(kv, n, "mixer");
    const char *mixer = mk ? mk->value : "s4d";
    r->model_kv = calloc((size_t)n + 1, sizeof *r->model_kv);
    r->keybuf = calloc((size_t)n + 1, sizeof *r->keybuf);
    if (!r->model_kv || !r->keybuf) {
        free(kv);
        return lra_err_set(err, LRA_ENOMEM, "out of memory");
    }
    // per-mixer settings "model.<mixer>.<key>" apply when that mixer is chosen
    for (int i = 0; i < n; i++) {
        const char *dot = strchr(kv[i].key, '.');
        int per_mixer = 0;
        if (dot) {
            char head[LRA_KEY_MAX];
            snprintf(head, sizeof head, "%.*s", (int)(dot - kv[i].key), kv[i].key);
            for (int j = 0; j < lra_mixer_count(); j++) per_mixer |= !strcmp(lra_mixer_at(j)->name, head);
            if (per_mixer && strcmp(head, mixer)) continue;
        }
        if (per_mixer) snprintf(r->keybuf[i], LRA_KEY_MAX, "mixer.%s", dot + 1);
        else snprintf(r->keybuf[i], LRA_KEY_MAX, "%s", kv[i].key);
        r->model_kv[r->n_model_kv++] = (lra_kv){ r->keybuf[i], kv[i].value, kv[i].where };
    }
    free(kv);
    int rc = lra_model_config_parse(&r->model, r->model_kv, r->n_model_kv, err);
    if (!rc) rc = lra_model_config_describe(&r->model, &r->mtask, desc, cap, err);
    if (rc) {
        char from[64];
        snprintf(from, sizeof from, ": mixer.%s.", mixer);
        rename_owner(err, from, ": model.mixer.");
    }
    return rc;
}

static int resolve_optim(lra_run_spec *r, lra_err *err) {
    lra_kv *kv;
    int n = section_kv(r, "optim.", &kv, err), rc, i;
    if (n < 0) return err->code;
    lra_optim_config *o = &r->optim;
    lra_optim_defaults(o);
    double lr, wd, slr, dlr, b1, b2, eps, wi, mr;
    int64_t warm;
    if (!(rc = lra_kv_check_known(kv, n, "optim", lra_optim_keys, err)) &&
        !(rc = lra_kv_double(kv, n, "optim", "lr", o->lr, 1e-12, 10, &lr, err)) &&
        !(rc = lra_kv_double(kv, n, "optim", "weight_decay", 0, 0, 10, &wd, err)) &&
        !(rc = lra_kv_double(kv, n, "optim", "ssm_lr", 0, 0, 10, &slr, err)) &&
        !(rc = lra_kv_double(kv, n, "optim", "dt_lr", 0, 0, 10, &dlr, err)) &&
        !(rc = lra_kv_bool(kv, n, "optim", "dt_global", 0, &o->dt_global, err)) &&
        !(rc = lra_kv_double(kv, n, "optim", "beta1", o->beta1, 0, 0.999999, &b1, err)) &&
        !(rc = lra_kv_double(kv, n, "optim", "beta2", o->beta2, 0, 0.999999999, &b2, err)) &&
        !(rc = lra_kv_double(kv, n, "optim", "eps", o->eps, 1e-30, 1, &eps, err)) &&
        !(rc = lra_kv_double(kv, n, "optim", "clip", 0, 0, 1e9, &o->clip, err)) &&
        !(rc = lra_kv_choice(kv, n, "optim", "schedule", LRA_SCHED_CONSTANT, lra_sched_names, &i, err)) &&
        !(rc = lra_kv_int(kv, n, "optim", "warmup", 0, 0, INT32_MAX, &warm, err)) &&
        !(rc = lra_kv_double(kv, n, "optim", "warmup_init", 0, 0, 1, &wi, err)) &&
        !(rc = lra_kv_double(kv, n, "optim", "min_lr_ratio", 0, 0, 1, &mr, err))) {
        o->lr = (float)lr;
        o->weight_decay = (float)wd;
        o->ssm_lr = (float)slr;
        o->dt_lr = (float)dlr;
        o->beta1 = (float)b1;
        o->beta2 = (float)b2;
        o->eps = (float)eps;
        o->schedule = (lra_schedule){ (lra_sched_kind)i, warm, r->train.steps, wi, mr };
        if (o->schedule.kind == LRA_SCHED_RSQRT && warm < 1) {
            const lra_kv *at = lra_kv_find(kv, n, "schedule");
            rc = lra_err_set(err, LRA_EINVAL, "%s: optim.warmup: the rsqrt schedule needs warmup >= 1", lra_kv_where(at));
        } else if (warm > r->train.steps) {
            const lra_kv *at = lra_kv_find(kv, n, "warmup");
            rc = lra_err_set(err, LRA_EINVAL, "%s: optim.warmup: %lld warmup steps exceed the %lld training steps",
                             lra_kv_where(at), (long long)warm, (long long)r->train.steps);
        }
    }
    free(kv);
    return rc;
}

static int resolve_train(lra_run_spec *r, lra_err *err) {
    lra_kv *kv;
    int n = section_kv(r, "train.", &kv, err), rc;
    if (n < 0) return err->code;
    lra_train_config *t = &r->train;
    int64_t steps, epochs, batch, accum, eb, ee, ex, tx, es, le;
    const lra_kv *ks = lra_kv_find(kv, n, "steps"), *ke = lra_kv_find(kv, n, "epochs");
    if ((rc = lra_kv_check_known(kv, n, "train", lra_train_keys, err))) goto done;
    if (ks && ke) {
        rc = lra_err_set(err, LRA_EINVAL, "%s: train.epochs: give steps or epochs, not both (steps at %s)", ke->where,
                         ks->where);
        goto done;
    }
    if ((rc = lra_kv_int(kv, n, "train", "steps", 1000, 1, INT32_MAX, &steps, err)) ||
        (rc = lra_kv_int(kv, n, "train", "epochs", 0, 1, 1000000, &epochs, err)) ||
        (rc = lra_kv_int(kv, n, "train", "batch", 32, 1, 65536, &batch, err)) ||
        (rc = lra_kv_int(kv, n, "train", "accum", 1, 1, batch, &accum, err)))
        goto done;
    if (batch % accum) {
        rc = lra_err_set(err, LRA_EINVAL, "%s: train.accum: %lld does not divide the batch of %lld",
                         lra_kv_where(lra_kv_find(kv, n, "accum")), (long long)accum, (long long)batch);
        goto done;
    }
    int64_t n_train = r->task_info.split_size[LRA_SPLIT_TRAIN];
    if (ke) steps = epochs * ((n_train + batch - 1) / batch);
    if (steps > INT32_MAX) {
        rc = lra_err_set(err, LRA_EINVAL, "%s: train.epochs: %lld steps is too many", ke->where, (long long)steps);
        goto done;
    }
    t->steps = steps;
    t->epochs = ke ? epochs : 0;
    t->batch = (int)batch;
    t->accum = (int)accum;
    if ((rc = lra_kv_int(kv, n, "train", "eval_batch", batch / accum, 1, 65536, &eb, err)) ||
        (rc = lra_kv_int(kv, n, "train", "eval_every", steps < 10 ? 1 : steps / 10, 1, INT32_MAX, &ee, err)) ||
        (rc = lra_kv_int(kv, n, "train", "eval_examples", 0, 0, INT64_MAX / 2, &ex, err)) ||
        (rc = lra_kv_int(kv, n, "train", "test_examples", 0, 0, INT64_MAX / 2, &tx, err)) ||
        (rc = lra_kv_int(kv, n, "train", "early_stop", 0, 0, 1000000, &es, err)))
        goto done;
    if (ee > steps) ee = steps;
    if ((rc = lra_kv_int(kv, n, "train", "log_every", ee < 10 ? 1 : ee / 10, 1, INT32_MAX, &le, err))) goto done;
    t->eval_batch = (int)eb;
    t->eval_every = ee;
    t->eval_examples = ex;
    t->test_examples = tx;
    t->early_stop = (int)es;
    t->log_every = le;
    for (int s = LRA_SPLIT_TRAIN; s < LRA_SPLIT_COUNT && !rc; s++)
        if (r->task_info.split_size[s] < 1)
            rc = lra_err_set(err, LRA_EINVAL, "task %s: the %s split is empty", r->task_name, lra_split_names[s]);
done:
    free(kv);
    return rc;
}

// Appends "<prefix><key> = <value>" lines of a "k=v;k=v" string.
static int add_lines(char ***lines, int *n, const char *prefix, const char *kvs) {
    char *buf = strdup(kvs);
    if (!buf) return -1;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) continue;
        *eq = 0;
        char **nl = realloc(*lines, sizeof *nl * (size_t)(*n + 1));
        if (!nl) {
            free(buf);
            return -1;
        }
        *lines = nl;
        size_t len = strlen(prefix) + strlen(tok) + strlen(eq + 1) + 8;
        if (!((*lines)[*n] = malloc(len))) {
            free(buf);
            return -1;
        }
        snprintf((*lines)[(*n)++], len, "%s%s = %s", prefix, tok, eq + 1);
    }
    free(buf);
    return 0;
}

static int cmp_lines(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// Shortest decimal form that reads back to the same float ("0.9", not
// "0.899999976").
static const char *ffmt(char out[32], double v) {
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(out, 32, "%.*g", prec, v);
        if ((float)strtod(out, NULL) == (float)v) break;
    }
    return out;
}

// The canonical config: every resolved setting as "key = value", sorted.
static int canonical(lra_run_spec *r, const char *model_desc, lra_err *err) {
    char top[512], task[1400], optim[1024], train[1024];
    const lra_optim_config *o = &r->optim;
    const lra_train_config *t = &r->train;
    snprintf(top, sizeof top, "seed=%llu;data_seed=%llu;backend=%s", (unsigned long long)r->seed,
             (unsigned long long)r->data_seed, r->backend);
    snprintf(task, sizeof task, "name=%s;generator_version=%d;%s", r->task_name, r->task_info.generator_version,
             r->task_info.params);
    char f[9][32];
    snprintf(optim, sizeof optim,
             "lr=%s;weight_decay=%s;ssm_lr=%s;dt_lr=%s;dt_global=%d;beta1=%s;beta2=%s;eps=%s;clip=%.9g;"
             "schedule=%s;warmup=%lld;warmup_init=%s;min_lr_ratio=%s",
             ffmt(f[0], o->lr), ffmt(f[1], o->weight_decay), ffmt(f[2], o->ssm_lr), ffmt(f[3], o->dt_lr), o->dt_global,
             ffmt(f[4], o->beta1), ffmt(f[5], o->beta2), ffmt(f[6], o->eps), o->clip, lra_sched_names[o->schedule.kind],
             (long long)o->schedule.warmup_steps, ffmt(f[7], o->schedule.warmup_init), ffmt(f[8], o->schedule.min_ratio));
    snprintf(train, sizeof train,
             "steps=%lld;epochs=%lld;batch=%d;accum=%d;eval_batch=%d;eval_every=%lld;eval_examples=%lld;"
             "test_examples=%lld;early_stop=%d;log_every=%lld",
             (long long)t->steps, (long long)t->epochs, t->batch, t->accum, t->eval_batch, (long long)t->eval_every,
             (long long)t->eval_examples, (long long)t->test_examples, t->early_stop, (long long)t->log_every);
    char **lines = NULL;
    int n = 0, bad = add_lines(&lines, &n, "", top) || add_lines(&lines, &n, "task.", task) ||
                     add_lines(&lines, &n, "model.", model_desc) || add_lines(&lines, &n, "optim.", optim) ||
                     add_lines(&lines, &n, "train.", train);
    size_t len = 1;
    for (int i = 0; i < n; i++) len += strlen(lines[i]) + 1;
    if (!bad) qsort(lines, (size_t)n, sizeof *lines, cmp_lines);
    r->config = bad ? NULL : malloc(len);
    if (r->config) {
        char *p = r->config;
        for (int i = 0; i < n; i++) p += sprintf(p, "%s\n", lines[i]);
        *p = 0;
        snprintf(r->hash, sizeof r->hash, "%016llx", (unsigned long long)lra_hash64(r->config, strlen(r->config), 0));
    }
    for (int i = 0; i < n; i++) free(lines[i]);
    free(lines);
    return r->config ? LRA_OK : lra_err_set(err, LRA_ENOMEM, "out of memory");
}

static int spec_put(lra_run_spec *r, const char *key, const char *value, const char *where) {
    lra_setting *s = find_setting(r->set, r->n_set, key);
    if (!s) {
        s = &r->set[r->n_set++];
        snprintf(s->key, sizeof s->key, "%s", key);
    } else
        free(s->value);
    snprintf(s->where, sizeof s->where, "%s", where);
    return (s->value = strdup(value)) ? 0 : -1;
}

int lra_experiment_point(const lra_experiment *e, int64_t index, lra_run_spec *r, lra_err *err) {
    memset(r, 0, sizeof *r);
    r->index = index;
    int cap = e->n_set + 1;
    for (int a = 0; a < e->n_axes; a++) cap += e->axes[a].n_keys;
    if (!(r->set = calloc((size_t)cap, sizeof *r->set))) return lra_err_set(err, LRA_ENOMEM, "out of memory");
    // on any error below, r is released (the caller frees only what succeeded)
    int bad = 0;
    for (int i = 0; i < e->n_set; i++) bad |= spec_put(r, e->set[i].key, e->set[i].value, e->set[i].where);
    int64_t rem = index;
    int vi[64] = { 0 };
    for (int a = e->n_axes - 1; a >= 0 && a < 64; a--) {
        vi[a] = (int)(rem % e->axes[a].n_values);
        rem /= e->axes[a].n_values;
    }
    for (int a = 0; a < e->n_axes && a < 64; a++)
        for (int j = 0; j < e->axes[a].n_keys; j++) {
            const lra_setting *v = &e->axes[a].values[j * e->axes[a].n_values + vi[a]];
            bad |= spec_put(r, e->axes[a].keys[j], v->value, v->where);
            snprintf(r->label + strlen(r->label), sizeof r->label - strlen(r->label), "%s%s=%s", r->label[0] ? "," : "",
                     e->axes[a].keys[j], v->value);
        }
    char *desc = bad ? NULL : malloc(8192);
    if (!desc) {
        lra_run_spec_free(r);
        return lra_err_set(err, LRA_ENOMEM, "out of memory");
    }
    int rc = resolve_top(r, err);
    if (!rc) rc = resolve_task(r, e->file, err);
    if (!rc) rc = resolve_model(r, desc, 8192, err);
    if (!rc) rc = resolve_train(r, err);
    if (!rc) rc = resolve_optim(r, err);
    if (!rc) rc = canonical(r, desc, err);
    free(desc);
    if (rc && e->n_axes) {
        size_t len = strlen(err->msg);
        snprintf(err->msg + len, sizeof err->msg - len, " (sweep point %lld of %lld: %s)", (long long)index + 1,
                 (long long)lra_experiment_count(e), r->label);
    }
    if (rc) lra_run_spec_free(r);
    return rc;
}
