// yamltree.c: libyaml's document API turned into an lra_ynode tree with
// positions. Aliases are resolved by libyaml (an alias node is the anchored
// node); a recursive alias is refused by the depth limit.
#include "yamltree.h"

#include <errno.h>
#include <string.h>
#include <yaml.h>

#define YTREE_MAX_DEPTH 64

const char *lra_ytree_kind_name(lra_ykind k) {
    return k == LRA_Y_SCALAR ? "a scalar" : k == LRA_Y_SEQ ? "a list" : "a mapping";
}

void lra_ytree_free(lra_ynode *n) {
    if (!n) return;
    for (int i = 0; i < n->n; i++) {
        lra_ytree_free(n->items[i]);
        if (n->keys) free(n->keys[i]);
    }
    free(n->items);
    free(n->keys);
    free(n->key_where);
    free(n->value);
    free(n);
}

lra_ynode *lra_ytree_get(const lra_ynode *map, const char *key) {
    if (!map || map->kind != LRA_Y_MAP) return NULL;
    for (int i = 0; i < map->n; i++)
        if (!strcmp(map->keys[i], key)) return map->items[i];
    return NULL;
}

static void set_where(char out[300], const char *name, yaml_mark_t m) {
    snprintf(out, 300, "%s:%zu:%zu", name, m.line + 1, m.column + 1);
}

static lra_ynode *convert(yaml_document_t *doc, yaml_node_t *yn, const char *name, int depth, lra_err *err) {
    if (depth > YTREE_MAX_DEPTH) {
        char w[300];
        set_where(w, name, yn->start_mark);
        lra_err_set(err, LRA_EINVAL, "%s: nesting deeper than %d (a recursive alias?)", w, YTREE_MAX_DEPTH);
        return NULL;
    }
    lra_ynode *n = calloc(1, sizeof *n);
    if (!n) {
        lra_err_set(err, LRA_ENOMEM, "%s: out of memory", name);
        return NULL;
    }
    set_where(n->where, name, yn->start_mark);
    if (yn->type == YAML_SCALAR_NODE) {
        n->kind = LRA_Y_SCALAR;
        n->value = strndup((const char *)yn->data.scalar.value, yn->data.scalar.length);
        n->quoted = yn->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                    yn->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
        if (!n->value) goto oom;
        if (strlen(n->value) != yn->data.scalar.length) {
            lra_err_set(err, LRA_EINVAL, "%s: NUL byte in a value", n->where);
            goto fail;
        }
        return n;
    }
    if (yn->type == YAML_SEQUENCE_NODE) {
        n->kind = LRA_Y_SEQ;
        int count = (int)(yn->data.sequence.items.top - yn->data.sequence.items.start);
        n->items = calloc((size_t)(count ? count : 1), sizeof *n->items);
        if (!n->items) goto oom;
        for (int i = 0; i < count; i++) {
            yaml_node_t *c = yaml_document_get_node(doc, yn->data.sequence.items.start[i]);
            if (!(n->items[i] = convert(doc, c, name, depth + 1, err))) goto fail;
            n->n = i + 1;
        }
        return n;
    }
    n->kind = LRA_Y_MAP;
    int count = (int)(yn->data.mapping.pairs.top - yn->data.mapping.pairs.start);
    n->items = calloc((size_t)(count ? count : 1), sizeof *n->items);
    n->keys = calloc((size_t)(count ? count : 1), sizeof *n->keys);
    n->key_where = calloc((size_t)(count ? count : 1), sizeof *n->key_where);
    if (!n->items || !n->keys || !n->key_where) goto oom;
    for (int i = 0; i < count; i++) {
        yaml_node_pair_t *p = &yn->data.mapping.pairs.start[i];
        yaml_node_t *k = yaml_document_get_node(doc, p->key), *v = yaml_document_get_node(doc, p->value);
        char kw[300];
        set_where(kw, name, k->start_mark);
        if (k->type != YAML_SCALAR_NODE) {
            lra_err_set(err, LRA_EINVAL, "%s: a key must be a plain name, not %s", kw,
                        k->type == YAML_SEQUENCE_NODE ? "a list" : "a mapping");
            goto fail;
        }
        const char *key = (const char *)k->data.scalar.value;
        for (int j = 0; j < i; j++)
            if (!strcmp(n->keys[j], key)) {
                lra_err_set(err, LRA_EINVAL, "%s: %s: duplicate key (first at %s)", kw, key, n->key_where[j]);
                goto fail;
            }
        if (!(n->keys[i] = strdup(key))) goto oom;
        memcpy(n->key_where[i], kw, sizeof kw);
        n->n = i + 1;
        if (!(n->items[i] = convert(doc, v, name, depth + 1, err))) goto fail;
    }
    return n;
oom:
    lra_err_set(err, LRA_ENOMEM, "%s: out of memory", name);
fail:
    lra_ytree_free(n);
    return NULL;
}

int lra_ytree_parse(const char *text, size_t len, const char *name, lra_ynode **root, lra_err *err) {
    *root = NULL;
    yaml_parser_t p;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&p)) return lra_err_set(err, LRA_ENOMEM, "%s: out of memory", name);
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    if (!yaml_parser_load(&p, &doc)) {
        yaml_mark_t m = p.problem_offset || p.problem_mark.line || p.problem_mark.column ? p.problem_mark : p.context_mark;
        lra_err_set(err, LRA_EINVAL, "%s:%zu:%zu: YAML syntax error: %s%s%s", name, m.line + 1, m.column + 1,
                    p.problem ? p.problem : "malformed", p.context ? " " : "", p.context ? p.context : "");
        yaml_parser_delete(&p);
        return err->code;
    }
    yaml_node_t *top = yaml_document_get_root_node(&doc);
    if (!top) lra_err_set(err, LRA_EINVAL, "%s:1:1: the file is empty (expected a mapping of settings)", name);
    else if (top->type != YAML_MAPPING_NODE) {
        char w[300];
        set_where(w, name, top->start_mark);
        lra_err_set(err, LRA_EINVAL, "%s: the top level must be a mapping of settings, not %s", w,
                    top->type == YAML_SEQUENCE_NODE ? "a list" : "a scalar");
    } else
        *root = convert(&doc, top, name, 0, err);
    yaml_document_delete(&doc);
    yaml_parser_delete(&p);
    return *root ? LRA_OK : err->code;
}

int lra_ytree_load(const char *path, lra_ynode **root, lra_err *err) {
    *root = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return lra_err_set(err, LRA_EIO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 > cap) {
            char *nb = realloc(buf, cap = 2 * cap + 8192);
            if (!nb) {
                free(buf);
                fclose(f);
                return lra_err_set(err, LRA_ENOMEM, "%s: out of memory", path);
            }
            buf = nb;
        }
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (r == 0) break;
        if (len > (64u << 20)) {
            free(buf);
            fclose(f);
            return lra_err_set(err, LRA_EINVAL, "%s: larger than 64 MiB: not a config file", path);
        }
    }
    int bad = ferror(f);
    fclose(f);
    int rc = bad ? lra_err_set(err, LRA_EIO, "%s: read error", path) : lra_ytree_parse(buf, len, path, root, err);
    free(buf);
    return rc;
}
