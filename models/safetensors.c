// safetensors.c: see safetensors.h for the format and the API.
//
// Reader: the header is parsed by a small schema-driven JSON parser (one
// cursor over the header bytes; top-level object -> metadata object or tensor
// entry -> strings and integer arrays), so no JSON value that the format does
// not allow is ever accepted. The checks after parsing: duplicate names and
// keys (after sorting by name), contiguous offsets from 0 (after sorting by
// offsets, as the reference's Metadata::validate does), and a data buffer
// that ends exactly at the end of the file.
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

#define ST_LEN_BYTES 8   // the header length field
#define ST_MAX_DIMS  64  // longest shape accepted (numpy 2 and PyTorch allow 64)

// ---- dtypes ----------------------------------------------------------------------

static const struct {
    const char *name;
    int64_t     size;
} st_dtypes[LRA_ST_DTYPE_COUNT] = {
    [LRA_ST_BOOL] = { "BOOL", 1 },   [LRA_ST_U8] = { "U8", 1 },     [LRA_ST_I8] = { "I8", 1 },
    [LRA_ST_F8_E5M2] = { "F8_E5M2", 1 }, [LRA_ST_F8_E4M3] = { "F8_E4M3", 1 },
    [LRA_ST_I16] = { "I16", 2 },     [LRA_ST_U16] = { "U16", 2 },   [LRA_ST_F16] = { "F16", 2 },
    [LRA_ST_BF16] = { "BF16", 2 },   [LRA_ST_I32] = { "I32", 4 },   [LRA_ST_U32] = { "U32", 4 },
    [LRA_ST_F32] = { "F32", 4 },     [LRA_ST_I64] = { "I64", 8 },   [LRA_ST_U64] = { "U64", 8 },
    [LRA_ST_F64] = { "F64", 8 },
};

static bool st_dtype_valid(lra_st_dtype dtype) { return (unsigned)dtype < LRA_ST_DTYPE_COUNT; }

const char *lra_st_dtype_name(lra_st_dtype dtype) { return st_dtype_valid(dtype) ? st_dtypes[dtype].name : "?"; }

int64_t lra_st_dtype_size(lra_st_dtype dtype) { return st_dtype_valid(dtype) ? st_dtypes[dtype].size : 0; }

int lra_st_dtype_from_name(const char *name) {
    for (int d = 0; d < LRA_ST_DTYPE_COUNT; d++)
        if (name && strcmp(name, st_dtypes[d].name) == 0) return d;
    return -1;
}

// ---- shared helpers --------------------------------------------------------------

// prod(shape) into *numel and numel * elem_size into *bytes; false on overflow
// past INT64_MAX (a shape with a 0 never overflows).
static bool st_shape_bytes(int ndim, const int64_t *shape, int64_t elem_size, int64_t *numel, int64_t *bytes) {
    *numel = 1;
    for (int i = 0; i < ndim; i++)
        if (shape[i] == 0) *numel = 0;
    for (int i = 0; i < ndim && *numel; i++) {
        if (shape[i] < 0 || *numel > INT64_MAX / shape[i]) return false;
        *numel *= shape[i];
    }
    if (*numel > INT64_MAX / elem_size) return false;
    *bytes = *numel * elem_size;
    return true;
}

// "[2, 3]" (truncated with "..." when it does not fit)
static const char *st_format_shape(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t used = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (used < cap) snprintf(buf + used, cap - used, "]");
    else if (cap >= 4) memcpy(buf + cap - 4, "...", 4);
    return buf;
}

// length of the valid UTF-8 sequence at s (n >= 1 bytes available), 0 if invalid
// (overlong forms, surrogates and code points past U+10FFFF are invalid)
static int st_utf8_len(const unsigned char *s, int64_t n) {
    unsigned c = s[0];
    int len;
    uint32_t cp, min;
    if (c < 0x80) return 1;
    if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; min = 0x80; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; min = 0x800; }
    else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; min = 0x10000; }
    else return 0;
    if (n < len) return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

static bool st_utf8_valid(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    int64_t n = (int64_t)strlen(s);
    for (int64_t i = 0; i < n;) {
        int len = st_utf8_len(p + i, n - i);
        if (!len) return false;
        i += len;
    }
    return true;
}

// writes code point cp (valid, not a surrogate) as UTF-8; returns the byte count
static int st_utf8_put(char *out, uint32_t cp) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

// pread/pwrite until n bytes moved; returns 0 or an errno; *done counts the bytes moved
static int st_pread_all(int fd, void *buf, int64_t n, int64_t offset, int64_t *done) {
    *done = 0;
    while (*done < n) {
        int64_t chunk = n - *done > (1 << 30) ? (1 << 30) : n - *done;
        ssize_t got = pread(fd, (char *)buf + *done, (size_t)chunk, (off_t)(offset + *done));
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return errno;
        if (got == 0) return 0;  // end of file
        *done += got;
    }
    return 0;
}

static int st_write_all(int fd, const void *buf, int64_t n) {
    for (int64_t done = 0; done < n;) {
        int64_t chunk = n - done > (1 << 30) ? (1 << 30) : n - done;
        ssize_t put = write(fd, (const char *)buf + done, (size_t)chunk);
        if (put < 0 && errno == EINTR) continue;
        if (put <= 0) return put < 0 ? errno : EIO;
        done += put;
    }
    return 0;
}

typedef struct {
    char *key;
    char *value;
} st_meta;

static int st_meta_cmp(const void *a, const void *b) {
    return strcmp(((const st_meta *)a)->key, ((const st_meta *)b)->key);
}

// ---- reader state -----------------------------------------------------------------

typedef struct {
    lra_st_tensor pub;    // name and shape owned (malloc'd)
    int64_t       begin;  // data_offsets, relative to the data buffer
    int64_t       end;
} st_entry;

struct lra_st_file {
    char     *path;
    int       fd;
    int64_t   file_size;
    int64_t   data_start;     // 8 + N
    st_entry *tensors;        // sorted by name after lra_st_open
    int64_t   n_tensors, cap_tensors;
    st_meta  *meta;           // sorted by key after lra_st_open
    int64_t   n_meta, cap_meta;
    bool      have_metadata;  // "__metadata__" seen
};

static int st_entry_cmp_name(const void *a, const void *b) {
    return strcmp(((const st_entry *)a)->pub.name, ((const st_entry *)b)->pub.name);
}

static int st_entry_cmp_offsets(const void *a, const void *b) {
    const st_entry *x = *(const st_entry *const *)a, *y = *(const st_entry *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->pub.name, y->pub.name);
}

void lra_st_close(lra_st_file *file) {
    if (!file) return;
    if (file->fd >= 0) close(file->fd);
    for (int64_t i = 0; i < file->n_tensors; i++) {
        free((void *)file->tensors[i].pub.name);
        free((void *)file->tensors[i].pub.shape);
    }
    for (int64_t i = 0; i < file->n_meta; i++) {
        free(file->meta[i].key);
        free(file->meta[i].value);
    }
    free(file->tensors);
    free(file->meta);
    free(file->path);
    free(file);
}

// grows *items (of item_size bytes) so that one more fits; false when out of memory
static bool st_grow(void **items, int64_t *cap, int64_t count, size_t item_size) {
    if (count < *cap) return true;
    int64_t new_cap = *cap ? *cap * 2 : 8;
    void *grown = realloc(*items, (size_t)new_cap * item_size);
    if (!grown) return false;
    memset((char *)grown + (size_t)*cap * item_size, 0, (size_t)(new_cap - *cap) * item_size);
    *items = grown;
    *cap = new_cap;
    return true;
}

// ---- JSON cursor -------------------------------------------------------------------

typedef struct {
    const char          *path;
    const unsigned char *text;  // the N header bytes
    int64_t              len;
    int64_t              pos;
    lra_err             *err;
} st_json;

// "invalid JSON at byte k: ..." with k the file offset of header byte at
static int st_json_fail(st_json *j, int64_t at, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int st_json_fail(st_json *j, int64_t at, const char *fmt, ...) {
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return lra_err_set(j->err, LRA_EIO, "%s: invalid JSON at byte %lld: %s", j->path,
                       (long long)(at + ST_LEN_BYTES), what);
}

static int st_nomem(lra_err *err, const char *path) {
    return lra_err_set(err, LRA_ENOMEM, "%s: out of memory while reading the header", path);
}

// describes the byte at the cursor for messages: "'x'", "byte 0x01" or "end of header"
static const char *st_found(const st_json *j, char *buf, size_t cap) {
    if (j->pos >= j->len) return "end of header";
    unsigned c = j->text[j->pos];
    if (c > 0x20 && c < 0x7F) snprintf(buf, cap, "'%c'", (char)c);
    else snprintf(buf, cap, "byte 0x%02x", c);
    return buf;
}

static void st_skip_ws(st_json *j) {
    while (j->pos < j->len) {
        unsigned char c = j->text[j->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
        j->pos++;
    }
}

static int st_expect(st_json *j, char c, const char *what) {
    st_skip_ws(j);
    if (j->pos < j->len && j->text[j->pos] == (unsigned char)c) {
        j->pos++;
        return LRA_OK;
    }
    char buf[16];
    return st_json_fail(j, j->pos, "expected %s, found %s", what, st_found(j, buf, sizeof buf));
}

// After '{' (first) or after a member: *more is true when another member follows.
static int st_object_next(st_json *j, bool first, bool *more) {
    st_skip_ws(j);
    if (j->pos < j->len && j->text[j->pos] == '}') {
        j->pos++;
        *more = false;
        return LRA_OK;
    }
    *more = true;
    return first ? LRA_OK : st_expect(j, ',', "',' or '}'");
}

static bool st_hex4(const unsigned char *s, uint32_t *out) {
    *out = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = s[i], v;
        if (c >= '0' && c <= '9') v = c - '0';
        else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
        else return false;
        *out = *out << 4 | v;
    }
    return true;
}

// a \uXXXX escape (or surrogate pair) at the cursor, inside a string ending at end
static int st_parse_unicode(st_json *j, int64_t end, char *out, int64_t *n) {
    int64_t at = j->pos;
    uint32_t cp, low;
    if (at + 6 > end || !st_hex4(j->text + at + 2, &cp))
        return st_json_fail(j, at, "invalid \\u escape (expected 4 hex digits)");
    int64_t next = at + 6;
    if (cp >= 0xDC00 && cp <= 0xDFFF) return st_json_fail(j, at, "unpaired surrogate \\u%04X in string", (unsigned)cp);
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (next + 6 > end || j->text[next] != '\\' || j->text[next + 1] != 'u' ||
            !st_hex4(j->text + next + 2, &low) || low < 0xDC00 || low > 0xDFFF)
            return st_json_fail(j, at, "unpaired surrogate \\u%04X in string", (unsigned)cp);
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        next += 6;
    }
    if (cp == 0) return st_json_fail(j, at, "\\u0000 is not allowed in a string");
    *n += st_utf8_put(out + *n, cp);
    j->pos = next;
    return LRA_OK;
}

// an escape sequence at the cursor (a backslash), inside a string ending at end
static int st_parse_escape(st_json *j, int64_t end, char *out, int64_t *n) {
    static const char names[] = "\"\\/bfnrt", values[] = "\"\\/\b\f\n\r\t";
    unsigned char c = j->pos + 1 < end ? j->text[j->pos + 1] : 0;
    if (c == 'u') return st_parse_unicode(j, end, out, n);
    const char *hit = c ? strchr(names, c) : NULL;
    if (!hit) return st_json_fail(j, j->pos, "invalid escape in string");
    out[(*n)++] = values[hit - names];
    j->pos += 2;
    return LRA_OK;
}

// the string body [j->pos, end) decoded into out (room for end - pos + 1 bytes)
static int st_decode_string(st_json *j, int64_t end, char *out) {
    int64_t n = 0;
    while (j->pos < end) {
        unsigned char c = j->text[j->pos];
        int rc = LRA_OK;
        if (c == '\\') {
            rc = st_parse_escape(j, end, out, &n);
        } else if (c < 0x20) {
            rc = st_json_fail(j, j->pos, "control character 0x%02x in string (must be escaped)", c);
        } else {
            int len = st_utf8_len(j->text + j->pos, end - j->pos);
            if (!len) return st_json_fail(j, j->pos, "invalid UTF-8 in string");
            memcpy(out + n, j->text + j->pos, (size_t)len);
            n += len;
            j->pos += len;
        }
        if (rc) return rc;
    }
    out[n] = 0;
    return LRA_OK;
}

// a JSON string at the cursor into a new NUL-terminated UTF-8 string *out
static int st_parse_string(st_json *j, const char *what, char **out) {
    *out = NULL;
    int rc = st_expect(j, '"', what);
    if (rc) return rc;
    int64_t end = j->pos;
    while (end < j->len && j->text[end] != '"') end += j->text[end] == '\\' ? 2 : 1;
    if (end >= j->len) return st_json_fail(j, j->pos - 1, "unterminated string");
    char *s = malloc((size_t)(end - j->pos) + 1);
    if (!s) return st_nomem(j->err, j->path);
    rc = st_decode_string(j, end, s);
    if (rc) {
        free(s);
        return rc;
    }
    j->pos = end + 1;
    *out = s;
    return LRA_OK;
}

static bool st_is_digit(const st_json *j, int64_t at) {
    return at < j->len && j->text[at] >= '0' && j->text[at] <= '9';
}

// a non-negative integer that fits int64 at the cursor
static int st_parse_uint(st_json *j, int64_t *out) {
    st_skip_ws(j);
    int64_t at = j->pos;
    char buf[16];
    if (at < j->len && j->text[at] == '-')
        return st_json_fail(j, at, "negative number (only non-negative integers are allowed)");
    if (!st_is_digit(j, at))
        return st_json_fail(j, at, "expected a non-negative integer, found %s", st_found(j, buf, sizeof buf));
    if (j->text[at] == '0' && st_is_digit(j, at + 1)) return st_json_fail(j, at, "number with a leading zero");
    int64_t value = 0;
    for (; st_is_digit(j, j->pos); j->pos++) {
        int digit = j->text[j->pos] - '0';
        if (value > (INT64_MAX - digit) / 10) return st_json_fail(j, at, "integer larger than 2^63 - 1");
        value = value * 10 + digit;
    }
    if (j->pos < j->len && (j->text[j->pos] == '.' || j->text[j->pos] == 'e' || j->text[j->pos] == 'E'))
        return st_json_fail(j, at, "fraction or exponent (only non-negative integers are allowed)");
    *out = value;
    return LRA_OK;
}

// [n0, n1, ...] with at most max entries into values; count in *count
static int st_parse_uint_array(st_json *j, const char *what, int max, int64_t *values, int *count) {
    *count = 0;
    int rc = st_expect(j, '[', what);
    if (rc) return rc;
    st_skip_ws(j);
    if (j->pos < j->len && j->text[j->pos] == ']') {
        j->pos++;
        return LRA_OK;
    }
    for (;;) {
        int64_t at = j->pos;
        if (*count == max) return st_json_fail(j, at, "more than %d entries in %s", max, what);
        if ((rc = st_parse_uint(j, &values[(*count)++]))) return rc;
        st_skip_ws(j);
        if (j->pos < j->len && j->text[j->pos] == ']') {
            j->pos++;
            return LRA_OK;
        }
        if ((rc = st_expect(j, ',', "',' or ']'"))) return rc;
    }
}

// ---- header parsing ------------------------------------------------------------------

// "__metadata__": {"key": "value", ...} appended to f->meta
static int st_parse_metadata(st_json *j, lra_st_file *f) {
    int rc = st_expect(j, '{', "'{' (the \"__metadata__\" object)");
    bool more;
    for (bool first = true; !rc; first = false) {
        if ((rc = st_object_next(j, first, &more)) || !more) break;
        if (!st_grow((void **)&f->meta, &f->cap_meta, f->n_meta, sizeof *f->meta)) return st_nomem(j->err, j->path);
        st_meta *m = &f->meta[f->n_meta++];
        if ((rc = st_parse_string(j, "a metadata key", &m->key))) break;
        if ((rc = st_expect(j, ':', "':'"))) break;
        rc = st_parse_string(j, "a string (metadata values are strings)", &m->value);
    }
    return rc;
}

typedef struct {
    char   *dtype;  // NULL until seen
    int64_t shape[ST_MAX_DIMS];
    int     ndim;   // -1 until seen
    int64_t offsets[2];
    int     n_offsets;  // -1 until seen
} st_fields;

// one member of a tensor entry ("dtype", "shape" or "data_offsets") into fields
static int st_parse_field(st_json *j, const char *tensor, st_fields *fields) {
    int64_t key_at;
    char *key;
    st_skip_ws(j);
    key_at = j->pos;
    int rc = st_parse_string(j, "a key of a tensor entry", &key);
    if (!rc) rc = st_expect(j, ':', "':'");
    if (rc) {
        free(key);
        return rc;
    }
    bool dtype = !strcmp(key, "dtype"), shape = !strcmp(key, "shape"), offsets = !strcmp(key, "data_offsets");
    if (!dtype && !shape && !offsets) rc = st_json_fail(j, key_at, "unknown key '%s' in tensor '%s'", key, tensor);
    else if ((dtype && fields->dtype) || (shape && fields->ndim >= 0) || (offsets && fields->n_offsets >= 0))
        rc = st_json_fail(j, key_at, "duplicate key '%s' in tensor '%s'", key, tensor);
    else if (dtype) rc = st_parse_string(j, "a dtype string", &fields->dtype);
    else if (shape) rc = st_parse_uint_array(j, "the shape", ST_MAX_DIMS, fields->shape, &fields->ndim);
    else rc = st_parse_uint_array(j, "data_offsets", 2, fields->offsets, &fields->n_offsets);
    free(key);
    return rc;
}

// the checks of one complete tensor entry; fills t
static int st_check_tensor(const lra_st_file *f, const st_fields *fields, st_entry *t, lra_err *err) {
    const char *name = t->pub.name;
    int dtype = lra_st_dtype_from_name(fields->dtype);
    if (dtype < 0)
        return lra_err_set(err, LRA_EIO, "%s: unknown dtype '%s' for tensor '%s'", f->path, fields->dtype, name);
    if (fields->n_offsets != 2)
        return lra_err_set(err, LRA_EIO, "%s: tensor '%s': data_offsets must be [begin, end], got %d numbers", f->path,
                           name, fields->n_offsets);
    t->begin = fields->offsets[0];
    t->end = fields->offsets[1];
    if (t->end < t->begin)
        return lra_err_set(err, LRA_EIO, "%s: tensor '%s': data_offsets [%lld, %lld] end before they begin", f->path,
                           name, (long long)t->begin, (long long)t->end);
    char shape[128];
    st_format_shape(shape, sizeof shape, fields->ndim, fields->shape);
    if (!st_shape_bytes(fields->ndim, fields->shape, st_dtypes[dtype].size, &t->pub.numel, &t->pub.nbytes))
        return lra_err_set(err, LRA_EIO, "%s: tensor '%s': shape %s of %s is larger than 2^63 - 1 bytes", f->path,
                           name, shape, st_dtypes[dtype].name);
    if (t->pub.nbytes != t->end - t->begin)
        return lra_err_set(err, LRA_EIO,
                           "%s: tensor '%s': data_offsets [%lld, %lld] hold %lld bytes but shape %s of %s needs %lld",
                           f->path, name, (long long)t->begin, (long long)t->end, (long long)(t->end - t->begin),
                           shape, st_dtypes[dtype].name, (long long)t->pub.nbytes);
    t->pub.dtype = (lra_st_dtype)dtype;
    t->pub.offset = f->data_start + t->begin;
    return LRA_OK;
}

// the object of one tensor entry at the cursor into t (its name already set)
static int st_parse_tensor(st_json *j, lra_st_file *f, st_entry *t) {
    st_fields fields = { .dtype = NULL, .ndim = -1, .n_offsets = -1 };
    int rc = st_expect(j, '{', "'{' (a tensor entry)");
    bool more;
    for (bool first = true; !rc; first = false) {
        if ((rc = st_object_next(j, first, &more)) || !more) break;
        rc = st_parse_field(j, t->pub.name, &fields);
    }
    const char *missing = !fields.dtype ? "dtype" : fields.ndim < 0 ? "shape" : fields.n_offsets < 0 ? "data_offsets" : NULL;
    if (!rc && missing) rc = st_json_fail(j, j->pos - 1, "tensor '%s' has no \"%s\"", t->pub.name, missing);
    if (!rc && fields.ndim > 0) {
        int64_t *shape = malloc((size_t)fields.ndim * sizeof *shape);
        if (!shape) rc = st_nomem(j->err, j->path);
        else memcpy(shape, fields.shape, (size_t)fields.ndim * sizeof *shape);
        t->pub.shape = shape;
    }
    t->pub.ndim = fields.ndim;
    if (!rc) rc = st_check_tensor(f, &fields, t, j->err);
    free(fields.dtype);
    return rc;
}

// one member of the top-level object: "__metadata__" or a tensor
static int st_parse_member(st_json *j, lra_st_file *f) {
    char *name;
    st_skip_ws(j);
    int64_t name_at = j->pos;
    int rc = st_parse_string(j, "a tensor name", &name);
    if (!rc) rc = st_expect(j, ':', "':'");
    if (rc || !strcmp(name, "__metadata__")) {
        if (!rc && f->have_metadata) rc = st_json_fail(j, name_at, "duplicate \"__metadata__\"");
        f->have_metadata = true;
        if (!rc) rc = st_parse_metadata(j, f);
        free(name);
        return rc;
    }
    if (!st_grow((void **)&f->tensors, &f->cap_tensors, f->n_tensors, sizeof *f->tensors)) {
        free(name);
        return st_nomem(j->err, j->path);
    }
    st_entry *t = &f->tensors[f->n_tensors++];
    t->pub.name = name;
    return st_parse_tensor(j, f, t);
}

static int st_parse_header(st_json *j, lra_st_file *f) {
    int rc = st_expect(j, '{', "'{' at the start of the header");
    bool more;
    for (bool first = true; !rc; first = false) {
        if ((rc = st_object_next(j, first, &more)) || !more) break;
        rc = st_parse_member(j, f);
    }
    if (rc) return rc;
    st_skip_ws(j);
    char buf[16];
    if (j->pos < j->len) return st_json_fail(j, j->pos, "unexpected %s after the header object", st_found(j, buf, sizeof buf));
    return LRA_OK;
}

// ---- checks after parsing --------------------------------------------------------

static int st_check_unique(lra_st_file *f, lra_err *err) {
    if (f->n_tensors > 1) qsort(f->tensors, (size_t)f->n_tensors, sizeof *f->tensors, st_entry_cmp_name);
    for (int64_t i = 1; i < f->n_tensors; i++)
        if (!strcmp(f->tensors[i - 1].pub.name, f->tensors[i].pub.name))
            return lra_err_set(err, LRA_EIO, "%s: duplicate tensor name '%s'", f->path, f->tensors[i].pub.name);
    if (f->n_meta > 1) qsort(f->meta, (size_t)f->n_meta, sizeof *f->meta, st_meta_cmp);
    for (int64_t i = 1; i < f->n_meta; i++)
        if (!strcmp(f->meta[i - 1].key, f->meta[i].key))
            return lra_err_set(err, LRA_EIO, "%s: duplicate metadata key '%s'", f->path, f->meta[i].key);
    return LRA_OK;
}

// offsets sorted: contiguous from 0, and the data buffer ends exactly at the end of the file
static int st_check_sorted_layout(const lra_st_file *f, st_entry **sorted, lra_err *err) {
    int64_t expected = 0;
    for (int64_t i = 0; i < f->n_tensors; i++) {
        const st_entry *t = sorted[i], *prev = i ? sorted[i - 1] : NULL;
        if (t->begin < expected)
            return lra_err_set(err, LRA_EIO, "%s: tensors '%s' [%lld, %lld] and '%s' [%lld, %lld] overlap", f->path,
                               prev->pub.name, (long long)prev->begin, (long long)prev->end, t->pub.name,
                               (long long)t->begin, (long long)t->end);
        if (t->begin > expected && !prev)
            return lra_err_set(err, LRA_EIO, "%s: tensor '%s' begins at data offset %lld, expected 0 (offsets must be contiguous)",
                               f->path, t->pub.name, (long long)t->begin);
        if (t->begin > expected)
            return lra_err_set(err, LRA_EIO, "%s: gap between tensors '%s' (ends at %lld) and '%s' (begins at %lld): offsets must be contiguous",
                               f->path, prev->pub.name, (long long)prev->end, t->pub.name, (long long)t->begin);
        expected = t->end;
    }
    int64_t buffer = f->file_size - f->data_start;
    if (expected > buffer)
        return lra_err_set(err, LRA_EIO, "%s: data of tensor '%s' [%lld, %lld] lies outside the file (the data buffer holds %lld bytes)",
                           f->path, sorted[f->n_tensors - 1]->pub.name, (long long)sorted[f->n_tensors - 1]->begin,
                           (long long)expected, (long long)buffer);
    if (expected < buffer)
        return lra_err_set(err, LRA_EIO, "%s: %lld bytes after the end of the tensor data (from byte %lld)", f->path,
                           (long long)(buffer - expected), (long long)(f->data_start + expected));
    return LRA_OK;
}

static int st_check_layout(const lra_st_file *f, lra_err *err) {
    st_entry **sorted = malloc((size_t)(f->n_tensors ? f->n_tensors : 1) * sizeof *sorted);
    if (!sorted) return st_nomem(err, f->path);
    for (int64_t i = 0; i < f->n_tensors; i++) sorted[i] = &f->tensors[i];
    qsort(sorted, (size_t)f->n_tensors, sizeof *sorted, st_entry_cmp_offsets);
    int rc = st_check_sorted_layout(f, sorted, err);
    free(sorted);
    return rc;
}

// ---- open ----------------------------------------------------------------------------

// reads the 8-byte length and checks it against the limit and the file size
static int st_read_header_length(lra_st_file *f, int64_t *header_len, lra_err *err) {
    unsigned char bytes[ST_LEN_BYTES];
    int64_t got;
    int e = st_pread_all(f->fd, bytes, ST_LEN_BYTES, 0, &got);
    if (e) return lra_err_set(err, LRA_EIO, "%s: cannot read: %s", f->path, strerror(e));
    if (got < ST_LEN_BYTES)
        return lra_err_set(err, LRA_EIO, "%s: truncated file: %lld bytes, the 8-byte header length is incomplete",
                           f->path, (long long)got);
    uint64_t n = 0;
    for (int i = ST_LEN_BYTES - 1; i >= 0; i--) n = n << 8 | bytes[i];
    if (n > LRA_ST_MAX_HEADER)
        return lra_err_set(err, LRA_EIO, "%s: header length %llu exceeds the limit of %d bytes", f->path,
                           (unsigned long long)n, LRA_ST_MAX_HEADER);
    if ((int64_t)n > f->file_size - ST_LEN_BYTES)
        return lra_err_set(err, LRA_EIO, "%s: header length %llu larger than the file (%lld bytes after the length)",
                           f->path, (unsigned long long)n, (long long)(f->file_size - ST_LEN_BYTES));
    *header_len = (int64_t)n;
    return LRA_OK;
}

static int st_read_header(lra_st_file *f, lra_err *err) {
    int64_t n = 0, got = 0;
    int rc = st_read_header_length(f, &n, err);
    if (rc) return rc;
    f->data_start = ST_LEN_BYTES + n;
    unsigned char *text = malloc((size_t)(n ? n : 1));
    if (!text) return st_nomem(err, f->path);
    int e = st_pread_all(f->fd, text, n, ST_LEN_BYTES, &got);
    if (e || got < n) {
        free(text);
        return lra_err_set(err, LRA_EIO, "%s: cannot read the %lld-byte header: %s", f->path, (long long)n,
                           e ? strerror(e) : "file shrank");
    }
    st_json j = { .path = f->path, .text = text, .len = n, .pos = 0, .err = err };
    rc = st_parse_header(&j, f);
    free(text);
    if (!rc) rc = st_check_unique(f, err);
    if (!rc) rc = st_check_layout(f, err);
    return rc;
}

static int st_open_fd(lra_st_file *f, lra_err *err) {
    f->fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0) return lra_err_set(err, LRA_EIO, "%s: cannot open: %s", f->path, strerror(errno));
    struct stat st;
    if (fstat(f->fd, &st) != 0) return lra_err_set(err, LRA_EIO, "%s: cannot stat: %s", f->path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return lra_err_set(err, LRA_EIO, "%s: not a regular file", f->path);
    f->file_size = (int64_t)st.st_size;
    return LRA_OK;
}

int lra_st_open(const char *path, lra_st_file **out, lra_err *err) {
    if (!out || !path) return lra_err_set(err, LRA_EINVAL, "lra_st_open: path and out must not be NULL");
    *out = NULL;
    lra_st_file *f = calloc(1, sizeof *f);
    if (f) f->fd = -1;
    if (f) f->path = strdup(path);
    if (!f || !f->path) {
        lra_st_close(f);
        return lra_err_set(err, LRA_ENOMEM, "%s: out of memory", path);
    }
    int rc = st_open_fd(f, err);
    if (!rc) rc = st_read_header(f, err);
    if (rc) {
        lra_st_close(f);
        return rc;
    }
    *out = f;
    return LRA_OK;
}

// ---- queries ---------------------------------------------------------------------------

int64_t lra_st_count(const lra_st_file *file) { return file ? file->n_tensors : 0; }

const lra_st_tensor *lra_st_tensor_at(const lra_st_file *file, int64_t i) {
    return file && i >= 0 && i < file->n_tensors ? &file->tensors[i].pub : NULL;
}

static int st_find_cmp(const void *key, const void *item) {
    return strcmp((const char *)key, ((const st_entry *)item)->pub.name);
}

const lra_st_tensor *lra_st_find(const lra_st_file *file, const char *name) {
    if (!file || !name || !file->n_tensors) return NULL;
    const st_entry *hit = bsearch(name, file->tensors, (size_t)file->n_tensors, sizeof *file->tensors, st_find_cmp);
    return hit ? &hit->pub : NULL;
}

int lra_st_read(const lra_st_file *file, const char *name, void *buf, int64_t cap, lra_err *err) {
    if (!file || !name) return lra_err_set(err, LRA_EINVAL, "lra_st_read: file and name must not be NULL");
    const lra_st_tensor *t = lra_st_find(file, name);
    if (!t) return lra_err_set(err, LRA_EINVAL, "%s: no tensor '%s'", file->path, name);
    if (cap < t->nbytes || (!buf && t->nbytes))
        return lra_err_set(err, LRA_EINVAL, "%s: tensor '%s' has %lld bytes, the buffer only %lld", file->path, name,
                           (long long)t->nbytes, (long long)(buf ? cap : 0));
    int64_t got;
    int e = st_pread_all(file->fd, buf, t->nbytes, t->offset, &got);
    if (e) return lra_err_set(err, LRA_EIO, "%s: cannot read tensor '%s': %s", file->path, name, strerror(e));
    if (got < t->nbytes)
        return lra_err_set(err, LRA_EIO, "%s: truncated: tensor '%s' needs bytes [%lld, %lld) but the file ends at %lld",
                           file->path, name, (long long)t->offset, (long long)(t->offset + t->nbytes),
                           (long long)(t->offset + got));
    return LRA_OK;
}

int64_t lra_st_metadata_count(const lra_st_file *file) { return file ? file->n_meta : 0; }

const char *lra_st_metadata(const lra_st_file *file, const char *key) {
    if (!file || !key || !file->n_meta) return NULL;
    st_meta probe = { .key = (char *)key };
    const st_meta *hit = bsearch(&probe, file->meta, (size_t)file->n_meta, sizeof *file->meta, st_meta_cmp);
    return hit ? hit->value : NULL;
}

int lra_st_metadata_at(const lra_st_file *file, int64_t i, const char **key, const char **value) {
    if (!file || i < 0 || i >= file->n_meta) return LRA_EINVAL;
    if (key) *key = file->meta[i].key;
    if (value) *value = file->meta[i].value;
    return LRA_OK;
}

// ---- writer -------------------------------------------------------------------------

typedef struct {
    char         *name;
    lra_st_dtype  dtype;
    int           ndim;
    int64_t      *shape;   // NULL when ndim == 0
    const void   *data;    // not owned
    int64_t       nbytes;
} st_wtensor;

struct lra_st_writer {
    st_wtensor *tensors;   // insertion order
    int64_t     n_tensors, cap_tensors;
    st_meta    *meta;      // insertion order
    int64_t     n_meta, cap_meta;
};

int lra_st_writer_new(lra_st_writer **out, lra_err *err) {
    if (!out) return lra_err_set(err, LRA_EINVAL, "lra_st_writer_new: out must not be NULL");
    *out = calloc(1, sizeof **out);
    return *out ? LRA_OK : lra_err_set(err, LRA_ENOMEM, "safetensors writer: out of memory");
}

void lra_st_writer_free(lra_st_writer *w) {
    if (!w) return;
    for (int64_t i = 0; i < w->n_tensors; i++) {
        free(w->tensors[i].name);
        free(w->tensors[i].shape);
    }
    for (int64_t i = 0; i < w->n_meta; i++) {
        free(w->meta[i].key);
        free(w->meta[i].value);
    }
    free(w->tensors);
    free(w->meta);
    free(w);
}

// the argument checks of lra_st_writer_add
static int st_check_add(const lra_st_writer *w, const char *name, lra_st_dtype dtype, int ndim, const int64_t *shape,
                        const void *data, int64_t nbytes, lra_err *err) {
    if (!name || !st_utf8_valid(name) || !strcmp(name, "__metadata__"))
        return lra_err_set(err, LRA_EINVAL, "safetensors writer: tensor name '%s' is not valid UTF-8 or is reserved",
                           name ? name : "(null)");
    for (int64_t i = 0; i < w->n_tensors; i++)
        if (!strcmp(w->tensors[i].name, name))
            return lra_err_set(err, LRA_EINVAL, "safetensors writer: duplicate tensor name '%s'", name);
    if (!st_dtype_valid(dtype))
        return lra_err_set(err, LRA_EINVAL, "safetensors writer: tensor '%s': unknown dtype %d", name, (int)dtype);
    if (ndim < 0 || ndim > ST_MAX_DIMS || (ndim > 0 && !shape))
        return lra_err_set(err, LRA_EINVAL, "safetensors writer: tensor '%s': ndim %d (0..%d with a shape)", name,
                           ndim, ST_MAX_DIMS);
    int64_t numel, bytes = -1;
    char text[128];
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0)
            return lra_err_set(err, LRA_EINVAL, "safetensors writer: tensor '%s': negative dimension in shape %s",
                               name, st_format_shape(text, sizeof text, ndim, shape));
    if (!st_shape_bytes(ndim, shape, st_dtypes[dtype].size, &numel, &bytes) || bytes != nbytes || (nbytes && !data))
        return lra_err_set(err, LRA_EINVAL, "safetensors writer: tensor '%s': %lld bytes given, shape %s of %s needs %s",
                           name, (long long)nbytes, st_format_shape(text, sizeof text, ndim, shape),
                           st_dtypes[dtype].name, bytes == nbytes ? "data" : "a different count");
    return LRA_OK;
}

int lra_st_writer_add(lra_st_writer *w, const char *name, lra_st_dtype dtype, int ndim, const int64_t *shape,
                      const void *data, int64_t nbytes, lra_err *err) {
    if (!w) return lra_err_set(err, LRA_EINVAL, "lra_st_writer_add: writer must not be NULL");
    int rc = st_check_add(w, name, dtype, ndim, shape, data, nbytes, err);
    if (rc) return rc;
    if (!st_grow((void **)&w->tensors, &w->cap_tensors, w->n_tensors, sizeof *w->tensors))
        return lra_err_set(err, LRA_ENOMEM, "safetensors writer: out of memory");
    st_wtensor *t = &w->tensors[w->n_tensors];
    t->name = strdup(name);
    t->shape = ndim ? malloc((size_t)ndim * sizeof *t->shape) : NULL;
    if (!t->name || (ndim && !t->shape)) {
        free(t->name);
        free(t->shape);
        return lra_err_set(err, LRA_ENOMEM, "safetensors writer: out of memory");
    }
    if (ndim) memcpy(t->shape, shape, (size_t)ndim * sizeof *t->shape);
    t->dtype = dtype;
    t->ndim = ndim;
    t->data = data;
    t->nbytes = nbytes;
    w->n_tensors++;
    return LRA_OK;
}

int lra_st_writer_metadata(lra_st_writer *w, const char *key, const char *value, lra_err *err) {
    if (!w || !key || !value) return lra_err_set(err, LRA_EINVAL, "lra_st_writer_metadata: NULL argument");
    if (!st_utf8_valid(key) || !st_utf8_valid(value))
        return lra_err_set(err, LRA_EINVAL, "safetensors writer: metadata '%s' is not valid UTF-8", key);
    for (int64_t i = 0; i < w->n_meta; i++)
        if (!strcmp(w->meta[i].key, key))
            return lra_err_set(err, LRA_EINVAL, "safetensors writer: duplicate metadata key '%s'", key);
    if (!st_grow((void **)&w->meta, &w->cap_meta, w->n_meta, sizeof *w->meta))
        return lra_err_set(err, LRA_ENOMEM, "safetensors writer: out of memory");
    st_meta *m = &w->meta[w->n_meta];
    m->key = strdup(key);
    m->value = strdup(value);
    if (!m->key || !m->value) {
        free(m->key);
        free(m->value);
        return lra_err_set(err, LRA_ENOMEM, "safetensors writer: out of memory");
    }
    w->n_meta++;
    return LRA_OK;
}

// ---- header text ----------------------------------------------------------------------

typedef struct {
    char   *data;
    int64_t len, cap;
    bool    oom;
} st_buf;

static void st_buf_put(st_buf *b, const char *s, int64_t n) {
    if (b->oom) return;
    if (b->len + n > b->cap) {
        int64_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        char *grown = realloc(b->data, (size_t)cap);
        if (!grown) {
            b->oom = true;
            return;
        }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, (size_t)n);
    b->len += n;
}

static void st_buf_str(st_buf *b, const char *s) { st_buf_put(b, s, (int64_t)strlen(s)); }

static void st_buf_int(st_buf *b, int64_t v) {
    char text[24];
    st_buf_put(b, text, snprintf(text, sizeof text, "%lld", (long long)v));
}

// s as a JSON string: quotes, backslashes and control characters escaped, UTF-8 kept
static void st_buf_json_string(st_buf *b, const char *s) {
    static const char raw[] = "\"\\\b\f\n\r\t", escaped[] = "\"\\bfnrt";
    st_buf_put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        const char *hit = strchr(raw, *p);
        if (hit) {
            esc[0] = '\\';
            esc[1] = escaped[hit - raw];
            st_buf_put(b, esc, 2);
        } else if (*p < 0x20) {
            st_buf_put(b, esc, snprintf(esc, sizeof esc, "\\u%04x", *p));
        } else {
            st_buf_put(b, (const char *)p, 1);
        }
    }
    st_buf_put(b, "\"", 1);
}

static void st_buf_tensor(st_buf *b, const st_wtensor *t, int64_t begin) {
    st_buf_json_string(b, t->name);
    st_buf_str(b, ":{\"dtype\":");
    st_buf_json_string(b, st_dtypes[t->dtype].name);
    st_buf_str(b, ",\"shape\":[");
    for (int i = 0; i < t->ndim; i++) {
        if (i) st_buf_str(b, ",");
        st_buf_int(b, t->shape[i]);
    }
    st_buf_str(b, "],\"data_offsets\":[");
    st_buf_int(b, begin);
    st_buf_str(b, ",");
    st_buf_int(b, begin + t->nbytes);
    st_buf_str(b, "]}");
}

// bigger dtypes first, then names bytewise
static int st_wtensor_cmp_layout(const void *a, const void *b) {
    const st_wtensor *x = *(const st_wtensor *const *)a, *y = *(const st_wtensor *const *)b;
    int64_t sx = st_dtypes[x->dtype].size, sy = st_dtypes[y->dtype].size;
    if (sx != sy) return sx > sy ? -1 : 1;
    return strcmp(x->name, y->name);
}

static int st_meta_ptr_cmp(const void *a, const void *b) {
    return strcmp((*(const st_meta *const *)a)->key, (*(const st_meta *const *)b)->key);
}

// the header JSON (padded) of the tensors in layout order
static int st_build_header(const lra_st_writer *w, st_wtensor **order, st_buf *b, const char *path, lra_err *err) {
    st_meta **meta = malloc((size_t)(w->n_meta ? w->n_meta : 1) * sizeof *meta);
    if (!meta) return lra_err_set(err, LRA_ENOMEM, "%s: out of memory", path);
    for (int64_t i = 0; i < w->n_meta; i++) meta[i] = &w->meta[i];
    qsort(meta, (size_t)w->n_meta, sizeof *meta, st_meta_ptr_cmp);
    st_buf_str(b, "{");
    if (w->n_meta) st_buf_str(b, "\"__metadata__\":{");
    for (int64_t i = 0; i < w->n_meta; i++) {
        if (i) st_buf_str(b, ",");
        st_buf_json_string(b, meta[i]->key);
        st_buf_str(b, ":");
        st_buf_json_string(b, meta[i]->value);
    }
    if (w->n_meta) st_buf_str(b, w->n_tensors ? "}," : "}");
    free(meta);
    int64_t begin = 0;
    for (int64_t i = 0; i < w->n_tensors; i++) {
        if (i) st_buf_str(b, ",");
        if (order[i]->nbytes > INT64_MAX - begin) return lra_err_set(err, LRA_EINVAL, "%s: tensor data over 2^63 bytes", path);
        st_buf_tensor(b, order[i], begin);
        begin += order[i]->nbytes;
    }
    st_buf_str(b, "}");
    while (!b->oom && b->len % 8) st_buf_str(b, " ");
    if (b->oom) return lra_err_set(err, LRA_ENOMEM, "%s: out of memory building the header", path);
    if (b->len > LRA_ST_MAX_HEADER)
        return lra_err_set(err, LRA_EINVAL, "%s: header of %lld bytes exceeds the limit of %d", path,
                           (long long)b->len, LRA_ST_MAX_HEADER);
    return LRA_OK;
}

// length, header and data into fd; returns 0 or an errno
static int st_write_contents(int fd, const st_buf *header, st_wtensor **order, int64_t n) {
    unsigned char len[ST_LEN_BYTES];
    for (int i = 0; i < ST_LEN_BYTES; i++) len[i] = (unsigned char)((uint64_t)header->len >> (8 * i));
    int e = st_write_all(fd, len, ST_LEN_BYTES);
    if (!e) e = st_write_all(fd, header->data, header->len);
    for (int64_t i = 0; i < n && !e; i++) e = st_write_all(fd, order[i]->data, order[i]->nbytes);
    if (!e && fsync(fd) != 0) e = errno;
    return e;
}

// writes to a temporary file next to path and renames it over path
static int st_write_atomic(const char *path, const st_buf *header, st_wtensor **order, int64_t n, lra_err *err) {
    size_t cap = strlen(path) + 16;
    char *tmp = malloc(cap);
    if (!tmp) return lra_err_set(err, LRA_ENOMEM, "%s: out of memory", path);
    snprintf(tmp, cap, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        int rc = lra_err_set(err, LRA_EIO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
        free(tmp);
        return rc;
    }
    int e = fchmod(fd, 0644) != 0 ? errno : st_write_contents(fd, header, order, n);
    if (close(fd) != 0 && !e) e = errno;
    if (!e && rename(tmp, path) != 0) e = errno;
    if (e) unlink(tmp);
    free(tmp);
    return e ? lra_err_set(err, LRA_EIO, "%s: cannot write: %s", path, strerror(e)) : LRA_OK;
}

int lra_st_writer_write(const lra_st_writer *w, const char *path, lra_err *err) {
    if (!w || !path) return lra_err_set(err, LRA_EINVAL, "lra_st_writer_write: writer and path must not be NULL");
    st_wtensor **order = malloc((size_t)(w->n_tensors ? w->n_tensors : 1) * sizeof *order);
    if (!order) return lra_err_set(err, LRA_ENOMEM, "%s: out of memory", path);
    for (int64_t i = 0; i < w->n_tensors; i++) order[i] = &w->tensors[i];
    qsort(order, (size_t)w->n_tensors, sizeof *order, st_wtensor_cmp_layout);
    st_buf header = { 0 };
    int rc = st_build_header(w, order, &header, path, err);
    if (!rc) rc = st_write_atomic(path, &header, order, w->n_tensors, err);
    free(header.data);
    free(order);
    return rc;
}
