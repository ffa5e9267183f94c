/*
 * libFuzzer target for the watch stream: the framer (arbitrary bytes cut into arbitrary chunks),
 * the event parser, ERROR-event decoding and the informer cache that applies each event.
 * Input: byte 0 picks the event-size cap (small caps exercise the overflow path), byte 1 the
 * chunk-size seed; the rest is the stream. Anything goes in; nothing may crash, leak or grow
 * past the cap.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/kube/framer.h"
#include "../src/kube/informer.h"
#include "../src/common/log.h"

static kube_client *client;

typedef struct ctx {
    informer *inf;
    size_t cap;
} ctx;

static char *index_all(json_object *obj)
{
    json_object *md, *l;
    if (json_object_object_get_ex(obj, "metadata", &md) &&
        json_object_object_get_ex(md, "labels", &l)) {
        json_object *v;
        if (json_object_object_get_ex(l, "serving.kinfer.dev/inferenceservice", &v) &&
            json_object_is_type(v, json_type_string))
            return strdup(json_object_get_string(v));
        return NULL;
    }
    return strdup("none");
}

static int on_frame(void *ud, framer_kind kind, const char *data, size_t len)
{
    ctx *c = ud;
    if (kind == FRAMER_FRAME) {
        if (len > c->cap) abort(); /* the cap must hold */
        watch_type t;
        json_object *o = NULL;
        ctl_status *st = framer_parse_event(data, len, &t, &o);
        if (!st && t == WATCH_ERROR) ctl_status_free(framer_event_error(o));
        json_object_put(o);
        ctl_status_free(st);
        ctl_status_free(informer__apply_event(c->inf, data, len));
        json_object *all = informer_list_index(c->inf, "none");
        json_object_put(all);
    }
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    log_set_level(LOG_LVL_ERROR);
    kube_config cfg = {.server = "https://127.0.0.1:1"}; /* never contacted */
    ctl_status *st = kube_client_create(&cfg, &client);
    if (st) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    ctx c = {.cap = 16 + (size_t)data[0] * 8};
    unsigned seed = data[1];
    data += 2;
    size -= 2;
    informer_config ic = {.res = &kube_res_pods, .index = index_all};
    ctl_status *st = informer_create(client, &ic, &c.inf);
    if (st) abort();
    framer *f = framer_create(c.cap, on_frame, &c);
    size_t off = 0;
    while (off < size) {
        seed = seed * 1103515245u + 12345u;
        size_t n = 1 + (seed >> 16) % 64;
        if (n > size - off) n = size - off;
        if (framer_feed(f, (const char *)data + off, n) < 0) abort();
        off += n;
    }
    if (framer_finish(f) < 0) abort();
    framer_free(f);
    informer_free(c.inf);
    return 0;
}
