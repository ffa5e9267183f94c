/* List/watch informer with a compact cache; see informer.h. */
#include "informer.h"
#include "../common/hash.h"
#include "../common/jsonx.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backoff.h"
#include "framer.h"
#include "../common/log.h"
#include "../common/metrics.h"
#include "objstore.h"
#include "pack.h"

#define DEFAULT_TIMEOUT_S 300
#define DEFAULT_EVENT_CAP (16u << 20)
/* Small pages: a parsed page is a json-c tree roughly ten times its text (about 1 KiB per JSON
 * object), and it is the informer's biggest transient allocation. */
#define DEFAULT_PAGE 20

/* One page in flight per process: informers relisting together (start-up, API server restart)
 * would otherwise hold several page trees at once, which sets the controller's peak memory. */
static pthread_mutex_t page_mu = PTHREAD_MUTEX_INITIALIZER;

/* An object on its way into the cache (malloc'd strings). */
typedef struct item {
    char *json; /* compact JSON text of the stripped object, coded by pack_encode */
    size_t len;
    char *index;
    char *rv;
    uint64_t sig; /* hash of what the handler cares about (see significance) */
} item;

struct informer {
    kube_client *client;
    const kube_resource *res;
    char *ns, *selector;
    informer_index_fn index;
    informer_handler_fn handler;
    void *ud;
    int timeout_s;
    size_t event_cap;
    long page_size;
    const char *const *drop, *const *quiet;
    void (*trim)(json_object *obj);
    atomic_int unavailable;

    pthread_rwlock_t lock; /* guards items */
    objstore *items;
    /* pack's dictionary: the first object this informer cached, as JSON text. Set once, by the
     * informer's thread before its first put, and never changed, so readers need no lock for it. */
    char *dict;
    size_t dict_len;

    pthread_t thread;
    int started;
    atomic_int stop;
    atomic_int synced;
    pthread_mutex_t sleep_mu;
    pthread_cond_t sleep_cv;

    /* watch-thread state */
    char rv[128];
    framer *fr;
    ctl_status *watch_err; /* why the callback stopped the watch */
};

static void item_free(item *it)
{
    if (!it) return;
    free(it->json);
    free(it->index);
    free(it->rv);
    free(it);
}

void informer__strip(json_object *obj)
{
    json_object *meta = jx_obj(obj, "metadata");
    if (!meta) return;
    json_object_object_del(meta, "managedFields");
    json_object *ann = jx_obj(meta, "annotations");
    if (ann) {
        json_object_object_del(ann, "kubectl.kubernetes.io/last-applied-configuration");
        if (json_object_object_length(ann) == 0) json_object_object_del(meta, "annotations");
    }
}

/* FNV-1a over obj's compact text without metadata.resourceVersion and the quiet fields, which
 * it removes from obj: two versions with the same value differ only in what no handler needs. */
static uint64_t significance(informer *inf, json_object *obj)
{
    json_object *meta = jx_obj(obj, "metadata");
    if (meta) json_object_object_del(meta, "resourceVersion");
    for (const char *const *q = inf->quiet; q && *q; q++) {
        const char *dot = strchr(*q, '.');
        char parent[64];
        if (!dot) {
            json_object_object_del(obj, *q);
        } else if ((size_t)(dot - *q) < sizeof(parent)) { /* "parent.child": one level down */
            memcpy(parent, *q, (size_t)(dot - *q));
            parent[dot - *q] = 0;
            json_object *po = jx_obj(obj, parent);
            if (po) json_object_object_del(po, dot + 1);
        }
    }
    size_t n = 0;
    const char *s = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, &n);
    return hash_fnv1a(HASH_FNV1A_INIT, s, n);
}

/* "ns/name" (or "name" for cluster-scoped objects) into buf; 0 when the object has no name. */
static int object_key(json_object *obj, char *buf, size_t len)
{
    json_object *meta = jx_obj(obj, "metadata");
    const char *name = jx_str(meta, "name"), *ns = jx_str(meta, "namespace");
    if (!name) return 0;
    if (ns && *ns)
        snprintf(buf, len, "%s/%s", ns, name);
    else
        snprintf(buf, len, "%s", name);
    return 1;
}

/* A cache item for obj (stripped in place), or NULL when the index function leaves it out or
 * on ENOMEM (*oom set). */
static item *make_item(informer *inf, json_object *obj, const char *key, int *oom)
{
    *oom = 0;
    char *idx = inf->index ? inf->index(obj) : strdup(key);
    if (!idx) return NULL;
    if (inf->trim) inf->trim(obj); /* first: it may read what strip and drop remove */
    informer__strip(obj);
    for (const char *const *d = inf->drop; d && *d; d++) json_object_object_del(obj, *d);
    if (!jx_str(obj, "kind")) { /* list items come without apiVersion/kind */
        char av[96];
        if (*inf->res->group)
            snprintf(av, sizeof(av), "%s/%s", inf->res->group, inf->res->version);
        else
            snprintf(av, sizeof(av), "%s", inf->res->version);
        json_object_object_add(obj, "apiVersion", json_object_new_string(av));
        json_object_object_add(obj, "kind", json_object_new_string(inf->res->kind));
    }
    item *it = calloc(1, sizeof(*it));
    size_t n = 0;
    const char *s = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, &n);
    const char *rv = jx_str(jx_obj(obj, "metadata"), "resourceVersion");
    if (s && !inf->dict) {
        inf->dict_len = n < PACK_DICT_MAX ? n : PACK_DICT_MAX;
        if ((inf->dict = malloc(inf->dict_len + 1))) {
            memcpy(inf->dict, s, inf->dict_len);
            inf->dict[inf->dict_len] = 0;
        } else {
            inf->dict_len = 0;
        }
    }
    if (it) {
        if (!s || pack_encode(inf->dict, inf->dict_len, s, n, &it->json, &it->len)) it->json = NULL;
        it->index = idx;
        it->rv = strdup(rv ? rv : "");
        idx = NULL;
    }
    if (it && it->json && it->rv) it->sig = significance(inf, obj); /* last: it edits obj */
    if (!it || !it->json || !it->rv) {
        item_free(it);
        free(idx);
        *oom = 1;
        return NULL;
    }
    return it;
}

ctl_status *informer_create(kube_client *c, const informer_config *cfg, informer **out)
{
    *out = NULL;
    if (!c || !cfg || !cfg->res)
        return ctl_status_new(CTL_EINVAL, "informer: client and resource required");
    informer *inf = calloc(1, sizeof(*inf));
    if (!inf) return ctl_status_new(CTL_ENOMEM, "informer");
    inf->client = c;
    inf->res = cfg->res;
    inf->ns = cfg->namespace && *cfg->namespace ? strdup(cfg->namespace) : NULL;
    inf->selector =
        cfg->label_selector && *cfg->label_selector ? strdup(cfg->label_selector) : NULL;
    inf->index = cfg->index;
    inf->handler = cfg->handler;
    inf->ud = cfg->ud;
    inf->timeout_s = cfg->timeout_s > 0 ? cfg->timeout_s : DEFAULT_TIMEOUT_S;
    inf->event_cap = cfg->event_cap ? cfg->event_cap : DEFAULT_EVENT_CAP;
    inf->page_size = cfg->page_size > 0 ? cfg->page_size : DEFAULT_PAGE;
    inf->drop = cfg->drop_fields; /* static tables in practice; the caller keeps them alive */
    inf->quiet = cfg->quiet_fields;
    inf->trim = cfg->trim;
    pthread_rwlock_init(&inf->lock, NULL);
    pthread_mutex_init(&inf->sleep_mu, NULL);
    pthread_cond_init(&inf->sleep_cv, NULL);
    inf->items = objstore_create();
    if (!inf->items || (cfg->namespace && *cfg->namespace && !inf->ns) ||
        (cfg->label_selector && *cfg->label_selector && !inf->selector)) {
        informer_free(inf);
        return ctl_status_new(CTL_ENOMEM, "informer");
    }
    *out = inf;
    return NULL;
}

void informer_free(informer *inf)
{
    if (!inf) return;
    informer_stop(inf);
    objstore_free(inf->items);
    framer_free(inf->fr);
    ctl_status_free(inf->watch_err);
    pthread_rwlock_destroy(&inf->lock);
    pthread_mutex_destroy(&inf->sleep_mu);
    pthread_cond_destroy(&inf->sleep_cv);
    free(inf->ns);
    free(inf->selector);
    free(inf->dict);
    free(inf);
}

/* The significance of a cached entry (0 when it cannot be parsed: then it counts as changed). */
static uint64_t entry_significance(informer *inf, const objstore_entry *e);

/* Stores it under key (deleted: removes) and runs the handler unless the update changed nothing
 * significant. Takes ownership of it. */
static void cache_put(informer *inf, const char *key, item *it, int deleted)
{
    char *old_index = NULL;
    int had = 0, quiet = 0;
    objstore_entry old;
    /* Only this thread writes the cache, so reading the old entry unlocked is safe. */
    if (!deleted && objstore_get(inf->items, key, &old))
        quiet = !strcmp(old.index, it->index) && entry_significance(inf, &old) == it->sig;
    pthread_rwlock_wrlock(&inf->lock);
    if (deleted) {
        had = objstore_remove(inf->items, key, &old_index);
    } else if (objstore_put(inf->items, key, it->json, it->len, it->index, it->rv, &had)) {
        pthread_rwlock_unlock(&inf->lock);
        log_error("informer: out of memory caching object", "resource", inf->res->resource, "key",
                  key);
        item_free(it);
        return;
    }
    size_t nobj = objstore_count(inf->items), nbytes = objstore_bytes(inf->items);
    pthread_rwlock_unlock(&inf->lock);
    metrics_set_cache(inf->res->resource, nobj, nbytes);
    if (inf->handler) {
        if (deleted && had && old_index)
            inf->handler(inf->ud, INFORMER_DELETE, key, old_index);
        else if (!deleted && !(had && quiet))
            inf->handler(inf->ud, had ? INFORMER_UPDATE : INFORMER_ADD, key, it->index);
    }
    free(old_index);
    item_free(it);
}

static void set_rv(informer *inf, json_object *obj)
{
    const char *rv = jx_str(jx_obj(obj, "metadata"), "resourceVersion");
    if (rv && strlen(rv) < sizeof(inf->rv)) strcpy(inf->rv, rv);
}

ctl_status *informer__apply_event(informer *inf, const char *data, size_t len)
{
    watch_type type;
    json_object *obj = NULL;
    ctl_status *st = framer_parse_event(data, len, &type, &obj);
    if (st) return st;
    char key[512];
    int oom = 0;
    switch (type) {
    case WATCH_BOOKMARK:
        set_rv(inf, obj);
        break;
    case WATCH_ERROR:
        st = framer_event_error(obj);
        break;
    case WATCH_ADDED:
    case WATCH_MODIFIED:
    case WATCH_DELETED: {
        if (!object_key(obj, key, sizeof(key))) {
            st = ctl_status_new(CTL_EPARSE, "%s event object has no metadata.name",
                                framer_watch_type_name(type));
            break;
        }
        set_rv(inf, obj);
        if (type == WATCH_DELETED) {
            cache_put(inf, key, NULL, 1);
            break;
        }
        item *it = make_item(inf, obj, key, &oom);
        if (it)
            cache_put(inf, key, it, 0);
        else if (oom)
            st = ctl_status_new(CTL_ENOMEM, "caching %s", key);
        else
            cache_put(inf, key, NULL, 1); /* no longer indexed (e.g. label removed): forget it */
        break;
    }
    }
    json_object_put(obj);
    return st;
}

/* Sleeps ms unless stopped; returns nonzero when stopped. */
static int nap(informer *inf, uint64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&inf->sleep_mu);
    while (!atomic_load(&inf->stop))
        if (pthread_cond_timedwait(&inf->sleep_cv, &inf->sleep_mu, &ts) == ETIMEDOUT) break;
    pthread_mutex_unlock(&inf->sleep_mu);
    return atomic_load(&inf->stop);
}

/* A key whose handler runs after a relist swaps the caches. */
typedef struct change {
    char *key, *index;
    informer_event ev;
} change;

typedef struct diff_ctx {
    const objstore *other;
    int deletions; /* walking the old cache: record keys missing from the new one */
    change *list;
    size_t n, cap;
    int oom;
} diff_ctx;

static int diff_one(void *ud, const objstore_entry *e)
{
    diff_ctx *d = ud;
    objstore_entry o;
    int had = objstore_get(d->other, e->key, &o);
    informer_event ev;
    if (d->deletions) {
        if (had) return 0;
        ev = INFORMER_DELETE;
    } else {
        if (had && !strcmp(o.rv, e->rv) && !strcmp(o.index, e->index))
            return 0; /* unchanged: no event */
        ev = had ? INFORMER_UPDATE : INFORMER_ADD;
    }
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 64;
        change *l = realloc(d->list, nc * sizeof(*l));
        if (!l) return d->oom = 1;
        d->list = l;
        d->cap = nc;
    }
    change *c = &d->list[d->n];
    c->key = strdup(e->key);
    c->index = strdup(e->index);
    c->ev = ev;
    if (!c->key || !c->index) {
        free(c->key);
        free(c->index);
        return d->oom = 1;
    }
    d->n++;
    return 0;
}

/* Lists every page into a fresh store, swaps it in for the cache, then fires add/update/delete
 * for what changed. List items go straight into the new store's mmap'd region, so a relist
 * leaves nothing behind on the heap; readers keep seeing the old cache until the swap. */
static ctl_status *relist(informer *inf)
{
    ctl_status *st = NULL;
    json_object *page = NULL;
    objstore *fresh = objstore_create(), *old = NULL;
    diff_ctx dels = {0}, ups = {0};
    char cont[1024] = "", rv[sizeof(inf->rv)] = "";
    if (!fresh) return ctl_status_new(CTL_ENOMEM, "relist");
    metrics_count_relist(inf->res->resource);
    do {
        pthread_mutex_lock(&page_mu);
        st = kube_list(inf->client, inf->res, inf->ns, inf->selector, inf->page_size, cont, &page);
        json_object *items = NULL, *meta = jx_obj(page, "metadata");
        const char *prv = jx_str(meta, "resourceVersion"), *pc = jx_str(meta, "continue");
        if (!st && prv && strlen(prv) < sizeof(rv) && !*cont) strcpy(rv, prv);
        if (!st && pc && strlen(pc) >= sizeof(cont))
            st =
                ctl_status_new(CTL_ETOOBIG, "list %s: continue token too long", inf->res->resource);
        if (!st) snprintf(cont, sizeof(cont), "%s", pc ? pc : "");
        if (!st && json_object_object_get_ex(page, "items", &items) &&
            json_object_is_type(items, json_type_array)) {
            for (size_t i = 0; i < json_object_array_length(items) && !st; i++) {
                json_object *obj = json_object_array_get_idx(items, i);
                char key[512];
                int oom = 0;
                if (!object_key(obj, key, sizeof(key))) continue;
                item *it = make_item(inf, obj, key, &oom);
                if (oom ||
                    (it && objstore_put(fresh, key, it->json, it->len, it->index, it->rv, NULL)))
                    st = ctl_status_new(CTL_ENOMEM, "relist %s", inf->res->resource);
                item_free(it);
            }
        }
        json_object_put(page);
        page = NULL;
        pthread_mutex_unlock(&page_mu);
        if (st) goto out;
    } while (*cont && !atomic_load(&inf->stop));
    if (atomic_load(&inf->stop)) {
        st = ctl_status_new(CTL_ECANCELED, "relist stopped");
        goto out;
    }
    /* Only this thread writes the cache, so reading it unlocked here is safe. */
    dels = (diff_ctx){.other = fresh, .deletions = 1};
    objstore_each(inf->items, diff_one, &dels);
    ups = (diff_ctx){.other = inf->items};
    objstore_each(fresh, diff_one, &ups);
    if (dels.oom || ups.oom) {
        st = ctl_status_new(CTL_ENOMEM, "relist %s", inf->res->resource);
        goto out;
    }
    pthread_rwlock_wrlock(&inf->lock);
    old = inf->items;
    inf->items = fresh;
    fresh = NULL;
    size_t nobj = objstore_count(inf->items), nbytes = objstore_bytes(inf->items);
    pthread_rwlock_unlock(&inf->lock);
    metrics_set_cache(inf->res->resource, nobj, nbytes);
    strcpy(inf->rv, rv);
    atomic_store(&inf->synced, 1);
    if (inf->handler) {
        for (size_t i = 0; i < dels.n; i++)
            inf->handler(inf->ud, dels.list[i].ev, dels.list[i].key, dels.list[i].index);
        for (size_t i = 0; i < ups.n; i++)
            inf->handler(inf->ud, ups.list[i].ev, ups.list[i].key, ups.list[i].index);
    }
out:
    for (size_t i = 0; i < dels.n; i++) free(dels.list[i].key), free(dels.list[i].index);
    for (size_t i = 0; i < ups.n; i++) free(ups.list[i].key), free(ups.list[i].index);
    free(dels.list);
    free(ups.list);
    objstore_free(fresh);
    objstore_free(old);
    json_object_put(page);
    return st;
}

static int on_frame(void *ud, framer_kind kind, const char *data, size_t len)
{
    informer *inf = ud;
    ctl_status *st = NULL;
    switch (kind) {
    case FRAMER_FRAME:
        st = informer__apply_event(inf, data, len);
        if (st && ctl_status_code(st) == CTL_EPARSE) {
            log_warn("informer: malformed watch event skipped; relisting", "resource",
                     inf->res->resource, "error", ctl_status_msg(st));
            st = ctl_status_wrap(st, "malformed watch event");
        }
        break;
    case FRAMER_TOOBIG: {
        char n[32];
        snprintf(n, sizeof(n), "%zu", len);
        log_warn("informer: watch event over the size cap skipped; relisting", "resource",
                 inf->res->resource, "bytes", n);
        st = ctl_status_new(CTL_ETOOBIG, "watch event of %zu bytes over the cap of %zu", len,
                            inf->event_cap);
        break;
    }
    case FRAMER_GARBAGE:
    case FRAMER_TRUNCATED:
        log_warn("informer: watch stream is not JSON; relisting", "resource", inf->res->resource);
        st = ctl_status_new(CTL_EPARSE, "watch stream: unframeable bytes");
        break;
    }
    if (!st) return 0;
    ctl_status_free(inf->watch_err);
    inf->watch_err = st;
    return 1;
}

static int on_bytes(void *ud, const char *data, size_t len)
{
    informer *inf = ud;
    int rc = framer_feed(inf->fr, data, len);
    if (rc < 0 && !inf->watch_err) inf->watch_err = ctl_status_new(CTL_ENOMEM, "watch framing");
    return rc != 0;
}

static void *run(void *arg)
{
    informer *inf = arg;
    backoff bo;
    backoff_init(&bo, 200, 30000, 0.5, (unsigned)time(NULL) ^ (unsigned)(uintptr_t)inf);
    int need_list = 1;
    const char *res = inf->res->resource;
    while (!atomic_load(&inf->stop)) {
        if (need_list) {
            ctl_status *st = relist(inf);
            if (st) {
                int http = ctl_status_http(st);
                if (http == 403 || http == 404) {
                    /* RBAC or a missing CRD will not change within seconds: say so once, then
                     * retry slowly, and let those waiting for sync go on without this type. */
                    if (!atomic_exchange(&inf->unavailable, 1))
                        log_warn("informer: resource unavailable; retrying every few minutes",
                                 "resource", res, "error", ctl_status_msg(st));
                    ctl_status_free(st);
                    nap(inf, 60000 + backoff_next_ms(&bo) * 8);
                    continue;
                }
                if (ctl_status_code(st) != CTL_ECANCELED)
                    log_error("informer: list failed", "resource", res, "error",
                              ctl_status_msg(st));
                ctl_status_free(st);
                nap(inf, backoff_next_ms(&bo));
                continue;
            }
            if (atomic_exchange(&inf->unavailable, 0))
                log_info("informer: resource available again", "resource", res);
            need_list = 0;
            malloc_trim(0); /* hand the pages' parse trees back to the OS */
            char n[24];
            snprintf(n, sizeof(n), "%zu", informer_size(inf));
            log_info("informer: listed", "resource", res, "resourceVersion", inf->rv, "objects", n);
        }
        framer_reset(inf->fr);
        ctl_status_free(inf->watch_err);
        inf->watch_err = NULL;
        ctl_status *st = kube_watch(inf->client, inf->res, inf->ns, inf->selector, inf->rv,
                                    inf->timeout_s, on_bytes, inf, &inf->stop);
        if (atomic_load(&inf->stop)) {
            ctl_status_free(st);
            break;
        }
        if (inf->watch_err) { /* the stream itself was bad: its error explains the stop */
            ctl_status_free(st);
            st = inf->watch_err;
            inf->watch_err = NULL;
        }
        metrics_count_watch_restart(res);
        if (!st) { /* the server ended the watch (timeoutSeconds): resume from the last rv */
            backoff_reset(&bo);
            continue;
        }
        /* Like client-go's reflector, any failed watch relists (a 410 at once, others after a
         * backoff): the cache may have missed events, or the resource itself may be new (a CRD
         * re-created, a restored etcd) so that the old resourceVersion means nothing. */
        ctl_err code = ctl_status_code(st);
        need_list = 1;
        if (code == CTL_EGONE) {
            log_info("informer: resourceVersion expired; relisting", "resource", res, "reason",
                     ctl_status_msg(st));
        } else {
            log_warn("informer: watch failed; relisting after backoff", "resource", res, "error",
                     ctl_status_msg(st));
            nap(inf, backoff_next_ms(&bo));
        }
        ctl_status_free(st);
    }
    return NULL;
}

ctl_status *informer_start(informer *inf)
{
    if (inf->started) return ctl_status_new(CTL_EINVAL, "informer already started");
    if (!inf->fr && !(inf->fr = framer_create(inf->event_cap, on_frame, inf)))
        return ctl_status_new(CTL_ENOMEM, "informer framer");
    atomic_store(&inf->stop, 0);
    int e = pthread_create(&inf->thread, NULL, run, inf);
    if (e) return ctl_status_new(CTL_EINTERNAL, "informer thread: %s", strerror(e));
    inf->started = 1;
    return NULL;
}

void informer_request_stop(informer *inf)
{
    if (!inf) return;
    pthread_mutex_lock(&inf->sleep_mu);
    atomic_store(&inf->stop, 1);
    pthread_cond_broadcast(&inf->sleep_cv);
    pthread_mutex_unlock(&inf->sleep_mu);
}

void informer_stop(informer *inf)
{
    if (!inf || !inf->started) return;
    informer_request_stop(inf);
    pthread_join(inf->thread, NULL);
    inf->started = 0;
}

int informer_synced(informer *inf)
{
    return atomic_load(&inf->synced);
}

int informer_unavailable(informer *inf)
{
    return atomic_load(&inf->unavailable);
}

static json_object *parse_entry(const informer *inf, const objstore_entry *e)
{
    char *text = NULL;
    size_t n = 0;
    int rc = pack_decode(inf->dict, inf->dict_len, e->json, e->len, &text, &n);
    if (rc) {
        if (rc == PACK_EMALFORMED)
            log_error("informer: cached object does not decode", "resource", inf->res->resource,
                      "key", e->key);
        return NULL;
    }
    json_tokener *tok = json_tokener_new_ex(64);
    json_object *o = tok ? json_tokener_parse_ex(tok, text, (int)n) : NULL;
    if (tok) json_tokener_free(tok);
    free(text);
    return o;
}

static uint64_t entry_significance(informer *inf, const objstore_entry *e)
{
    json_object *o = parse_entry(inf, e);
    uint64_t h = o ? significance(inf, o) : 0;
    json_object_put(o);
    return h;
}

json_object *informer_get(informer *inf, const char *key)
{
    json_object *o = NULL;
    pthread_rwlock_rdlock(&inf->lock);
    objstore_entry e;
    if (objstore_get(inf->items, key, &e)) o = parse_entry(inf, &e);
    pthread_rwlock_unlock(&inf->lock);
    return o;
}

typedef struct by_index {
    const informer *inf;
    const char *index;
    json_object *arr;
} by_index;

static int match_index(void *ud, const objstore_entry *e)
{
    by_index *b = ud;
    if (!strcmp(e->index, b->index)) {
        json_object *o = parse_entry(b->inf, e);
        if (o) json_object_array_add(b->arr, o);
    }
    return 0;
}

json_object *informer_list_index(informer *inf, const char *index)
{
    by_index b = {inf, index, json_object_new_array()};
    if (!b.arr) return NULL;
    pthread_rwlock_rdlock(&inf->lock);
    objstore_each(inf->items, match_index, &b);
    pthread_rwlock_unlock(&inf->lock);
    return b.arr;
}

size_t informer_size(informer *inf)
{
    pthread_rwlock_rdlock(&inf->lock);
    size_t n = objstore_count(inf->items);
    pthread_rwlock_unlock(&inf->lock);
    return n;
}

size_t informer_bytes(informer *inf)
{
    pthread_rwlock_rdlock(&inf->lock);
    size_t n = objstore_bytes(inf->items);
    pthread_rwlock_unlock(&inf->lock);
    return n;
}

const char *informer__resource_version(informer *inf)
{
    return inf->rv;
}
