/*
 * The fetch flow shared by the remote backends (storage_s3.c, storage_gcs.c): a URI names an
 * object or, failing that, a prefix, so GET the key first (works with read-only object
 * permissions) and on 404 list "key/" page by page and GET every key. The backends supply only
 * what differs: how a list page and an object are requested and how a page is parsed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sigv4.h"
#include "storage_job.h"

/* Lists every key under prefix into *all (capped at job->max_objects). */
static kinfer_status *list_all(storage_job *job, const storage_remote *r, const char *prefix,
                               storage_list_page *all)
{
    kinfer_status *st = NULL;
    char *token = NULL, *etoken = NULL, *eprefix = sigv4_uri_encode(prefix, 0), *body = NULL;
    size_t cap = 0, len = 0;
    memset(all, 0, sizeof(*all));
    if (!eprefix) return kinfer_status_new(KINFER_ENOMEM, "out of memory");
    for (;;) {
        storage_list_page p;
        free(body);
        free(etoken);
        body = etoken = NULL;
        if (token && !(etoken = sigv4_uri_encode(token, 0))) {
            st = kinfer_status_new(KINFER_ENOMEM, "out of memory");
            goto out;
        }
        if ((st = r->list_get(job, r->ctx, eprefix, etoken, &body, &len))) goto out;
        if ((st = r->list_parse(body, len, job->max_objects - all->n_keys, &p))) {
            if (kinfer_status_code(st) == KINFER_ETOOBIG)
                st =
                    kinfer_status_wrap(st, "over KINFER_STORAGE_MAX_OBJECTS=%zu", job->max_objects);
            goto out;
        }
        for (size_t i = 0; i < p.n_keys; i++) {
            if (all->n_keys == cap) {
                size_t ncap = cap ? cap * 2 : 64;
                char **k = realloc(all->keys, ncap * sizeof(*k));
                if (!k) {
                    storage_list_page_clear(&p);
                    st = kinfer_status_new(KINFER_ENOMEM, "out of memory");
                    goto out;
                }
                all->keys = k;
                cap = ncap;
            }
            all->keys[all->n_keys++] = p.keys[i];
            p.keys[i] = NULL;
        }
        p.n_keys = 0;
        int more = p.truncated;
        /* A server that hands back the token it was given would loop forever. */
        if (more && token && !strcmp(token, p.next_token)) {
            storage_list_page_clear(&p);
            st = kinfer_status_new(KINFER_EINVAL, "%s", r->repeated_token_msg);
            goto out;
        }
        free(token);
        token = p.next_token;
        p.next_token = NULL;
        storage_list_page_clear(&p);
        if (!more) break;
    }
out:
    free(token);
    free(etoken);
    free(eprefix);
    free(body);
    if (st) storage_list_page_clear(all);
    return st;
}

kinfer_status *storage__remote_fetch(storage_job *job, const storage_remote *r,
                                     const storage_uri *u)
{
    kinfer_status *st = NULL;
    storage_list_page all = {0};
    char *prefix = NULL;
    size_t klen = strlen(u->key);
    if (klen && u->key[klen - 1] != '/') {
        const char *base = strrchr(u->key, '/'), *why;
        base = base ? base + 1 : u->key;
        if (storage_relpath_check(base, &why)) {
            st = kinfer_status_new(KINFER_EINVAL, "%s://%s/%s: object name '%s' is unusable: %s",
                                   r->scheme, u->bucket, u->key, base, why);
            goto out;
        }
        st = r->get(job, r->ctx, u->key, base);
        if (kinfer_status_code(st) != KINFER_ENOTFOUND) goto out;
        kinfer_status_free(st);
        st = NULL;
        if (asprintf(&prefix, "%s/", u->key) < 0) prefix = NULL;
    } else {
        prefix = strdup(u->key);
    }
    if (!prefix) {
        st = kinfer_status_new(KINFER_ENOMEM, "out of memory");
        goto out;
    }
    if ((st = list_all(job, r, prefix, &all))) goto out;
    for (size_t i = 0; i < all.n_keys; i++) {
        const char *rel;
        if ((st = storage__job_relpath(prefix, all.keys[i], &rel))) goto out;
        if (rel && (st = r->get(job, r->ctx, all.keys[i], rel))) goto out;
    }
    if (job->n_files == 0)
        st = kinfer_status_new(KINFER_ENOTFOUND,
                               "%s://%s/%s: no such object, and no objects under %s://%s/%s",
                               r->scheme, u->bucket, u->key, r->scheme, u->bucket, prefix);
out:
    storage_list_page_clear(&all);
    free(prefix);
    return st;
}
