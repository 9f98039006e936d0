// progress.c: see progress.h.
#include "progress.h"

#include <stdio.h>
#include <time.h>
#include <unistd.h>

double lra_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

void lra_progress_init(lra_progress *p, const char *label) {
    p->label = label;
    p->t_start = p->t_last = lra_now();
    p->tty = isatty(fileno(stderr));
    p->last_pct = -1;
}

static void fmt_duration(char *out, size_t cap, double s) {
    if (s < 60) snprintf(out, cap, "%.0fs", s);
    else if (s < 3600) snprintf(out, cap, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else snprintf(out, cap, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
}

void lra_progress_update(void *ctx, int64_t done, int64_t total) {
    lra_progress *p = ctx;
    double now = lra_now(), el = now - p->t_start;
    int pct = total > 0 ? (int)(100 * done / total) : 100;
    double rate = el > 0 ? done / el : 0;
    char eta[32];
    fmt_duration(eta, sizeof eta, rate > 0 ? (total - done) / rate : 0);
    if (p->tty) {
        if (now - p->t_last < 0.1 && done < total) return;
        p->t_last = now;
        int width = 30, fill = total > 0 ? (int)(width * done / total) : width;
        char bar[31];
        for (int i = 0; i < width; i++) bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
        bar[width] = 0;
        fprintf(stderr, "\r%s [%s] %3d%% %lld/%lld %.0f/s ETA %s ", p->label, bar, pct, (long long)done,
                (long long)total, rate, eta);
    } else if (pct / 10 != p->last_pct / 10 || done == total) {
        if (pct == p->last_pct) return;
        p->last_pct = pct;
        fprintf(stderr, "%s: %d%% (%lld/%lld, %.0f/s, ETA %s)\n", p->label, pct, (long long)done, (long long)total,
                rate, eta);
    }
    fflush(stderr);
}

void lra_progress_finish(lra_progress *p, int64_t total) {
    if (p->tty) {
        lra_progress_update(p, total, total);
        fputc('\n', stderr);
    }
}
