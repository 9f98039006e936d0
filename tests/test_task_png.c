// test_task_png.c: tasks/png.c, 8-bit grayscale PNG through libpng: round
// trips, conversions of other PNG kinds to gray, and errors (never crashes)
// on missing, empty, truncated and corrupt files.
#include "t.h"

#include "../tasks/pngio.h"

#include <png.h>  // libpng, to write the other kinds of PNG

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static char tmp_dir[] = "/tmp/lra_png_XXXXXX";

static const char *tmp_path(const char *name) {
    static char path[256];
    if (tmp_dir[sizeof tmp_dir - 2] == 'X' && !mkdtemp(tmp_dir)) return "/nonexistent";
    snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
    return path;
}

// Writes a PNG of any kind with libpng. rows: (h, rowbytes).
static int write_png_kind(const char *path, int w, int h, int bit_depth, int color_type, int interlace,
                          const uint8_t *data, const png_color *palette, int n_palette) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(f);
        return 0;
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, w, h, bit_depth, color_type, interlace, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (palette) png_set_PLTE(png, info, palette, n_palette);
    png_write_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    png_bytep *rows = malloc(sizeof *rows * h);
    for (int y = 0; y < h; y++) rows[y] = (png_bytep)data + y * rowbytes;
    png_write_image(png, rows);
    png_write_end(png, NULL);
    free(rows);
    png_destroy_write_struct(&png, &info);
    fclose(f);
    return 1;
}

static long file_size(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

static void test_round_trip(void) {
    enum { W = 37, H = 23 };
    uint8_t px[W * H];
    for (int i = 0; i < W * H; i++) px[i] = (uint8_t)(i * 7 + i / 5);
    lra_err e = { 0 };
    const char *path = tmp_path("gray.png");
    T_CHECK(lra_png_write_gray(path, px, W, H, &e) == LRA_OK, "write: %s", e.msg);
    uint8_t *back = NULL;
    int w = 0, h = 0;
    T_CHECK(lra_png_read_gray(path, &back, &w, &h, &e) == LRA_OK, "read: %s", e.msg);
    T_CHECK(w == W && h == H, "size %dx%d", w, h);
    T_CHECK(back && memcmp(back, px, sizeof px) == 0, "pixels");
    free(back);
    T_CHECK(lra_png_write_gray(path, px, 0, H, &e) == LRA_EINVAL, "zero width");
}

static void test_conversions(void) {
    lra_err e = { 0 };
    uint8_t *g = NULL;
    int w, h;
    // RGB: Rec. 601 weights
    uint8_t rgb[4 * 3] = { 255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 200, 30 };
    const char *path = tmp_path("rgb.png");
    T_CHECK(write_png_kind(path, 4, 1, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, rgb, NULL, 0), "write rgb");
    T_CHECK(lra_png_read_gray(path, &g, &w, &h, &e) == LRA_OK, "read rgb: %s", e.msg);
    if (g) {
        int want[4] = { 76, 150, 29, 124 };  // round(0.299 r + 0.587 g + 0.114 b)
        for (int i = 0; i < 4; i++) T_CHECK(abs(g[i] - want[i]) <= 1, "rgb %d -> %d, want %d", i, g[i], want[i]);
        free(g);
    }
    // gray + alpha: alpha dropped
    uint8_t ga[4] = { 17, 0, 230, 255 };
    path = tmp_path("ga.png");
    T_CHECK(write_png_kind(path, 2, 1, 8, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_INTERLACE_NONE, ga, NULL, 0), "write ga");
    T_CHECK(lra_png_read_gray(path, &g, &w, &h, &e) == LRA_OK && g[0] == 17 && g[1] == 230, "gray+alpha: %s", e.msg);
    free(g);
    // 16-bit gray: scaled to 8 bits
    uint8_t g16[4] = { 0xff, 0xff, 0x80, 0x00 };
    path = tmp_path("g16.png");
    T_CHECK(write_png_kind(path, 2, 1, 16, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, g16, NULL, 0), "write g16");
    T_CHECK(lra_png_read_gray(path, &g, &w, &h, &e) == LRA_OK && g[0] == 255 && g[1] == 128, "16-bit: %s", e.msg);
    free(g);
    // 1-bit gray: expanded to 0/255
    uint8_t g1[1] = { 0xa0 };  // 1 0 1 0
    path = tmp_path("g1.png");
    T_CHECK(write_png_kind(path, 4, 1, 1, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, g1, NULL, 0), "write g1");
    T_CHECK(lra_png_read_gray(path, &g, &w, &h, &e) == LRA_OK && w == 4 && g[0] == 255 && g[1] == 0 && g[2] == 255 &&
                g[3] == 0,
            "1-bit: %s", e.msg);
    free(g);
    // palette: gray entries come back as their value
    png_color pal[3] = { { 0, 0, 0 }, { 100, 100, 100 }, { 250, 250, 250 } };
    uint8_t idx[3] = { 2, 0, 1 };
    path = tmp_path("pal.png");
    T_CHECK(write_png_kind(path, 3, 1, 8, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE, idx, pal, 3), "write palette");
    T_CHECK(lra_png_read_gray(path, &g, &w, &h, &e) == LRA_OK && g[0] == 250 && g[1] == 0 && g[2] == 100,
            "palette: %s", e.msg);
    free(g);
    // interlaced gray
    uint8_t il[16 * 9];
    for (int i = 0; i < 16 * 9; i++) il[i] = (uint8_t)(i * 3);
    path = tmp_path("interlaced.png");
    T_CHECK(write_png_kind(path, 16, 9, 8, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_ADAM7, il, NULL, 0), "write adam7");
    T_CHECK(lra_png_read_gray(path, &g, &w, &h, &e) == LRA_OK && w == 16 && h == 9 && memcmp(g, il, sizeof il) == 0,
            "interlaced: %s", e.msg);
    free(g);
}

static void expect_read_error(const char *path, const char *want, int prefix_only) {
    lra_err e = { 0 };
    uint8_t *g = (uint8_t *)1;
    int w = -1, h = -1;
    T_CHECK(lra_png_read_gray(path, &g, &w, &h, &e) != LRA_OK, "%s accepted", path);
    T_CHECK(g == NULL && w == 0 && h == 0, "outputs cleared");
    int ok = prefix_only ? strncmp(e.msg, want, strlen(want)) == 0 : strcmp(e.msg, want) == 0;
    T_CHECK(ok, "message\n      got:  %s\n      want: %s", e.msg, want);
}

static void test_errors(void) {
    char want[512], path[256];
    expect_read_error("/nonexistent/x.png", "/nonexistent/x.png: cannot open: No such file or directory", 0);
    snprintf(path, sizeof path, "%s", tmp_path("empty.png"));
    FILE *f = fopen(path, "wb");
    if (f) fclose(f);
    snprintf(want, sizeof want, "%s: empty file (expected a PNG image)", path);
    expect_read_error(path, want, 0);
    snprintf(path, sizeof path, "%s", tmp_path("text.png"));
    f = fopen(path, "wb");
    if (f) {
        fputs("not a png, \xff\xfe bytes", f);
        fclose(f);
    }
    snprintf(want, sizeof want, "%s: not a PNG file (bad signature)", path);
    expect_read_error(path, want, 0);
    lra_err e = { 0 };
    uint8_t px[4] = { 0 };
    T_CHECK(lra_png_write_gray("/nonexistent/dir/y.png", px, 2, 2, &e) == LRA_EIO, "write into a missing directory");
    T_CHECK(strcmp(e.msg, "/nonexistent/dir/y.png: cannot create: No such file or directory") == 0, "%s", e.msg);
}

// Every truncation of a valid file and every single-byte corruption after the
// signature is an error (or, for ancillary bytes, a valid read), never a crash.
static void test_truncated_and_corrupt(void) {
    enum { W = 16, H = 12 };
    uint8_t px[W * H];
    for (int i = 0; i < W * H; i++) px[i] = (uint8_t)((i * 131) ^ (i >> 3));
    char good[256], bad[256];
    snprintf(good, sizeof good, "%s", tmp_path("good.png"));
    snprintf(bad, sizeof bad, "%s", tmp_path("bad.png"));
    lra_err e = { 0 };
    T_CHECK(lra_png_write_gray(good, px, W, H, &e) == LRA_OK, "%s", e.msg);
    long n = file_size(good);
    uint8_t *bytes = malloc(n);
    FILE *f = fopen(good, "rb");
    T_CHECK(f && fread(bytes, 1, n, f) == (size_t)n, "read back");
    if (f) fclose(f);
    int truncated_errors = 0, corrupt_errors = 0, corrupt_reads = 0;
    for (long cut = 1; cut < n; cut++) {
        f = fopen(bad, "wb");
        fwrite(bytes, 1, cut, f);
        fclose(f);
        uint8_t *g = NULL;
        int w, h;
        if (lra_png_read_gray(bad, &g, &w, &h, &e) != LRA_OK) truncated_errors++;
        free(g);
    }
    T_CHECK(truncated_errors == n - 1, "every truncation is an error (%d of %ld)", truncated_errors, n - 1);
    for (long at = 8; at < n; at++) {
        uint8_t keep = bytes[at];
        bytes[at] ^= 0x5a;
        f = fopen(bad, "wb");
        fwrite(bytes, 1, n, f);
        fclose(f);
        bytes[at] = keep;
        uint8_t *g = NULL;
        int w, h;
        if (lra_png_read_gray(bad, &g, &w, &h, &e) != LRA_OK) {
            corrupt_errors++;
            T_CHECK(strstr(e.msg, bad) == e.msg && strstr(e.msg, ": corrupt PNG: "), "message: %s", e.msg);
        } else {
            corrupt_reads++;
        }
        free(g);
    }
    T_CHECK(corrupt_errors > (n - 8) * 9 / 10, "corruptions detected: %d errors, %d reads", corrupt_errors,
            corrupt_reads);
    free(bytes);
}

static void test_cleanup(void) {
    const char *names[] = { "gray.png", "rgb.png", "ga.png", "g16.png", "g1.png", "pal.png", "interlaced.png",
                            "empty.png", "text.png", "good.png", "bad.png" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) unlink(tmp_path(names[i]));
    T_CHECK(rmdir(tmp_dir) == 0, "temporary directory removed: %s", strerror(errno));
}

static const t_case cases[] = {
    { "png/round_trip", test_round_trip },
    { "png/conversions", test_conversions },
    { "png/errors", test_errors },
    { "png/truncated_and_corrupt", test_truncated_and_corrupt },
    { "png/cleanup", test_cleanup },
};

T_MAIN(cases)
