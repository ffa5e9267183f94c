/* informer: how watch events change the cache (no network: events are applied directly as the
 * watch thread applies them), compact storage, indexing, and the errors that force a relist. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../src/kube/informer.h"

typedef struct seen {
    int n;
    informer_event ev[16];
    char key[16][64], index[16][64];
} seen;

static void handler(void *ud, informer_event ev, const char *key, const char *index)
{
    seen *s = ud;
    if (s->n == 16) return;
    s->ev[s->n] = ev;
    snprintf(s->key[s->n], 64, "%s", key);
    snprintf(s->index[s->n], 64, "%s", index);
    s->n++;
}

/* Index: "ns/<app label>", or NULL (not cached) without the label. */
static char *by_app(json_object *obj)
{
    json_object *md, *labels, *app;
    if (!json_object_object_get_ex(obj, "metadata", &md) ||
        !json_object_object_get_ex(md, "labels", &labels) ||
        !json_object_object_get_ex(labels, "app", &app))
        return NULL;
    json_object *ns;
    json_object_object_get_ex(md, "namespace", &ns);
    char *k = NULL;
    return asprintf(&k, "%s/%s", json_object_get_string(ns), json_object_get_string(app)) < 0 ? NULL
                                                                                              : k;
}

typedef struct fixture {
    kube_config cfg;
    kube_client *client;
    informer *inf;
    seen s;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    f->cfg.server = "https://127.0.0.1:1"; /* never contacted: the informer is not started */
    ctl_status *st = kube_client_create(&f->cfg, &f->client);
    if (st) return -1;
    informer_config ic = {.res = &kube_res_pods, .index = by_app, .handler = handler, .ud = &f->s};
    if ((st = informer_create(f->client, &ic, &f->inf))) return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    informer_free(f->inf);
    kube_client_free(f->client);
    free(f);
    return 0;
}

static ctl_status *apply(fixture *f, const char *ev)
{
    return informer__apply_event(f->inf, ev, strlen(ev));
}

#define POD(type, name, rv, app, extra)                                                            \
    "{\"type\":\"" type                                                                            \
    "\",\"object\":{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"" name         \
    "\",\"namespace\":\"ns\",\"resourceVersion\":\"" rv "\",\"labels\":{\"app\":\"" app            \
    "\"}" extra "}}}"

static void test_add_update_delete(void **state)
{
    fixture *f = *state;
    assert_null(apply(f, POD("ADDED", "p1", "10", "web", "")));
    assert_null(apply(f, POD("ADDED", "p2", "11", "web", "")));
    assert_null(apply(f, POD("ADDED", "p3", "12", "db", "")));
    assert_int_equal(informer_size(f->inf), 3);
    assert_string_equal(informer__resource_version(f->inf), "12");
    assert_int_equal(f->s.n, 3);
    assert_int_equal(f->s.ev[0], INFORMER_ADD);
    assert_string_equal(f->s.key[0], "ns/p1");
    assert_string_equal(f->s.index[0], "ns/web");

    json_object *web = informer_list_index(f->inf, "ns/web");
    assert_int_equal(json_object_array_length(web), 2);
    json_object_put(web);
    json_object *none = informer_list_index(f->inf, "ns/nothing");
    assert_int_equal(json_object_array_length(none), 0);
    json_object_put(none);

    assert_null(apply(f, POD("MODIFIED", "p1", "13", "web", ",\"annotations\":{\"a\":\"b\"}")));
    assert_int_equal(f->s.ev[3], INFORMER_UPDATE);
    json_object *p1 = informer_get(f->inf, "ns/p1");
    assert_non_null(p1);
    json_object *md, *rv;
    json_object_object_get_ex(p1, "metadata", &md);
    json_object_object_get_ex(md, "resourceVersion", &rv);
    assert_string_equal(json_object_get_string(rv), "13");
    json_object_put(p1);

    assert_null(apply(f, POD("DELETED", "p1", "14", "web", "")));
    assert_int_equal(f->s.ev[4], INFORMER_DELETE);
    assert_string_equal(f->s.index[4], "ns/web");
    assert_null(informer_get(f->inf, "ns/p1"));
    assert_int_equal(informer_size(f->inf), 2);
    /* deleting what is not cached fires nothing */
    assert_null(apply(f, POD("DELETED", "ghost", "15", "web", "")));
    assert_int_equal(f->s.n, 5);
}

/* managedFields and the last-applied annotation never reach the cache; other annotations stay. */
static void test_stripped_and_compact(void **state)
{
    fixture *f = *state;
    char big[20000];
    size_t off = (size_t)snprintf(
        big, sizeof(big), "%s",
        "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"m\",\"namespace\":\"ns\","
        "\"resourceVersion\":\"1\",\"labels\":{\"app\":\"x\"},\"managedFields\":[");
    for (int i = 0; i < 100; i++)
        off += (size_t)snprintf(big + off, sizeof(big) - off,
                                "%s{\"manager\":\"m%03d\",\"fieldsV1\":{\"f:spec\":{}}}",
                                i ? "," : "", i);
    snprintf(big + off, sizeof(big) - off, "%s",
             "],\"annotations\":{\"kubectl.kubernetes.io/"
             "last-applied-configuration\":\"{...}\",\"keep\":\"me\"}}}}");
    assert_null(informer__apply_event(f->inf, big, strlen(big)));
    json_object *o = informer_get(f->inf, "ns/m"), *md, *ann, *v;
    assert_non_null(o);
    json_object_object_get_ex(o, "metadata", &md);
    assert_false(json_object_object_get_ex(md, "managedFields", &v));
    assert_true(json_object_object_get_ex(md, "annotations", &ann));
    assert_false(
        json_object_object_get_ex(ann, "kubectl.kubernetes.io/last-applied-configuration", &v));
    assert_true(json_object_object_get_ex(ann, "keep", &v));
    /* list items arrive without kind; the cache fills them in from the resource */
    assert_true(json_object_object_get_ex(o, "kind", &v));
    assert_string_equal(json_object_get_string(v), "Pod");
    json_object_put(o);
    assert_true(informer_bytes(f->inf) < 400);
}

/* An object that loses its index label leaves the cache with a delete event; one without it is
 * never cached. */
static void test_unindexed_objects_not_cached(void **state)
{
    fixture *f = *state;
    const char *nolabel =
        "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"n\",\"namespace\":\"ns\","
        "\"resourceVersion\":\"5\"}}}";
    assert_null(apply(f, nolabel));
    assert_int_equal(informer_size(f->inf), 0);
    assert_int_equal(f->s.n, 0);
    assert_null(apply(f, POD("ADDED", "n", "6", "web", "")));
    assert_int_equal(informer_size(f->inf), 1);
    const char *unlabel =
        "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"n\",\"namespace\":\"ns\","
        "\"resourceVersion\":\"7\"}}}";
    assert_null(apply(f, unlabel));
    assert_int_equal(informer_size(f->inf), 0);
    assert_int_equal(f->s.ev[1], INFORMER_DELETE);
}

static void test_bookmark_and_errors(void **state)
{
    fixture *f = *state;
    assert_null(apply(f, "{\"type\":\"BOOKMARK\",\"object\":{\"kind\":\"Pod\",\"metadata\":{"
                         "\"resourceVersion\":\"777\"}}}"));
    assert_string_equal(informer__resource_version(f->inf), "777");
    assert_int_equal(informer_size(f->inf), 0);

    ctl_status *st = apply(
        f,
        "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"code\":410,\"reason\":\"Expired\","
        "\"message\":\"too old resource version\"}}");
    assert_int_equal(ctl_status_code(st), CTL_EGONE);
    ctl_status_free(st);
    st = apply(f, "{\"type\":\"ADDED\",\"object\":{\"metadata\":{}}}");
    assert_int_equal(ctl_status_code(st), CTL_EPARSE);
    assert_non_null(strstr(ctl_status_msg(st), "no metadata.name"));
    ctl_status_free(st);
    st = apply(f, "{\"type\":\"ADDED\"");
    assert_int_equal(ctl_status_code(st), CTL_EPARSE);
    ctl_status_free(st);
    assert_int_equal(informer_size(f->inf), 0);
    assert_string_equal(informer__resource_version(f->inf), "777");
}

/* Churn through the store: many updates of varying size force growth and compaction; every
 * object reads back as its last version and deleting everything empties the store. */
static void test_store_churn(void **state)
{
    fixture *f = *state;
    char ev[4096], pad[2048];
    int last[50] = {0};
    for (int round = 0; round < 3000; round++) {
        int k = (round * 7) % 50, n = (round * 131) % 2000;
        memset(pad, 'a' + round % 26, (size_t)n);
        pad[n] = 0;
        snprintf(ev, sizeof(ev),
                 "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":{\"name\":\"o%d\",\"namespace\":"
                 "\"ns\","
                 "\"resourceVersion\":\"%d\",\"labels\":{\"app\":\"a%d\"}},\"pad\":\"%s\"}}",
                 k, round, k % 5, pad);
        assert_null(informer__apply_event(f->inf, ev, strlen(ev)));
        last[k] = round;
    }
    assert_int_equal(informer_size(f->inf), 50);
    size_t total = 0;
    for (int k = 0; k < 50; k++) {
        char key[32];
        snprintf(key, sizeof(key), "ns/o%d", k);
        json_object *o = informer_get(f->inf, key), *md, *rv, *p;
        assert_non_null(o);
        json_object_object_get_ex(o, "metadata", &md);
        json_object_object_get_ex(md, "resourceVersion", &rv);
        assert_int_equal(atoi(json_object_get_string(rv)), last[k]);
        json_object_object_get_ex(o, "pad", &p);
        assert_int_equal(json_object_get_string_len(p), (last[k] * 131) % 2000);
        total += strlen(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
    }
    /* held packed (pack.h): the pads are runs of one letter, so far less than their JSON */
    assert_true(informer_bytes(f->inf) > 0 && informer_bytes(f->inf) * 4 < total);
    json_object *a0 = informer_list_index(f->inf, "ns/a0");
    assert_int_equal(json_object_array_length(a0), 10);
    json_object_put(a0);
    for (int k = 0; k < 50; k++) {
        snprintf(ev, sizeof(ev),
                 "{\"type\":\"DELETED\",\"object\":{\"metadata\":{\"name\":\"o%d\",\"namespace\":"
                 "\"ns\"}}}",
                 k);
        assert_null(informer__apply_event(f->inf, ev, strlen(ev)));
    }
    assert_int_equal(informer_size(f->inf), 0);
    assert_int_equal(informer_bytes(f->inf), 0);
}

static void test_strip_tolerates_odd_objects(void **state)
{
    (void)state;
    json_object *o = json_tokener_parse("{\"metadata\":{\"annotations\":{\"kubectl.kubernetes.io/"
                                        "last-applied-configuration\":\"x\"}}}");
    informer__strip(o);
    json_object *md, *v;
    json_object_object_get_ex(o, "metadata", &md);
    assert_false(json_object_object_get_ex(md, "annotations", &v)); /* emptied map removed */
    json_object_put(o);
    o = json_tokener_parse("{\"metadata\":7}");
    informer__strip(o);
    informer__strip(NULL);
    json_object_put(o);
}

/* Keeps only status.phase of a pod's status: stands in for the controller's Deployment trim. */
static void trim_phase(json_object *obj)
{
    json_object *st, *ph;
    if (!json_object_object_get_ex(obj, "status", &st) ||
        !json_object_object_get_ex(st, "phase", &ph))
        return;
    json_object *slim = json_object_new_object();
    json_object_object_add(slim, "phase", json_object_get(ph));
    json_object_object_add(obj, "status", slim);
}

/* Updates that change nothing a handler reads (resourceVersion, managedFields, quiet fields)
 * are cached but wake no one; everything else still fires. */
static void test_insignificant_updates_fire_nothing(void **state)
{
    fixture *f = *state;
    static const char *const quiet[] = {"spec", "z.q", NULL};
    informer *inf = NULL;
    informer_config ic = {.res = &kube_res_pods,
                          .index = by_app,
                          .handler = handler,
                          .ud = &f->s,
                          .quiet_fields = quiet,
                          .trim = trim_phase};
    assert_null(informer_create(f->client, &ic, &inf));
#define EV(type, rv, extra) POD(type, "p", rv, "web", extra)
    const char *evs[] = {
        EV("ADDED", "1", "},\"spec\":{\"x\":1},\"status\":{\"phase\":\"Pending\"},\"z\":{\"q\":0"),
        /* resourceVersion and managedFields only */
        EV("MODIFIED", "2",
           ",\"managedFields\":[{\"manager\":\"m\"}]},\"spec\":{\"x\":1},\"status\":{\"phase\":"
           "\"Pending\"},\"z\":{\"q\":0"),
        /* a quiet field only */
        EV("MODIFIED", "3",
           "},\"spec\":{\"x\":2},\"status\":{\"phase\":\"Pending\"},\"z\":{\"q\":0"),
        /* a quiet nested field only */
        EV("MODIFIED", "3",
           "},\"spec\":{\"x\":2},\"status\":{\"phase\":\"Pending\"},\"z\":{\"q\":1"),
        /* a field the trim drops only */
        EV("MODIFIED", "4",
           "},\"spec\":{\"x\":2},\"status\":{\"phase\":\"Pending\",\"ip\":\"1\"},\"z\":{\"q\":1"),
        /* significant: the kept status field, then a label */
        EV("MODIFIED", "5",
           "},\"spec\":{\"x\":2},\"status\":{\"phase\":\"Running\"},\"z\":{\"q\":1"),
        EV("MODIFIED", "6",
           ",\"annotations\":{\"a\":\"b\"}},\"spec\":{\"x\":2},\"status\":{\"phase\":\"Running\"},"
           "\"z\":{\"q\":1"),
    };
#undef EV
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        assert_null(informer__apply_event(inf, evs[i], strlen(evs[i])));
    assert_int_equal(f->s.n, 3);
    assert_int_equal(f->s.ev[0], INFORMER_ADD);
    assert_int_equal(f->s.ev[1], INFORMER_UPDATE);
    assert_int_equal(f->s.ev[2], INFORMER_UPDATE);
    /* the cache still follows every version, quiet fields included */
    json_object *p = informer_get(inf, "ns/p"), *md, *rv, *spec, *x;
    assert_non_null(p);
    json_object_object_get_ex(p, "metadata", &md);
    json_object_object_get_ex(md, "resourceVersion", &rv);
    assert_string_equal(json_object_get_string(rv), "6");
    assert_true(json_object_object_get_ex(p, "spec", &spec) &&
                json_object_object_get_ex(spec, "x", &x));
    assert_int_equal(json_object_get_int(x), 2);
    assert_false(json_object_object_get_ex(md, "managedFields", &x));
    json_object_put(p);
    assert_int_equal(informer_unavailable(inf), 0);
    informer_free(inf);
}

int test_informer_run(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_add_update_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stripped_and_compact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unindexed_objects_not_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bookmark_and_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_churn, setup, teardown),
        cmocka_unit_test(test_strip_tolerates_odd_objects),
        cmocka_unit_test_setup_teardown(test_insignificant_updates_fire_nothing, setup, teardown),
    };
    return cmocka_run_group_tests_name("informer", tests, NULL, NULL);
}
