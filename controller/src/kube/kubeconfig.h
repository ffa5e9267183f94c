/*
 * Where and how to reach the API server: a kubeconfig file (current-context or a named one;
 * CA, client certificate and key as inline base64 data or as files; a bearer token inline or
 * from tokenFile) or the in-cluster service-account mount. Files are read here, once, so the
 * HTTP client only ever sees bytes. Exec plugins, auth providers, basic auth and
 * insecure-skip-tls-verify are refused with a message naming the field: TLS is always verified.
 */
#ifndef KINFER_CTL_KUBECONFIG_H
#define KINFER_CTL_KUBECONFIG_H

#include <stddef.h>

#include "../common/error.h"

/* A plain record; every pointer is owned by it and freed by kubeconfig_free(). */
typedef struct kube_config {
    char *server; /* "https://host:port", no trailing slash */
    char *ca_pem; /* CA bundle (NULL: system trust store) */
    size_t ca_len;
    char *cert_pem, *key_pem; /* client certificate and key, both or neither */
    size_t cert_len, key_len;
    char *token;      /* bearer token or NULL */
    char *token_file; /* where the token came from, re-read on rotation; or NULL */
    char *namespace;  /* the context's / pod's namespace, or NULL */
    char *origin;     /* "kubeconfig PATH context NAME" or "in-cluster" for messages */
} kube_config;

#define KUBECONFIG_MAX_FILE (4u << 20) /* kubeconfig, CA, cert, key and token files */

/* Parses the kubeconfig at path; context NULL means current-context. */
ctl_status *kubeconfig_load_file(const char *path, const char *context, kube_config **out)
    __attribute__((warn_unused_result));
/* Parses kubeconfig text already in memory; dir resolves relative file paths. */
ctl_status *kubeconfig_load_string(const char *yaml, size_t len, const char *dir,
                                   const char *context, kube_config **out)
    __attribute__((warn_unused_result));
/* The pod's service account: sa_dir (NULL: /var/run/secrets/kubernetes.io/serviceaccount) holds
 * token, ca.crt and namespace; KUBERNETES_SERVICE_HOST/PORT name the server. */
ctl_status *kubeconfig_load_incluster(const char *sa_dir, kube_config **out)
    __attribute__((warn_unused_result));
/* explicit_path if given, else $KUBECONFIG (first entry), else in-cluster when
 * KUBERNETES_SERVICE_HOST is set, else ~/.kube/config. */
ctl_status *kubeconfig_load_default(const char *explicit_path, kube_config **out)
    __attribute__((warn_unused_result));
void kubeconfig_free(kube_config *c); /* NULL is a no-op */

/* Reads a whole file up to max bytes into a NUL-terminated buffer (*out owned by the caller). */
ctl_status *kubeconfig_read_file(const char *path, size_t max, char **out, size_t *len)
    __attribute__((warn_unused_result));

#endif
