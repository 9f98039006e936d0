// image.c: the LRA Image task (lra.md 1.5): 10-way classification of 32x32
// grayscale images given as a sequence of 1024 pixels in raster order. Tokens
// are the pixel values 0..255 (vocab 256; LRA embeds them, no normalisation),
// every example has length 1024. (pad_id 0 is reported for the interface but
// never written: images are never padded; note that LRA's own padding mask,
// inputs > 0, also hides black pixels, lra.md 1.7.)
//
// Loaded (parameter data_dir): the CIFAR-10 binary version,
//   <data_dir>/data_batch_{1..5}.bin, <data_dir>/test_batch.bin
// of 3073-byte records (label 0..9, then 1024 R, 1024 G, 1024 B bytes, rows
// top to bottom). As LRA (tfds train[:90%] / train[90%:] / test): train = the
// first 45,000 of the 50,000 training records in file order, val = the last
// n_val (default 5,000), test = test_batch.bin (10,000). Files may hold any
// whole number of records (none is fine). Grayscale: parameter grayscale, "tf"
// (default, LRA's tf.image.rgb_to_grayscale) or "pil" (see image.h).
//
// Generated (no data_dir): 10 classes of procedurally drawn shapes,
//   0 disk, 1 square, 2 triangle, 3 cross, 4 ring, 5 stripes (in a disk),
//   6 checkerboard (4x4 cells), 7 blobs (4 small disks), 8 bar, 9 spiral,
// each at a random centre (10..22 px), size (5.5..10 px per unit), rotation
// (and mirror image), on a background of random level and linear gradient,
// with a foreground of random contrast 0.25..0.55 brighter or darker than the
// background (so no pixel value tells the class), 1 to 3 random thin distractor
// strokes, anti-aliasing (3x3 samples per pixel) and near-Gaussian noise
// (sum of 4 uniforms, sigma 0.02..0.07). Only exactly rounded operations
// (+ - * / sqrt floor) are used, so the bytes are the same on every machine.
// tests/test_task_image.c checks that nearest-class-mean classifiers on the 16
// central pixels are near chance while one on whole-image spectra is not.
//
// export_split writes CIFAR-10 binary files with R = G = B = gray (both
// conversions give the gray value back) and batches.meta.txt (class names).
// The training files data_batch_1..5.bin (10,000 records each, data_batch_5
// takes the rest; later files may be short or empty) hold the train split
// followed by the val split, exactly what the loader splits again with n_val:
// so exporting train or val writes the same files (the first n of each of the
// two splits when n >= 0), and reading back needs n_val = the val size
// exported (default 5,000 = the generator's default). test writes test_batch.bin.
#include "image.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#define IMAGE_SALT     0x696d6167ull   // "imag"
#define IMAGE_VERSION  1
#define SIDE           LRA_IMAGE_SIDE
#define PIXELS         (SIDE * SIDE)
#define RECORD         (1 + 3 * PIXELS)  // CIFAR-10 binary record
#define TRAIN_FILES    5
#define FILE_RECORDS   10000
#define SUB            3                 // anti-aliasing samples per pixel side
#define SPIRAL_POINTS  48
#define SQRT3          1.7320508075688772

const char *const lra_image_class_names[LRA_IMAGE_CLASSES] = {
    "disk", "square", "triangle", "cross", "ring", "stripes", "checkerboard", "blobs", "bar", "spiral",
};
static const char *const cifar_class_names[LRA_IMAGE_CLASSES] = {
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
};

// ---- grayscale --------------------------------------------------------------------------------

uint8_t lra_gray_tf(uint8_t r, uint8_t g, uint8_t b) {
    // convert_image_dtype(uint8 -> float32) multiplies by 1/255; tensordot with
    // the weights; convert_image_dtype(float32 -> uint8) multiplies by
    // 255.5 and truncates. Every step rounds to float32 (no FMA under -std=c11).
    const float scale = (float)(1.0 / 255.0);
    float rf = (float)r * scale, gf = (float)g * scale, bf = (float)b * scale;
    float sum = rf * 0.2989f + gf * 0.5870f;
    sum = sum + bf * 0.1140f;
    return (uint8_t)(sum * 255.5f);
}

uint8_t lra_gray_pil(uint8_t r, uint8_t g, uint8_t b) {
    return (uint8_t)((19595u * r + 38470u * g + 7471u * b + 0x8000u) >> 16);
}

// ---- state ---------------------------------------------------------------------------------

typedef struct {
    uint8_t *pixels;   // (n, 1024) gray
    uint8_t *labels;   // (n)
    int64_t  n, cap;
} image_set;

typedef struct {
    int       loaded;
    int       grayscale;   // 0 tf, 1 pil
    int64_t   n_val;       // loaded: the last n_val training records are val
    image_set train;       // loaded: every record of data_batch_1..5
    image_set test;
} image_state;

static void set_free(image_set *s) {
    free(s->pixels);
    free(s->labels);
    memset(s, 0, sizeof *s);
}

static void image_close(lra_task *t) {
    image_state *s = t->state;
    if (!s) return;
    set_free(&s->train);
    set_free(&s->test);
    free(s);
    t->state = NULL;
}

// ---- generator -----------------------------------------------------------------------------

typedef struct {
    int    kind;                      // class
    double cx, cy, scale;             // centre and size of one unit, in pixels
    double c, s, mirror;              // rotation and mirror (+1 or -1)
    double blob[4][3];                // blobs: centre u, v and radius, in units
    double spiral[SPIRAL_POINTS][2];  // spiral: polyline, in units
} shape;

static double uniform(lra_rng *r, double lo, double hi) { return lo + (hi - lo) * lra_rng_uniform(r); }

// A uniformly random direction from a point drawn in the unit disk.
static void random_direction(lra_rng *r, double *c, double *s) {
    for (;;) {
        double x = uniform(r, -1, 1), y = uniform(r, -1, 1), n2 = x * x + y * y;
        if (n2 > 0.01 && n2 <= 1) {
            double n = sqrt(n2);
            *c = x / n;
            *s = y / n;
            return;
        }
    }
}

// Squared distance from (px, py) to the segment a-b.
static double segment_dist2(double px, double py, double ax, double ay, double bx, double by) {
    double dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
    double t = len2 > 0 ? ((px - ax) * dx + (py - ay) * dy) / len2 : 0;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    double ex = px - (ax + t * dx), ey = py - (ay + t * dy);
    return ex * ex + ey * ey;
}

static int shape_inside(const shape *sh, double px, double py) {
    double dx = (px - sh->cx) / sh->scale, dy = (py - sh->cy) / sh->scale;
    double u = sh->c * dx + sh->s * dy, v = sh->mirror * (sh->c * dy - sh->s * dx);
    double r2 = u * u + v * v, au = fabs(u), av = fabs(v);
    switch (sh->kind) {
    case 0: return r2 <= 1;
    case 1: return au <= 0.8 && av <= 0.8;
    case 2: return v >= -0.5 && SQRT3 * au + v <= 1;  // equilateral, vertices on the unit circle
    case 3: return (au <= 0.28 && av <= 1) || (av <= 0.28 && au <= 1);
    case 4: return r2 <= 1 && r2 >= 0.55 * 0.55;
    case 5: return r2 <= 1 && ((int64_t)floor((u + 2) * 2) & 1) == 0;
    case 6:
        return au <= 0.9 && av <= 0.9 &&
               (((int64_t)floor((u + 0.9) / 0.45) + (int64_t)floor((v + 0.9) / 0.45)) & 1) == 0;
    case 7:
        for (int i = 0; i < 4; i++) {
            double bu = u - sh->blob[i][0], bv = v - sh->blob[i][1];
            if (bu * bu + bv * bv <= sh->blob[i][2] * sh->blob[i][2]) return 1;
        }
        return 0;
    case 8: return au <= 1 && av <= 0.16;
    default: return 0;  // 9, the spiral, is drawn by shape_mask
    }
}

static void make_shape(shape *sh, int kind, lra_rng *r) {
    sh->kind = kind;
    sh->cx = uniform(r, 10, 22);
    sh->cy = uniform(r, 10, 22);
    sh->scale = uniform(r, 5.5, 10);
    random_direction(r, &sh->c, &sh->s);
    sh->mirror = (lra_rng_u64(r) >> 63) ? 1 : -1;
    for (int i = 0; i < 4; i++) {  // blobs: centres within 0.65 of the middle
        double c, s, d = uniform(r, 0.2, 0.65);
        random_direction(r, &c, &s);
        sh->blob[i][0] = d * c;
        sh->blob[i][1] = d * s;
        sh->blob[i][2] = uniform(r, 0.22, 0.34);
    }
    // Archimedean spiral rho = theta / theta_max, theta = 0.2 k: the direction
    // turns by a fixed rotation (cos 0.2, sin 0.2) per point.
    const double c02 = 0.98006657784124163, s02 = 0.19866933079506122;
    double c = 1, s = 0, theta_max = 0.2 * (SPIRAL_POINTS - 1);
    for (int k = 0; k < SPIRAL_POINTS; k++) {
        double rho = 0.2 * k / theta_max;
        sh->spiral[k][0] = rho * c;
        sh->spiral[k][1] = rho * s;
        double c2 = c * c02 - s * s02;
        s = s * c02 + c * s02;
        c = c2;
    }
}

// Anti-aliasing samples: sample (i, j) of the GRID x GRID mask lies at pixel
// coordinates ((j + 0.5) / SUB, (i + 0.5) / SUB).
enum { GRID = SIDE * SUB };

static int clamp_grid(double v) { return v < 0 ? 0 : v > GRID - 1 ? GRID - 1 : (int)v; }

// Marks the samples within half_width of the segment a-b (pixel coordinates).
static void mark_segment(uint8_t *mask, double ax, double ay, double bx, double by, double half_width) {
    double x0 = ax < bx ? ax : bx, x1 = ax < bx ? bx : ax, y0 = ay < by ? ay : by, y1 = ay < by ? by : ay;
    for (int i = clamp_grid((y0 - half_width) * SUB); i <= clamp_grid((y1 + half_width) * SUB + 1); i++)
        for (int j = clamp_grid((x0 - half_width) * SUB); j <= clamp_grid((x1 + half_width) * SUB + 1); j++)
            if (segment_dist2((j + 0.5) / SUB, (i + 0.5) / SUB, ax, ay, bx, by) <= half_width * half_width)
                mask[i * GRID + j] = 1;
}

// Marks the samples (GRID x GRID) inside the shape.
static void shape_mask(const shape *sh, uint8_t *mask) {
    memset(mask, 0, GRID * GRID);
    if (sh->kind == 9) {  // the spiral, segment by segment, mapped from units to pixels
        double px[SPIRAL_POINTS], py[SPIRAL_POINTS];
        for (int k = 0; k < SPIRAL_POINTS; k++) {
            double u = sh->spiral[k][0], v = sh->mirror * sh->spiral[k][1];
            px[k] = sh->cx + sh->scale * (sh->c * u - sh->s * v);
            py[k] = sh->cy + sh->scale * (sh->s * u + sh->c * v);
        }
        for (int k = 0; k + 1 < SPIRAL_POINTS; k++)
            mark_segment(mask, px[k], py[k], px[k + 1], py[k + 1], 0.1 * sh->scale);
        return;
    }
    double reach = 1.35 * sh->scale;
    for (int i = clamp_grid((sh->cy - reach) * SUB); i <= clamp_grid((sh->cy + reach) * SUB); i++)
        for (int j = clamp_grid((sh->cx - reach) * SUB); j <= clamp_grid((sh->cx + reach) * SUB); j++)
            mask[i * GRID + j] = (uint8_t)shape_inside(sh, (j + 0.5) / SUB, (i + 0.5) / SUB);
}

// Blends ink into the canvas with, at each pixel, alpha times the fraction of its samples marked.
static void blend_mask(double *canvas, const uint8_t *mask, double ink, double alpha) {
    for (int y = 0; y < SIDE; y++)
        for (int x = 0; x < SIDE; x++) {
            int in = 0;
            for (int i = 0; i < SUB; i++)
                for (int j = 0; j < SUB; j++) in += mask[(y * SUB + i) * GRID + x * SUB + j];
            if (!in) continue;
            double a = alpha * in / (SUB * SUB);
            canvas[y * SIDE + x] = canvas[y * SIDE + x] * (1 - a) + ink * a;
        }
}

// Draws generated image (split, index) into px (1024); sets *label.
static void image_generate(uint64_t seed, lra_split split, int64_t index, uint8_t *px, int *label) {
    lra_rng r = { lra_example_seed(seed, IMAGE_SALT, split, index), 0 };
    int y = (int)lra_rng_int(&r, 0, LRA_IMAGE_CLASSES - 1);
    double canvas[PIXELS];
    // background: a level and a linear gradient
    double level = uniform(&r, 0.15, 0.85), gx = uniform(&r, -0.3, 0.3), gy = uniform(&r, -0.3, 0.3);
    for (int i = 0; i < SIDE; i++)
        for (int j = 0; j < SIDE; j++) canvas[i * SIDE + j] = level + gx * (j - 15.5) / 31 + gy * (i - 15.5) / 31;
    // the shape, brighter or darker than the background
    double contrast = uniform(&r, 0.25, 0.55), fg = level + ((lra_rng_u64(&r) >> 63) ? contrast : -contrast);
    if (fg < 0.05 || fg > 0.95) fg = 2 * level - fg;
    shape sh;
    make_shape(&sh, y, &r);
    uint8_t mask[GRID * GRID];
    shape_mask(&sh, mask);
    blend_mask(canvas, mask, fg, 1);
    // clutter: thin strokes of random ink
    int n_strokes = (int)lra_rng_int(&r, 1, 3);
    for (int k = 0; k < n_strokes; k++) {
        double c, s, len = uniform(&r, 4, 12);
        double ax = uniform(&r, 0, SIDE), ay = uniform(&r, 0, SIDE);
        random_direction(&r, &c, &s);
        double half_width = uniform(&r, 0.35, 0.7), ink = uniform(&r, 0, 1), alpha = uniform(&r, 0.5, 1);
        memset(mask, 0, sizeof mask);
        mark_segment(mask, ax, ay, ax + len * c, ay + len * s, half_width);
        blend_mask(canvas, mask, ink, alpha);
    }
    // noise: the sum of 4 uniforms (16-bit fields of one draw) has variance 1/3
    double sigma = uniform(&r, 0.02, 0.07);
    for (int p = 0; p < PIXELS; p++) {
        uint64_t u = lra_rng_u64(&r);
        double z = (double)((u & 0xffff) + ((u >> 16) & 0xffff) + ((u >> 32) & 0xffff) + (u >> 48)) / 65536.0 - 2;
        double v = floor((canvas[p] + sigma * SQRT3 * z) * 255 + 0.5);
        px[p] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    *label = y;
}

// ---- loader ----------------------------------------------------------------------------------

static int set_reserve(image_set *s, int64_t more, const char *path, lra_err *err) {
    if (s->n + more <= s->cap) return LRA_OK;
    int64_t cap = s->cap ? s->cap : 1024;
    while (cap < s->n + more) cap *= 2;
    uint8_t *pixels = realloc(s->pixels, (size_t)cap * PIXELS);
    if (pixels) s->pixels = pixels;
    uint8_t *labels = realloc(s->labels, (size_t)cap);
    if (labels) s->labels = labels;
    if (!pixels || !labels) return lra_err_set(err, LRA_ENOMEM, "%s: out of memory", path);
    s->cap = cap;
    return LRA_OK;
}

// Appends the records of one CIFAR-10 binary file to s, converted to gray.
static int read_cifar(const char *path, int grayscale, image_set *s, lra_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return lra_err_set(err, LRA_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        int saved = errno;
        fclose(f);
        return lra_err_set(err, LRA_EIO, "%s: cannot stat: %s", path, strerror(saved));
    }
    int64_t size = (int64_t)st.st_size, n = size / RECORD;
    int rc = LRA_OK;
    if (size % RECORD)
        rc = lra_err_set(err, LRA_EIO,
                         "%s: %lld bytes is not a whole number of %d-byte records (%lld records and %lld bytes over)",
                         path, (long long)size, RECORD, (long long)n, (long long)(size % RECORD));
    if (!rc) rc = set_reserve(s, n, path, err);
    uint8_t rec[RECORD];
    for (int64_t i = 0; i < n && !rc; i++) {
        if (fread(rec, 1, RECORD, f) != RECORD) {
            rc = lra_err_set(err, LRA_EIO, "%s: record %lld: short read (%s)", path, (long long)i,
                             ferror(f) ? strerror(errno) : "the file changed while being read");
            break;
        }
        if (rec[0] > 9) {
            rc = lra_err_set(err, LRA_EIO, "%s: record %lld (byte %lld): label %d is not in 0..9", path, (long long)i,
                             (long long)(i * RECORD), rec[0]);
            break;
        }
        uint8_t *out = s->pixels + (size_t)s->n * PIXELS;
        const uint8_t *R = rec + 1, *G = R + PIXELS, *B = G + PIXELS;
        for (int p = 0; p < PIXELS; p++)
            out[p] = grayscale ? lra_gray_pil(R[p], G[p], B[p]) : lra_gray_tf(R[p], G[p], B[p]);
        s->labels[s->n++] = rec[0];
    }
    fclose(f);
    return rc;
}

static int image_load(image_state *s, const char *data_dir, lra_err *err) {
    char path[4096];
    int rc = LRA_OK;
    for (int k = 1; k <= TRAIN_FILES && !rc; k++) {
        snprintf(path, sizeof path, "%s/data_batch_%d.bin", data_dir, k);
        rc = read_cifar(path, s->grayscale, &s->train, err);
    }
    snprintf(path, sizeof path, "%s/test_batch.bin", data_dir);
    if (!rc) rc = read_cifar(path, s->grayscale, &s->test, err);
    if (!rc && s->test.n == 0) rc = lra_err_set(err, LRA_EIO, "%s: no records", path);
    return rc;
}

// ---- vtable ----------------------------------------------------------------------------------

static int image_open(lra_task *t, const lra_kv *params, int n_params, uint64_t seed, lra_err *err) {
    static const char *const known[] = { "data_dir", "grayscale", "n_train", "n_val", "n_test", "input", "normalize",
                                         NULL };
    static const char *const gray_names[] = { "tf", "pil", NULL };
    int rc = lra_kv_check_known(params, n_params, "image", known, err);
    if (rc) return rc;
    const char *data_dir;
    int64_t n[LRA_SPLIT_COUNT];
    int grayscale;
    lra_kv_string(params, n_params, "data_dir", NULL, &data_dir);
    if ((rc = lra_kv_choice(params, n_params, "image", "grayscale", 0, gray_names, &grayscale, err))) return rc;
    if ((rc = lra_kv_int(params, n_params, "image", "n_train", 45000, 1, 1000000000, &n[0], err))) return rc;
    if ((rc = lra_kv_int(params, n_params, "image", "n_val", 5000, 1, 1000000000, &n[1], err))) return rc;
    if ((rc = lra_kv_int(params, n_params, "image", "n_test", 10000, 1, 1000000000, &n[2], err))) return rc;
    const lra_kv *kv;
    if (data_dir) {
        if (!*data_dir)
            return lra_err_set(err, LRA_EINVAL, "%s: image.data_dir: expected a directory, got ''",
                               lra_kv_where(lra_kv_find(params, n_params, "data_dir")));
        if (strlen(data_dir) >= sizeof t->info.source)
            return lra_err_set(err, LRA_EINVAL, "%s: image.data_dir: path longer than %zu bytes",
                               lra_kv_where(lra_kv_find(params, n_params, "data_dir")), sizeof t->info.source - 1);
        if ((kv = lra_kv_find(params, n_params, "n_train")) || (kv = lra_kv_find(params, n_params, "n_test")))
            return lra_err_set(err, LRA_EINVAL,
                               "%s: image.%s: not used with data_dir (the split sizes come from the files; "
                               "n_val picks the val records)",
                               lra_kv_where(kv), kv->key);
    } else if ((kv = lra_kv_find(params, n_params, "grayscale"))) {
        return lra_err_set(err, LRA_EINVAL, "%s: image.grayscale: only used with data_dir (generated images are gray)",
                           lra_kv_where(kv));
    }
    image_state *s = calloc(1, sizeof *s);
    if (!s) return lra_err_set(err, LRA_ENOMEM, "image: out of memory");
    t->state = s;
    t->seed = seed;
    lra_task_info *info = &t->info;
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "image");
    info->n_inputs = 1;
    info->seq_len = PIXELS;
    info->vocab = 256;
    info->pad_id = 0;
    info->n_classes = LRA_IMAGE_CLASSES;
    info->image_side = SIDE;
    info->generator_version = IMAGE_VERSION;
    if (data_dir) {
        s->loaded = 1;
        s->grayscale = grayscale;
        s->n_val = n[1];
        if ((rc = image_load(s, data_dir, err))) {
            image_close(t);
            return rc;
        }
        if (s->n_val >= s->train.n) {
            rc = lra_err_set(err, LRA_EINVAL,
                             "%s: image.n_val: %lld leaves no training images (the training files hold %lld records)",
                             lra_kv_where(lra_kv_find(params, n_params, "n_val")), (long long)s->n_val,
                             (long long)s->train.n);
            image_close(t);
            return rc;
        }
        info->split_size[LRA_SPLIT_TRAIN] = s->train.n - s->n_val;
        info->split_size[LRA_SPLIT_VAL] = s->n_val;
        info->split_size[LRA_SPLIT_TEST] = s->test.n;
        snprintf(info->source, sizeof info->source, "%s", data_dir);
        snprintf(info->params, sizeof info->params, "data_dir=%s;grayscale=%s;n_val=%lld", data_dir,
                 gray_names[grayscale], (long long)s->n_val);
    } else {
        for (int i = 0; i < LRA_SPLIT_COUNT; i++) info->split_size[i] = n[i];
        snprintf(info->source, sizeof info->source, "generated (seed %llu)", (unsigned long long)seed);
        snprintf(info->params, sizeof info->params, "n_train=%lld;n_val=%lld;n_test=%lld", (long long)n[0],
                 (long long)n[1], (long long)n[2]);
    }
    if ((rc = lra_task_pixel_input(params, n_params, "image", info, err))) image_close(t);
    return rc;
}

// The gray pixels (1024) and label of (split, index); index already checked.
static void image_pixels(const lra_task *t, lra_split split, int64_t index, uint8_t *px, int *label) {
    const image_state *s = t->state;
    if (!s->loaded) {
        image_generate(t->seed, split, index, px, label);
        return;
    }
    const image_set *set = split == LRA_SPLIT_TEST ? &s->test : &s->train;
    int64_t i = split == LRA_SPLIT_VAL ? s->train.n - s->n_val + index : index;
    memcpy(px, set->pixels + (size_t)i * PIXELS, PIXELS);
    *label = set->labels[i];
}

static int image_example(const lra_task *t, lra_split split, int64_t index, lra_example *ex, lra_err *err) {
    int rc = lra_task_check_index(t, split, index, err);
    if (rc) return rc;
    uint8_t px[PIXELS];
    int label;
    image_pixels(t, split, index, px, &label);
    for (int p = 0; p < PIXELS; p++) ex->tokens[p] = px[p];
    ex->length[0] = PIXELS;
    ex->label = label;
    return LRA_OK;
}

// Writes records [0, n) of the concatenation of the parts (split, count) to
// the files: file k gets records [10000 k, 10000 (k + 1)), the last the rest.
typedef struct {
    lra_split split;
    int64_t   count;
} image_part;

static int write_records(const lra_task *t, const image_part *parts, int n_parts, const char *const *paths,
                         int n_files, lra_progress_fn progress, void *progress_ctx, lra_err *err) {
    enum { CHUNK = 1024 };
    int64_t total = 0;
    for (int k = 0; k < n_parts; k++) total += parts[k].count;
    uint8_t *rec = malloc((size_t)CHUNK * RECORD);
    if (!rec) return lra_err_set(err, LRA_ENOMEM, "image: out of memory");
    int rc = LRA_OK, file = -1, part = 0;
    int64_t in_part = 0;
    FILE *f = NULL;
    for (int64_t done = 0; done < total && !rc;) {
        while (in_part == parts[part].count) part++, in_part = 0;  // skip empty parts
        int m = total - done < CHUNK ? (int)(total - done) : CHUNK;
        if (m > parts[part].count - in_part) m = (int)(parts[part].count - in_part);
#pragma omp parallel for schedule(dynamic, 16)
        for (int j = 0; j < m; j++) {
            uint8_t *r = rec + (size_t)j * RECORD, px[PIXELS];
            int label;
            image_pixels(t, parts[part].split, in_part + j, px, &label);
            r[0] = (uint8_t)label;
            for (int c = 0; c < 3; c++) memcpy(r + 1 + c * PIXELS, px, PIXELS);
        }
        for (int j = 0; j < m && !rc; j++) {
            int64_t i = done + j;
            int want = i / FILE_RECORDS < n_files - 1 ? (int)(i / FILE_RECORDS) : n_files - 1;
            if (want != file) {
                if (f && fclose(f) != 0)
                    rc = lra_err_set(err, LRA_EIO, "%s: write error: %s", paths[file], strerror(errno));
                f = NULL;
                file = want;
                if (!rc && !(f = fopen(paths[file], "wb")))
                    rc = lra_err_set(err, LRA_EIO, "%s: cannot create: %s", paths[file], strerror(errno));
            }
            if (!rc && fwrite(rec + (size_t)j * RECORD, 1, RECORD, f) != RECORD)
                rc = lra_err_set(err, LRA_EIO, "%s: write error: %s", paths[file], strerror(errno));
        }
        done += m;
        in_part += m;
        if (!rc && progress) progress(progress_ctx, done, total);
    }
    free(rec);
    if (f && fclose(f) != 0 && !rc) rc = lra_err_set(err, LRA_EIO, "%s: write error: %s", paths[file], strerror(errno));
    // files after the last record are written empty
    for (int k = file + 1; k < n_files && !rc; k++) {
        if (!(f = fopen(paths[k], "wb")))
            return lra_err_set(err, LRA_EIO, "%s: cannot create: %s", paths[k], strerror(errno));
        if (fclose(f) != 0) rc = lra_err_set(err, LRA_EIO, "%s: write error: %s", paths[k], strerror(errno));
    }
    return rc;
}

static int write_meta(const image_state *s, const char *dir, lra_err *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/batches.meta.txt", dir);
    FILE *f = fopen(path, "wb");
    if (!f) return lra_err_set(err, LRA_EIO, "%s: cannot create: %s", path, strerror(errno));
    for (int c = 0; c < LRA_IMAGE_CLASSES; c++)
        fprintf(f, "%s\n", s->loaded ? cifar_class_names[c] : lra_image_class_names[c]);
    if (fclose(f) != 0) return lra_err_set(err, LRA_EIO, "%s: write error: %s", path, strerror(errno));
    return LRA_OK;
}

static int image_export(const lra_task *t, lra_split split, const char *dir, int64_t n, lra_progress_fn progress,
                        void *progress_ctx, lra_err *err) {
    if ((int)split < 0 || split >= LRA_SPLIT_COUNT)
        return lra_err_set(err, LRA_EINVAL, "image: no split %d", (int)split);
    if (strlen(dir) > 3000) return lra_err_set(err, LRA_EINVAL, "%s: path too long", dir);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return lra_err_set(err, LRA_EIO, "%s: cannot create directory: %s", dir, strerror(errno));
    int rc = write_meta(t->state, dir, err);
    if (rc) return rc;
    char names[TRAIN_FILES][4096];
    const char *paths[TRAIN_FILES];
    image_part parts[2];
    if (split == LRA_SPLIT_TEST) {
        snprintf(names[0], sizeof names[0], "%s/test_batch.bin", dir);
        paths[0] = names[0];
        parts[0] = (image_part){ LRA_SPLIT_TEST, t->info.split_size[LRA_SPLIT_TEST] };
        if (n >= 0 && n < parts[0].count) parts[0].count = n;
        return write_records(t, parts, 1, paths, 1, progress, progress_ctx, err);
    }
    for (int k = 0; k < TRAIN_FILES; k++) {
        snprintf(names[k], sizeof names[k], "%s/data_batch_%d.bin", dir, k + 1);
        paths[k] = names[k];
    }
    for (int k = 0; k < 2; k++) {
        lra_split sp = k ? LRA_SPLIT_VAL : LRA_SPLIT_TRAIN;
        parts[k] = (image_part){ sp, t->info.split_size[sp] };
        if (n >= 0 && n < parts[k].count) parts[k].count = n;
    }
    return write_records(t, parts, 2, paths, TRAIN_FILES, progress, progress_ctx, err);
}

const lra_task_vtable lra_task_image = {
    .name = "image",
    .summary = "CIFAR-10 in grayscale, pixels as tokens (L 1024, 10 classes): binary loader or procedural shapes",
    .open = image_open,
    .example = image_example,
    .close = image_close,
    .export_split = image_export,
    .describe = NULL,
};
