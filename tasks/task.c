// task.c: parameter parsing helpers shared by the task implementations.
#include "task.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

const char *const lra_split_names[LRA_SPLIT_COUNT] = { "train", "val", "test" };

int lra_task_pixel_input(const lra_kv *params, int n_params, const char *task, lra_task_info *info, lra_err *err) {
    static const char *const inputs[] = { "tokens", "scalar", NULL };
    static const char *const norms[] = { "unit", "symmetric", "cifar", NULL };
    static const float mean[] = { 0.0f, 0.5f, 122.6f / 255.0f }, std[] = { 1.0f, 0.5f, 61.0f / 255.0f };
    int input, norm, rc;
    if ((rc = lra_kv_choice(params, n_params, task, "input", 0, inputs, &input, err))) return rc;
    if ((rc = lra_kv_choice(params, n_params, task, "normalize", 0, norms, &norm, err))) return rc;
    const lra_kv *kv = lra_kv_find(params, n_params, "normalize");
    if (kv && input == 0)
        return lra_err_set(err, LRA_EINVAL, "%s: %s.normalize: only used with input=scalar", lra_kv_where(kv), task);
    info->scalar_input = input;
    info->scalar_mean = input ? mean[norm] : 0.0f;
    info->scalar_std = input ? std[norm] : 1.0f;
    size_t len = strlen(info->params);
    snprintf(info->params + len, sizeof info->params - len, "%sinput=%s%s%s", len ? ";" : "", inputs[input],
             input ? ";normalize=" : "", input ? norms[norm] : "");
    return LRA_OK;
}

int lra_mkdirs(const char *dir, lra_err *err) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return lra_err_set(err, LRA_EINVAL, "%s: path too long", dir);
    for (char *p = path + 1;; p++) {
        char c = *p;
        if (c != '/' && c != 0) continue;
        *p = 0;
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return lra_err_set(err, LRA_EIO, "%s: cannot create directory: %s", path, strerror(errno));
        *p = c;
        if (!c) break;
    }
    return LRA_OK;
}

int lra_task_check_index(const lra_task *t, lra_split split, int64_t index, lra_err *err) {
    if ((unsigned)split >= LRA_SPLIT_COUNT) return lra_err_set(err, LRA_EINVAL, "%s: no split %d", t->info.name, (int)split);
    if (index < 0 || index >= t->info.split_size[split])
        return lra_err_set(err, LRA_EINVAL, "%s: no example %lld in split %s (size %lld)", t->info.name,
                           (long long)index, lra_split_names[split], (long long)t->info.split_size[split]);
    return LRA_OK;
}

int lra_task_data_dir(const lra_kv *params, int n_params, const char *task, const char *const *gen_only,
                      const char **data_dir, lra_err *err) {
    const lra_kv *kv = lra_kv_find(params, n_params, "data_dir");
    *data_dir = kv ? kv->value : NULL;
    if (!kv) return LRA_OK;
    if (!*kv->value)
        return lra_err_set(err, LRA_EINVAL, "%s: %s.data_dir: expected a directory, got ''", lra_kv_where(kv), task);
    size_t cap = sizeof((lra_task_info *)0)->source;
    if (strlen(kv->value) >= cap)
        return lra_err_set(err, LRA_EINVAL, "%s: %s.data_dir: path longer than %zu bytes", lra_kv_where(kv), task,
                           cap - 1);
    for (const char *const *k = gen_only; k && *k; k++) {
        const lra_kv *g = lra_kv_find(params, n_params, *k);
        if (g)
            return lra_err_set(err, LRA_EINVAL, "%s: %s.%s: not used with data_dir (the split sizes come from the files)",
                               lra_kv_where(g), task, *k);
    }
    return LRA_OK;
}
