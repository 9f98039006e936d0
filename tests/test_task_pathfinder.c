// test_task_pathfinder.c: the Pathfinder / Path-X generator (determinism,
// threads, splits, label semantics from the recorded geometry, speed), its
// parameters, export -> loader round trips and the loader's error messages.
#include "t.h"

#include "../tasks/pathfinder.h"
#include "../tasks/pngio.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

// ---- helpers ------------------------------------------------------------------------------

static int pf_open(lra_task *t, const lra_kv *kv, int n, uint64_t seed, lra_err *e) {
    memset(t, 0, sizeof *t);
    t->vt = &lra_task_pathfinder;
    return lra_task_pathfinder.open(t, kv, n, seed, e);
}

static void pf_close(lra_task *t) {
    if (t->vt) lra_task_pathfinder.close(t);
}

static uint64_t hash_bytes(const uint8_t *p, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static void write_bytes(const char *path, const char *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(data, 1, len, f);
    fclose(f);
}

static void write_text(const char *path, const char *text) { write_bytes(path, text, strlen(text)); }

typedef struct {
    int     calls;
    int64_t done[4], total;
} progress_log;

static void log_progress(void *ctx, int64_t done, int64_t total) {
    progress_log *log = ctx;
    if (log->calls < 4) log->done[log->calls] = done;
    log->calls++;
    log->total = total;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// distance from point p to segment ab
static double seg_point(const double p[2], const double a[2], const double b[2]) {
    double dy = b[0] - a[0], dx = b[1] - a[1], l2 = dy * dy + dx * dx;
    double u = l2 > 0 ? ((p[0] - a[0]) * dy + (p[1] - a[1]) * dx) / l2 : 0;
    u = u < 0 ? 0 : u > 1 ? 1 : u;
    double ey = a[0] + u * dy - p[0], ex = a[1] + u * dx - p[1];
    return sqrt(ey * ey + ex * ex);
}

// distance between segments (they do not cross when every endpoint distance > 0 and
// the orientations agree; crossings are checked separately)
static double seg_seg(const int a[2][2], const int b[2][2]) {
    double A0[2] = { a[0][0], a[0][1] }, A1[2] = { a[1][0], a[1][1] };
    double B0[2] = { b[0][0], b[0][1] }, B1[2] = { b[1][0], b[1][1] };
    double o1 = (A1[0] - A0[0]) * (B0[1] - A0[1]) - (A1[1] - A0[1]) * (B0[0] - A0[0]);
    double o2 = (A1[0] - A0[0]) * (B1[1] - A0[1]) - (A1[1] - A0[1]) * (B1[0] - A0[0]);
    double o3 = (B1[0] - B0[0]) * (A0[1] - B0[1]) - (B1[1] - B0[1]) * (A0[0] - B0[0]);
    double o4 = (B1[0] - B0[0]) * (A1[1] - B0[1]) - (B1[1] - B0[1]) * (A1[0] - B0[0]);
    if (((o1 > 0 && o2 < 0) || (o1 < 0 && o2 > 0)) && ((o3 > 0 && o4 < 0) || (o3 < 0 && o4 > 0))) return 0;
    double d = seg_point(A0, B0, B1);
    d = fmin(d, seg_point(A1, B0, B1));
    d = fmin(d, seg_point(B0, A0, A1));
    return fmin(d, seg_point(B1, A0, A1));
}

static int same_point(const int a[2], const int b[2]) { return a[0] == b[0] && a[1] == b[1]; }

static double dist(const int a[2], const int b[2]) { return hypot(a[0] - b[0], a[1] - b[1]); }

// ---- info and parameters ------------------------------------------------------------------

static void test_info(void) {
    lra_task t;
    lra_err e = { 0 };
    T_CHECK(pf_open(&t, NULL, 0, 7, &e) == LRA_OK, "open: %s", e.msg);
    const lra_task_info *in = &t.info;
    T_CHECK(strcmp(in->name, "pathfinder") == 0, "name %s", in->name);
    T_CHECK(in->n_inputs == 1 && in->seq_len == 1024 && in->vocab == 256 && in->pad_id == 0 && in->n_classes == 2 &&
                in->image_side == 32,
            "shape");
    T_CHECK(in->split_size[0] == 160000 && in->split_size[1] == 20000 && in->split_size[2] == 20000, "split sizes");
    T_CHECK(strcmp(in->source, "generated (seed 7)") == 0, "source %s", in->source);
    T_CHECK(in->generator_version == 1, "version");
    const char *want = "resolution=32;difficulty=contour_length_14;padding=1;paddle_length=2;paddle_thickness=0.5;"
                       "paddle_margin_list=1;marker_radius=1.5;seed_distance=7;antialias_scale=2;continuity=1;"
                       "contour_length=14;distractor_length=4;num_distractor_snakes=5;snake_contrast_list=2;"
                       "paddle_contrast_list=0.75;n_train=160000;n_val=20000;n_test=20000;input=tokens";
    T_CHECK(strcmp(in->params, want) == 0, "params %s", in->params);
    pf_close(&t);

    lra_kv px[] = { { "resolution", "128", NULL }, { "difficulty", "baseline", NULL }, { "n_train", "10", NULL } };
    T_CHECK(pf_open(&t, px, 3, 7, &e) == LRA_OK, "open path-x: %s", e.msg);
    T_CHECK(t.info.seq_len == 16384 && t.info.image_side == 128 && t.info.split_size[0] == 10, "path-x shape");
    want = "resolution=128;difficulty=baseline;padding=1;paddle_length=5;paddle_thickness=1.5;paddle_margin_list=2,3;"
           "marker_radius=3;seed_distance=20;antialias_scale=2;continuity=1.8;contour_length=6;distractor_length=2;"
           "num_distractor_snakes=17;snake_contrast_list=0.9;paddle_contrast_list=1;n_train=10;n_val=20000;"
           "n_test=20000;input=tokens";
    T_CHECK(strcmp(t.info.params, want) == 0, "params %s", t.info.params);
    pf_close(&t);

    // lra.md 3.3: distractor_length = contour_length / 3, K / distractor_length distractors
    lra_kv p64[] = { { "resolution", "64", NULL }, { "difficulty", "contour_length_9", NULL } };
    T_CHECK(pf_open(&t, p64, 2, 7, &e) == LRA_OK, "open 64: %s", e.msg);
    T_CHECK(strstr(t.info.params, "contour_length=9;distractor_length=3;num_distractor_snakes=7;") != NULL, "%s",
            t.info.params);
    pf_close(&t);
}

static void expect_open_error(const lra_kv *kv, int n, const char *want) {
    lra_task t;
    lra_err e = { 0 };
    int rc = pf_open(&t, kv, n, 1, &e);
    T_CHECK(rc != LRA_OK, "accepted (wanted: %s)", want);
    T_CHECK(strcmp(e.msg, want) == 0, "message\n      got:  %s\n      want: %s", e.msg, want);
    T_CHECK(t.state == NULL, "state freed");
    if (rc == LRA_OK) pf_close(&t);
}

static void test_bad_params(void) {
    lra_kv k1[] = { { "resolutoin", "32", "x.yaml:3:5" } };
    expect_open_error(k1, 1,
                      "x.yaml:3:5: pathfinder.resolutoin: unknown parameter (known: resolution, difficulty, n_train, "
                      "n_val, n_test, data_dir, split_mode, padding, paddle_length, paddle_thickness, "
                      "paddle_margin_list, marker_radius, seed_distance, antialias_scale, continuity, contour_length, "
                      "distractor_length, num_distractor_snakes, snake_contrast_list, paddle_contrast_list, input, normalize)");
    lra_kv k2[] = { { "resolution", "48", "--param" } };
    expect_open_error(k2, 1, "--param: pathfinder.resolution: unknown value '48' (choices: 32, 64, 128, 256)");
    lra_kv k3[] = { { "difficulty", "hard", NULL } };
    expect_open_error(k3, 1,
                      "parameter: pathfinder.difficulty: unknown value 'hard' (choices: baseline, contour_length_9, "
                      "contour_length_14)");
    lra_kv k4[] = { { "paddle_thickness", "0.7", "--param" } };
    expect_open_error(k4, 1,
                      "--param: pathfinder.paddle_thickness: paddle_thickness * antialias_scale must be a whole number "
                      "of pixels, got 0.7 * 2");
    lra_kv k5[] = { { "paddle_margin_list", "1,x", "--param" } };
    expect_open_error(k5, 1,
                      "--param: pathfinder.paddle_margin_list: expected a comma-separated list of 1 to 8 integers in "
                      "[0, 10], got '1,x'");
    lra_kv k6[] = { { "snake_contrast_list", "1,", "--param" } };
    expect_open_error(k6, 1,
                      "--param: pathfinder.snake_contrast_list: expected a comma-separated list of 1 to 8 numbers in "
                      "[0.01, 100], got '1,'");
    lra_kv k7[] = { { "split_mode", "all_val", "--param" } };
    expect_open_error(k7, 1, "--param: pathfinder.split_mode: only applies with data_dir");
    lra_kv k8[] = { { "n_train", "-1", "--param" } };
    expect_open_error(k8, 1, "--param: pathfinder.n_train: expected an integer in [0, 1099511627776], got '-1'");
    lra_kv k9[] = { { "contour_length", "65", "--param" } };
    expect_open_error(k9, 1, "--param: pathfinder.contour_length: expected an integer in [1, 64], got '65'");

    // parameters that leave no room fail per example, with a message (not a hang)
    lra_kv tight[] = { { "contour_length", "64", NULL } };
    lra_task t;
    lra_err e = { 0 };
    T_CHECK(pf_open(&t, tight, 1, 1, &e) == LRA_OK, "open: %s", e.msg);
    uint8_t px[1024];
    T_CHECK(lra_pathfinder_generate(&t, LRA_SPLIT_TRAIN, 3, px, NULL, &e) == LRA_EINVAL, "too tight");
    T_CHECK(strcmp(e.msg,
                   "pathfinder: train example 3: no room for two target snakes of 64 paddles in 20000 attempts "
                   "(resolution 32): the geometric parameters are too tight") == 0,
            "message: %s", e.msg);
    int32_t tokens[1024], len;
    lra_example ex = { tokens, &len, 0 };
    T_CHECK(lra_task_pathfinder.example(&t, LRA_SPLIT_VAL, 20000, &ex, &e) == LRA_EINVAL, "index out of range");
    T_CHECK(strcmp(e.msg, "pathfinder: no example 20000 in split val (size 20000)") == 0, "%s", e.msg);
    pf_close(&t);
}

// ---- generation ----------------------------------------------------------------------------

static void test_determinism(void) {
    lra_task t, t2, t3;
    lra_err e = { 0 };
    T_CHECK(pf_open(&t, NULL, 0, 11, &e) == LRA_OK && pf_open(&t2, NULL, 0, 11, &e) == LRA_OK &&
                pf_open(&t3, NULL, 0, 12, &e) == LRA_OK,
            "open: %s", e.msg);
    int32_t a[1024], b[1024], c[1024], la, lb, lc;
    lra_example ea = { a, &la, 0 }, eb = { b, &lb, 0 }, ec = { c, &lc, 0 };
    int differ_seed = 0;
    for (int i = 0; i < 20; i++) {
        T_CHECK(!lra_task_pathfinder.example(&t, LRA_SPLIT_TRAIN, i, &ea, &e), "%s", e.msg);
        T_CHECK(!lra_task_pathfinder.example(&t, LRA_SPLIT_TRAIN, i, &eb, &e), "%s", e.msg);
        T_CHECK(memcmp(a, b, sizeof a) == 0 && ea.label == eb.label, "same example twice (%d)", i);
        T_CHECK(!lra_task_pathfinder.example(&t2, LRA_SPLIT_TRAIN, i, &eb, &e), "%s", e.msg);
        T_CHECK(memcmp(a, b, sizeof a) == 0 && ea.label == eb.label, "same example from a second open (%d)", i);
        T_CHECK(!lra_task_pathfinder.example(&t3, LRA_SPLIT_TRAIN, i, &ec, &e), "%s", e.msg);
        differ_seed += memcmp(a, c, sizeof a) != 0;
        T_CHECK(la == 1024, "length");
        for (int k = 0; k < 1024; k++) T_CHECK(a[k] >= 0 && a[k] < 256, "token range");
    }
    T_CHECK(differ_seed == 20, "another seed gives other images (%d of 20)", differ_seed);
    pf_close(&t);
    pf_close(&t2);
    pf_close(&t3);
}

static void test_threads(void) {
    lra_task t;
    lra_err e = { 0 };
    T_CHECK(pf_open(&t, NULL, 0, 5, &e) == LRA_OK, "open: %s", e.msg);
    enum { N = 256 };
    static uint8_t seq[N][1024], par[N][1024];
    static int lab_seq[N], lab_par[N];
    int fails = 0;
    for (int i = 0; i < N; i++) {
        lra_pathfinder_geometry g;
        fails += lra_pathfinder_generate(&t, LRA_SPLIT_TEST, i, seq[i], &g, &e) != 0;
        lab_seq[i] = g.label;
    }
    #pragma omp parallel for num_threads(2) schedule(dynamic, 3) reduction(+ : fails)
    for (int i = N - 1; i >= 0; i--) {
        lra_err pe = { 0 };
        lra_pathfinder_geometry g;
        fails += lra_pathfinder_generate(&t, LRA_SPLIT_TEST, i, par[i], &g, &pe) != 0;
        lab_par[i] = g.label;
    }
    T_CHECK(fails == 0, "generation failed");
    T_CHECK(memcmp(seq, par, sizeof seq) == 0 && memcmp(lab_seq, lab_par, sizeof lab_seq) == 0,
            "1 thread and 2 threads give the same examples");
    pf_close(&t);
}

static void test_splits_disjoint(void) {
    lra_task t;
    lra_err e = { 0 };
    T_CHECK(pf_open(&t, NULL, 0, 3, &e) == LRA_OK, "open: %s", e.msg);
    enum { N = 300 };
    static uint64_t h[LRA_SPLIT_COUNT][N];
    uint8_t px[1024];
    for (int s = 0; s < LRA_SPLIT_COUNT; s++)
        for (int i = 0; i < N; i++) {
            T_CHECK(!lra_pathfinder_generate(&t, (lra_split)s, i, px, NULL, &e), "%s", e.msg);
            h[s][i] = hash_bytes(px, sizeof px);
        }
    int shared = 0, dup = 0;
    for (int s = 0; s < LRA_SPLIT_COUNT; s++)
        for (int i = 0; i < N; i++)
            for (int s2 = s; s2 < LRA_SPLIT_COUNT; s2++)
                for (int j = s2 == s ? i + 1 : 0; j < N; j++)
                    if (h[s][i] == h[s2][j]) *(s == s2 ? &dup : &shared) += 1;
    T_CHECK(shared == 0, "%d images shared between splits", shared);
    T_CHECK(dup == 0, "%d duplicate images within a split", dup);
    pf_close(&t);
}

// Label semantics and geometry on generated examples of one configuration.
static void check_semantics(const char *resolution, int n, const char *extra_key, const char *extra_value) {
    lra_kv kv[] = { { "resolution", resolution, NULL }, { extra_key, extra_value, NULL } };
    lra_task t;
    lra_err e = { 0 };
    T_CHECK(pf_open(&t, kv, extra_key ? 2 : 1, 2024, &e) == LRA_OK, "open: %s", e.msg);
    if (!t.state) return;
    int side = t.info.image_side, cl = 14, ones = 0, sd = atoi(strstr(t.info.params, "seed_distance=") + 14);
    int paddle_length = atoi(strstr(t.info.params, "paddle_length=") + 14);
    double thickness = atof(strstr(t.info.params, "paddle_thickness=") + 17);
    sscanf(strstr(t.info.params, "contour_length=") + 15, "%d", &cl);
    uint8_t *px = malloc((size_t)side * side);
    double min_gap = 1e9, mean_attempts = 0;
    for (int i = 0; i < n; i++) {
        lra_pathfinder_geometry g;
        if (lra_pathfinder_generate(&t, LRA_SPLIT_VAL, i, px, &g, &e)) {
            T_CHECK(0, "example %d: %s", i, e.msg);
            continue;
        }
        ones += g.label;
        mean_attempts += g.attempts / (double)n;
        T_CHECK(g.n_paddles[0] == cl && g.n_paddles[1] == cl, "%d: contour length", i);
        int o = g.origin_snake;
        T_CHECK(o == 0 || o == 1, "origin snake");
        for (int s = 0; s < 2; s++) {
            T_CHECK(same_point(g.origin_tip[s], g.paddle[s][0][0]), "%d: origin tip = first paddle's start", i);
            T_CHECK(same_point(g.terminal_tip[s], g.paddle[s][cl - 1][1]), "%d: terminal tip = last paddle's end", i);
            for (int k = 0; k < cl; k++) {
                double len = dist(g.paddle[s][k][0], g.paddle[s][k][1]);
                T_CHECK(fabs(len - paddle_length) <= 1.5, "%d: paddle %d length %.2f", i, k, len);
                for (int end = 0; end < 2; end++)
                    T_CHECK(g.paddle[s][k][end][0] >= 0 && g.paddle[s][k][end][0] < side &&
                                g.paddle[s][k][end][1] >= 0 && g.paddle[s][k][end][1] < side,
                            "%d: paddle inside the image", i);
                if (k) {  // consecutive paddles are 2 * margin apart (+ rounding)
                    double gap = dist(g.paddle[s][k - 1][1], g.paddle[s][k][0]);
                    T_CHECK(gap <= 2 * g.margin + 3, "%d: gap %.2f between paddles %d and %d", i, gap, k - 1, k);
                }
            }
        }
        T_CHECK(fabs(dist(g.origin_tip[0], g.origin_tip[1]) - sd) <= 1.0, "%d: seeds %.2f apart, want %d", i,
                dist(g.origin_tip[0], g.origin_tip[1]), sd);
        // markers: the first on the origin snake's starting tip, the second on a terminal tip
        T_CHECK(same_point(g.marker[0], g.origin_tip[o]), "%d: first marker on the origin tip", i);
        T_CHECK(same_point(g.marker[1], g.terminal_tip[g.label ? o : 1 - o]), "%d: second marker on the expected tip",
                i);
        int one_snake = 0;
        for (int s = 0; s < 2; s++)
            one_snake |= (same_point(g.marker[0], g.origin_tip[s]) && same_point(g.marker[1], g.terminal_tip[s])) ||
                         (same_point(g.marker[1], g.origin_tip[s]) && same_point(g.marker[0], g.terminal_tip[s]));
        T_CHECK(one_snake == g.label, "%d: label %d but markers on the ends of one snake: %d", i, g.label, one_snake);
        // the two target snakes keep margin + thickness between their centre lines
        double gap = 1e9;
        for (int a = 0; a < cl; a++)
            for (int b = 0; b < cl; b++) gap = fmin(gap, seg_seg(g.paddle[0][a], g.paddle[1][b]));
        T_CHECK(gap >= g.margin + thickness - 1e-9, "%d: target snakes %.2f px apart (margin %d)", i, gap, g.margin);
        min_gap = fmin(min_gap, gap);
        // the image: not blank, byte-scaled to 255, markers visible
        int lit = 0, vmax = 0;
        for (int k = 0; k < side * side; k++) {
            lit += px[k] > 40;
            vmax = px[k] > vmax ? px[k] : vmax;
        }
        T_CHECK(vmax == 255 && lit > side * side / 200, "%d: image not blank (%d lit pixels, max %d)", i, lit, vmax);
        for (int m = 0; m < 2; m++)
            T_CHECK(px[g.marker[m][0] * side + g.marker[m][1]] >= 100, "%d: marker %d drawn (%d)", i, m,
                    px[g.marker[m][0] * side + g.marker[m][1]]);
    }
    T_CHECK(fabs(ones / (double)n - 0.5) < 0.5 * 4 / sqrt(n), "resolution %s: %d of %d labels are 1", resolution, ones,
            n);
    printf("    resolution %s: %d examples, %.1f%% label 1, closest target paddles %.2f px, %.1f pair attempts\n",
           resolution, n, 100.0 * ones / n, min_gap, mean_attempts);
    free(px);
    pf_close(&t);
}

static void test_semantics(void) {
    check_semantics("32", 400, NULL, NULL);
    check_semantics("32", 100, "difficulty", "baseline");
    check_semantics("64", 40, NULL, NULL);
    check_semantics("128", 40, NULL, NULL);
    check_semantics("256", 20, NULL, NULL);
}

static void test_speed(void) {
    lra_task t;
    lra_err e = { 0 };
    T_CHECK(pf_open(&t, NULL, 0, 9, &e) == LRA_OK, "open: %s", e.msg);
    enum { N = 4000 };
    int fails = 0;
    double t0 = now_s();
    for (int i = 0; i < N / 4; i++) {
        uint8_t px[1024];
        fails += lra_pathfinder_generate(&t, LRA_SPLIT_TRAIN, i, px, NULL, &e) != 0;
    }
    double t1 = now_s();
    #pragma omp parallel for num_threads(2) schedule(dynamic, 16) reduction(+ : fails)
    for (int i = 0; i < N; i++) {
        int32_t tokens[1024], len;
        lra_example ex = { tokens, &len, 0 };
        lra_err pe = { 0 };
        fails += lra_task_pathfinder.example(&t, LRA_SPLIT_TRAIN, i, &ex, &pe) != 0;
    }
    double t2 = now_s();
    T_CHECK(fails == 0, "generation failed");
    printf("    32x32: %.0f images/s on 1 thread, %.0f images/s on 2 threads (200,000 images: %.0f s)\n",
           (N / 4) / (t1 - t0), N / (t2 - t1), 200000 / (N / (t2 - t1)));
    pf_close(&t);
}

// ---- export and loader ---------------------------------------------------------------------

static void test_round_trip(void) {
    char dir[] = "/tmp/lra_pf_XXXXXX";
    T_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    lra_task gen, ld;
    lra_err e = { 0 };
    T_CHECK(pf_open(&gen, NULL, 0, 21, &e) == LRA_OK, "open: %s", e.msg);
    progress_log log = { 0 };
    T_CHECK(lra_task_pathfinder.export_split(&gen, LRA_SPLIT_VAL, dir, 1203, log_progress, &log, &e) == LRA_OK,
            "export: %s", e.msg);
    T_CHECK(log.calls == 2 && log.done[0] == 1000 && log.done[1] == 1203 && log.total == 1203, "progress");
    char path[512];
    struct stat sb;
    snprintf(path, sizeof path, "%s/imgs/1/sample_202.png", dir);
    T_CHECK(stat(path, &sb) == 0, "batches of 1000: %s", path);
    snprintf(path, sizeof path, "%s/imgs/1/sample_203.png", dir);
    T_CHECK(stat(path, &sb) != 0, "no more than asked");
    // the metadata row has the 11 fields of snakes2.accumulate_meta
    lra_pathfinder_geometry g;
    uint8_t px[1024];
    T_CHECK(!lra_pathfinder_generate(&gen, LRA_SPLIT_VAL, 1000, px, &g, &e), "%s", e.msg);
    snprintf(path, sizeof path, "%s/metadata/1.npy", dir);
    FILE *f = fopen(path, "rb");
    char line[256] = "", want[256];
    if (f) {
        if (!fgets(line, sizeof line, f)) line[0] = 0;
        fclose(f);
    }
    snprintf(want, sizeof want, "imgs/1 sample_0.png 0 %d 1.0 14 4 2 0.5 1 1\n", g.label);
    T_CHECK(strcmp(line, want) == 0, "metadata row '%s', want '%s'", line, want);

    lra_kv kv[] = { { "data_dir", dir, NULL }, { "split_mode", "all_val", NULL } };
    T_CHECK(pf_open(&ld, kv, 2, 0, &e) == LRA_OK, "open loader: %s", e.msg);
    if (ld.state) {
        T_CHECK(ld.info.split_size[0] == 0 && ld.info.split_size[1] == 1203 && ld.info.split_size[2] == 0,
                "all_val sizes %lld %lld %lld", (long long)ld.info.split_size[0], (long long)ld.info.split_size[1],
                (long long)ld.info.split_size[2]);
        T_CHECK(strcmp(ld.info.source, dir) == 0, "source %s", ld.info.source);
        T_CHECK(strstr(ld.info.params, ";split_mode=all_val") != NULL, "params %s", ld.info.params);
        int bad = 0;
        for (int i = 0; i < 1203; i++) {
            int32_t a[1024], b[1024], la, lb;
            lra_example ea = { a, &la, 0 }, eb = { b, &lb, 0 };
            bad += lra_task_pathfinder.example(&gen, LRA_SPLIT_VAL, i, &ea, &e) != 0;
            bad += lra_task_pathfinder.example(&ld, LRA_SPLIT_VAL, i, &eb, &e) != 0;
            bad += memcmp(a, b, sizeof a) != 0 || ea.label != eb.label || la != lb;
        }
        T_CHECK(bad == 0, "%d examples differ after the round trip (%s)", bad, e.msg);
        T_CHECK(lra_pathfinder_generate(&ld, LRA_SPLIT_VAL, 0, px, NULL, &e) == LRA_EINVAL, "no generation");
        pf_close(&ld);
    }
    // split_mode=lra: 80/10/10 of the file order; n_val caps a split
    lra_kv kv2[] = { { "data_dir", dir, NULL }, { "n_val", "7", NULL } };
    T_CHECK(pf_open(&ld, kv2, 2, 0, &e) == LRA_OK, "open loader: %s", e.msg);
    if (ld.state) {
        T_CHECK(ld.info.split_size[0] == 962 && ld.info.split_size[1] == 7 && ld.info.split_size[2] == 120,
                "lra sizes %lld %lld %lld", (long long)ld.info.split_size[0], (long long)ld.info.split_size[1],
                (long long)ld.info.split_size[2]);
        int32_t a[1024], b[1024], la, lb;
        lra_example ea = { a, &la, 0 }, eb = { b, &lb, 0 };
        T_CHECK(!lra_task_pathfinder.example(&gen, LRA_SPLIT_VAL, 1083, &ea, &e), "%s", e.msg);
        T_CHECK(!lra_task_pathfinder.example(&ld, LRA_SPLIT_TEST, 0, &eb, &e), "%s", e.msg);
        T_CHECK(memcmp(a, b, sizeof a) == 0 && ea.label == eb.label, "test split starts at 90%% of the order");
        pf_close(&ld);
    }
    // re-export of loaded data reads back identically too
    char dir2[] = "/tmp/lra_pf_XXXXXX";
    T_CHECK(mkdtemp(dir2) != NULL, "mkdtemp");
    T_CHECK(pf_open(&ld, kv, 2, 0, &e) == LRA_OK, "open loader: %s", e.msg);
    if (ld.state) {
        T_CHECK(lra_task_pathfinder.export_split(&ld, LRA_SPLIT_VAL, dir2, 5, NULL, NULL, &e) == LRA_OK, "%s", e.msg);
        pf_close(&ld);
    }
    lra_kv kv3[] = { { "data_dir", dir2, NULL }, { "split_mode", "all_train", NULL } };
    T_CHECK(pf_open(&ld, kv3, 2, 0, &e) == LRA_OK, "open loader: %s", e.msg);
    if (ld.state) {
        int32_t a[1024], b[1024], la, lb;
        lra_example ea = { a, &la, 0 }, eb = { b, &lb, 0 };
        T_CHECK(ld.info.split_size[0] == 5, "5 re-exported");
        T_CHECK(!lra_task_pathfinder.example(&gen, LRA_SPLIT_VAL, 4, &ea, &e), "%s", e.msg);
        T_CHECK(!lra_task_pathfinder.example(&ld, LRA_SPLIT_TRAIN, 4, &eb, &e), "%s", e.msg);
        T_CHECK(memcmp(a, b, sizeof a) == 0 && ea.label == eb.label, "re-export");
        pf_close(&ld);
    }
    T_CHECK(lra_task_pathfinder.export_split(&gen, LRA_SPLIT_VAL, dir2, 20001, NULL, NULL, &e) == LRA_EINVAL,
            "export beyond the split");
    T_CHECK(strcmp(e.msg, "pathfinder: cannot export 20001 examples: split val has 20000") == 0, "%s", e.msg);
    pf_close(&gen);
    t_rm_tree(dir);
    t_rm_tree(dir2);
}

static void test_export_progress(void) {
    char dir[] = "/tmp/lra_pf_XXXXXX";
    T_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    lra_kv kv[] = { { "resolution", "64", NULL } };
    lra_task gen;
    lra_err e = { 0 };
    T_CHECK(pf_open(&gen, kv, 1, 4, &e) == LRA_OK, "open: %s", e.msg);
    T_CHECK(lra_task_pathfinder.export_split(&gen, LRA_SPLIT_TEST, dir, 12, NULL, NULL, &e) == LRA_OK, "%s", e.msg);
    lra_kv kv2[] = { { "resolution", "64", NULL }, { "data_dir", dir, NULL }, { "split_mode", "all_test", NULL } };
    lra_task ld;
    T_CHECK(pf_open(&ld, kv2, 3, 0, &e) == LRA_OK, "open loader: %s", e.msg);
    if (ld.state) {
        static int32_t a[4096], b[4096];
        int32_t la, lb;
        lra_example ea = { a, &la, 0 }, eb = { b, &lb, 0 };
        for (int i = 0; i < 12; i++) {
            T_CHECK(!lra_task_pathfinder.example(&gen, LRA_SPLIT_TEST, i, &ea, &e), "%s", e.msg);
            T_CHECK(!lra_task_pathfinder.example(&ld, LRA_SPLIT_TEST, i, &eb, &e), "%s", e.msg);
            T_CHECK(memcmp(a, b, sizeof a) == 0 && ea.label == eb.label, "64x64 round trip %d", i);
        }
        pf_close(&ld);
    }
    // a 64x64 directory opened as resolution 32: the first image names the problem
    lra_kv kv3[] = { { "data_dir", dir, NULL } };
    char want[512];
    snprintf(want, sizeof want,
             "%s/metadata/0.npy:1: %s/imgs/0/sample_0.png: image is 64x64, expected 32x32 (resolution=32)", dir, dir);
    expect_open_error(kv3, 1, want);
    pf_close(&gen);
    t_rm_tree(dir);
}

// A small release-like directory: metadata/<k>.npy rows over imgs/<k>/sample_<i>.png.
static void make_release_n(const char *dir, const char *meta0, size_t meta_len, int n_png) {
    char path[512];
    snprintf(path, sizeof path, "%s/metadata", dir);
    mkdir(path, 0777);
    snprintf(path, sizeof path, "%s/imgs", dir);
    mkdir(path, 0777);
    snprintf(path, sizeof path, "%s/imgs/0", dir);
    mkdir(path, 0777);
    uint8_t px[1024];
    for (int i = 0; i < n_png; i++) {
        memset(px, i * 10, sizeof px);
        snprintf(path, sizeof path, "%s/imgs/0/sample_%d.png", dir, i);
        lra_png_write_gray(path, px, 32, 32, NULL);
    }
    snprintf(path, sizeof path, "%s/metadata/0.npy", dir);
    write_bytes(path, meta0, meta_len);
}

static void make_release(const char *dir, const char *meta0, int n_png) {
    make_release_n(dir, meta0, strlen(meta0), n_png);
}

static void loader_case_n(const char *meta0, size_t meta_len, int n_png, const char *want_fmt, int n_dir_args) {
    char dir[] = "/tmp/lra_pf_XXXXXX";
    if (!mkdtemp(dir)) return;
    make_release_n(dir, meta0, meta_len, n_png);
    char want[1024];
    if (n_dir_args == 1) snprintf(want, sizeof want, want_fmt, dir);
    else snprintf(want, sizeof want, want_fmt, dir, dir);
    lra_kv kv[] = { { "data_dir", dir, NULL } };
    expect_open_error(kv, 1, want);
    t_rm_tree(dir);
}

static void loader_case(const char *meta0, int n_png, const char *want_fmt, int n_dir_args) {
    loader_case_n(meta0, strlen(meta0), n_png, want_fmt, n_dir_args);
}

static void test_loader_errors(void) {
    lra_kv kv[] = { { "data_dir", "/nonexistent/pf", "cfg.yaml:2:3" } };
    expect_open_error(kv, 1,
                      "/nonexistent/pf/metadata: cannot open the metadata directory: No such file or directory "
                      "(expected the release layout metadata/<k>.npy and imgs/<k>/sample_<i>.png under "
                      "/nonexistent/pf)");
    loader_case("imgs/0 sample_0.png 0 1\nimgs/0 sample_1.png 1\n", 2,
                "%s/metadata/0.npy:2: expected at least 4 space-separated fields (image directory, file name, index, "
                "label), got 3",
                1);
    loader_case("imgs/0 sample_0.png 0 2 1.0\n", 1, "%s/metadata/0.npy:1: label (field 4) must be 0 or 1, got '2'", 1);
    loader_case("imgs/0 sample_0.png 0 \xff\xfe\n", 1,
                "%s/metadata/0.npy:1: label (field 4) must be 0 or 1, got '\xff\xfe'", 1);
    loader_case("imgs/0 sample_0.png 0 1\nimgs/0 sample_9.png 9 0\n", 1,
                "%s/metadata/0.npy:2: %s/imgs/0/sample_9.png: cannot open: No such file or directory", 2);
    static const char nul_row[] = "imgs/0 sample_0.png 0 1\nimgs/0 sam\0ple_1.png 9 0\n";
    loader_case_n(nul_row, sizeof nul_row - 1, 2, "%s/metadata/0.npy:2: NUL byte in the row", 1);
    // a metadata directory without .npy files
    char dir[] = "/tmp/lra_pf_XXXXXX", path[512], want[512];
    if (mkdtemp(dir)) {
        snprintf(path, sizeof path, "%s/metadata", dir);
        mkdir(path, 0777);
        snprintf(want, sizeof want, "%s/metadata: no metadata files (<k>.npy) found", dir);
        lra_kv k2[] = { { "data_dir", dir, NULL } };
        expect_open_error(k2, 1, want);
        // only blank rows: no images
        snprintf(path, sizeof path, "%s/metadata/0.npy", dir);
        write_text(path, "\n  \n");
        snprintf(want, sizeof want, "%s/metadata: no images listed", dir);
        expect_open_error(k2, 1, want);
        // not a PNG
        make_release(dir, "imgs/0 sample_0.png 0 1\n", 0);
        snprintf(path, sizeof path, "%s/imgs/0/sample_0.png", dir);
        write_text(path, "hello, not an image at all");
        snprintf(want, sizeof want,
                 "%s/metadata/0.npy:1: %s/imgs/0/sample_0.png: not a PNG file (bad signature or header)", dir, dir);
        expect_open_error(k2, 1, want);
        t_rm_tree(dir);
    }
}

static void test_loader_details(void) {
    char dir[] = "/tmp/lra_pf_XXXXXX", path[512];
    if (!mkdtemp(dir)) return;
    // 4 images, one of them empty (skipped like LRA), CRLF and a trailing row without newline
    make_release(dir, "imgs/0 sample_0.png 0 1 1.0 14\r\nimgs/0 sample_1.png 1 0\n\nimgs/0 sample_2.png 2 1\nimgs/0 "
                      "sample_3.png 3 0",
                 4);
    snprintf(path, sizeof path, "%s/imgs/0/sample_2.png", dir);
    write_text(path, "");
    // a second batch "10.npy" must come after "2.npy" (numeric order)
    snprintf(path, sizeof path, "%s/imgs/2", dir);
    mkdir(path, 0777);
    snprintf(path, sizeof path, "%s/imgs/10", dir);
    mkdir(path, 0777);
    uint8_t px[1024];
    memset(px, 222, sizeof px);
    snprintf(path, sizeof path, "%s/imgs/10/sample_0.png", dir);
    lra_png_write_gray(path, px, 32, 32, NULL);
    memset(px, 111, sizeof px);
    snprintf(path, sizeof path, "%s/imgs/2/sample_0.png", dir);
    lra_png_write_gray(path, px, 32, 32, NULL);
    snprintf(path, sizeof path, "%s/metadata/10.npy", dir);
    write_text(path, "imgs/10 sample_0.png 0 1\n");
    snprintf(path, sizeof path, "%s/metadata/2.npy", dir);
    write_text(path, "imgs/2 sample_0.png 0 0\n");
    lra_kv kv[] = { { "data_dir", dir, NULL }, { "split_mode", "all_test", NULL } };
    lra_task t;
    lra_err e = { 0 };
    T_CHECK(pf_open(&t, kv, 2, 0, &e) == LRA_OK, "open: %s", e.msg);
    if (t.state) {
        T_CHECK(t.info.split_size[2] == 5, "5 images (empty one skipped): %lld", (long long)t.info.split_size[2]);
        int want_px[5] = { 0, 10, 30, 111, 222 }, want_label[5] = { 1, 0, 0, 0, 1 };
        int32_t tokens[1024], len;
        lra_example ex = { tokens, &len, 0 };
        for (int i = 0; i < 5; i++) {
            T_CHECK(!lra_task_pathfinder.example(&t, LRA_SPLIT_TEST, i, &ex, &e), "%s", e.msg);
            T_CHECK(tokens[0] == want_px[i] && tokens[1023] == want_px[i] && ex.label == want_label[i],
                    "image %d: pixel %d label %d", i, tokens[0], ex.label);
        }
        // a PNG corrupted after open: example() names the metadata line and the file
        snprintf(path, sizeof path, "%s/imgs/0/sample_3.png", dir);
        FILE *f = fopen(path, "r+b");
        if (f) {
            fseek(f, 40, SEEK_SET);
            fputs("garbage", f);
            fclose(f);
        }
        T_CHECK(lra_task_pathfinder.example(&t, LRA_SPLIT_TEST, 2, &ex, &e) == LRA_EIO, "corrupt PNG");
        char want[512];
        snprintf(want, sizeof want, "%s/metadata/0.npy:5: %s/imgs/0/sample_3.png: corrupt PNG: ", dir, dir);
        T_CHECK(strncmp(e.msg, want, strlen(want)) == 0, "message: %s", e.msg);
        pf_close(&t);
    }
    t_rm_tree(dir);
}

static const t_case cases[] = {
    { "pathfinder/info", test_info },
    { "pathfinder/bad_params", test_bad_params },
    { "pathfinder/determinism", test_determinism },
    { "pathfinder/threads", test_threads },
    { "pathfinder/splits_disjoint", test_splits_disjoint },
    { "pathfinder/semantics", test_semantics },
    { "pathfinder/speed", test_speed },
    { "pathfinder/round_trip", test_round_trip },
    { "pathfinder/round_trip_64", test_export_progress },
    { "pathfinder/loader_errors", test_loader_errors },
    { "pathfinder/loader_details", test_loader_details },
};

T_MAIN(cases)
