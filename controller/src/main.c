/*
 * kinfer-controller: flags, configuration, signals and the order of start and stop.
 * Start: config -> probe/metrics servers -> (leader election) -> informers and workers.
 * SIGTERM/SIGINT: stop taking keys, let in-flight reconciles finish, release the Lease, exit 0.
 * Losing the Lease while leading exits 1 at once, so two replicas never reconcile together.
 * Exit codes: 0 clean stop or --help, 1 runtime/config failure, 2 bad flags.
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime/controller.h"
#include "common/httpd.h"
#include "kube/kube.h"
#include "kube/kubeconfig.h"
#include "kube/leader.h"
#include "common/log.h"
#include "common/metrics.h"

/* The image the chart installs by default: its repository and the chart's appVersion
 * (KINFER_VERSION, from charts/kinfer/Chart.yaml through the Makefile). A fixed tag, not
 * "latest", which the kubelet would pull on every start. */
#define DEFAULT_RUNTIME_IMAGE "kinfer/kinfer-server:" KINFER_VERSION

typedef struct flags {
    const char *kubeconfig, *namespace, *metrics_addr, *health_addr, *runtime_image,
        *lease_namespace, *lease_name;
    const char *prometheus_address;
    const char *default_gateway;
    int default_routing;
    int workers, leader_elect, verbose;
    int64_t lease_ms, renew_ms, retry_ms;
} flags;

static const char usage[] =
    "usage: kinfer-controller [flags]\n"
    "  --kubeconfig PATH        kubeconfig (default: $KUBECONFIG, in-cluster, ~/.kube/config)\n"
    "  --namespace NS           watch one namespace (default: all)\n"
    "  --workers N              concurrent reconciles, 1..64 (default 2)\n"
    "  --metrics-addr ADDR      Prometheus /metrics on host:port, 0 to disable (default :8080)\n"
    "  --health-addr ADDR       /healthz and /readyz on host:port, 0 to disable (default :8081)\n"
    "  --leader-elect           take a Lease before reconciling (for several replicas)\n"
    "  --runtime-image IMAGE    kinfer-server image for predictors (default $KINFER_RUNTIME_IMAGE\n"
    "                           or " DEFAULT_RUNTIME_IMAGE ", the chart's default)\n"
    "  --prometheus-address URL Prometheus for KEDA ScaledObject triggers, e.g.\n"
    "                           http://prometheus.monitoring:9090 (default "
    "$KINFER_PROMETHEUS_ADDRESS)\n"
    "  --default-routing MODE   traffic split for InferenceServices without spec.routing: none\n"
    "                           (replica ratios), gateway (HTTPRoute) or istio (VirtualService);\n"
    "                           default none\n"
    "  --default-gateway NS/NAME  Gateway for HTTPRoutes without spec.routing.gateway.parentRefs\n"
    "  --lease-duration D       (default 15s)   --renew-deadline D (10s)   --retry-period D (2s)\n"
    "  --lease-namespace NS     (default: the pod's or kubeconfig context's namespace, else "
    "default)\n"
    "  --lease-name NAME        (default kinfer-controller-leader)\n"
    "  -v, --verbose            debug logs\n"
    "Durations: 15s, 1500ms, 2m or plain seconds.\n";

static int bad_flag(const char *flag, const char *why, const char *got)
{
    fprintf(stderr, "kinfer-controller: %s: %s (got \"%s\")\n%s", flag, why, got ? got : "", usage);
    return 2;
}

/* "15s", "1500ms", "2m", "15" -> ms; -1 when malformed or out of range. */
static int64_t parse_duration(const char *s)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || v < 0 || v > 86400000LL) return -1;
    if (!*end || !strcmp(end, "s")) return v * 1000;
    if (!strcmp(end, "ms")) return v;
    if (!strcmp(end, "m")) return v * 60000;
    return -1;
}

enum {
    F_KUBECONFIG = 256,
    F_NS,
    F_WORKERS,
    F_METRICS,
    F_HEALTH,
    F_LE,
    F_IMAGE,
    F_LD,
    F_RD,
    F_RP,
    F_LNS,
    F_LNAME,
    F_PROM,
    F_ROUTING,
    F_GATEWAY
};

/* One flag with a value (getopt's code c, its argument arg) into f; 2 (after the usage) when bad.
 */
static int flag_set(int c, const char *arg, flags *f)
{
    int64_t d;
    char *end;
    switch (c) {
    case F_KUBECONFIG:
        f->kubeconfig = arg;
        break;
    case F_NS:
        f->namespace = arg;
        break;
    case F_WORKERS: {
        long w = strtol(arg, &end, 10);
        if (!*arg || *end || w < 1 || w > 64)
            return bad_flag("--workers", "want an integer from 1 to 64", arg);
        f->workers = (int)w;
        break;
    }
    case F_METRICS:
        f->metrics_addr = arg;
        break;
    case F_HEALTH:
        f->health_addr = arg;
        break;
    case F_LE:
        if (!arg || !strcmp(arg, "true"))
            f->leader_elect = 1;
        else if (!strcmp(arg, "false"))
            f->leader_elect = 0;
        else
            return bad_flag("--leader-elect", "want true or false", arg);
        break;
    case F_IMAGE:
        if (!*arg) return bad_flag("--runtime-image", "must not be empty", arg);
        f->runtime_image = arg;
        break;
    case F_LD:
    case F_RD:
    case F_RP:
        if ((d = parse_duration(arg)) <= 0)
            return bad_flag(c == F_LD   ? "--lease-duration"
                            : c == F_RD ? "--renew-deadline"
                                        : "--retry-period",
                            "want a positive duration like 15s or 500ms", arg);
        *(c == F_LD ? &f->lease_ms : c == F_RD ? &f->renew_ms : &f->retry_ms) = d;
        break;
    case F_PROM:
        if (strncmp(arg, "http://", 7) && strncmp(arg, "https://", 8))
            return bad_flag("--prometheus-address", "want an http:// or https:// URL", arg);
        f->prometheus_address = arg;
        break;
    case F_ROUTING:
        if ((f->default_routing = routing_mode_parse(arg)) < 0)
            return bad_flag("--default-routing", "want none, gateway or istio", arg);
        break;
    case F_GATEWAY:
        if (!strchr(arg, '/') || arg[0] == '/' || !arg[strcspn(arg, "/") + 1])
            return bad_flag("--default-gateway", "want NAMESPACE/NAME", arg);
        f->default_gateway = arg;
        break;
    case F_LNS:
        f->lease_namespace = arg;
        break;
    case F_LNAME:
        f->lease_name = arg;
        break;
    }
    return 0;
}

/* client-go's ordering, and what needs two flags; checked before anything starts so the
 * message names the flags. */
static int flags_check(const flags *f)
{
    if (f->default_routing == ROUTING_GATEWAY && !f->default_gateway)
        return bad_flag("--default-routing", "gateway needs --default-gateway NAMESPACE/NAME",
                        "gateway");
    char got[64];
    snprintf(got, sizeof(got), "%lldms vs %lldms", (long long)f->renew_ms, (long long)f->lease_ms);
    if (f->renew_ms >= f->lease_ms)
        return bad_flag("--renew-deadline", "must be shorter than --lease-duration", got);
    snprintf(got, sizeof(got), "%lldms vs %lldms", (long long)f->retry_ms, (long long)f->renew_ms);
    if (f->retry_ms >= f->renew_ms)
        return bad_flag("--retry-period", "must be shorter than --renew-deadline", got);
    return 0;
}

/* 0: run with f; -1: --help was printed; 2: bad flags (the usage was printed). */
static int parse_flags(int argc, char **argv, flags *f)
{
    static const struct option opts[] = {{"kubeconfig", required_argument, 0, F_KUBECONFIG},
                                         {"namespace", required_argument, 0, F_NS},
                                         {"workers", required_argument, 0, F_WORKERS},
                                         {"metrics-addr", required_argument, 0, F_METRICS},
                                         {"health-addr", required_argument, 0, F_HEALTH},
                                         {"leader-elect", optional_argument, 0, F_LE},
                                         {"runtime-image", required_argument, 0, F_IMAGE},
                                         {"lease-duration", required_argument, 0, F_LD},
                                         {"renew-deadline", required_argument, 0, F_RD},
                                         {"retry-period", required_argument, 0, F_RP},
                                         {"lease-namespace", required_argument, 0, F_LNS},
                                         {"lease-name", required_argument, 0, F_LNAME},
                                         {"prometheus-address", required_argument, 0, F_PROM},
                                         {"default-routing", required_argument, 0, F_ROUTING},
                                         {"default-gateway", required_argument, 0, F_GATEWAY},
                                         {"verbose", no_argument, 0, 'v'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *img = getenv("KINFER_RUNTIME_IMAGE"), *prom = getenv("KINFER_PROMETHEUS_ADDRESS");
    *f = (flags){.namespace = "",
                 .metrics_addr = ":8080",
                 .health_addr = ":8081",
                 .runtime_image = img && *img ? img : DEFAULT_RUNTIME_IMAGE,
                 .lease_name = "kinfer-controller-leader",
                 .prometheus_address = prom && *prom ? prom : NULL,
                 .workers = 2,
                 .lease_ms = 15000,
                 .renew_ms = 10000,
                 .retry_ms = 2000};
    opterr = 0;
    int c, rc;
    while ((c = getopt_long(argc, argv, ":vh", opts, NULL)) != -1) {
        switch (c) {
        case 'v':
            f->verbose = 1;
            break;
        case 'h':
            fputs(usage, stdout);
            return -1;
        case ':':
            return bad_flag(argv[optind - 1], "needs a value", "");
        case '?':
            return bad_flag(argv[optind - 1], "unknown flag", argv[optind - 1]);
        default:
            if ((rc = flag_set(c, optarg, f))) return rc;
        }
    }
    if (optind < argc) return bad_flag("arguments", "unexpected positional argument", argv[optind]);
    return flags_check(f);
}

/* ---- probes and metrics ---- */

static controller *g_ctl;
static atomic_int g_waiting_for_lease;

static int serve(void *ud, const char *path, httpd_response *resp)
{
    int metrics = ud != NULL;
    if (metrics && !strcmp(path, "/metrics")) {
        ctl_status *st = metrics_render(&resp->body, &resp->len);
        if (st) {
            resp->status = 500;
            resp->body = strdup(ctl_status_msg(st));
            resp->len = resp->body ? strlen(resp->body) : 0;
            ctl_status_free(st);
        }
        resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
        return 0;
    }
    if (!strcmp(path, "/healthz")) {
        resp->body = strdup("ok\n");
    } else if (!strcmp(path, "/readyz")) {
        /* A standby replica is ready (it may take over); a leader is ready once its caches synced.
         */
        int ready = atomic_load(&g_waiting_for_lease) || (g_ctl && controller_synced(g_ctl));
        resp->status = ready ? 200 : 503;
        resp->body = strdup(ready ? "ok\n" : "caches not synced\n");
    } else {
        return -1;
    }
    resp->len = resp->body ? strlen(resp->body) : 0;
    return 0;
}

/* ---- signals ---- */

static pthread_mutex_t stop_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stop_cv = PTHREAD_COND_INITIALIZER;
static atomic_int g_stop;
static leader *g_leader;

static void *signal_thread(void *arg)
{
    sigset_t *set = arg;
    int sig = 0;
    sigwait(set, &sig);
    log_info("signal received; shutting down", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    pthread_mutex_lock(&stop_mu);
    atomic_store(&g_stop, 1);
    pthread_cond_broadcast(&stop_cv);
    pthread_mutex_unlock(&stop_mu);
    if (g_leader && atomic_load(&g_waiting_for_lease))
        leader_cancel(g_leader); /* interrupt acquire */
    return NULL;
}

static void on_lease_lost(void *ud)
{
    (void)ud;
    log_error("leader: lease lost; exiting so that no two replicas reconcile at once");
    _exit(1);
}

/* Debian's libcurl links librtmp, which links gnutls; gnutls is never used here (curl speaks
 * OpenSSL), but its constructor initialises it at load time anyway: about 0.7 MiB of resident
 * pages, a tenth of the controller's peak. It skips that when GNUTLS_NO_IMPLICIT_INIT=1 is in
 * the environment when it loads, so the controller sets it and execs itself once, before
 * anything else runs. A variable already set, by us or by whoever started us, means no exec;
 * if the exec fails the controller runs on as it is. */
static void reexec_without_gnutls_init(char **argv)
{
    if (getenv("GNUTLS_NO_IMPLICIT_INIT") || setenv("GNUTLS_NO_IMPLICIT_INIT", "1", 1)) return;
    execv("/proc/self/exe", argv);
}

/* json-c allocates many small objects from every thread; per-thread malloc arenas would each
 * keep their own fragmented heap. The work is I/O-bound, so one arena costs no throughput.
 * Fixed thresholds: by default glibc raises the mmap threshold to the largest block freed so
 * far (up to 32 MiB), after which list pages and response buffers come from the heap, where
 * one surviving small block next to them keeps their pages resident. */
static void tune_malloc(void)
{
    mallopt(M_ARENA_MAX, 1);
    mallopt(M_MMAP_THRESHOLD, 64 * 1024);
    mallopt(M_TRIM_THRESHOLD, 256 * 1024);
}

/* The /metrics and probe servers (one server when both flags name the same address). */
static ctl_status *start_servers(const flags *f, httpd **hm, httpd **hh)
{
    ctl_status *st = NULL;
    int same = f->metrics_addr && f->health_addr && !strcmp(f->metrics_addr, f->health_addr);
    if (strcmp(f->metrics_addr, "0") && (st = httpd_start(f->metrics_addr, serve, (void *)1, hm)))
        return ctl_status_wrap(st, "--metrics-addr");
    if (!same && strcmp(f->health_addr, "0") && (st = httpd_start(f->health_addr, serve, NULL, hh)))
        return ctl_status_wrap(st, "--health-addr");
    return NULL;
}

/* Takes the Lease (--leader-elect), then keeps renewing it unless a signal came meanwhile. When
 * it returns NULL without leading, *rc says why: 2 for a bad lease configuration, 0 for a signal
 * while waiting (a clean exit); it is left alone otherwise. */
static ctl_status *lead(const flags *f, const kube_config *cfg, kube_client **lease_client,
                        leader **le, int *rc)
{
    ctl_status *st = NULL;
    char identity[300], host[256] = "";
    gethostname(host, sizeof(host) - 1);
    snprintf(identity, sizeof(identity), "%s_%d", *host ? host : "kinfer-controller",
             (int)getpid());
    const char *lns = f->lease_namespace ? f->lease_namespace
                      : cfg->namespace   ? cfg->namespace
                                         : "default";
    leader_config lc = {.namespace = lns,
                        .name = f->lease_name,
                        .identity = identity,
                        .lease_duration_ms = f->lease_ms,
                        .renew_deadline_ms = f->renew_ms,
                        .retry_period_ms = f->retry_ms};
    if ((st = leader_config_check(&lc))) {
        fprintf(stderr, "kinfer-controller: leader election: %s\n", ctl_status_msg(st));
        ctl_status_free(st);
        *rc = 2;
        return NULL;
    }
    /* Its own client so a renew can never wait longer than half the renew deadline. */
    if ((st = kube_client_create(cfg, lease_client))) return st;
    kube_client_set_timeout_ms(*lease_client, (long)(f->renew_ms / 2));
    if ((st = leader_create(*lease_client, &lc, le)))
        return st; /* leader_create copies lc's strings */
    g_leader = *le;
    atomic_store(&g_waiting_for_lease, 1);
    st = leader_acquire(*le);
    atomic_store(&g_waiting_for_lease, 0);
    if (st && ctl_status_code(st) == CTL_ECANCELED) {
        ctl_status_free(st);
        *rc = 0;
        return NULL;
    }
    if (st || atomic_load(&g_stop)) return st;
    return leader_start_renewing(*le, on_lease_lost, NULL);
}

/* Until SIGTERM/SIGINT. */
static void wait_for_stop(void)
{
    pthread_mutex_lock(&stop_mu);
    while (!atomic_load(&g_stop)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 10;
        pthread_cond_timedwait(&stop_cv, &stop_mu, &ts);
        /* Parse trees come and go in bursts; give their freed pages back so the resident set
         * tracks the cache, not the last burst. */
        malloc_trim(0);
    }
    pthread_mutex_unlock(&stop_mu);
}

/* What main() starts, in the order it is freed. */
typedef struct app {
    kube_config *cfg;
    kube_client *client, *lease_client;
    httpd *hm, *hh;
    controller *ctl;
    leader *le;
} app;

static void app_close(app *a)
{
    g_ctl = NULL;
    httpd_stop(a->hm);
    httpd_stop(a->hh);
    controller_free(a->ctl);
    g_leader = NULL;
    leader_free(a->le);
    kube_client_free(a->client);
    kube_client_free(a->lease_client);
    kubeconfig_free(a->cfg);
}

/* SIGTERM/SIGINT go to signal_thread only: every thread inherits this mask. */
static void block_signals(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    pthread_sigmask(SIG_BLOCK, set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int main(int argc, char **argv)
{
    reexec_without_gnutls_init(argv);
    flags f;
    int rc = parse_flags(argc, argv, &f);
    if (rc) return rc < 0 ? 0 : rc;
    if (f.verbose) log_set_level(LOG_LVL_DEBUG);
    tune_malloc();
    ctl_status *st = NULL;
    app a = {0};
    rc = 1;
    sigset_t set;
    block_signals(&set);
    if ((st = kubeconfig_load_default(f.kubeconfig, &a.cfg))) goto out;
    if ((st = kube_client_create(a.cfg, &a.client))) goto out;
    log_info("configured", "server", a.cfg->server, "origin", a.cfg->origin, "namespace",
             *f.namespace ? f.namespace : "(all)");
    if ((st = start_servers(&f, &a.hm, &a.hh))) goto out;
    pthread_t sig_thread;
    pthread_create(&sig_thread, NULL, signal_thread, &set);
    pthread_detach(sig_thread);
    controller_config cc = {
        .namespace = f.namespace,
        .workers = f.workers,
        .reconcile = {.runtime_image = f.runtime_image, .prometheus_address = f.prometheus_address},
        .default_routing = (routing_mode)f.default_routing,
        .default_gateway = f.default_gateway};
    if ((st = controller_create(a.client, &cc, &a.ctl))) goto out;
    if (f.leader_elect) {
        int lrc = 1;
        if ((st = lead(&f, a.cfg, &a.lease_client, &a.le, &lrc))) goto out;
        if (!a.le || lrc != 1) { /* a bad lease configuration (2), or a signal while waiting (0) */
            rc = lrc;
            goto out;
        }
    }
    if (!(a.le && atomic_load(&g_stop))) { /* a signal while taking the Lease: stop at once */
        g_ctl = a.ctl;
        if ((st = controller_start(a.ctl))) goto out;
        wait_for_stop();
    }
    controller_stop(a.ctl); /* in-flight reconciles finish before the Lease goes */
    if (a.le) {
        ctl_status *rs = leader_release(a.le);
        if (rs) log_warn("lease not released", "error", ctl_status_msg(rs));
        ctl_status_free(rs);
    }
    rc = 0;
    log_info("stopped");
out:
    if (st) {
        fprintf(stderr, "kinfer-controller: %s\n", ctl_status_msg(st));
        log_error("fatal", "error", ctl_status_msg(st));
        ctl_status_free(st);
        rc = 1;
    }
    app_close(&a);
    return rc;
}
