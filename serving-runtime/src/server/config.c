/* Flags > KINFER_* environment > YAML file > defaults; see config.h. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

extern char **environ;

enum opt_type { OPT_STR, OPT_INT, OPT_I64, OPT_LIST };

typedef struct opt {
    const char *flag; /* also the file key; the variable is KINFER_ + upper snake case */
    enum opt_type type;
    size_t off;
    int64_t lo, hi;
    const char *help;
} opt;

#define F(x) offsetof(server_config, x)
static const opt opts[] = {
    {"model-dir", OPT_STR, F(model_dir), 0, 0,
     "directory holding the .onnx model (default /tmp/kinfer-model with --model-uri)"},
    {"model-uri", OPT_STR, F(model_uri), 0, 0,
     "fetch the model from this URI into --model-dir first"},
    {"model-sha256", OPT_STR, F(model_sha256), 0, 0,
     "expected SHA-256 of a single-file model fetched by --model-uri"},
    {"model-name", OPT_STR, F(model_name), 0, 0,
     "name served under /v2/models/NAME (default: model)"},
    {"model-version", OPT_STR, F(model_version), 0, 0,
     "version reported and accepted (default: 1)"},
    {"revision", OPT_STR, F(revision), 0, 0,
     "named in every response's Kinfer-Revision header, so a client can count which revision "
     "answered (the controller passes the pod's serving.kinfer.dev/revision label)"},
    {"host", OPT_STR, F(host), 0, 0, "address to listen on (default 0.0.0.0)"},
    {"port", OPT_INT, F(port), 1, 65535, "HTTP port (default 8080)"},
    {"max-batch-size", OPT_INT, F(max_batch_size), 0, 1 << 20,
     "rows per batch; 0 or 1 turns batching off (default 32)"},
    {"max-queue-delay-us", OPT_I64, F(max_queue_delay_us), 0, 60000000,
     "longest wait for a fuller batch (default 0)"},
    {"preferred-batch-sizes", OPT_LIST, F(preferred), 1, 1 << 20,
     "comma-separated batch sizes to send at once"},
    {"max-queue-size", OPT_INT, F(max_queue_size), 0, 1 << 24,
     "queued requests before 429; 0 unbounded (default 1024)"},
    {"instances", OPT_INT, F(instances), 1, 256,
     "engine instances (threads pulling batches) (default 1)"},
    {"threads", OPT_INT, F(threads), 0, 1024,
     "intra-op threads per instance; 0: CPU limit / instances (default 0)"},
    {"inline-max-us", OPT_I64, F(inline_max_us), 0, 1000000,
     "run a request on the HTTP thread when the model's recent compute per row is under this "
     "and no batch waits; 0: always hand off to an instance (default 20)"},
    {"max-body-bytes", OPT_I64, F(max_body_bytes), 1024, (int64_t)1 << 34,
     "largest request body (default 67108864)"},
    {"request-timeout-ms", OPT_I64, F(request_timeout_ms), 0, 86400000,
     "default request deadline; 0 none (default 60000)"},
    {"device", OPT_STR, F(device), 0, 0,
     "cpu or cuda: where the engine runs (default cpu; cuda needs a CUDA build)"},
    {"grace-period-s", OPT_INT, F(grace_period_s), 0, 3600,
     "on SIGTERM, longest wait for in-flight work (default 30)"},
};
#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

static void set_defaults(server_config *c)
{
    memset(c, 0, sizeof(*c));
    c->port = 8080;
    c->max_batch_size = 32;
    c->max_queue_size = 1024;
    c->instances = 1;
    c->inline_max_us = 20;
    c->max_body_bytes = 64 << 20;
    c->request_timeout_ms = 60000;
    c->grace_period_s = 30;
}

/* "max-batch-size", "max_batch_size", "maxBatchSize", "MAX_BATCH_SIZE" all compare equal. */
static int key_equal(const char *a, const char *b)
{
    for (;;) {
        while (*a == '-' || *a == '_') a++;
        while (*b == '-' || *b == '_') b++;
        if (tolower((unsigned char)*a) != tolower((unsigned char)*b)) return 0;
        if (!*a) return 1;
        a++, b++;
    }
}

static const opt *opt_find(const char *key)
{
    for (size_t i = 0; i < N_OPTS; i++)
        if (key_equal(opts[i].flag, key)) return &opts[i];
    return NULL;
}

static kinfer_status *opt_set(server_config *c, const opt *o, const char *val, const char *origin)
{
    char *base = (char *)c + o->off;
    if (o->type == OPT_STR) {
        char **dst = (char **)base, *dup = strdup(val);
        if (!dup) return kinfer_status_new(KINFER_ENOMEM, "out of memory");
        free(*dst);
        *dst = dup;
        return NULL;
    }
    if (o->type == OPT_LIST) {
        int n = 0;
        const char *p = val;
        while (*p) {
            char *end;
            errno = 0;
            long long v = strtoll(p, &end, 10);
            if (end == p || errno || v < o->lo || v > o->hi || n >= CONFIG_MAX_PREFERRED)
                return kinfer_status_new(
                    KINFER_EINVAL, "%s: \"%s\" is not a list of at most %d sizes in %lld..%lld",
                    origin, val, CONFIG_MAX_PREFERRED, (long long)o->lo, (long long)o->hi);
            c->preferred[n++] = (int)v;
            p = end;
            while (*p == ',' || *p == ' ') p++;
        }
        c->n_preferred = n;
        return NULL;
    }
    char *end;
    errno = 0;
    long long v = strtoll(val, &end, 10);
    if (!*val || *end || errno || v < o->lo || v > o->hi)
        return kinfer_status_new(KINFER_EINVAL, "%s: \"%s\" is not an integer in %lld..%lld",
                                 origin, val, (long long)o->lo, (long long)o->hi);
    if (o->type == OPT_INT)
        *(int *)base = (int)v;
    else
        *(int64_t *)base = v;
    return NULL;
}

/* A flat YAML mapping of scalars (a sequence is allowed for preferred-batch-sizes). */
static kinfer_status *load_file(server_config *c, const char *path)
{
    kinfer_status *st = NULL;
    yaml_parser_t parser;
    yaml_event_t ev;
    int have_parser = 0, depth = 0, in_seq = 0;
    char key[128] = "", list[512] = "";
    FILE *f = fopen(path, "rb");
    if (!f) return kinfer_status_new(KINFER_EIO, "config file %s: %s", path, strerror(errno));
    if (!yaml_parser_initialize(&parser)) {
        st = kinfer_status_new(KINFER_ENOMEM, "out of memory");
        goto out;
    }
    have_parser = 1;
    yaml_parser_set_input_file(&parser, f);
    for (int done = 0; !done;) {
        if (!yaml_parser_parse(&parser, &ev)) {
            st = kinfer_status_new(KINFER_EINVAL, "config file %s: line %zu: %s", path,
                                   parser.problem_mark.line + 1,
                                   parser.problem ? parser.problem : "invalid YAML");
            goto out;
        }
        char origin[200];
        snprintf(origin, sizeof(origin), "config file %s: %s", path, key);
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_MAPPING_START_EVENT:
            if (++depth > 1)
                st = kinfer_status_new(KINFER_EINVAL, "%s: nested mappings are not settings",
                                       origin);
            break;
        case YAML_MAPPING_END_EVENT:
            depth--;
            break;
        case YAML_SEQUENCE_START_EVENT:
            if (!key[0] || in_seq)
                st = kinfer_status_new(KINFER_EINVAL, "config file %s: unexpected sequence", path);
            in_seq = 1;
            list[0] = 0;
            break;
        case YAML_SEQUENCE_END_EVENT: {
            in_seq = 0;
            const opt *o = opt_find(key);
            if (!o || o->type != OPT_LIST)
                st = kinfer_status_new(KINFER_EINVAL, "%s: not a list setting", origin);
            else
                st = opt_set(c, o, list, origin);
            key[0] = 0;
            break;
        }
        case YAML_SCALAR_EVENT: {
            const char *v = (const char *)ev.data.scalar.value;
            if (in_seq) {
                size_t l = strlen(list);
                snprintf(list + l, sizeof(list) - l, "%s%s", l ? "," : "", v);
            } else if (!key[0]) {
                snprintf(key, sizeof(key), "%s", v);
            } else {
                const opt *o = opt_find(key);
                if (!o)
                    st = kinfer_status_new(KINFER_EINVAL, "config file %s: unknown setting \"%s\"",
                                           path, key);
                else
                    st = opt_set(c, o, v, origin);
                key[0] = 0;
            }
            break;
        }
        default:
            break;
        }
        yaml_event_delete(&ev);
        if (st) goto out;
    }
out:
    if (have_parser) yaml_parser_delete(&parser);
    fclose(f);
    return st;
}

static void env_name(const opt *o, char *buf, size_t n)
{
    size_t j = snprintf(buf, n, "KINFER_");
    for (const char *p = o->flag; *p && j + 1 < n; p++)
        buf[j++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    buf[j] = 0;
}

static const char *env_get(char **envp, const char *name)
{
    size_t l = strlen(name);
    for (char **e = envp; e && *e; e++)
        if (!strncmp(*e, name, l) && (*e)[l] == '=') return *e + l + 1;
    return NULL;
}

static int valid_name(const char *s)
{
    if (!*s || strlen(s) > 128) return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.') return 0;
    return 1;
}

kinfer_status *server_config_load(server_config *c, int argc, char **argv, char **envp)
{
    set_defaults(c);
    if (!envp) envp = environ;
    kinfer_status *st = NULL;
    /* The file comes first in precedence order, so find --config before anything else. */
    const char *file = env_get(envp, "KINFER_CONFIG");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            file = argv[i + 1];
        else if (!strncmp(argv[i], "--config=", 9))
            file = argv[i] + 9;
    }
    if (file) {
        if (!(c->config_file = strdup(file)))
            return kinfer_status_new(KINFER_ENOMEM, "out of memory");
        if ((st = load_file(c, file))) return st;
    }
    for (size_t i = 0; i < N_OPTS; i++) {
        char name[64], origin[100];
        env_name(&opts[i], name, sizeof(name));
        const char *v = env_get(envp, name);
        snprintf(origin, sizeof(origin), "environment variable %s", name);
        if (v && (st = opt_set(c, &opts[i], v, origin))) return st;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            c->help = 1;
            return NULL;
        }
        if (strncmp(a, "--", 2))
            return kinfer_status_new(KINFER_EINVAL, "unexpected argument \"%s\"", a);
        const char *eq = strchr(a, '='), *val;
        char name[64];
        snprintf(name, sizeof(name), "%.*s", (int)(eq ? (size_t)(eq - a - 2) : strlen(a + 2)),
                 a + 2);
        if (eq)
            val = eq + 1;
        else if (i + 1 < argc)
            val = argv[++i];
        else
            return kinfer_status_new(KINFER_EINVAL, "flag --%s needs a value", name);
        if (!strcmp(name, "config")) continue;
        const opt *o = NULL;
        for (size_t k = 0; k < N_OPTS && !o; k++)
            if (!strcmp(opts[k].flag, name)) o = &opts[k];
        if (!o) return kinfer_status_new(KINFER_EINVAL, "unknown flag --%s (see --help)", name);
        char origin[100];
        snprintf(origin, sizeof(origin), "flag --%s", name);
        if ((st = opt_set(c, o, val, origin))) return st;
    }
    if (!c->model_dir && !c->model_uri)
        return kinfer_status_new(KINFER_EINVAL, "--model-dir or --model-uri is required");
    if (!c->model_dir && !(c->model_dir = strdup("/tmp/kinfer-model")))
        return kinfer_status_new(KINFER_ENOMEM, "out of memory");
    if (!c->model_name && !(c->model_name = strdup("model")))
        return kinfer_status_new(KINFER_ENOMEM, "out of memory");
    if (!c->model_version && !(c->model_version = strdup("1")))
        return kinfer_status_new(KINFER_ENOMEM, "out of memory");
    if (!c->host && !(c->host = strdup("::")))
        return kinfer_status_new(KINFER_ENOMEM, "out of memory");
    if (!c->device && !(c->device = strdup("cpu")))
        return kinfer_status_new(KINFER_ENOMEM, "out of memory");
    if (strcmp(c->device, "cpu") && strcmp(c->device, "cuda"))
        return kinfer_status_new(KINFER_EINVAL, "--device \"%s\" is not one of cpu, cuda",
                                 c->device);
    if (!valid_name(c->model_name) || !valid_name(c->model_version))
        return kinfer_status_new(
            KINFER_EINVAL,
            "model name and version may only hold letters, digits, '-', '_' and '.'");
    if (c->revision && *c->revision && (!valid_name(c->revision) || strlen(c->revision) > 63))
        return kinfer_status_new(KINFER_EINVAL,
                                 "--revision \"%s\": at most 63 letters, digits, '-', '_' and '.'",
                                 c->revision);
    for (int i = 0; i < c->n_preferred; i++)
        if (c->max_batch_size > 1 && c->preferred[i] > c->max_batch_size)
            return kinfer_status_new(KINFER_EINVAL,
                                     "preferred batch size %d exceeds --max-batch-size %d",
                                     c->preferred[i], c->max_batch_size);
    return NULL;
}

void server_config_free(server_config *c)
{
    for (size_t i = 0; i < N_OPTS; i++)
        if (opts[i].type == OPT_STR) {
            char **p = (char **)((char *)c + opts[i].off);
            free(*p);
            *p = NULL;
        }
    free(c->config_file);
    c->config_file = NULL;
}

void server_config_usage(FILE *f)
{
    fprintf(
        f,
        "usage: kinfer-server [flags]          serve a model over HTTP (Open Inference Protocol "
        "V2, V1)\n"
        "       kinfer-server fetch URI DIR    download a model (the init container)\n\nflags:\n");
    for (size_t i = 0; i < N_OPTS; i++) {
        char env[64];
        env_name(&opts[i], env, sizeof(env));
        fprintf(f, "  --%-24s %s\n  %-26s (env %s)\n", opts[i].flag, opts[i].help, "", env);
    }
    fprintf(f, "  --%-24s %s\n", "config FILE",
            "YAML file of the same settings (env KINFER_CONFIG)");
}
