/* kubeconfig: inline data vs files, token vs client certificate, contexts, in-cluster, and
 * precise errors for malformed or unsupported configurations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../src/kube/kubeconfig.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/kinfer-kubeconfig-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *name, const char *text)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* "CA-PEM" "CERT" "KEY" in base64 */
#define B64_CA   "Q0EtUEVN"
#define B64_CERT "Q0VSVA=="
#define B64_KEY  "S0VZ"

static const char *const inline_cfg =
    "apiVersion: v1\n"
    "kind: Config\n"
    "current-context: main\n"
    "clusters:\n"
    "- name: c1\n"
    "  cluster:\n"
    "    server: https://127.0.0.1:6443/\n"
    "    certificate-authority-data: " B64_CA "\n"
    "contexts:\n"
    "- name: main\n"
    "  context: {cluster: c1, user: certuser, namespace: team-a}\n"
    "- name: tok\n"
    "  context: {cluster: c1, user: tokuser}\n"
    "- name: tokfile\n"
    "  context: {cluster: c1, user: tokfileuser}\n"
    "users:\n"
    "- name: certuser\n"
    "  user:\n"
    "    client-certificate-data: |\n"
    "      Q0VS\n"
    "      VA==\n"
    "    client-key-data: " B64_KEY "\n"
    "- name: tokuser\n"
    "  user:\n"
    "    token: abc.def\n"
    "- name: tokfileuser\n"
    "  user:\n"
    "    tokenFile: tok.txt\n";

static void test_inline_data_and_cert(void **state)
{
    (void)state;
    kube_config *c = NULL;
    ctl_status *st = kubeconfig_load_string(inline_cfg, strlen(inline_cfg), dir, NULL, &c);
    assert_null(st);
    assert_string_equal(c->server, "https://127.0.0.1:6443"); /* trailing slash dropped */
    assert_int_equal(c->ca_len, 6);
    assert_memory_equal(c->ca_pem, "CA-PEM", 6);
    assert_int_equal(c->cert_len, 4);
    assert_memory_equal(c->cert_pem, "CERT", 4); /* wrapped base64 joined */
    assert_memory_equal(c->key_pem, "KEY", 3);
    assert_null(c->token);
    assert_string_equal(c->namespace, "team-a");
    kubeconfig_free(c);
}

static void test_token_and_token_file(void **state)
{
    (void)state;
    kube_config *c = NULL;
    assert_null(kubeconfig_load_string(inline_cfg, strlen(inline_cfg), dir, "tok", &c));
    assert_string_equal(c->token, "abc.def");
    assert_null(c->cert_pem);
    assert_null(c->namespace);
    kubeconfig_free(c);
    write_file("tok.txt", "  file-token\n");
    assert_null(kubeconfig_load_string(inline_cfg, strlen(inline_cfg), dir, "tokfile", &c));
    assert_string_equal(c->token, "file-token");
    assert_non_null(strstr(c->token_file, "tok.txt"));
    kubeconfig_free(c);
}

/* Paths are relative to the kubeconfig's directory, as kubectl reads them. */
static void test_files_relative_to_kubeconfig(void **state)
{
    (void)state;
    write_file("ca.crt", "FILE-CA");
    write_file("client.crt", "FILE-CERT");
    write_file("client.key", "FILE-KEY");
    write_file(
        "config",
        "current-context: x\n"
        "clusters: [{name: c, cluster: {server: 'https://k:443', certificate-authority: ca.crt}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
        "users: [{name: u, user: {client-certificate: client.crt, client-key: client.key}}]\n");
    char p[256];
    snprintf(p, sizeof(p), "%s/config", dir);
    kube_config *c = NULL;
    ctl_status *st = kubeconfig_load_file(p, NULL, &c);
    if (st) fail_msg("%s", ctl_status_msg(st));
    assert_string_equal(c->ca_pem, "FILE-CA");
    assert_string_equal(c->cert_pem, "FILE-CERT");
    assert_string_equal(c->key_pem, "FILE-KEY");
    assert_non_null(strstr(c->origin, "config"));
    kubeconfig_free(c);
    /* explicit path through load_default too */
    assert_null(kubeconfig_load_default(p, &c));
    assert_string_equal(c->server, "https://k:443");
    kubeconfig_free(c);
}

static void expect_error(const char *yaml, ctl_err code, const char *needle)
{
    kube_config *c = NULL;
    ctl_status *st = kubeconfig_load_string(yaml, strlen(yaml), dir, NULL, &c);
    if (!st) fail_msg("accepted: %s", yaml);
    assert_null(c);
    if (ctl_status_code(st) != code || !strstr(ctl_status_msg(st), needle))
        fail_msg("want %s containing \"%s\", got %s: %s", ctl_strerror(code), needle,
                 ctl_strerror(ctl_status_code(st)), ctl_status_msg(st));
    ctl_status_free(st);
}

#define CTX "contexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n"

static void test_malformed_and_unsupported(void **state)
{
    (void)state;
    expect_error("clusters: [\n  - a\n b: c", CTL_EPARSE, "line");
    expect_error("key: \"unterminated\n", CTL_EPARSE, "YAML");
    expect_error("", CTL_EPARSE, "empty");
    expect_error("- just\n- a list\n", CTL_ECONFIG, "not a YAML mapping");
    expect_error("a: &x 1\nb: *x\n", CTL_EPARSE, "aliases");
    expect_error("clusters: []\n", CTL_ECONFIG, "no current-context");
    expect_error("current-context: nope\ncontexts: []\n", CTL_ECONFIG,
                 "context \"nope\" not found");
    expect_error(CTX "clusters: []\nusers: [{name: u, user: {}}]\n", CTL_ECONFIG,
                 "cluster \"c\" not found");
    expect_error(CTX "clusters: [{name: c, cluster: {server: 'https://k'}}]\n", CTL_ECONFIG,
                 "user \"u\" not found");
    expect_error(
        CTX "clusters: [{name: c, cluster: {server: 'http://k'}}]\nusers: [{name: u, user: {}}]\n",
        CTL_ECONFIG, "must be an https:// URL");
    expect_error(
        CTX
        "clusters: [{name: c, cluster: {server: 'https://k', insecure-skip-tls-verify: true}}]\n"
        "users: [{name: u, user: {}}]\n",
        CTL_ECONFIG, "insecure-skip-tls-verify is not supported");
    expect_error(CTX "clusters: [{name: c, cluster: {server: 'https://k'}}]\n"
                     "users: [{name: u, user: {exec: {command: aws}}}]\n",
                 CTL_ECONFIG, "\"exec\" authentication is not supported");
    expect_error(CTX "clusters: [{name: c, cluster: {server: 'https://k'}}]\n"
                     "users: [{name: u, user: {client-certificate-data: " B64_CERT "}}]\n",
                 CTL_ECONFIG, "certificate and key must be given together");
    expect_error(CTX "clusters: [{name: c, cluster: {server: 'https://k', "
                     "certificate-authority-data: 'no*t'}}]\n"
                     "users: [{name: u, user: {}}]\n",
                 CTL_ECONFIG, "certificate-authority-data is not valid base64");
    expect_error(CTX "clusters: [{name: c, cluster: {server: 'https://k', certificate-authority: "
                     "missing.crt}}]\n"
                     "users: [{name: u, user: {}}]\n",
                 CTL_EIO, "missing.crt");
    kube_config *c = NULL;
    ctl_status *st = kubeconfig_load_file("/nonexistent/kubeconfig", NULL, &c);
    assert_int_equal(ctl_status_code(st), CTL_EIO);
    assert_non_null(strstr(ctl_status_msg(st), "/nonexistent/kubeconfig"));
    ctl_status_free(st);
}

static void test_in_cluster(void **state)
{
    (void)state;
    write_file("token", "sa-token\n");
    write_file("ca.crt", "SA-CA");
    write_file("namespace", "kinfer-system");
    setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    kube_config *c = NULL;
    assert_null(kubeconfig_load_incluster(dir, &c));
    assert_string_equal(c->server, "https://10.96.0.1:443");
    assert_string_equal(c->token, "sa-token");
    assert_string_equal(c->ca_pem, "SA-CA");
    assert_string_equal(c->namespace, "kinfer-system");
    assert_string_equal(c->origin, "in-cluster");
    kubeconfig_free(c);
    setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
    assert_null(kubeconfig_load_incluster(dir, &c));
    assert_string_equal(c->server, "https://[fd00::1]:443");
    kubeconfig_free(c);
    unsetenv("KUBERNETES_SERVICE_HOST");
    ctl_status *st = kubeconfig_load_incluster(dir, &c);
    assert_int_equal(ctl_status_code(st), CTL_ECONFIG);
    assert_non_null(strstr(ctl_status_msg(st), "KUBERNETES_SERVICE_HOST"));
    ctl_status_free(st);
    unsetenv("KUBERNETES_SERVICE_PORT");
    kubeconfig_free(NULL);
}

int test_kubeconfig_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inline_data_and_cert),
        cmocka_unit_test(test_token_and_token_file),
        cmocka_unit_test(test_files_relative_to_kubeconfig),
        cmocka_unit_test(test_malformed_and_unsupported),
        cmocka_unit_test(test_in_cluster),
    };
    return cmocka_run_group_tests_name("kubeconfig", tests, setup, teardown);
}
