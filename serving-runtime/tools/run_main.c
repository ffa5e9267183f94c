/*
 * kinfer-run: runs one ONNX model through kinfer's engine on inputs read from .npy files and
 * writes every output as .npy, so that black-box tests (test/models) and the engine benchmark
 * can compare kinfer with onnxruntime without Python bindings.
 *
 *   kinfer-run [--threads N] [--out DIR] [--bench N] [--warmup N] MODEL NAME=FILE.npy...
 *
 * Outputs go to DIR/<output name>.npy; a sequence-of-maps output (ZipMap) is written as its
 * [N, K] values plus DIR/<name>.keys.npy. --bench N times N further runs and prints one line:
 *   bench: runs=N mean_ms=... p50_ms=... min_ms=... load_ms=... peak_rss_kb=... cpu_ms=...
 *          load_peak_rss_kb=... loaded_rss_kb=...
 * cpu_ms is the process's CPU time (all threads) per timed run: unlike wall time it barely moves
 * when other work shares the machine's cores, so it is the figure to compare engines with there.
 * peak_rss_kb is VmHWM, this process image's own peak: ru_maxrss would also count the pages of
 * whatever process forked this one (Linux carries the parent's high-water mark across exec).
 * load_peak_rss_kb is VmHWM right after the load (inputs already read), loaded_rss_kb VmRSS then.
 * Not part of kinfer-server; it exists for tests and benchmarks only.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "../src/engine/onnx_model.h"
#include "npy.h"

#define RUN_MAX_INPUTS 64
#define RUN_MAX_BENCH  1000000

typedef struct run_args {
    int threads, bench, warmup;
    const char *out, *model;
    int n_in;
    char *names[RUN_MAX_INPUTS];
    const char *files[RUN_MAX_INPUTS];
} run_args;

static double run_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* A "Vm...: N kB" line of /proc/self/status (VmHWM, VmRSS); -1 when absent. */
static long run_status_kb(const char *field)
{
    char line[256];
    long kb = -1;
    size_t n = strlen(field);
    FILE *fp = fopen("/proc/self/status", "r");
    while (fp && fgets(line, sizeof(line), fp))
        if (!strncmp(line, field, n) && line[n] == ':' && sscanf(line + n + 1, "%ld", &kb) == 1)
            break;
    if (fp) fclose(fp);
    return kb;
}

/* VmHWM; ru_maxrss where /proc is unavailable. */
static long run_peak_rss_kb(void)
{
    long kb = run_status_kb("VmHWM");
    if (kb < 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        kb = ru.ru_maxrss;
    }
    return kb;
}

static int run_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int run_parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

static int run_parse_args(int argc, char **argv, run_args *a)
{
    memset(a, 0, sizeof(*a));
    a->threads = 1;
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
        const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = -1;
        if (!val) break;
        if (!strcmp(opt, "--threads"))
            rc = run_parse_int(val, 0, 1024, &a->threads);
        else if (!strcmp(opt, "--bench"))
            rc = run_parse_int(val, 0, RUN_MAX_BENCH, &a->bench);
        else if (!strcmp(opt, "--warmup"))
            rc = run_parse_int(val, 0, RUN_MAX_BENCH, &a->warmup);
        else if (!strcmp(opt, "--out"))
            a->out = val, rc = 0;
        if (rc) {
            fprintf(stderr, "kinfer-run: bad option %s %s\n", opt, val);
            return -1;
        }
        i++;
    }
    if (i >= argc) {
        fprintf(stderr, "usage: kinfer-run [--threads N] [--out DIR] [--bench N] [--warmup N] "
                        "MODEL NAME=FILE.npy...\n");
        return -1;
    }
    a->model = argv[i++];
    for (; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq || eq == argv[i] || a->n_in == RUN_MAX_INPUTS) {
            fprintf(stderr, "kinfer-run: expected NAME=FILE.npy, got '%s'\n", argv[i]);
            return -1;
        }
        *eq = '\0';
        a->names[a->n_in] = argv[i];
        a->files[a->n_in++] = eq + 1;
    }
    return 0;
}

/* DIR/<name><suffix>.npy with characters outside [A-Za-z0-9._-] replaced by '_'. */
static void run_out_path(char *buf, size_t cap, const char *dir, const char *name,
                         const char *suffix)
{
    int n = snprintf(buf, cap, "%s/", dir);
    for (const char *p = name; *p && (size_t)n + 1 < cap; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '-';
        buf[n++] = ok ? c : '_';
    }
    buf[n] = '\0';
    snprintf(buf + n, cap - (size_t)n, "%s.npy", suffix);
}

static kinfer_status *run_write_outputs(const char *dir, onnx_tensor *outs, size_t n)
{
    char path[4096];
    kinfer_status *st = NULL;
    for (size_t i = 0; i < n && !st; i++) {
        run_out_path(path, sizeof(path), dir, outs[i].name, "");
        st = npy_write(path, &outs[i]);
        if (!st && outs[i].kind == ONNX_VALUE_SEQ_MAP && outs[i].keys) {
            run_out_path(path, sizeof(path), dir, outs[i].name, ".keys");
            st = npy_write(path, outs[i].keys);
        }
    }
    return st;
}

static void run_release(onnx_tensor *outs, size_t n)
{
    for (size_t i = 0; i < n; i++) onnx_tensor_release(&outs[i]);
}

int main(int argc, char **argv)
{
    run_args a;
    onnx_model *m = NULL;
    onnx_tensor ins[RUN_MAX_INPUTS];
    onnx_tensor *outs = NULL;
    double *times = NULL;
    size_t n_out = 0;
    kinfer_status *st = NULL;
    int rc = 2;
    memset(ins, 0, sizeof(ins));
    if (run_parse_args(argc, argv, &a)) return 2;
    rc = 1;
    for (int i = 0; i < a.n_in; i++) {
        if ((st = npy_read(a.files[i], &ins[i]))) goto out;
        ins[i].name = a.names[i];
    }
    onnx_options opts = {.threads = a.threads};
    double t0 = run_now_ms();
    if ((st = onnx_model_load_file(a.model, &opts, &m))) goto out;
    double load_ms = run_now_ms() - t0;
    long load_peak_kb = run_peak_rss_kb(), loaded_rss_kb = run_status_kb("VmRSS");
    n_out = onnx_model_num_outputs(m);
    outs = calloc(n_out ? n_out : 1, sizeof(*outs));
    times = calloc(a.bench ? (size_t)a.bench : 1, sizeof(*times));
    if (!outs || !times) {
        st = kinfer_status_new(KINFER_ENOMEM, "output array");
        goto out;
    }
    if ((st = onnx_model_run(m, ins, (size_t)a.n_in, NULL, outs, n_out))) goto out;
    if (a.out && (st = run_write_outputs(a.out, outs, n_out))) goto out;
    run_release(outs, n_out);
    if (a.bench) {
        for (int i = 0; i < a.warmup; i++) {
            if ((st = onnx_model_run(m, ins, (size_t)a.n_in, NULL, outs, n_out))) goto out;
            run_release(outs, n_out);
        }
        struct timespec c0, c1;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
        for (int i = 0; i < a.bench; i++) {
            double s = run_now_ms();
            if ((st = onnx_model_run(m, ins, (size_t)a.n_in, NULL, outs, n_out))) goto out;
            times[i] = run_now_ms() - s;
            run_release(outs, n_out);
        }
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
        double cpu_ms =
            ((double)(c1.tv_sec - c0.tv_sec) * 1e3 + (double)(c1.tv_nsec - c0.tv_nsec) / 1e6) /
            a.bench;
        double sum = 0;
        for (int i = 0; i < a.bench; i++) sum += times[i];
        qsort(times, (size_t)a.bench, sizeof(double), run_cmp_double);
        printf("bench: runs=%d mean_ms=%.4f p50_ms=%.4f min_ms=%.4f load_ms=%.1f peak_rss_kb=%ld "
               "cpu_ms=%.4f"
               " load_peak_rss_kb=%ld loaded_rss_kb=%ld\n",
               a.bench, sum / a.bench, times[a.bench / 2], times[0], load_ms, run_peak_rss_kb(),
               cpu_ms, load_peak_kb, loaded_rss_kb);
    }
    rc = 0;
out:
    if (st)
        fprintf(stderr, "kinfer-run: %s: %s\n", kinfer_strerror(kinfer_status_code(st)),
                kinfer_status_msg(st));
    kinfer_status_free(st);
    if (outs) run_release(outs, n_out);
    free(outs);
    free(times);
    onnx_model_free(m);
    for (int i = 0; i < a.n_in; i++) free(ins[i].data);
    return rc;
}
