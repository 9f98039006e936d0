// test_task_image.c: the Image task (tasks/image.c): parameters, the two
// grayscale conversions, generator determinism and statistics, that a few
// pixels do not tell the class while whole images do, the CIFAR-10 binary
// round trip and every loader error message.
#include "../tasks/image.h"
#include "t.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

enum { PIXELS = 1024, RECORD = 3073 };

// ---- helpers ---------------------------------------------------------------------------

static void make_tmp(char *dir) { t_tmpdir(dir, 64, "image"); }

static void put_bytes(const char *dir, const char *name, const uint8_t *bytes, size_t n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    T_CHECK(f != NULL, "create %s", path);
    if (!f) return;
    fwrite(bytes, 1, n, f);
    fclose(f);
}

// A record with label y and every pixel (r, g, b).
static void make_record(uint8_t *rec, int y, int r, int g, int b) {
    rec[0] = (uint8_t)y;
    memset(rec + 1, r, PIXELS);
    memset(rec + 1 + PIXELS, g, PIXELS);
    memset(rec + 1 + 2 * PIXELS, b, PIXELS);
}

// data_batch_1 holds 3 records, data_batch_2 holds 2, 3..5 are empty, test 1.
static void make_cifar(const char *dir) {
    static uint8_t recs[5 * RECORD];
    make_record(recs, 0, 255, 0, 0);
    make_record(recs + RECORD, 1, 0, 255, 0);
    make_record(recs + 2 * RECORD, 2, 0, 0, 255);
    make_record(recs + 3 * RECORD, 3, 1, 2, 3);
    make_record(recs + 4 * RECORD, 9, 12, 200, 37);
    recs[4 * RECORD + 1 + 5] = 200;  // one red pixel differs
    put_bytes(dir, "data_batch_1.bin", recs, 3 * RECORD);
    put_bytes(dir, "data_batch_2.bin", recs + 3 * RECORD, 2 * RECORD);
    put_bytes(dir, "data_batch_3.bin", recs, 0);
    put_bytes(dir, "data_batch_4.bin", recs, 0);
    put_bytes(dir, "data_batch_5.bin", recs, 0);
    static uint8_t test[RECORD];
    make_record(test, 7, 100, 150, 200);
    put_bytes(dir, "test_batch.bin", test, RECORD);
}

static int open_image(lra_task *t, const lra_kv *kv, int n, lra_err *e) {
    memset(t, 0, sizeof *t);
    t->vt = &lra_task_image;
    return lra_task_image.open(t, kv, n, 11, e);
}

typedef struct {
    int32_t tokens[PIXELS];
    int32_t length;
    lra_example ex;
} image_ex;

static int get(const lra_task *t, lra_split s, int64_t i, image_ex *x) {
    lra_err e = {0};
    x->ex = (lra_example){ x->tokens, &x->length, -1 };
    int rc = lra_task_image.example(t, s, i, &x->ex, &e);
    T_CHECK(rc == LRA_OK, "example %s %lld: %s", lra_split_names[s], (long long)i, e.msg);
    return rc;
}

static uint64_t hash_example(const image_ex *x) {
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < PIXELS; i++) h = (h ^ (uint64_t)x->tokens[i]) * 1099511628211ull;
    return lra_mix64(h ^ ((uint64_t)x->ex.label << 40));
}

// ---- parameters and grayscale -------------------------------------------------------------------

static void test_open_defaults(void) {
    lra_task t;
    lra_err e = {0};
    T_CHECK(open_image(&t, NULL, 0, &e) == LRA_OK, "open: %s", e.msg);
    const lra_task_info *in = &t.info;
    T_CHECK(strcmp(in->name, "image") == 0 && in->n_inputs == 1 && in->seq_len == 1024 && in->vocab == 256 &&
                in->n_classes == 10 && in->image_side == 32,
            "shape of the task");
    T_CHECK(in->split_size[0] == 45000 && in->split_size[1] == 5000 && in->split_size[2] == 10000, "LRA sizes");
    T_CHECK(strcmp(in->params, "n_train=45000;n_val=5000;n_test=10000;input=tokens") == 0, "params: %s", in->params);
    T_CHECK(strcmp(in->source, "generated (seed 11)") == 0, "source: %s", in->source);
    T_CHECK(lra_task_image.describe == NULL, "images are shown as PNG, not described");
    lra_task_image.close(&t);
    T_CHECK(t.state == NULL, "close clears state");
}

static void test_bad_params(void) {
    lra_task t;
    lra_err e = {0};
    lra_kv unknown[] = { { "side", "32", "i.yaml:4:2" } };
    T_CHECK(open_image(&t, unknown, 1, &e) == LRA_EINVAL, "unknown key refused");
    T_CHECK(strcmp(e.msg, "i.yaml:4:2: image.side: unknown parameter (known: data_dir, grayscale, n_train, n_val, n_test, input, normalize)") == 0,
            "message: %s", e.msg);
    lra_kv gray[] = { { "grayscale", "rgb", "i.yaml:5:2" } };
    T_CHECK(open_image(&t, gray, 1, &e) == LRA_EINVAL, "grayscale rgb refused");
    T_CHECK(strcmp(e.msg, "i.yaml:5:2: image.grayscale: unknown value 'rgb' (choices: tf, pil)") == 0, "message: %s", e.msg);
    lra_kv gray_gen[] = { { "grayscale", "pil", "i.yaml:5:2" } };
    T_CHECK(open_image(&t, gray_gen, 1, &e) == LRA_EINVAL, "grayscale without data_dir refused");
    T_CHECK(strcmp(e.msg, "i.yaml:5:2: image.grayscale: only used with data_dir (generated images are gray)") == 0,
            "message: %s", e.msg);
    lra_kv sized[] = { { "data_dir", "/x", NULL }, { "n_train", "5", NULL } };
    T_CHECK(open_image(&t, sized, 2, &e) == LRA_EINVAL, "n_train with data_dir refused");
    T_CHECK(strcmp(e.msg, "parameter: image.n_train: not used with data_dir (the split sizes come from the files; "
                          "n_val picks the val records)") == 0,
            "message: %s", e.msg);
    lra_kv zero[] = { { "n_val", "0", NULL } };
    T_CHECK(open_image(&t, zero, 1, &e) == LRA_EINVAL, "n_val 0 refused");
    T_CHECK(strcmp(e.msg, "parameter: image.n_val: expected an integer in [1, 1000000000], got '0'") == 0, "message: %s",
            e.msg);
    lra_kv empty[] = { { "data_dir", "", NULL } };
    T_CHECK(open_image(&t, empty, 1, &e) == LRA_EINVAL, "empty data_dir refused");
    T_CHECK(strcmp(e.msg, "parameter: image.data_dir: expected a directory, got ''") == 0, "message: %s", e.msg);
    char long_dir[300];
    memset(long_dir, 'd', sizeof long_dir - 1);
    long_dir[sizeof long_dir - 1] = 0;
    lra_kv too_long[] = { { "data_dir", long_dir, NULL } };
    T_CHECK(open_image(&t, too_long, 1, &e) == LRA_EINVAL, "long data_dir refused");
    T_CHECK(strcmp(e.msg, "parameter: image.data_dir: path longer than 255 bytes") == 0, "message: %s", e.msg);
}

static void test_export_errors(void) {
    char dir[64], bad[128];
    make_tmp(dir);
    put_bytes(dir, "file", (const uint8_t *)"x", 1);
    snprintf(bad, sizeof bad, "%s/file/sub", dir);
    lra_task t;
    lra_err e = {0};
    lra_kv kv[] = { { "n_train", "3", NULL } };
    T_CHECK(open_image(&t, kv, 1, &e) == LRA_OK, "open: %s", e.msg);
    T_CHECK(lra_task_image.export_split(&t, LRA_SPLIT_TRAIN, bad, -1, NULL, NULL, &e) == LRA_EIO, "export must fail");
    char want[256];
    snprintf(want, sizeof want, "%s: cannot create directory: Not a directory", bad);
    T_CHECK(strcmp(e.msg, want) == 0, "message: %s", e.msg);
    lra_task_image.close(&t);
    t_rm_tree(dir);
}

static void test_grayscale(void) {
    for (int v = 0; v < 256; v++) {
        T_CHECK(lra_gray_tf((uint8_t)v, (uint8_t)v, (uint8_t)v) == v, "tf(%d, %d, %d) = %d", v, v, v,
                lra_gray_tf((uint8_t)v, (uint8_t)v, (uint8_t)v));
        T_CHECK(lra_gray_pil((uint8_t)v, (uint8_t)v, (uint8_t)v) == v, "pil(%d, %d, %d)", v, v, v);
    }
    // expected values from a float32 emulation of tf.image.rgb_to_grayscale and PIL's integer formula
    static const int want[][5] = {
        { 255, 0, 0, 76, 76 },       { 0, 255, 0, 149, 150 },   { 0, 0, 255, 29, 29 },   { 12, 200, 37, 125, 125 },
        { 255, 255, 255, 255, 255 }, { 1, 2, 3, 1, 2 },         { 100, 150, 200, 141, 141 },
        { 255, 255, 0, 226, 226 },   { 0, 128, 255, 104, 104 }, { 77, 77, 78, 77, 77 },
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const int *w = want[i];
        int tf = lra_gray_tf((uint8_t)w[0], (uint8_t)w[1], (uint8_t)w[2]);
        int pil = lra_gray_pil((uint8_t)w[0], (uint8_t)w[1], (uint8_t)w[2]);
        T_CHECK(tf == w[3] && pil == w[4], "(%d, %d, %d): tf %d pil %d, expected %d %d", w[0], w[1], w[2], tf, pil,
                w[3], w[4]);
    }
    // the two differ by at most one level over a grid of colours
    int differ = 0, n = 0;
    for (int r = 0; r < 256; r += 5)
        for (int g = 0; g < 256; g += 5)
            for (int b = 0; b < 256; b += 5, n++) {
                int d =
                    lra_gray_tf((uint8_t)r, (uint8_t)g, (uint8_t)b) - lra_gray_pil((uint8_t)r, (uint8_t)g, (uint8_t)b);
                T_CHECK(d >= -1 && d <= 1, "tf and pil differ by %d at (%d, %d, %d)", d, r, g, b);
                differ += d != 0;
            }
    T_CHECK(differ > n / 10 && differ < n / 2, "%d of %d colours differ", differ, n);
}

// ---- generator --------------------------------------------------------------------------------

static void test_determinism(void) {
    lra_task a, b;
    lra_err e = {0};
    T_CHECK(open_image(&a, NULL, 0, &e) == LRA_OK && open_image(&b, NULL, 0, &e) == LRA_OK, "open");
    enum { N = 120 };
    static uint64_t seq[LRA_SPLIT_COUNT][N], par[LRA_SPLIT_COUNT][N];
    static image_ex x;
    for (int s = 0; s < LRA_SPLIT_COUNT; s++)
        for (int i = 0; i < N; i++) {
            get(&a, (lra_split)s, i, &x);
            seq[s][i] = hash_example(&x);
            get(&b, (lra_split)s, i, &x);
            T_CHECK(hash_example(&x) == seq[s][i], "same image from a second open");
        }
    for (int s = 0; s < LRA_SPLIT_COUNT; s++) {
        int failures = 0;
#pragma omp parallel for num_threads(2) schedule(dynamic, 1) reduction(+ : failures)
        for (int i = N - 1; i >= 0; i--) {
            image_ex *y = malloc(sizeof *y);
            lra_err e2 = {0};
            y->ex = (lra_example){ y->tokens, &y->length, -1 };
            failures += lra_task_image.example(&a, (lra_split)s, i, &y->ex, &e2) != LRA_OK;
            par[s][i] = hash_example(y);
            free(y);
        }
        T_CHECK(failures == 0, "parallel generation failed");
        T_CHECK(memcmp(seq[s], par[s], sizeof seq[s]) == 0, "split %s: threads change images", lra_split_names[s]);
    }
    lra_task c;
    memset(&c, 0, sizeof c);
    T_CHECK(lra_task_image.open(&c, NULL, 0, 12, &e) == LRA_OK, "open");
    get(&c, LRA_SPLIT_TRAIN, 0, &x);
    T_CHECK(hash_example(&x) != seq[0][0], "the seed changes the images");
    lra_task_image.close(&c);
    lra_task_image.close(&a);
    lra_task_image.close(&b);
}

static void test_disjoint_splits(void) {
    lra_task t;
    lra_err e = {0};
    T_CHECK(open_image(&t, NULL, 0, &e) == LRA_OK, "open: %s", e.msg);
    enum { N = 600 };
    static uint64_t h[3 * N];
    static image_ex x;
    for (int s = 0; s < LRA_SPLIT_COUNT; s++)
        for (int i = 0; i < N; i++) {
            get(&t, (lra_split)s, i, &x);
            h[s * N + i] = hash_example(&x);
        }
    qsort(h, 3 * N, sizeof h[0], t_cmp_u64);
    int dups = 0;
    for (int i = 1; i < 3 * N; i++) dups += h[i] == h[i - 1];
    T_CHECK(dups == 0, "%d identical images among the first %d of each split", dups, N);
    lra_task_image.close(&t);
}

// ---- what tells the class ----------------------------------------------------------------------
// Nearest-class-mean classifiers, trained on N_FIT training images and scored
// on N_EVAL test images, over different features of an image.

enum { N_FIT = 3000, N_EVAL = 1500, MAX_F = 1024 };

typedef int (*feature_fn)(const int32_t *px, double *f);  // returns the feature count

static int f_center16(const int32_t *px, double *f) {  // the 4x4 central pixels
    int n = 0;
    for (int i = 14; i < 18; i++)
        for (int j = 14; j < 18; j++) f[n++] = px[i * 32 + j];
    return n;
}

static int f_fixed8(const int32_t *px, double *f) {  // 8 fixed pixels spread over the image
    static const int at[8] = { 5 * 32 + 5,   5 * 32 + 26,  26 * 32 + 5,  26 * 32 + 26,
                               16 * 32 + 16, 10 * 32 + 20, 20 * 32 + 10, 16 * 32 + 3 };
    for (int i = 0; i < 8; i++) f[i] = px[at[i]];
    return 8;
}

static double image_mean(const int32_t *px) {
    double m = 0;
    for (int p = 0; p < PIXELS; p++) m += px[p];
    return m / PIXELS;
}

static int f_center16_contrast(const int32_t *px, double *f) {  // |pixel - image mean|, sign-free
    int n = f_center16(px, f);
    double m = image_mean(px);
    for (int i = 0; i < n; i++) f[i] = fabs(f[i] - m);
    return n;
}

static int f_whole(const int32_t *px, double *f) {
    for (int p = 0; p < PIXELS; p++) f[p] = px[p];
    return PIXELS;
}

// |DFT| of the image minus its mean: blind to translation and to the sign of the contrast.
static int f_spectrum(const int32_t *px, double *f) {
    static double cs[32], sn[32];
    if (cs[1] == 0)
        for (int k = 0; k < 32; k++) cs[k] = cos(2 * M_PI * k / 32), sn[k] = sin(2 * M_PI * k / 32);
    double m = image_mean(px), re[32][32], im[32][32], x[32][32];
    for (int p = 0; p < PIXELS; p++) x[p / 32][p % 32] = px[p] - m;
    for (int i = 0; i < 32; i++)  // rows
        for (int l = 0; l < 32; l++) {
            double a = 0, b = 0;
            for (int j = 0; j < 32; j++) a += x[i][j] * cs[(l * j) % 32], b -= x[i][j] * sn[(l * j) % 32];
            re[i][l] = a, im[i][l] = b;
        }
    for (int k = 0; k < 32; k++)  // columns
        for (int l = 0; l < 32; l++) {
            double a = 0, b = 0;
            for (int i = 0; i < 32; i++) {
                double c = cs[(k * i) % 32], s = sn[(k * i) % 32];
                a += re[i][l] * c + im[i][l] * s, b += im[i][l] * c - re[i][l] * s;
            }
            f[k * 32 + l] = sqrt(sqrt(a * a + b * b));
        }
    return PIXELS;
}

// The first N_FIT training and N_EVAL test images, generated once.
typedef struct {
    int32_t px[N_FIT + N_EVAL][PIXELS];
    int     label[N_FIT + N_EVAL];
} image_cache;

static void fill_cache(const lra_task *t, image_cache *c) {
    int failures = 0;
#pragma omp parallel for schedule(dynamic, 64) reduction(+ : failures)
    for (int i = 0; i < N_FIT + N_EVAL; i++) {
        lra_err e = {0};
        int32_t length;
        lra_example ex = { c->px[i], &length, -1 };
        failures += lra_task_image.example(t, i < N_FIT ? LRA_SPLIT_TRAIN : LRA_SPLIT_TEST, i < N_FIT ? i : i - N_FIT,
                                           &ex, &e) != LRA_OK;
        c->label[i] = ex.label;
    }
    T_CHECK(failures == 0, "generation failed");
}

static double ncm_accuracy(const image_cache *c, feature_fn feature) {
    static double mean[10][MAX_F], f[MAX_F];
    int count[10] = { 0 }, n = 0, right = 0;
    memset(mean, 0, sizeof mean);
    for (int i = 0; i < N_FIT; i++) {
        n = feature(c->px[i], f);
        for (int k = 0; k < n; k++) mean[c->label[i]][k] += f[k];
        count[c->label[i]]++;
    }
    for (int y = 0; y < 10; y++)
        for (int k = 0; k < n; k++) mean[y][k] /= count[y] ? count[y] : 1;
    for (int i = N_FIT; i < N_FIT + N_EVAL; i++) {
        feature(c->px[i], f);
        int best = 0;
        double best_d = INFINITY;
        for (int y = 0; y < 10; y++) {
            double d = 0;
            for (int k = 0; k < n; k++) d += (f[k] - mean[y][k]) * (f[k] - mean[y][k]);
            if (d < best_d) best_d = d, best = y;
        }
        right += best == c->label[i];
    }
    return right / (double)N_EVAL;
}

static void test_few_pixels_vs_whole(void) {
    lra_task t;
    lra_err e = {0};
    T_CHECK(open_image(&t, NULL, 0, &e) == LRA_OK, "open: %s", e.msg);
    image_cache *c = malloc(sizeof *c);
    fill_cache(&t, c);
    double center = ncm_accuracy(c, f_center16), fixed = ncm_accuracy(c, f_fixed8);
    double contrast = ncm_accuracy(c, f_center16_contrast), whole = ncm_accuracy(c, f_whole);
    double spectrum = ncm_accuracy(c, f_spectrum);
    printf("    nearest class mean: 16 central pixels %.3f, 8 fixed pixels %.3f, 16 central |pixel - mean| %.3f, "
           "whole image %.3f, whole-image spectrum %.3f (chance 0.100)\n", center, fixed, contrast, whole, spectrum);
    T_CHECK(center < 0.16, "16 central pixels: %.3f", center);
    T_CHECK(fixed < 0.16, "8 fixed pixels: %.3f", fixed);
    T_CHECK(contrast < 0.2, "16 central contrasts: %.3f", contrast);
    T_CHECK(spectrum > 0.4, "whole-image spectra must tell the classes apart: %.3f", spectrum);
    free(c);
    lra_task_image.close(&t);
}

static void test_statistics(void) {
    lra_task t;
    lra_err e = {0};
    T_CHECK(open_image(&t, NULL, 0, &e) == LRA_OK, "open: %s", e.msg);
    enum { N = 3000 };
    static image_ex x;
    int count[10] = { 0 }, bad = 0, lo = 255, hi = 0;
    double brightness[10] = { 0 };
    for (int i = 0; i < N; i++) {
        get(&t, LRA_SPLIT_VAL, i, &x);
        T_CHECK(x.ex.label >= 0 && x.ex.label < 10 && x.length == PIXELS, "label %d length %d", x.ex.label, x.length);
        count[x.ex.label]++;
        brightness[x.ex.label] += image_mean(x.tokens);
        for (int p = 0; p < PIXELS; p++) {
            bad += x.tokens[p] < 0 || x.tokens[p] > 255;
            lo = x.tokens[p] < lo ? x.tokens[p] : lo;
            hi = x.tokens[p] > hi ? x.tokens[p] : hi;
        }
    }
    T_CHECK(bad == 0 && lo < 10 && hi > 245, "pixels in 0..255 (seen %d..%d), %d outside", lo, hi, bad);
    for (int c = 0; c < 10; c++) {
        T_CHECK(count[c] > N / 10 * 0.8 && count[c] < N / 10 * 1.2, "class %d (%s): %d of %d", c,
                lra_image_class_names[c], count[c], N);
        double b = brightness[c] / count[c];
        T_CHECK(b > 110 && b < 145, "class %d mean brightness %.1f: brightness must not tell the class", c, b);
    }
    lra_task_image.close(&t);
}

// ---- export and loader ----------------------------------------------------------------------------

static long file_size(const char *dir, const char *name) {
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void compare_splits(const lra_task *g, const lra_task *l) {
    static image_ex a, b;
    for (int s = 0; s < LRA_SPLIT_COUNT; s++) {
        T_CHECK(l->info.split_size[s] == g->info.split_size[s], "split %d size %lld", s,
                (long long)l->info.split_size[s]);
        int64_t n = g->info.split_size[s] < l->info.split_size[s] ? g->info.split_size[s] : l->info.split_size[s];
        // every image near the ends, a sample of those between
        for (int64_t i = 0; i < n; i += i < 40 || i >= n - 40 ? 1 : 97) {
            get(g, (lra_split)s, i, &a);
            get(l, (lra_split)s, i, &b);
            T_CHECK(a.ex.label == b.ex.label && memcmp(a.tokens, b.tokens, sizeof a.tokens) == 0,
                    "split %s image %lld differs after the round trip", lra_split_names[s], (long long)i);
        }
    }
}

static void test_round_trip(void) {
    char dir[64];
    make_tmp(dir);
    lra_task g, l;
    lra_err e = {0};
    lra_kv kv[] = { { "n_train", "10030", NULL }, { "n_val", "7", NULL }, { "n_test", "11", NULL } };
    T_CHECK(open_image(&g, kv, 3, &e) == LRA_OK, "open: %s", e.msg);
    int64_t seen[3] = { 0, 0, 0 };
    T_CHECK(lra_task_image.export_split(&g, LRA_SPLIT_TRAIN, dir, -1, t_progress_record, seen, &e) == LRA_OK, "export: %s",
            e.msg);
    T_CHECK(seen[1] == 10037 && seen[2] == 10037, "progress: last %lld of %lld", (long long)seen[1],
            (long long)seen[2]);
    T_CHECK(lra_task_image.export_split(&g, LRA_SPLIT_TEST, dir, -1, NULL, NULL, &e) == LRA_OK, "export: %s", e.msg);
    T_CHECK(file_size(dir, "data_batch_1.bin") == 10000L * RECORD &&
                file_size(dir, "data_batch_2.bin") == 37L * RECORD && file_size(dir, "data_batch_3.bin") == 0 &&
                file_size(dir, "data_batch_5.bin") == 0 && file_size(dir, "test_batch.bin") == 11L * RECORD &&
                file_size(dir, "batches.meta.txt") > 0,
            "file sizes");
    lra_kv lk[] = { { "data_dir", dir, NULL }, { "n_val", "7", NULL } };
    T_CHECK(open_image(&l, lk, 2, &e) == LRA_OK, "load: %s", e.msg);
    char want[512];
    snprintf(want, sizeof want, "data_dir=%s;grayscale=tf;n_val=7;input=tokens", dir);
    T_CHECK(strcmp(l.info.params, want) == 0, "params: %s", l.info.params);
    compare_splits(&g, &l);
    lra_task_image.close(&l);
    lra_kv lp[] = { { "data_dir", dir, NULL }, { "n_val", "7", NULL }, { "grayscale", "pil", NULL } };
    T_CHECK(open_image(&l, lp, 3, &e) == LRA_OK, "load pil: %s", e.msg);
    compare_splits(&g, &l);  // R = G = B: both conversions give the gray back
    lra_task_image.close(&l);
    // exporting val writes the same training files; n limits both parts
    T_CHECK(lra_task_image.export_split(&g, LRA_SPLIT_VAL, dir, 5, NULL, NULL, &e) == LRA_OK, "export: %s", e.msg);
    T_CHECK(file_size(dir, "data_batch_1.bin") == 10L * RECORD && file_size(dir, "data_batch_2.bin") == 0,
            "5 + 5 records");
    lra_kv l5[] = { { "data_dir", dir, NULL }, { "n_val", "5", NULL } };
    T_CHECK(open_image(&l, l5, 2, &e) == LRA_OK, "load: %s", e.msg);
    static image_ex a, b;
    get(&g, LRA_SPLIT_VAL, 4, &a);
    get(&l, LRA_SPLIT_VAL, 4, &b);
    T_CHECK(l.info.split_size[0] == 5 && a.ex.label == b.ex.label && !memcmp(a.tokens, b.tokens, sizeof a.tokens),
            "val 4");
    lra_task_image.close(&l);
    lra_task_image.close(&g);
    t_rm_tree(dir);
}

static void test_loader_semantics(void) {
    char dir[64];
    make_tmp(dir);
    make_cifar(dir);
    lra_task t;
    lra_err e = {0};
    lra_kv kv[] = { { "data_dir", dir, NULL }, { "n_val", "2", "x:1:1" } };
    T_CHECK(open_image(&t, kv, 2, &e) == LRA_OK, "load: %s", e.msg);
    T_CHECK(t.info.split_size[0] == 3 && t.info.split_size[1] == 2 && t.info.split_size[2] == 1, "sizes");
    T_CHECK(strcmp(t.info.source, dir) == 0, "source");
    static image_ex x;
    static const int want_label[3] = { 0, 1, 2 }, want_gray[3] = { 76, 149, 29 };
    for (int i = 0; i < 3; i++) {
        get(&t, LRA_SPLIT_TRAIN, i, &x);
        T_CHECK(x.ex.label == want_label[i] && x.tokens[0] == want_gray[i] && x.tokens[1023] == want_gray[i] &&
                    x.length == 1024,
                "train %d: label %d gray %d", i, x.ex.label, x.tokens[0]);
    }
    get(&t, LRA_SPLIT_VAL, 0, &x);  // the last 2 training records, across files
    T_CHECK(x.ex.label == 3 && x.tokens[0] == 1, "val 0: label %d gray %d", x.ex.label, x.tokens[0]);
    get(&t, LRA_SPLIT_VAL, 1, &x);
    T_CHECK(x.ex.label == 9 && x.tokens[0] == 125 && x.tokens[5] == lra_gray_tf(200, 200, 37), "val 1");
    get(&t, LRA_SPLIT_TEST, 0, &x);
    T_CHECK(x.ex.label == 7 && x.tokens[0] == 141, "test 0");
    lra_err e2 = {0};
    T_CHECK(lra_task_image.example(&t, LRA_SPLIT_VAL, 2, &x.ex, &e2) == LRA_EINVAL, "index out of range");
    T_CHECK(strcmp(e2.msg, "image: no example 2 in split val (size 2)") == 0, "message: %s", e2.msg);
    lra_task_image.close(&t);
    lra_kv pil[] = { { "data_dir", dir, NULL }, { "n_val", "2", NULL }, { "grayscale", "pil", NULL } };
    T_CHECK(open_image(&t, pil, 3, &e) == LRA_OK, "load: %s", e.msg);
    get(&t, LRA_SPLIT_TRAIN, 1, &x);
    T_CHECK(x.tokens[0] == 150, "pil gray of pure green: %d", x.tokens[0]);
    get(&t, LRA_SPLIT_VAL, 0, &x);
    T_CHECK(x.tokens[0] == 2, "pil gray of (1, 2, 3): %d", x.tokens[0]);
    char want[256];
    snprintf(want, sizeof want, "data_dir=%s;grayscale=pil;n_val=2;input=tokens", dir);
    T_CHECK(strcmp(t.info.params, want) == 0, "params: %s", t.info.params);
    lra_task_image.close(&t);
    // the default n_val (5000) leaves nothing to train on here
    lra_kv def[] = { { "data_dir", dir, "--param" } };
    T_CHECK(open_image(&t, def, 1, &e) == LRA_EINVAL, "n_val too large");
    T_CHECK(strcmp(e.msg, "parameter: image.n_val: 5000 leaves no training images (the training files hold 5 records)") == 0,
            "message: %s", e.msg);
    t_rm_tree(dir);
}

static void expect_load_error(const char *dir, const char *fmt) {
    lra_task t;
    lra_err e = {0};
    lra_kv kv[] = { { "data_dir", dir, NULL }, { "n_val", "1", NULL } };
    T_CHECK(open_image(&t, kv, 2, &e) == LRA_EIO, "load must fail (%s)", fmt);
    char want[512];
    snprintf(want, sizeof want, fmt, dir, dir);
    T_CHECK(strcmp(e.msg, want) == 0, "message:\n      got  %s\n      want %s", e.msg, want);
    T_CHECK(t.state == NULL, "state freed");
}

static void test_loader_errors(void) {
    char dir[64];
    make_tmp(dir);
    expect_load_error(dir, "%s/data_batch_1.bin: cannot open: No such file or directory");
    make_cifar(dir);
    static uint8_t recs[3 * RECORD];
    make_record(recs, 0, 1, 1, 1);
    make_record(recs + RECORD, 10, 1, 1, 1);
    put_bytes(dir, "data_batch_3.bin", recs, 2 * RECORD + 5);
    expect_load_error(dir, "%s/data_batch_3.bin: 6151 bytes is not a whole number of 3073-byte records (2 records and 5 bytes over)");
    put_bytes(dir, "data_batch_3.bin", recs, RECORD - 1);
    expect_load_error(dir, "%s/data_batch_3.bin: 3072 bytes is not a whole number of 3073-byte records (0 records and 3072 bytes over)");
    put_bytes(dir, "data_batch_3.bin", recs, 2 * RECORD);
    expect_load_error(dir, "%s/data_batch_3.bin: record 1 (byte 3073): label 10 is not in 0..9");
    put_bytes(dir, "data_batch_3.bin", recs, 0);
    put_bytes(dir, "test_batch.bin", recs, 0);
    expect_load_error(dir, "%s/test_batch.bin: no records");
    char path[128];
    snprintf(path, sizeof path, "%s/data_batch_5.bin", dir);
    remove(path);
    expect_load_error(dir, "%s/data_batch_5.bin: cannot open: No such file or directory");
    t_rm_tree(dir);
}

// input=scalar with each normalisation records the affine map models apply.
static void test_pixel_input(void) {
    static const char *const norms[] = { "unit", "symmetric", "cifar" };
    static const float mean[] = { 0.0f, 0.5f, 122.6f / 255.0f }, std[] = { 1.0f, 0.5f, 61.0f / 255.0f };
    for (int i = 0; i < 3; i++) {
        lra_kv kv[2] = { { "input", "scalar", "t" }, { "normalize", norms[i], "t" } };
        lra_task t = { .vt = &lra_task_image };
        lra_err e = {0};
        T_CHECK(lra_task_image.open(&t, kv, 2, 1, &e) == LRA_OK, "%s", e.msg);
        T_CHECK(t.info.scalar_input == 1 && t.info.scalar_mean == mean[i] && t.info.scalar_std == std[i],
                "normalize=%s: mean %g std %g", norms[i], (double)t.info.scalar_mean, (double)t.info.scalar_std);
        char want[128];
        snprintf(want, sizeof want, "n_train=45000;n_val=5000;n_test=10000;input=scalar;normalize=%s", norms[i]);
        T_CHECK(strcmp(t.info.params, want) == 0, "params %s", t.info.params);
        lra_task_image.close(&t);
    }
    lra_kv bad[2] = { { "input", "tokens", "x.yaml:1:1" }, { "normalize", "unit", "x.yaml:2:1" } };
    lra_task t = { .vt = &lra_task_image };
    lra_err e = {0};
    T_CHECK(lra_task_image.open(&t, bad, 2, 1, &e) == LRA_EINVAL, "normalize without scalar refused");
    T_CHECK(strcmp(e.msg, "x.yaml:2:1: image.normalize: only used with input=scalar") == 0, "%s", e.msg);
    lra_kv bad2 = { "input", "float", "x.yaml:3:1" };
    T_CHECK(lra_task_image.open(&t, &bad2, 1, 1, &e) == LRA_EINVAL, "unknown input refused");
    T_CHECK(strcmp(e.msg, "x.yaml:3:1: image.input: unknown value 'float' (choices: tokens, scalar)") == 0, "%s",
            e.msg);
}

static const t_case cases[] = {
    { "image/pixel_input", test_pixel_input },
    { "image/open_defaults", test_open_defaults },
    { "image/bad_params", test_bad_params },
    { "image/grayscale", test_grayscale },
    { "image/determinism", test_determinism },
    { "image/disjoint_splits", test_disjoint_splits },
    { "image/statistics", test_statistics },
    { "image/few_pixels_vs_whole", test_few_pixels_vs_whole },
    { "image/round_trip", test_round_trip },
    { "image/export_errors", test_export_errors },
    { "image/loader_semantics", test_loader_semantics },
    { "image/loader_errors", test_loader_errors },
};
T_MAIN(cases)
