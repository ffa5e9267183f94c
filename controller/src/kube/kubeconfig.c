/* kubeconfig and in-cluster configuration; see kubeconfig.h. YAML goes through libyaml into a
 * json-c tree (scalars as strings) so the lookups below are plain object walks. */
#include "kubeconfig.h"
#include "../common/jsonx.h"

#include <errno.h>
#include <json.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

ctl_status *kubeconfig_read_file(const char *path, size_t max, char **out, size_t *len)
{
    ctl_status *st = NULL;
    char *buf = NULL;
    size_t n = 0;
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return ctl_status_new(CTL_EIO, "open %s: %s", path, strerror(errno));
    buf = malloc(max + 1);
    if (!buf) {
        st = ctl_status_new(CTL_ENOMEM, "read %s", path);
        goto out;
    }
    n = fread(buf, 1, max + 1, fp);
    if (ferror(fp)) {
        st = ctl_status_new(CTL_EIO, "read %s: %s", path, strerror(errno));
        goto out;
    }
    if (n > max) {
        st = ctl_status_new(CTL_ETOOBIG, "%s is larger than %zu bytes", path, max);
        goto out;
    }
    buf[n] = 0;
    *out = buf;
    buf = NULL;
    if (len) *len = n;
out:
    free(buf);
    fclose(fp);
    return st;
}

/* ---- YAML -> json-c (mappings, sequences, string scalars) ---- */

static ctl_status *yaml_node(yaml_parser_t *p, yaml_event_t *ev, json_object **out, int depth);

static ctl_status *yaml_next(yaml_parser_t *p, yaml_event_t *ev)
{
    if (!yaml_parser_parse(p, ev))
        return ctl_status_new(CTL_EPARSE, "YAML: %s at line %zu column %zu",
                              p->problem ? p->problem : "syntax error", p->problem_mark.line + 1,
                              p->problem_mark.column + 1);
    return NULL;
}

/* Builds the node that starts with *ev (already parsed); consumes its events. */
static ctl_status *yaml_node(yaml_parser_t *p, yaml_event_t *ev, json_object **out, int depth)
{
    ctl_status *st = NULL;
    json_object *o = NULL;
    *out = NULL;
    if (depth > 64) return ctl_status_new(CTL_EPARSE, "YAML nested deeper than 64 levels");
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        o = json_object_new_string_len((const char *)ev->data.scalar.value,
                                       (int)ev->data.scalar.length);
        break;
    case YAML_ALIAS_EVENT:
        return ctl_status_new(CTL_EPARSE, "YAML aliases are not supported (line %zu)",
                              ev->start_mark.line + 1);
    case YAML_SEQUENCE_START_EVENT:
        o = json_object_new_array();
        for (;;) {
            yaml_event_t e;
            if ((st = yaml_next(p, &e))) goto out;
            if (e.type == YAML_SEQUENCE_END_EVENT) {
                yaml_event_delete(&e);
                break;
            }
            json_object *child = NULL;
            st = yaml_node(p, &e, &child, depth + 1);
            yaml_event_delete(&e);
            if (st) goto out;
            json_object_array_add(o, child);
        }
        break;
    case YAML_MAPPING_START_EVENT:
        o = json_object_new_object();
        for (;;) {
            yaml_event_t k, v;
            if ((st = yaml_next(p, &k))) goto out;
            if (k.type == YAML_MAPPING_END_EVENT) {
                yaml_event_delete(&k);
                break;
            }
            if (k.type != YAML_SCALAR_EVENT) {
                st = ctl_status_new(CTL_EPARSE, "YAML mapping key is not a scalar (line %zu)",
                                    k.start_mark.line + 1);
                yaml_event_delete(&k);
                goto out;
            }
            char *key = strndup((const char *)k.data.scalar.value, k.data.scalar.length);
            yaml_event_delete(&k);
            if (!key) {
                st = ctl_status_new(CTL_ENOMEM, "YAML key");
                goto out;
            }
            if ((st = yaml_next(p, &v))) {
                free(key);
                goto out;
            }
            json_object *child = NULL;
            st = yaml_node(p, &v, &child, depth + 1);
            yaml_event_delete(&v);
            if (!st) json_object_object_add(o, key, child);
            free(key);
            if (st) goto out;
        }
        break;
    default:
        return ctl_status_new(CTL_EPARSE, "unexpected YAML event %d", ev->type);
    }
out:
    if (st)
        json_object_put(o);
    else
        *out = o;
    return st;
}

static ctl_status *yaml_to_json(const char *text, size_t len, json_object **out)
{
    ctl_status *st = NULL;
    yaml_parser_t p;
    yaml_event_t ev;
    int have_ev = 0;
    *out = NULL;
    if (!yaml_parser_initialize(&p)) return ctl_status_new(CTL_ENOMEM, "YAML parser");
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    for (;;) { /* skip stream/document starts */
        if ((st = yaml_next(&p, &ev))) goto out;
        have_ev = 1;
        if (ev.type != YAML_STREAM_START_EVENT && ev.type != YAML_DOCUMENT_START_EVENT) break;
        yaml_event_delete(&ev);
        have_ev = 0;
    }
    if (ev.type == YAML_STREAM_END_EVENT) {
        st = ctl_status_new(CTL_EPARSE, "empty YAML document");
        goto out;
    }
    st = yaml_node(&p, &ev, out, 0);
out:
    if (have_ev) yaml_event_delete(&ev);
    yaml_parser_delete(&p);
    return st;
}

/* ---- lookups ---- */

/* Finds {name: NAME, <field>: {...}} in the list at root[list]; returns the inner object. */
static json_object *find_named(json_object *root, const char *list, const char *field,
                               const char *name)
{
    json_object *arr;
    if (!json_object_object_get_ex(root, list, &arr) || !json_object_is_type(arr, json_type_array))
        return NULL;
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *e = json_object_array_get_idx(arr, i);
        const char *n = jx_str(e, "name");
        if (n && !strcmp(n, name)) return jx_obj(e, field);
    }
    return NULL;
}

static int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Standard base64 with optional padding; whitespace ignored (kubeconfigs wrap long lines). */
static ctl_status *b64_decode(const char *field, const char *in, char **out, size_t *outlen)
{
    size_t n = strlen(in);
    char *buf = malloc(n / 4 * 3 + 4);
    if (!buf) return ctl_status_new(CTL_ENOMEM, "base64");
    unsigned acc = 0;
    int bits = 0, pad = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
        if (c == '=') {
            pad++;
            continue;
        }
        int v = b64_val(c);
        if (v < 0 || pad) {
            free(buf);
            return ctl_status_new(CTL_ECONFIG, "%s is not valid base64 (byte %zu)", field, i);
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    if (o == 0) {
        free(buf);
        return ctl_status_new(CTL_ECONFIG, "%s decodes to nothing", field);
    }
    buf[o] = 0;
    *out = buf;
    *outlen = o;
    return NULL;
}

/* Loads PEM-ish bytes from <field>-data (base64) or <field> (a path relative to dir). */
static ctl_status *load_blob(json_object *sect, const char *field, const char *dir, char **out,
                             size_t *len)
{
    char key[64];
    snprintf(key, sizeof(key), "%s-data", field);
    const char *data = jx_str(sect, key);
    if (data && *data) return b64_decode(key, data, out, len);
    const char *path = jx_str(sect, field);
    if (!path || !*path) return NULL;
    char full[PATH_MAX];
    if (path[0] != '/' && dir && *dir)
        snprintf(full, sizeof(full), "%s/%s", dir, path);
    else
        snprintf(full, sizeof(full), "%s", path);
    ctl_status *st = kubeconfig_read_file(full, KUBECONFIG_MAX_FILE, out, len);
    return st ? ctl_status_wrap(st, "%s", field) : NULL;
}

static char *trim_dup(const char *s)
{
    while (*s == ' ' || *s == '\n' || *s == '\r' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == '\t')) n--;
    return strndup(s, n);
}

void kubeconfig_free(kube_config *c)
{
    if (!c) return;
    free(c->server);
    free(c->ca_pem);
    free(c->cert_pem);
    free(c->key_pem);
    if (c->token) explicit_bzero(c->token, strlen(c->token));
    free(c->token);
    free(c->token_file);
    free(c->namespace);
    free(c->origin);
    free(c);
}

ctl_status *kubeconfig_load_string(const char *yaml, size_t len, const char *dir,
                                   const char *context, kube_config **out)
{
    ctl_status *st = NULL;
    json_object *root = NULL;
    kube_config *c = NULL;
    *out = NULL;
    if ((st = yaml_to_json(yaml, len, &root))) goto out;
    if (!json_object_is_type(root, json_type_object)) {
        st = ctl_status_new(CTL_ECONFIG, "kubeconfig is not a YAML mapping");
        goto out;
    }
    const char *ctx_name = context && *context ? context : jx_str(root, "current-context");
    if (!ctx_name || !*ctx_name) {
        st = ctl_status_new(CTL_ECONFIG, "kubeconfig has no current-context and none was given");
        goto out;
    }
    json_object *ctx = find_named(root, "contexts", "context", ctx_name);
    if (!ctx) {
        st = ctl_status_new(CTL_ECONFIG, "context \"%s\" not found in kubeconfig", ctx_name);
        goto out;
    }
    const char *cluster_name = jx_str(ctx, "cluster"), *user_name = jx_str(ctx, "user");
    if (!cluster_name) {
        st = ctl_status_new(CTL_ECONFIG, "context \"%s\" names no cluster", ctx_name);
        goto out;
    }
    json_object *cluster = find_named(root, "clusters", "cluster", cluster_name);
    if (!cluster) {
        st = ctl_status_new(CTL_ECONFIG, "cluster \"%s\" not found in kubeconfig", cluster_name);
        goto out;
    }
    json_object *user = user_name ? find_named(root, "users", "user", user_name) : NULL;
    if (user_name && !user) {
        /* kubectl accepts an empty user entry; a missing one is a typo worth reporting. */
        st = ctl_status_new(CTL_ECONFIG, "user \"%s\" not found in kubeconfig", user_name);
        goto out;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        st = ctl_status_new(CTL_ENOMEM, "kubeconfig");
        goto out;
    }
    const char *server = jx_str(cluster, "server");
    if (!server || strncmp(server, "https://", 8) || !server[8]) {
        st = ctl_status_new(CTL_ECONFIG,
                            "cluster \"%s\": server must be an https:// URL (got \"%s\")",
                            cluster_name, server ? server : "");
        goto out;
    }
    const char *insecure = jx_str(cluster, "insecure-skip-tls-verify");
    if (insecure && !strcmp(insecure, "true")) {
        st = ctl_status_new(CTL_ECONFIG,
                            "cluster \"%s\": insecure-skip-tls-verify is not supported; give a CA",
                            cluster_name);
        goto out;
    }
    c->server = strdup(server);
    if (c->server) {
        size_t sl = strlen(c->server);
        while (sl > 8 && c->server[sl - 1] == '/') c->server[--sl] = 0;
    }
    if ((st = load_blob(cluster, "certificate-authority", dir, &c->ca_pem, &c->ca_len))) goto out;
    if (user) {
        static const char *const unsupported[] = {"exec", "auth-provider", "username", "password"};
        for (size_t i = 0; i < sizeof(unsupported) / sizeof(unsupported[0]); i++) {
            json_object *v;
            if (json_object_object_get_ex(user, unsupported[i], &v)) {
                st = ctl_status_new(CTL_ECONFIG,
                                    "user \"%s\": \"%s\" authentication is not supported",
                                    user_name, unsupported[i]);
                goto out;
            }
        }
        if ((st = load_blob(user, "client-certificate", dir, &c->cert_pem, &c->cert_len))) goto out;
        if ((st = load_blob(user, "client-key", dir, &c->key_pem, &c->key_len))) goto out;
        if (!c->cert_pem != !c->key_pem) {
            st = ctl_status_new(CTL_ECONFIG,
                                "user \"%s\": client certificate and key must be given together",
                                user_name);
            goto out;
        }
        const char *tok = jx_str(user, "token"), *tok_file = jx_str(user, "tokenFile");
        if (tok && *tok) {
            c->token = strdup(tok);
        } else if (tok_file && *tok_file) {
            char full[PATH_MAX], *raw = NULL;
            if (tok_file[0] != '/' && dir && *dir)
                snprintf(full, sizeof(full), "%s/%s", dir, tok_file);
            else
                snprintf(full, sizeof(full), "%s", tok_file);
            if ((st = kubeconfig_read_file(full, KUBECONFIG_MAX_FILE, &raw, NULL))) {
                st = ctl_status_wrap(st, "user \"%s\" tokenFile", user_name);
                goto out;
            }
            c->token = trim_dup(raw);
            free(raw);
            c->token_file = strdup(full);
        }
    }
    const char *ns = jx_str(ctx, "namespace");
    if (ns && *ns) c->namespace = strdup(ns);
    if (asprintf(&c->origin, "kubeconfig context %s", ctx_name) < 0) c->origin = NULL;
    if (!c->server || !c->origin) st = ctl_status_new(CTL_ENOMEM, "kubeconfig");
out:
    json_object_put(root);
    if (st)
        kubeconfig_free(c);
    else
        *out = c;
    return st;
}

ctl_status *kubeconfig_load_file(const char *path, const char *context, kube_config **out)
{
    char *text = NULL, *dir = NULL;
    size_t len = 0;
    *out = NULL;
    ctl_status *st = kubeconfig_read_file(path, KUBECONFIG_MAX_FILE, &text, &len);
    if (st) return ctl_status_wrap(st, "kubeconfig");
    dir = strdup(path);
    if (!dir) {
        free(text);
        return ctl_status_new(CTL_ENOMEM, "kubeconfig");
    }
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        strcpy(dir, ".");
    st = kubeconfig_load_string(text, len, dir, context, out);
    free(text);
    free(dir);
    if (st) return ctl_status_wrap(st, "kubeconfig %s", path);
    char *o = NULL;
    if (asprintf(&o, "kubeconfig %s (%s)", path, (*out)->origin) >= 0) {
        free((*out)->origin);
        (*out)->origin = o;
    }
    return NULL;
}

ctl_status *kubeconfig_load_incluster(const char *sa_dir, kube_config **out)
{
    ctl_status *st = NULL;
    kube_config *c = NULL;
    char path[PATH_MAX], *raw = NULL;
    *out = NULL;
    if (!sa_dir) sa_dir = SA_DIR;
    const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
    if (!host || !*host || !port || !*port)
        return ctl_status_new(
            CTL_ECONFIG,
            "in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set");
    c = calloc(1, sizeof(*c));
    if (!c) return ctl_status_new(CTL_ENOMEM, "in-cluster config");
    /* An IPv6 service address needs brackets in the URL. */
    int v6 = strchr(host, ':') != NULL;
    if (asprintf(&c->server, "https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port) < 0) {
        c->server = NULL;
        st = ctl_status_new(CTL_ENOMEM, "in-cluster config");
        goto out;
    }
    snprintf(path, sizeof(path), "%s/token", sa_dir);
    if ((st = kubeconfig_read_file(path, KUBECONFIG_MAX_FILE, &raw, NULL))) goto out;
    c->token = trim_dup(raw);
    c->token_file = strdup(path);
    snprintf(path, sizeof(path), "%s/ca.crt", sa_dir);
    if ((st = kubeconfig_read_file(path, KUBECONFIG_MAX_FILE, &c->ca_pem, &c->ca_len))) goto out;
    snprintf(path, sizeof(path), "%s/namespace", sa_dir);
    free(raw);
    raw = NULL;
    if (!kubeconfig_read_file(path, 4096, &raw, NULL) && raw) c->namespace = trim_dup(raw);
    /* A missing namespace file is not fatal: --namespace and --lease-namespace can name one. */
    c->origin = strdup("in-cluster");
    if (!c->token || !c->token_file || !c->origin)
        st = ctl_status_new(CTL_ENOMEM, "in-cluster config");
    else if (!*c->token)
        st = ctl_status_new(CTL_ECONFIG, "in-cluster: %s/token is empty", sa_dir);
out:
    free(raw);
    if (st) {
        kubeconfig_free(c);
        return ctl_status_wrap(st, "in-cluster config");
    }
    *out = c;
    return NULL;
}

ctl_status *kubeconfig_load_default(const char *explicit_path, kube_config **out)
{
    if (explicit_path && *explicit_path) return kubeconfig_load_file(explicit_path, NULL, out);
    const char *env = getenv("KUBECONFIG");
    if (env && *env) {
        char *first = strndup(env, strcspn(env, ":"));
        if (!first) return ctl_status_new(CTL_ENOMEM, "KUBECONFIG");
        ctl_status *st = kubeconfig_load_file(first, NULL, out);
        free(first);
        return st;
    }
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    if (host && *host) return kubeconfig_load_incluster(NULL, out);
    const char *home = getenv("HOME");
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/.kube/config", home && *home ? home : ".");
    struct stat sb;
    if (stat(path, &sb))
        return ctl_status_new(
            CTL_ECONFIG,
            "no configuration: give --kubeconfig, set KUBECONFIG, run in a pod, or create %s",
            path);
    return kubeconfig_load_file(path, NULL, out);
}
