// test_safetensors.c: the safetensors reader and writer (models/safetensors.h):
// round trips, a hand-written file from the format's specification, the
// writer's exact bytes, the exact message of every kind of malformed file, and
// no crash on any truncation or single-byte corruption of a valid file.
// LRA_ST_OUT=path makes roundtrip also write its file there (for
// tests/ref/read_safetensors.py).
#include "../models/safetensors.h"
#include "t.h"

#include <stdbool.h>
#include <unistd.h>

// ---- helpers -----------------------------------------------------------------------

static bool read_whole(const char *path, unsigned char **bytes, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    *bytes = malloc(size > 0 ? (size_t)size : 1);
    *n = *bytes ? fread(*bytes, 1, (size_t)size, f) : 0;
    fclose(f);
    return *bytes && *n == (size_t)size;
}

// a file of an 8-byte length field `len`, the text json and data_len zero bytes
static void write_st(const char *dir, const char *name, uint64_t len, const char *json, size_t data_len) {
    size_t n_json = strlen(json), n = 8 + n_json + data_len;
    unsigned char *bytes = calloc(n, 1);
    for (int i = 0; i < 8; i++) bytes[i] = (unsigned char)(len >> (8 * i));
    memcpy(bytes + 8, json, n_json);
    t_write_file(dir, name, bytes, n);
    free(bytes);
}

// opening a file of json (its true length) and data_len bytes fails with "path: want"
static void expect_error_at(int line, const char *dir, const char *json, size_t data_len, const char *want) {
    char path[256], full[700];
    write_st(dir, "bad.safetensors", strlen(json), json, data_len);
    snprintf(path, sizeof path, "%s/bad.safetensors", dir);
    snprintf(full, sizeof full, "%s: %s", path, want);
    lra_st_file *f = (lra_st_file *)1;
    lra_err err = { 0 };
    int rc = lra_st_open(path, &f, &err);
    T_CHECK(rc == LRA_EIO && f == NULL, "line %d: open gave %d, want an error", line, rc);
    T_CHECK(rc != LRA_EIO || !strcmp(err.msg, full), "line %d: message\n      got  '%s'\n      want '%s'", line, err.msg, full);
    lra_st_close(f);
}
#define EXPECT_ERROR(dir, json, data_len, want) expect_error_at(__LINE__, dir, json, data_len, want)

// ---- round trip --------------------------------------------------------------------

static const float   rt_w[2][3] = { { 1.5f, -2.0f, 0.25f }, { 1e-30f, -0.0f, 3.0e30f } };
static const double  rt_v[4] = { 3.141592653589793, -1e300, 0.1, 2.0 };
static const int32_t rt_i[2][2] = { { -1, 2147483647 }, { -2147483647 - 1, 42 } };
static const uint8_t rt_u[5] = { 0, 1, 127, 128, 255 };
static const float   rt_scalar = 3.25f;
static const char   *rt_odd_name = "na\xc3\xafve \"q\" \\ \n\t\x01 \xf0\x9f\x98\x80";

static lra_st_writer *roundtrip_writer(void) {
    lra_st_writer *w = NULL;
    lra_err err = { 0 };
    int64_t s_w[] = { 2, 3 }, s_v[] = { 4 }, s_i[] = { 2, 2 }, s_u[] = { 5 }, s_e[] = { 0, 3 }, s_o[] = { 1 };
    int rc = lra_st_writer_new(&w, &err);
    rc = rc ? rc : lra_st_writer_add(w, "layer.0.weight", LRA_ST_F32, 2, s_w, rt_w, sizeof rt_w, &err);
    rc = rc ? rc : lra_st_writer_add(w, "vec64", LRA_ST_F64, 1, s_v, rt_v, sizeof rt_v, &err);
    rc = rc ? rc : lra_st_writer_add(w, "ints", LRA_ST_I32, 2, s_i, rt_i, sizeof rt_i, &err);
    rc = rc ? rc : lra_st_writer_add(w, "bytes", LRA_ST_U8, 1, s_u, rt_u, sizeof rt_u, &err);
    rc = rc ? rc : lra_st_writer_add(w, "scalar", LRA_ST_F32, 0, NULL, &rt_scalar, sizeof rt_scalar, &err);
    rc = rc ? rc : lra_st_writer_add(w, "empty", LRA_ST_F32, 2, s_e, NULL, 0, &err);
    rc = rc ? rc : lra_st_writer_add(w, rt_odd_name, LRA_ST_U8, 1, s_o, rt_u + 4, 1, &err);
    rc = rc ? rc : lra_st_writer_metadata(w, "format", "pt", &err);
    rc = rc ? rc : lra_st_writer_metadata(w, "note", "quote \" backslash \\ newline \n caf\xc3\xa9", &err);
    T_CHECK(rc == LRA_OK, "building the writer: %s", err.msg);
    return w;
}

static void check_tensor(const lra_st_file *f, const char *name, lra_st_dtype dtype, int ndim, const int64_t *shape,
                         const void *data, int64_t nbytes) {
    const lra_st_tensor *t = lra_st_find(f, name);
    T_CHECK(t != NULL, "tensor '%s' missing", name);
    if (!t) return;
    T_CHECK(t->dtype == dtype && t->ndim == ndim && t->nbytes == nbytes, "tensor '%s': dtype %s ndim %d nbytes %lld",
            name, lra_st_dtype_name(t->dtype), t->ndim, (long long)t->nbytes);
    for (int i = 0; i < ndim && i < t->ndim; i++) T_CHECK(t->shape[i] == shape[i], "tensor '%s' dim %d", name, i);
    T_CHECK(t->offset % lra_st_dtype_size(dtype) == 0, "tensor '%s' misaligned at %lld", name, (long long)t->offset);
    unsigned char buf[64] = { 0 };
    lra_err err = { 0 };
    int rc = lra_st_read(f, name, buf, sizeof buf, &err);
    T_CHECK(rc == LRA_OK, "read '%s': %s", name, err.msg);
    T_CHECK(nbytes == 0 || !memcmp(buf, data, (size_t)nbytes), "tensor '%s': bytes differ", name);
}

static void test_roundtrip(void) {
    char dir[128], path[256];
    t_tmpdir(dir, sizeof dir, "st");
    snprintf(path, sizeof path, "%s/rt.safetensors", dir);
    lra_st_writer *w = roundtrip_writer();
    lra_err err = { 0 };
    int rc = lra_st_writer_write(w, path, &err);
    T_CHECK(rc == LRA_OK, "write: %s", err.msg);
    const char *out = getenv("LRA_ST_OUT");
    if (out) T_CHECK(lra_st_writer_write(w, out, &err) == LRA_OK, "write LRA_ST_OUT: %s", err.msg);
    lra_st_writer_free(w);

    lra_st_file *f = NULL;
    rc = lra_st_open(path, &f, &err);
    T_CHECK(rc == LRA_OK, "open: %s", err.msg);
    if (rc) return;
    int64_t s_w[] = { 2, 3 }, s_v[] = { 4 }, s_i[] = { 2, 2 }, s_u[] = { 5 }, s_e[] = { 0, 3 }, s_o[] = { 1 };
    T_CHECK(lra_st_count(f) == 7, "count %lld", (long long)lra_st_count(f));
    check_tensor(f, "layer.0.weight", LRA_ST_F32, 2, s_w, rt_w, sizeof rt_w);
    check_tensor(f, "vec64", LRA_ST_F64, 1, s_v, rt_v, sizeof rt_v);
    check_tensor(f, "ints", LRA_ST_I32, 2, s_i, rt_i, sizeof rt_i);
    check_tensor(f, "bytes", LRA_ST_U8, 1, s_u, rt_u, sizeof rt_u);
    check_tensor(f, "scalar", LRA_ST_F32, 0, NULL, &rt_scalar, sizeof rt_scalar);
    check_tensor(f, "empty", LRA_ST_F32, 2, s_e, NULL, 0);
    check_tensor(f, rt_odd_name, LRA_ST_U8, 1, s_o, rt_u + 4, 1);
    T_CHECK(lra_st_find(f, "scalar")->numel == 1 && lra_st_find(f, "empty")->numel == 0, "numel of 0-d and empty");
    T_CHECK(lra_st_find(f, "nope") == NULL, "unknown name found");
    for (int64_t i = 1; i < lra_st_count(f); i++)
        T_CHECK(strcmp(lra_st_tensor_at(f, i - 1)->name, lra_st_tensor_at(f, i)->name) < 0, "tensor_at not in name order");
    T_CHECK(lra_st_metadata_count(f) == 2, "metadata count");
    const char *note = lra_st_metadata(f, "note");
    T_CHECK(note && !strcmp(note, "quote \" backslash \\ newline \n caf\xc3\xa9"), "metadata note '%s'", note ? note : "");
    const char *key = NULL, *value = NULL;
    T_CHECK(lra_st_metadata_at(f, 0, &key, &value) == LRA_OK && !strcmp(key, "format") && !strcmp(value, "pt"),
            "metadata_at 0");
    T_CHECK(lra_st_metadata(f, "absent") == NULL && lra_st_metadata_at(f, 2, &key, &value) == LRA_EINVAL, "absent metadata");
    lra_st_close(f);

    unsigned char *bytes = NULL;
    size_t n = 0;
    T_CHECK(read_whole(path, &bytes, &n) && n > 8, "reading back");
    uint64_t len = 0;
    for (int i = 7; i >= 0 && n > 8; i--) len = len << 8 | bytes[i];
    T_CHECK(len % 8 == 0 && bytes[8] == '{', "header length %llu not padded to 8", (unsigned long long)len);
    free(bytes);
    t_rm_tree(dir);
}

// ---- exact bytes -----------------------------------------------------------------

// A file written by hand from the specification: 8-byte little-endian length,
// JSON with whitespace between tokens (allowed), no padding, then the data:
// "weight" F32 [[1, 2], [-0.5, 3]] at [0, 16), "bias" I64 [-2] at [16, 24).
static const char spec_json[] =
    "{ \"__metadata__\": {\"format\": \"pt\"},\n"
    "  \"weight\": {\"dtype\": \"F32\", \"shape\": [2, 2], \"data_offsets\": [0, 16]},\n"
    "  \"bias\": {\"dtype\": \"I64\", \"shape\": [1], \"data_offsets\": [16, 24]} }";
static const unsigned char spec_data[24] = {
    0x00, 0x00, 0x80, 0x3f,  0x00, 0x00, 0x00, 0x40,  0x00, 0x00, 0x00, 0xbf,  0x00, 0x00, 0x40, 0x40,
    0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
};

static void test_spec_file(void) {
    char dir[128], path[256];
    t_tmpdir(dir, sizeof dir, "st");
    size_t n_json = sizeof spec_json - 1, n = 8 + n_json + sizeof spec_data;
    T_CHECK(n_json == 176, "the spec header is %zu bytes", n_json);
    unsigned char bytes[512] = { 176, 0, 0, 0, 0, 0, 0, 0 };
    memcpy(bytes + 8, spec_json, n_json);
    memcpy(bytes + 8 + n_json, spec_data, sizeof spec_data);
    t_write_file(dir, "spec.safetensors", bytes, n);
    snprintf(path, sizeof path, "%s/spec.safetensors", dir);
    lra_st_file *f = NULL;
    lra_err err = { 0 };
    int rc = lra_st_open(path, &f, &err);
    T_CHECK(rc == LRA_OK, "open: %s", err.msg);
    if (rc) return;
    float weight[4] = { 0 };
    int64_t bias = 0;
    T_CHECK(lra_st_read(f, "weight", weight, sizeof weight, &err) == LRA_OK, "weight: %s", err.msg);
    T_CHECK(lra_st_read(f, "bias", &bias, sizeof bias, &err) == LRA_OK, "bias: %s", err.msg);
    T_CHECK(weight[0] == 1 && weight[1] == 2 && weight[2] == -0.5f && weight[3] == 3, "weight values");
    T_CHECK(bias == -2, "bias %lld", (long long)bias);
    const lra_st_tensor *w = lra_st_find(f, "weight");
    T_CHECK(w && w->offset == 8 + 176 && w->ndim == 2 && w->shape[0] == 2 && w->shape[1] == 2, "weight layout");
    T_CHECK(lra_st_metadata(f, "format") && !strcmp(lra_st_metadata(f, "format"), "pt"), "metadata");
    lra_st_close(f);
    t_rm_tree(dir);
}

// The writer's exact output: metadata first, bigger dtypes first, no spaces but the padding.
static void test_writer_bytes(void) {
    static const char json[] = "{\"__metadata__\":{\"a\":\"1\",\"k\":\"v\\\"\\u001f\"},"
                               "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                               "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[4,6]}}";
    char dir[128], path[256];
    t_tmpdir(dir, sizeof dir, "st");
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    lra_st_writer *w = NULL;
    lra_err err = { 0 };
    const uint8_t b[2] = { 7, 9 };
    const float s = 1.0f;
    int64_t shape_b[1] = { 2 };
    int rc = lra_st_writer_new(&w, &err);
    rc = rc ? rc : lra_st_writer_add(w, "b", LRA_ST_U8, 1, shape_b, b, 2, &err);
    rc = rc ? rc : lra_st_writer_add(w, "s", LRA_ST_F32, 0, NULL, &s, 4, &err);
    rc = rc ? rc : lra_st_writer_metadata(w, "k", "v\"\x1f", &err);
    rc = rc ? rc : lra_st_writer_metadata(w, "a", "1", &err);
    rc = rc ? rc : lra_st_writer_write(w, path, &err);
    T_CHECK(rc == LRA_OK, "write: %s", err.msg);
    lra_st_writer_free(w);
    size_t n_json = sizeof json - 1, padded = (n_json + 7) / 8 * 8;
    unsigned char want[512] = { (unsigned char)padded };
    memcpy(want + 8, json, n_json);
    memset(want + 8 + n_json, ' ', padded - n_json);
    memcpy(want + 8 + padded, "\x00\x00\x80\x3f\x07\x09", 6);
    unsigned char *got = NULL;
    size_t n = 0;
    T_CHECK(padded == 152 && read_whole(path, &got, &n), "reading %s", path);
    T_CHECK(n == 8 + padded + 6 && !memcmp(got, want, n), "bytes differ: got %zu bytes, header '%.*s'", n,
            n > 8 ? (int)(n - 8) : 0, got ? (const char *)got + 8 : "");
    free(got);
    t_rm_tree(dir);
}

// ---- malformed files ----------------------------------------------------------------

static void test_errors_layout(void) {
    char dir[128];
    t_tmpdir(dir, sizeof dir, "st");
    EXPECT_ERROR(dir, "{\"a\":{\"dtype\":\"F17\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
                 "unknown dtype 'F17' for tensor 'a'");
    EXPECT_ERROR(dir, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,8]}}", 8,
                 "tensor 'a': data_offsets [0, 8] hold 8 bytes but shape [2, 3] of F32 needs 24");
    EXPECT_ERROR(dir, "{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,8]}}", 8,
                 "tensor 'a': data_offsets [0, 8] hold 8 bytes but shape [] of F32 needs 4");
    EXPECT_ERROR(dir, "{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[8,0]}}", 8,
                 "tensor 'a': data_offsets [8, 0] end before they begin");
    EXPECT_ERROR(dir, "{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0]}}", 8,
                 "tensor 'a': data_offsets must be [begin, end], got 1 numbers");
    EXPECT_ERROR(dir, "{\"a\":{\"dtype\":\"U64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8,
                 "tensor 'a': shape [4294967296, 4294967296] of U64 is larger than 2^63 - 1 bytes");
    EXPECT_ERROR(dir, "{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},"
                      "\"b\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[4,12]}}", 12,
                 "tensors 'a' [0, 8] and 'b' [4, 12] overlap");
    EXPECT_ERROR(dir, "{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},"
                      "\"b\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[12,20]}}", 20,
                 "gap between tensors 'a' (ends at 8) and 'b' (begins at 12): offsets must be contiguous");
    EXPECT_ERROR(dir, "{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[4,12]}}", 12,
                 "tensor 'a' begins at data offset 4, expected 0 (offsets must be contiguous)");
    EXPECT_ERROR(dir, "{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},"
                      "\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[8,16]}}", 16,
                 "duplicate tensor name 'a'");
    EXPECT_ERROR(dir, "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, "duplicate metadata key 'k'");
    EXPECT_ERROR(dir, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4,
                 "data of tensor 'a' [0, 8] lies outside the file (the data buffer holds 4 bytes)");
    EXPECT_ERROR(dir, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 10,
                 "2 bytes after the end of the tensor data (from byte 70)");
    EXPECT_ERROR(dir, "{}", 1, "1 bytes after the end of the tensor data (from byte 10)");
    t_rm_tree(dir);
}

static void test_errors_length(void) {
    char dir[128], path[256], want[512];
    t_tmpdir(dir, sizeof dir, "st");
    snprintf(path, sizeof path, "%s/bad.safetensors", dir);
    lra_st_file *f = NULL;
    lra_err err = { 0 };
    t_write_file(dir, "bad.safetensors", "\x02\0\0\0\0", 5);
    snprintf(want, sizeof want, "%s: truncated file: 5 bytes, the 8-byte header length is incomplete", path);
    T_CHECK(lra_st_open(path, &f, &err) == LRA_EIO && !strcmp(err.msg, want), "got '%s'", err.msg);
    write_st(dir, "bad.safetensors", 1000, "{}", 50);
    snprintf(want, sizeof want, "%s: header length 1000 larger than the file (52 bytes after the length)", path);
    T_CHECK(lra_st_open(path, &f, &err) == LRA_EIO && !strcmp(err.msg, want), "got '%s'", err.msg);
    write_st(dir, "bad.safetensors", 100000001, "{}", 0);
    snprintf(want, sizeof want, "%s: header length 100000001 exceeds the limit of 100000000 bytes", path);
    T_CHECK(lra_st_open(path, &f, &err) == LRA_EIO && !strcmp(err.msg, want), "got '%s'", err.msg);
    write_st(dir, "bad.safetensors", UINT64_MAX, "{}", 0);
    snprintf(want, sizeof want, "%s: header length 18446744073709551615 exceeds the limit of 100000000 bytes", path);
    T_CHECK(lra_st_open(path, &f, &err) == LRA_EIO && !strcmp(err.msg, want), "got '%s'", err.msg);
    snprintf(want, sizeof want, "%s/absent: cannot open: No such file or directory", dir);
    snprintf(path, sizeof path, "%s/absent", dir);
    T_CHECK(lra_st_open(path, &f, &err) == LRA_EIO && !strcmp(err.msg, want), "got '%s'", err.msg);
    snprintf(want, sizeof want, "%s: not a regular file", dir);
    T_CHECK(lra_st_open(dir, &f, &err) == LRA_EIO && !strcmp(err.msg, want), "got '%s'", err.msg);
    T_CHECK(f == NULL, "file set on error");
    t_rm_tree(dir);
}

static void test_errors_json(void) {
    char dir[128];
    t_tmpdir(dir, sizeof dir, "st");
    EXPECT_ERROR(dir, "", 0, "invalid JSON at byte 8: expected '{' at the start of the header, found end of header");
    EXPECT_ERROR(dir, "[]", 0, "invalid JSON at byte 8: expected '{' at the start of the header, found '['");
    EXPECT_ERROR(dir, "{} x", 0, "invalid JSON at byte 11: unexpected 'x' after the header object");
    EXPECT_ERROR(dir, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},}", 1,
                 "invalid JSON at byte 61: expected a tensor name, found '}'");
    EXPECT_ERROR(dir, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1.5],\"data_offsets\":[0,1]}}", 1,
                 "invalid JSON at byte 36: fraction or exponent (only non-negative integers are allowed)");
    EXPECT_ERROR(dir, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1e0],\"data_offsets\":[0,1]}}", 1,
                 "invalid JSON at byte 36: fraction or exponent (only non-negative integers are allowed)");
    EXPECT_ERROR(dir, "{\"a\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}", 1,
                 "invalid JSON at byte 36: negative number (only non-negative integers are allowed)");
    EXPECT_ERROR(dir, "{\"a\":{\"dtype\":\"U8\",\"shape\":[01],\"data_offsets\":[0,1]}}", 1,
                 "invalid JSON at byte 36: number with a leading zero");
    EXPECT_ERROR(dir, "{\"a\":{\"dtype\":\"U8\",\"shape\":[9223372036854775808],\"data_offsets\":[0,1]}}", 1,
                 "invalid JSON at byte 36: integer larger than 2^63 - 1");
    EXPECT_ERROR(dir, "{\"a\":{\"dtype\":\"U8\",\"shape\":null,\"data_offsets\":[0,1]}}", 1,
                 "invalid JSON at byte 35: expected the shape, found 'n'");
    EXPECT_ERROR(dir, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,],\"data_offsets\":[0,1]}}", 1,
                 "invalid JSON at byte 38: expected a non-negative integer, found ']'");
    EXPECT_ERROR(dir, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}}", 1,
                 "invalid JSON at byte 59: more than 2 entries in data_offsets");
    EXPECT_ERROR(dir, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"x\":1}}", 1,
                 "invalid JSON at byte 60: unknown key 'x' in tensor 'a'");
    EXPECT_ERROR(dir, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"shape\":[1]}}", 1,
                 "invalid JSON at byte 39: duplicate key 'shape' in tensor 'a'");
    EXPECT_ERROR(dir, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1]}}", 1, "invalid JSON at byte 38: tensor 'a' has no \"data_offsets\"");
    EXPECT_ERROR(dir, "{\"a\":{}}", 0, "invalid JSON at byte 14: tensor 'a' has no \"dtype\"");
    EXPECT_ERROR(dir, "{\"a\":1}", 0, "invalid JSON at byte 13: expected '{' (a tensor entry), found '1'");
    EXPECT_ERROR(dir, "{\"a\" {}}", 0, "invalid JSON at byte 13: expected ':', found '{'");
    EXPECT_ERROR(dir, "{\"__metadata__\":{} \"b\":{}}", 0, "invalid JSON at byte 27: expected ',' or '}', found '\"'");
    EXPECT_ERROR(dir, "{\"a", 0, "invalid JSON at byte 9: unterminated string");
    EXPECT_ERROR(dir, "{\"a\\q\":{}}", 0, "invalid JSON at byte 11: invalid escape in string");
    EXPECT_ERROR(dir, "{\"a\\u12\":{}}", 0, "invalid JSON at byte 11: invalid \\u escape (expected 4 hex digits)");
    EXPECT_ERROR(dir, "{\"\\ud800x\":{}}", 0, "invalid JSON at byte 10: unpaired surrogate \\uD800 in string");
    EXPECT_ERROR(dir, "{\"\\udc00\":{}}", 0, "invalid JSON at byte 10: unpaired surrogate \\uDC00 in string");
    EXPECT_ERROR(dir, "{\"\\u0000\":{}}", 0, "invalid JSON at byte 10: \\u0000 is not allowed in a string");
    EXPECT_ERROR(dir, "{\"a\xff\":{}}", 0, "invalid JSON at byte 11: invalid UTF-8 in string");
    EXPECT_ERROR(dir, "{\"\xc0\xaf\":{}}", 0, "invalid JSON at byte 10: invalid UTF-8 in string");
    EXPECT_ERROR(dir, "{\"\xed\xa0\x80\":{}}", 0, "invalid JSON at byte 10: invalid UTF-8 in string");
    EXPECT_ERROR(dir, "{\"a\tb\":{}}", 0, "invalid JSON at byte 11: control character 0x09 in string (must be escaped)");
    EXPECT_ERROR(dir, "{\"__metadata__\":{\"k\":1}}", 0,
                 "invalid JSON at byte 29: expected a string (metadata values are strings), found '1'");
    EXPECT_ERROR(dir, "{\"__metadata__\":{},\"__metadata__\":{}}", 0, "invalid JSON at byte 27: duplicate \"__metadata__\"");
    EXPECT_ERROR(dir, "{\"__metadata__\":null}", 0,
                 "invalid JSON at byte 24: expected '{' (the \"__metadata__\" object), found 'n'");
    EXPECT_ERROR(dir, "{\"a\":{\"dtype\":true}}", 0, "invalid JSON at byte 22: expected a dtype string, found 't'");
    t_rm_tree(dir);
}

// escapes and whitespace that the format allows are accepted
static void test_json_accepts(void) {
    char dir[128], path[256];
    t_tmpdir(dir, sizeof dir, "st");
    const char *json = "\r\n\t {\"\\u00e9\\ud83d\\ude00\\/\\b\\f\\n\\r\\t\\\"\\\\\" : { \"data_offsets\" : [ 0 , 4 ] ,"
                       " \"shape\" : [ 2 , 2 ] , \"dtype\" : \"U8\" } , \"__metadata__\" : { } }        ";
    write_st(dir, "ok.safetensors", strlen(json), json, 4);
    snprintf(path, sizeof path, "%s/ok.safetensors", dir);
    lra_st_file *f = NULL;
    lra_err err = { 0 };
    T_CHECK(lra_st_open(path, &f, &err) == LRA_OK, "open: %s", err.msg);
    T_CHECK(lra_st_find(f, "\xc3\xa9\xf0\x9f\x98\x80/\b\f\n\r\t\"\\") != NULL, "decoded name");
    T_CHECK(lra_st_count(f) == 1 && lra_st_metadata_count(f) == 0, "counts");
    lra_st_close(f);
    write_st(dir, "ok.safetensors", 8, "{}      ", 0);
    T_CHECK(lra_st_open(path, &f, &err) == LRA_OK && lra_st_count(f) == 0, "empty file: %s", err.msg);
    lra_st_close(f);
    t_rm_tree(dir);
}

// ---- reads and writes ----------------------------------------------------------------

static void test_read_errors(void) {
    char dir[128], path[256], want[512];
    t_tmpdir(dir, sizeof dir, "st");
    snprintf(path, sizeof path, "%s/r.safetensors", dir);
    write_st(dir, "r.safetensors", 54, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8);
    lra_st_file *f = NULL;
    lra_err err = { 0 };
    T_CHECK(lra_st_open(path, &f, &err) == LRA_OK, "open: %s", err.msg);
    if (!f) return;
    float buf[2];
    snprintf(want, sizeof want, "%s: no tensor 'b'", path);
    T_CHECK(lra_st_read(f, "b", buf, sizeof buf, &err) == LRA_EINVAL && !strcmp(err.msg, want), "got '%s'", err.msg);
    snprintf(want, sizeof want, "%s: tensor 'a' has 8 bytes, the buffer only 4", path);
    T_CHECK(lra_st_read(f, "a", buf, 4, &err) == LRA_EINVAL && !strcmp(err.msg, want), "got '%s'", err.msg);
    T_CHECK(truncate(path, 66) == 0, "truncate");
    snprintf(want, sizeof want, "%s: truncated: tensor 'a' needs bytes [62, 70) but the file ends at 66", path);
    T_CHECK(lra_st_read(f, "a", buf, sizeof buf, &err) == LRA_EIO && !strcmp(err.msg, want), "got '%s'", err.msg);
    lra_st_close(f);
    t_rm_tree(dir);
}

static void test_writer_errors(void) {
    char dir[128], path[256], want[1024];
    t_tmpdir(dir, sizeof dir, "st");
    lra_st_writer *w = NULL;
    lra_err err = { 0 };
    float data[6] = { 0 };
    int64_t shape[2] = { 2, 3 }, negative[1] = { -1 };
    T_CHECK(lra_st_writer_new(&w, &err) == LRA_OK, "new");
    T_CHECK(lra_st_writer_add(w, "a", LRA_ST_F32, 2, shape, data, sizeof data, &err) == LRA_OK, "add: %s", err.msg);
    T_CHECK(lra_st_writer_add(w, "a", LRA_ST_F32, 2, shape, data, sizeof data, &err) == LRA_EINVAL &&
            !strcmp(err.msg, "safetensors writer: duplicate tensor name 'a'"), "got '%s'", err.msg);
    T_CHECK(lra_st_writer_add(w, "b", LRA_ST_F32, 2, shape, data, 20, &err) == LRA_EINVAL &&
            !strcmp(err.msg, "safetensors writer: tensor 'b': 20 bytes given, shape [2, 3] of F32 needs a different count"),
            "got '%s'", err.msg);
    T_CHECK(lra_st_writer_add(w, "b", LRA_ST_F32, 1, negative, data, 4, &err) == LRA_EINVAL &&
            !strcmp(err.msg, "safetensors writer: tensor 'b': negative dimension in shape [-1]"), "got '%s'", err.msg);
    T_CHECK(lra_st_writer_add(w, "b", LRA_ST_DTYPE_COUNT, 2, shape, data, sizeof data, &err) == LRA_EINVAL &&
            !strcmp(err.msg, "safetensors writer: tensor 'b': unknown dtype 15"), "got '%s'", err.msg);
    T_CHECK(lra_st_writer_add(w, "__metadata__", LRA_ST_F32, 2, shape, data, sizeof data, &err) == LRA_EINVAL,
            "reserved name accepted");
    T_CHECK(lra_st_writer_add(w, "\xff", LRA_ST_F32, 2, shape, data, sizeof data, &err) == LRA_EINVAL,
            "invalid UTF-8 accepted");
    T_CHECK(lra_st_writer_metadata(w, "k", "1", &err) == LRA_OK, "metadata");
    T_CHECK(lra_st_writer_metadata(w, "k", "2", &err) == LRA_EINVAL &&
            !strcmp(err.msg, "safetensors writer: duplicate metadata key 'k'"), "got '%s'", err.msg);
    snprintf(path, sizeof path, "%s/no/such/dir/x.safetensors", dir);
    snprintf(want, sizeof want, "%s: cannot create %s.tmp.", path, path);
    const char *enoent = ": No such file or directory";
    size_t n_msg = strlen(err.msg);
    T_CHECK(lra_st_writer_write(w, path, &err) == LRA_EIO && !strncmp(err.msg, want, strlen(want)) &&
            (n_msg = strlen(err.msg)) > strlen(enoent) && !strcmp(err.msg + n_msg - strlen(enoent), enoent),
            "got '%s'", err.msg);
    // replacing an existing file leaves exactly one file, the new one
    snprintf(path, sizeof path, "%s/x.safetensors", dir);
    t_write_file(dir, "x.safetensors", "old", 3);
    T_CHECK(lra_st_writer_write(w, path, &err) == LRA_OK, "write: %s", err.msg);
    lra_st_file *f = NULL;
    T_CHECK(lra_st_open(path, &f, &err) == LRA_OK && lra_st_count(f) == 1, "reopen: %s", err.msg);
    lra_st_close(f);
    lra_st_writer_free(w);
    t_rm_tree(dir);
}

// ---- robustness -------------------------------------------------------------------------

// opens path; when that works, reads every tensor; true when open succeeded
static bool open_and_read_all(const char *path, lra_err *err) {
    lra_st_file *f = NULL;
    if (lra_st_open(path, &f, err) != LRA_OK) return false;
    for (int64_t i = 0; i < lra_st_count(f); i++) {
        const lra_st_tensor *t = lra_st_tensor_at(f, i);
        void *buf = malloc(t->nbytes ? (size_t)t->nbytes : 1);
        T_CHECK(buf && lra_st_read(f, t->name, buf, t->nbytes, err) == LRA_OK, "read '%s': %s", t->name, err->msg);
        free(buf);
    }
    const char *key, *value;
    for (int64_t i = 0; i < lra_st_metadata_count(f); i++)
        T_CHECK(lra_st_metadata_at(f, i, &key, &value) == LRA_OK && lra_st_metadata(f, key) != NULL, "metadata %lld", (long long)i);
    lra_st_close(f);
    return true;
}

// a valid file's bytes (the round-trip file)
static unsigned char *valid_file(const char *dir, size_t *n) {
    char path[256];
    snprintf(path, sizeof path, "%s/valid.safetensors", dir);
    lra_st_writer *w = roundtrip_writer();
    lra_err err = { 0 };
    unsigned char *bytes = NULL;
    T_CHECK(lra_st_writer_write(w, path, &err) == LRA_OK && read_whole(path, &bytes, n), "valid file: %s", err.msg);
    lra_st_writer_free(w);
    return bytes;
}

static void test_truncations(void) {
    char dir[128], path[256];
    t_tmpdir(dir, sizeof dir, "st");
    snprintf(path, sizeof path, "%s/cut.safetensors", dir);
    size_t n = 0;
    unsigned char *bytes = valid_file(dir, &n);
    for (size_t k = 0; bytes && k <= n; k++) {
        t_write_file(dir, "cut.safetensors", bytes, k);
        lra_err err = { 0 };
        bool ok = open_and_read_all(path, &err);
        T_CHECK(ok == (k == n), "prefix of %zu of %zu bytes: open %s", k, n, ok ? "worked" : "failed");
        T_CHECK(ok || (err.code == LRA_EIO && !strncmp(err.msg, path, strlen(path))), "prefix %zu: message '%s'", k, err.msg);
    }
    free(bytes);
    t_rm_tree(dir);
}

static void test_corruptions(void) {
    char dir[128], path[256];
    t_tmpdir(dir, sizeof dir, "st");
    snprintf(path, sizeof path, "%s/bad.safetensors", dir);
    size_t n = 0;
    unsigned char *bytes = valid_file(dir, &n);
    int opened = 0, tried = 0;
    static const unsigned char special[] = { 0, ' ', '"', '\\', ',', ':', '[', ']', '{', '}', '0', '9', 'u', 0x80, 0xff };
    size_t header_end = bytes && n > 8 ? 8 + bytes[0] + 256 * (size_t)bytes[1] : 0;  // the header is < 64 KiB
    for (size_t pos = 0; bytes && pos < n; pos++) {
        // 2 random values everywhere, and JSON's special characters in the header
        int n_values = pos < header_end ? 2 + (int)sizeof special : 2;
        for (int v = 0; v < n_values; v++) {
            unsigned char old = bytes[pos];
            bytes[pos] = v < 2 ? (unsigned char)lra_rand_bits(7, pos * 16 + (size_t)v) : special[v - 2];
            if (bytes[pos] == old) continue;
            t_write_file(dir, "bad.safetensors", bytes, n);
            lra_err err = { 0 };
            bool ok = open_and_read_all(path, &err);
            opened += ok;
            tried++;
            T_CHECK(ok || err.msg[0], "byte %zu = 0x%02x: error without a message", pos, bytes[pos]);
            bytes[pos] = old;
        }
    }
    T_CHECK(tried > 1000 && opened > 0, "%d corruptions tried, %d opened (data bytes should)", tried, opened);
    free(bytes);
    t_rm_tree(dir);
}

static const t_case cases[] = {
    { "safetensors/roundtrip", test_roundtrip },
    { "safetensors/spec_file", test_spec_file },
    { "safetensors/writer_bytes", test_writer_bytes },
    { "safetensors/errors_layout", test_errors_layout },
    { "safetensors/errors_length", test_errors_length },
    { "safetensors/errors_json", test_errors_json },
    { "safetensors/json_accepts", test_json_accepts },
    { "safetensors/read_errors", test_read_errors },
    { "safetensors/writer_errors", test_writer_errors },
    { "safetensors/truncations", test_truncations },
    { "safetensors/corruptions", test_corruptions },
};
T_MAIN(cases)
