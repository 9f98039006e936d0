// dataset.c: see dataset.h.
#include "dataset.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#define LDS_MAGIC "LRADSET1"
#define LDS_FORMAT 1
#define LDS_CHUNK 1024  // examples generated in parallel per write

// FNV-1a over 8-byte words with a final mix: fast enough for gigabytes.
uint64_t lra_hash64(const void *data, size_t n, uint64_t h) {
    const unsigned char *p = data;
    h ^= 0xcbf29ce484222325ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    for (; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return lra_mix64(h ^ n);
}

typedef struct {
    char     magic[8];
    uint32_t format, generator_version;
    uint64_t key, seed;
    int32_t  n_inputs, seq_len, token_bytes, n_classes;
    int64_t  split_size[LRA_SPLIT_COUNT];
    uint64_t checksum;
    uint32_t params_len;
} lds_header;

static uint64_t lds_key(const lra_task *t) {
    const lra_task_info *in = &t->info;
    uint64_t h = lra_hash64(in->name, strlen(in->name), LDS_FORMAT);
    h = lra_hash64(in->params, strlen(in->params), h);
    uint64_t v[2] = { (uint64_t)in->generator_version, t->seed };
    return lra_hash64(v, sizeof v, h);
}

static int64_t lds_header_bytes(const lra_task *t) {
    return (int64_t)sizeof(lds_header) + (int64_t)strlen(t->info.params);
}

static void lds_layout(lra_dataset *ds) {
    const lra_task_info *in = &ds->task->info;
    ds->token_bytes = in->vocab <= 256 ? 1 : 2;
    ds->record_bytes = (int64_t)in->n_inputs * in->seq_len * ds->token_bytes + 4 * ((int64_t)in->n_inputs + 1);
    int64_t off = lds_header_bytes(ds->task);
    for (int s = 0; s < LRA_SPLIT_COUNT; s++) {
        ds->split_offset[s] = off;
        off += in->split_size[s] * ds->record_bytes;
    }
}

// example -> fixed-size record
static void lds_pack(const lra_dataset *ds, const lra_example *ex, unsigned char *rec) {
    const lra_task_info *in = &ds->task->info;
    int64_t n = (int64_t)in->n_inputs * in->seq_len;
    for (int64_t i = 0; i < n; i++) {
        if (ds->token_bytes == 1) rec[i] = (unsigned char)ex->tokens[i];
        else { uint16_t v = (uint16_t)ex->tokens[i]; memcpy(rec + 2 * i, &v, 2); }
    }
    unsigned char *tail = rec + n * ds->token_bytes;
    memcpy(tail, ex->length, 4 * (size_t)in->n_inputs);
    memcpy(tail + 4 * in->n_inputs, &ex->label, 4);
}

static int lds_unpack(const lra_dataset *ds, const unsigned char *rec, lra_example *ex, lra_err *err) {
    const lra_task_info *in = &ds->task->info;
    int64_t n = (int64_t)in->n_inputs * in->seq_len;
    for (int64_t i = 0; i < n; i++) {
        uint16_t v = rec[i];
        if (ds->token_bytes == 2) memcpy(&v, rec + 2 * i, 2);
        ex->tokens[i] = v;
    }
    const unsigned char *tail = rec + n * ds->token_bytes;
    memcpy(ex->length, tail, 4 * (size_t)in->n_inputs);
    memcpy(&ex->label, tail + 4 * in->n_inputs, 4);
    if (ex->label < 0 || ex->label >= in->n_classes)
        return lra_err_set(err, LRA_EIO, "%s: corrupt record (label %d)", ds->path, ex->label);
    return LRA_OK;
}

static int lds_write_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int lds_read_at(int fd, void *buf, size_t n, int64_t off) {
    char *p = buf;
    while (n) {
        ssize_t r = pread(fd, p, n, off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        p += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

static void lds_fill_header(const lra_dataset *ds, lds_header *h, uint64_t checksum) {
    const lra_task_info *in = &ds->task->info;
    memset(h, 0, sizeof *h);
    memcpy(h->magic, LDS_MAGIC, 8);
    h->format = LDS_FORMAT;
    h->generator_version = (uint32_t)in->generator_version;
    h->key = lds_key(ds->task);
    h->seed = ds->task->seed;
    h->n_inputs = in->n_inputs;
    h->seq_len = in->seq_len;
    h->token_bytes = ds->token_bytes;
    h->n_classes = in->n_classes;
    for (int s = 0; s < LRA_SPLIT_COUNT; s++) h->split_size[s] = in->split_size[s];
    h->checksum = checksum;
    h->params_len = (uint32_t)strlen(in->params);
}

// Checks an existing cache file: header equal to the expected one, size and
// checksum. Returns 1 when usable; otherwise 0 with the reason in why.
static int lds_verify(lra_dataset *ds, int fd, char *why, size_t why_cap) {
    lds_header want, got;
    lds_fill_header(ds, &want, 0);
    if (lds_read_at(fd, &got, sizeof got, 0) != 0) return snprintf(why, why_cap, "truncated header"), 0;
    uint64_t checksum = got.checksum;
    got.checksum = 0;
    if (memcmp(&got, &want, sizeof got) != 0) return snprintf(why, why_cap, "header does not match the parameters"), 0;
    struct stat st;
    int64_t size = ds->split_offset[LRA_SPLIT_COUNT - 1] +
                   ds->task->info.split_size[LRA_SPLIT_COUNT - 1] * ds->record_bytes;
    if (fstat(fd, &st) != 0 || st.st_size != size)
        return snprintf(why, why_cap, "size %lld, expected %lld", (long long)st.st_size, (long long)size), 0;
    // the checksum chains lra_hash64 over the same chunks of LDS_CHUNK records as lds_build
    const lra_task_info *in = &ds->task->info;
    unsigned char *buf = malloc((size_t)(LDS_CHUNK * ds->record_bytes));
    char *params = calloc(1, want.params_len + 1);
    int ok = buf && params && lds_read_at(fd, params, want.params_len, sizeof got) == 0 &&
             strcmp(params, in->params) == 0;
    free(params);
    if (!ok) { free(buf); return snprintf(why, why_cap, "parameters differ"), 0; }
    uint64_t h = 0;
    for (int s = 0; s < LRA_SPLIT_COUNT && ok; s++)
        for (int64_t first = 0; first < in->split_size[s] && ok; first += LDS_CHUNK) {
            int64_t n = in->split_size[s] - first < LDS_CHUNK ? in->split_size[s] - first : LDS_CHUNK;
            size_t bytes = (size_t)(n * ds->record_bytes);
            ok = lds_read_at(fd, buf, bytes, ds->split_offset[s] + first * ds->record_bytes) == 0;
            if (ok) h = lra_hash64(buf, bytes, h);
        }
    free(buf);
    if (!ok) return snprintf(why, why_cap, "read error"), 0;
    if (h != checksum) return snprintf(why, why_cap, "checksum mismatch (corrupt file)"), 0;
    return 1;
}

// Generates every example in parallel chunks and writes them to path.tmp,
// then renames it to path.
static int lds_build(lra_dataset *ds, lra_progress_fn progress, void *pctx, lra_err *err) {
    const lra_task_info *in = &ds->task->info;
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", ds->path, (int)getpid());
    int fd = open(tmp, O_CREAT | O_TRUNC | O_RDWR, 0644);
    if (fd < 0) return lra_err_set(err, LRA_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    lds_header h;
    lds_fill_header(ds, &h, 0);
    int rc = LRA_OK;
    if (lds_write_all(fd, &h, sizeof h) || lds_write_all(fd, in->params, h.params_len))
        rc = lra_err_set(err, LRA_EIO, "%s: write failed: %s", tmp, strerror(errno));
    int64_t total = in->split_size[0] + in->split_size[1] + in->split_size[2], done = 0;
    int64_t per = (int64_t)in->n_inputs * in->seq_len;
    unsigned char *recs = malloc((size_t)(LDS_CHUNK * ds->record_bytes));
    int32_t *tok = malloc(sizeof(int32_t) * (size_t)(LDS_CHUNK * per));
    int32_t *len = malloc(sizeof(int32_t) * (size_t)(LDS_CHUNK * in->n_inputs));
    if (!recs || !tok || !len) rc = lra_err_set(err, LRA_ENOMEM, "dataset cache: out of memory");
    uint64_t checksum = 0;
    for (int s = 0; s < LRA_SPLIT_COUNT && rc == LRA_OK; s++) {
        for (int64_t first = 0; first < in->split_size[s] && rc == LRA_OK; first += LDS_CHUNK) {
            int64_t n = in->split_size[s] - first < LDS_CHUNK ? in->split_size[s] - first : LDS_CHUNK;
            int failed = 0;
            lra_err chunk_err = {0};
#pragma omp parallel for schedule(dynamic, 4)
            for (int64_t i = 0; i < n; i++) {
                lra_example ex = { tok + i * per, len + i * in->n_inputs, 0 };
                lra_err e = {0};
                if (ds->task->vt->example(ds->task, (lra_split)s, first + i, &ex, &e) != LRA_OK) {
#pragma omp critical(lds_err)
                    if (!failed) { failed = 1; chunk_err = e; }
                    continue;
                }
                lds_pack(ds, &ex, recs + i * ds->record_bytes);
            }
            if (failed) { rc = lra_err_set(err, chunk_err.code, "%s", chunk_err.msg); break; }
            size_t bytes = (size_t)(n * ds->record_bytes);
            checksum = lra_hash64(recs, bytes, checksum);
            if (lds_write_all(fd, recs, bytes)) rc = lra_err_set(err, LRA_EIO, "%s: write failed: %s", tmp, strerror(errno));
            done += n;
            if (progress) progress(pctx, done, total);
        }
    }
    free(recs);
    free(tok);
    free(len);
    if (rc == LRA_OK) {  // the checksum of the records is only known at the end
        lds_fill_header(ds, &h, checksum);
        if (pwrite(fd, &h, sizeof h, 0) != (ssize_t)sizeof h || fsync(fd) != 0)
            rc = lra_err_set(err, LRA_EIO, "%s: write failed: %s", tmp, strerror(errno));
    }
    close(fd);
    if (rc == LRA_OK && rename(tmp, ds->path) != 0)
        rc = lra_err_set(err, LRA_EIO, "%s: cannot rename to %s: %s", tmp, ds->path, strerror(errno));
    if (rc != LRA_OK) unlink(tmp);
    return rc;
}

int lra_dataset_open(lra_dataset *ds, lra_task *task, const char *cache_dir, lra_progress_fn progress,
                     void *progress_ctx, lra_err *err) {
    memset(ds, 0, sizeof *ds);
    ds->task = task;
    ds->fd = -1;
    if (!cache_dir || strncmp(task->info.source, "generated", 9) != 0) {
        snprintf(ds->cache_note, sizeof ds->cache_note, "not cached");
        return LRA_OK;
    }
    lds_layout(ds);
    int rc = lra_mkdirs(cache_dir, err);
    if (rc) return rc;
    snprintf(ds->path, sizeof ds->path, "%s/%s-%016llx.lds", cache_dir, task->info.name,
             (unsigned long long)lds_key(task));
    int fd = open(ds->path, O_RDONLY);
    char why[256] = "";
    if (fd >= 0) {
        if (lds_verify(ds, fd, why, sizeof why)) {
            ds->fd = fd;
            snprintf(ds->cache_note, sizeof ds->cache_note, "loaded %s", ds->path);
            return LRA_OK;
        }
        close(fd);
    }
    rc = lds_build(ds, progress, progress_ctx, err);
    if (rc) return rc;
    ds->fd = open(ds->path, O_RDONLY);
    if (ds->fd < 0) return lra_err_set(err, LRA_EIO, "%s: cannot open: %s", ds->path, strerror(errno));
    if (why[0]) snprintf(ds->cache_note, sizeof ds->cache_note, "rebuilt %s (%s)", ds->path, why);
    else snprintf(ds->cache_note, sizeof ds->cache_note, "built %s", ds->path);
    return LRA_OK;
}

int lra_dataset_example(const lra_dataset *ds, lra_split split, int64_t index, lra_example *ex, lra_err *err) {
    const lra_task_info *in = &ds->task->info;
    if (split < 0 || split >= LRA_SPLIT_COUNT || index < 0 || index >= in->split_size[split])
        return lra_err_set(err, LRA_EINVAL, "%s: no example %lld in split %s (size %lld)", in->name, (long long)index,
                           (split >= 0 && split < LRA_SPLIT_COUNT) ? lra_split_names[split] : "?",
                           (long long)(split >= 0 && split < LRA_SPLIT_COUNT ? in->split_size[split] : 0));
    if (ds->fd < 0) return ds->task->vt->example(ds->task, split, index, ex, err);
    unsigned char stack[1 << 14];
    unsigned char *rec = ds->record_bytes <= (int64_t)sizeof stack ? stack : malloc((size_t)ds->record_bytes);
    if (!rec) return lra_err_set(err, LRA_ENOMEM, "dataset: out of memory");
    int rc = lds_read_at(ds->fd, rec, (size_t)ds->record_bytes, ds->split_offset[split] + index * ds->record_bytes)
                 ? lra_err_set(err, LRA_EIO, "%s: cannot read example %lld of %s", ds->path, (long long)index,
                               lra_split_names[split])
                 : lds_unpack(ds, rec, ex, err);
    if (rec != stack) free(rec);
    return rc;
}

void lra_dataset_close(lra_dataset *ds) {
    if (ds->fd >= 0) close(ds->fd);
    ds->fd = -1;
}
