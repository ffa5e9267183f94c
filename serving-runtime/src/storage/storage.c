/*
 * Model storage front end: picks the backend for a URI, stages every object under a hidden
 * directory inside the destination, verifies, then moves the files into place (model files
 * last), so a crash or a failed transfer never leaves a partial model where a loader looks.
 * Also the `fetch` subcommand. Backends: storage_s3.c, storage_gcs.c; HTTP(S) and local paths
 * are here. See storage.h and docs/storage.md.
 */
#include "storage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "storage_job.h"
#include "../log/log.h"

#define DEFAULT_RETRIES   3
#define DEFAULT_TIMEOUT_S 30
#define LOCAL_MAX_DEPTH   32

int storage__env_flag(const char *name, int dflt)
{
    const char *v = getenv(name);
    if (!v || !*v) return dflt;
    if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on"))
        return 1;
    if (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off"))
        return 0;
    return dflt;
}

static size_t env_size(const char *name, size_t dflt, size_t lo, size_t hi)
{
    const char *v = getenv(name);
    char *end;
    if (!v || !*v) return dflt;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || *end || n < lo || n > hi) return dflt;
    return (size_t)n;
}

static const char *err_name(kinfer_err e)
{
    static const char *names[] = {"OK",       "ENOMEM",   "EINVAL",  "EMODEL",    "EUNSUPPORTED",
                                  "ESHAPE",   "EDTYPE",   "EIO",     "ENOTFOUND", "EFULL",
                                  "ETIMEOUT", "EUNAVAIL", "ETOOBIG", "EAUTH",     "ECHECKSUM",
                                  "EHTTP",    "EINTERNAL"};
    return (size_t)e < sizeof(names) / sizeof(names[0]) ? names[e] : "E?";
}

/* mkdir -p of dir (whose parents may exist or not). */
/* Milliseconds on the monotonic clock since *t0, for the log's "ms" fields. */
static int64_t ms_since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (int64_t)(t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

static int mkdirs(const char *dir)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s", dir) >= (int)sizeof(tmp)) return errno = ENAMETOOLONG, -1;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0755) && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0755) && errno != EEXIST) return -1;
    struct stat sb;
    if (stat(tmp, &sb)) return -1;
    return S_ISDIR(sb.st_mode) ? 0 : (errno = ENOTDIR, -1);
}

static kinfer_status *parent_dirs(const char *root, const char *rel)
{
    const char *slash = strrchr(rel, '/');
    if (!slash) return NULL;
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof(dir), "%s/%.*s", root, (int)(slash - rel), rel) >= (int)sizeof(dir))
        return kinfer_status_new(KINFER_EINVAL, "path too long: %s/%s", root, rel);
    if (mkdirs(dir))
        return kinfer_status_new(KINFER_EIO, "cannot create directory %s: %s", dir,
                                 strerror(errno));
    return NULL;
}

static kinfer_status *job_record(storage_job *job, const char *rel)
{
    for (size_t i = 0; i < job->n_files; i++)
        if (!strcmp(job->files[i], rel))
            return kinfer_status_new(KINFER_EINVAL, "two objects map to the same file '%s'", rel);
    if (job->n_files == job->cap_files) {
        size_t ncap = job->cap_files ? job->cap_files * 2 : 16;
        char **f = realloc(job->files, ncap * sizeof(*f));
        if (!f) return kinfer_status_new(KINFER_ENOMEM, "out of memory");
        job->files = f;
        job->cap_files = ncap;
    }
    if (!(job->files[job->n_files] = strdup(rel)))
        return kinfer_status_new(KINFER_ENOMEM, "out of memory");
    job->n_files++;
    return NULL;
}

kinfer_status *storage__job_relpath(const char *prefix, const char *key, const char **rel)
{
    const char *why;
    size_t plen = strlen(prefix), klen = strlen(key);
    *rel = NULL;
    if (plen && prefix[plen - 1] != '/' && !strcmp(key, prefix)) {
        const char *base = strrchr(key, '/');
        *rel = base ? base + 1 : key;
    } else if (klen > plen && !strncmp(key, prefix, plen) &&
               (plen == 0 || prefix[plen - 1] == '/')) {
        if (key[klen - 1] == '/') return NULL; /* a "directory" marker object */
        *rel = key + plen;
    } else {
        return NULL;
    }
    if (storage_relpath_check(*rel, &why)) {
        kinfer_status *st =
            kinfer_status_new(KINFER_EINVAL, "refusing object key '%s': %s", key, why);
        *rel = NULL;
        return st;
    }
    return NULL;
}

kinfer_status *storage__job_download(storage_job *job, const char *url, storage_http_headers_fn fn,
                                     void *ctx, const char *rel)
{
    kinfer_status *st;
    char path[PATH_MAX];
    long long bytes = 0;
    struct timespec t0;
    if (snprintf(path, sizeof(path), "%s/%s", job->staging, rel) >= (int)sizeof(path))
        return kinfer_status_new(KINFER_EINVAL, "path too long: %s/%s", job->staging, rel);
    if ((st = parent_dirs(job->staging, rel))) return st;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if ((st = storage_http_get_file(job->http, url, fn, ctx, path, job->last_sha256, &bytes)))
        return st;
    job->total_bytes += bytes;
    json_object *f = json_object_new_object();
    json_object_object_add(f, "file", json_object_new_string(rel));
    json_object_object_add(f, "bytes", json_object_new_int64(bytes));
    json_object_object_add(f, "sha256", json_object_new_string(job->last_sha256));
    json_object_object_add(f, "ms", json_object_new_int64(ms_since(&t0)));
    kinfer_log_fields("info", "storage", "object.done", f);
    return job_record(job, rel);
}

/* ---- local sources (file://, plain paths, pvc://) ---- */

static kinfer_status *copy_file(storage_job *job, const char *src, const char *rel)
{
    kinfer_status *st = NULL;
    char dst[PATH_MAX], buf[1 << 16];
    int in = -1, out = -1;
    long long bytes = 0;
    EVP_MD_CTX *sha = EVP_MD_CTX_new();
    if (!sha) return kinfer_status_new(KINFER_ENOMEM, "out of memory");
    EVP_DigestInit_ex(sha, EVP_sha256(), NULL);
    if (snprintf(dst, sizeof(dst), "%s/%s", job->staging, rel) >= (int)sizeof(dst)) {
        st = kinfer_status_new(KINFER_EINVAL, "path too long: %s/%s", job->staging, rel);
        goto out;
    }
    if ((st = parent_dirs(job->staging, rel))) goto out;
    if ((in = open(src, O_RDONLY | O_CLOEXEC)) < 0) {
        st = kinfer_status_new(errno == ENOENT ? KINFER_ENOTFOUND : KINFER_EIO, "open %s: %s", src,
                               strerror(errno));
        goto out;
    }
    if ((out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
        st = kinfer_status_new(KINFER_EIO, "create %s: %s", dst, strerror(errno));
        goto out;
    }
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            st = kinfer_status_new(KINFER_EIO, "read %s: %s", src, strerror(errno));
            goto out;
        }
        if (n == 0) break;
        EVP_DigestUpdate(sha, buf, (size_t)n);
        for (ssize_t off = 0; off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) {
                st = kinfer_status_new(KINFER_EIO, "write %s: %s", dst, strerror(errno));
                goto out;
            }
            off += w;
        }
        bytes += n;
    }
    if (fsync(out)) {
        st = kinfer_status_new(KINFER_EIO, "fsync %s: %s", dst, strerror(errno));
        goto out;
    }
    unsigned char md[32];
    unsigned int mdlen;
    EVP_DigestFinal_ex(sha, md, &mdlen);
    for (int i = 0; i < 32; i++) snprintf(job->last_sha256 + 2 * i, 3, "%02x", md[i]);
    job->total_bytes += bytes;
    st = job_record(job, rel);
out:
    if (in >= 0) close(in);
    if (out >= 0 && close(out) && !st)
        st = kinfer_status_new(KINFER_EIO, "close %s: %s", dst, strerror(errno));
    EVP_MD_CTX_free(sha);
    return st;
}

/* Copies the tree under src/rel (rel "" at the top). skip_dev/skip_ino is the destination, which
 * may lie inside the source and must not be copied into itself. */
static kinfer_status *copy_tree(storage_job *job, const char *src, const char *rel, int depth,
                                dev_t skip_dev, ino_t skip_ino)
{
    kinfer_status *st = NULL;
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof(dir), "%s%s%s", src, *rel ? "/" : "", rel) >= (int)sizeof(dir))
        return kinfer_status_new(KINFER_EINVAL, "path too long under %s", src);
    if (depth > LOCAL_MAX_DEPTH)
        return kinfer_status_new(KINFER_EINVAL, "%s: directories nested over %d deep", dir,
                                 LOCAL_MAX_DEPTH);
    DIR *d = opendir(dir);
    if (!d) return kinfer_status_new(KINFER_EIO, "opendir %s: %s", dir, strerror(errno));
    struct dirent *e;
    while (!st && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
            !strncmp(e->d_name, ".kinfer-fetch-", 14))
            continue;
        char child[PATH_MAX], crel[PATH_MAX];
        struct stat sb;
        if (snprintf(child, sizeof(child), "%s/%s", dir, e->d_name) >= (int)sizeof(child) ||
            snprintf(crel, sizeof(crel), "%s%s%s", rel, *rel ? "/" : "", e->d_name) >=
                (int)sizeof(crel)) {
            st = kinfer_status_new(KINFER_EINVAL, "path too long under %s", dir);
            break;
        }
        if (stat(child, &sb)) {
            st = kinfer_status_new(KINFER_EIO, "stat %s: %s", child, strerror(errno));
        } else if (S_ISDIR(sb.st_mode)) {
            if (sb.st_dev != skip_dev || sb.st_ino != skip_ino)
                st = copy_tree(job, src, crel, depth + 1, skip_dev, skip_ino);
        } else if (S_ISREG(sb.st_mode)) {
            st = copy_file(job, child, crel);
        } /* sockets, fifos and devices are not model files: skipped */
    }
    closedir(d);
    return st;
}

static kinfer_status *fetch_local(storage_job *job, const char *src, const char *dest,
                                  int *in_place)
{
    struct stat sb, db;
    char rs[PATH_MAX], rd[PATH_MAX];
    *in_place = 0;
    if (stat(src, &sb))
        return kinfer_status_new(errno == ENOENT ? KINFER_ENOTFOUND : KINFER_EIO,
                                 "model path %s: %s", src, strerror(errno));
    if (!realpath(src, rs) || !realpath(dest, rd) || stat(dest, &db))
        return kinfer_status_new(KINFER_EIO, "resolving %s / %s: %s", src, dest, strerror(errno));
    if (S_ISDIR(sb.st_mode) && !strcmp(rs, rd)) {
        *in_place = 1; /* already where the model belongs: a pvc mount used in place */
        return NULL;
    }
    if (S_ISREG(sb.st_mode)) {
        const char *base = strrchr(rs, '/');
        return copy_file(job, rs, base ? base + 1 : rs);
    }
    if (!S_ISDIR(sb.st_mode))
        return kinfer_status_new(KINFER_EINVAL, "model path %s is not a file or directory", src);
    kinfer_status *st = copy_tree(job, rs, "", 0, db.st_dev, db.st_ino);
    if (!st && job->n_files == 0)
        st = kinfer_status_new(KINFER_ENOTFOUND, "model directory %s has no files", src);
    return st;
}

static kinfer_status *fetch_http(storage_job *job, const char *url)
{
    size_t end = strcspn(url, "?#");
    const char *host = strstr(url, "://") + 3;
    const char *path = memchr(host, '/', (size_t)(url + end - host));
    const char *base = NULL, *why;
    char name[256];
    if (path) {
        base = path;
        for (const char *p = path; p < url + end; p++)
            if (*p == '/') base = p + 1;
    }
    size_t n = base ? (size_t)(url + end - base) : 0;
    if (n == 0 || n >= sizeof(name))
        return kinfer_status_new(KINFER_EINVAL,
                                 "cannot name a file after URL %.*s (no last path segment)",
                                 (int)end, url);
    memcpy(name, base, n);
    name[n] = '\0';
    if (storage_relpath_check(name, &why))
        return kinfer_status_new(KINFER_EINVAL, "URL's file name '%s' is unusable: %s", name, why);
    return storage__job_download(job, url, NULL, NULL, name);
}

/* ---- staging and commit ---- */

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    return flag == FTW_DP ? rmdir(p) : unlink(p);
}

#define STAGING_PREFIX ".kinfer-fetch-"
#define STAGING_LOCK   ".lock"

/* A staging directory is in use while its fetch holds flock() on its .lock file; the kernel drops
 * the lock when that process dies, however it dies. A directory whose lock can be taken is what
 * a killed fetch left behind (an init container restarting into the same emptyDir) and is
 * removed, so partial downloads cannot pile up. One without a lock file is either a fetch in its
 * first instant or one killed in that instant: removed only once a minute old. */
static void remove_stale_staging(const char *dest)
{
    DIR *d = opendir(dest);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        char dir[PATH_MAX], lock[PATH_MAX];
        struct stat sb;
        if (strncmp(e->d_name, STAGING_PREFIX, strlen(STAGING_PREFIX)) ||
            snprintf(dir, sizeof(dir), "%s/%s", dest, e->d_name) >= (int)sizeof(dir) ||
            snprintf(lock, sizeof(lock), "%s/" STAGING_LOCK, dir) >= (int)sizeof(lock) ||
            lstat(dir, &sb) || !S_ISDIR(sb.st_mode))
            continue;
        int fd = open(lock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        int stale = fd >= 0 ? flock(fd, LOCK_EX | LOCK_NB) == 0 : time(NULL) - sb.st_mtime > 60;
        if (stale) {
            nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
            json_object *f = json_object_new_object();
            json_object_object_add(f, "dir", json_object_new_string(dir));
            kinfer_log_fields("warn", "storage", "staging.removed", f);
        }
        if (fd >= 0) close(fd);
    }
    closedir(d);
}

static int is_model_file(const char *rel)
{
    size_t n = strlen(rel);
    return n >= 5 && !strcmp(rel + n - 5, ".onnx");
}

/* Moves every staged file into dest. Model files go last so that a loader which finds one also
 * finds the external-data files it names. */
static kinfer_status *commit(storage_job *job, const char *dest)
{
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < job->n_files; i++) {
            const char *rel = job->files[i];
            if (is_model_file(rel) != pass) continue;
            char from[PATH_MAX], to[PATH_MAX];
            kinfer_status *st;
            if (snprintf(from, sizeof(from), "%s/%s", job->staging, rel) >= (int)sizeof(from) ||
                snprintf(to, sizeof(to), "%s/%s", dest, rel) >= (int)sizeof(to))
                return kinfer_status_new(KINFER_EINVAL, "path too long: %s/%s", dest, rel);
            if ((st = parent_dirs(dest, rel))) return st;
            if (rename(from, to))
                return kinfer_status_new(KINFER_EIO, "rename %s -> %s: %s", from, to,
                                         strerror(errno));
        }
    }
    int dfd = open(dest, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd); /* make the renames durable before the server is told the model is there */
        close(dfd);
    }
    return NULL;
}

static int valid_sha256(const char *s)
{
    if (strlen(s) != 64) return 0;
    for (int i = 0; i < 64; i++)
        if (!strchr("0123456789abcdefABCDEF", s[i])) return 0;
    return 1;
}

/* A fresh staging directory in dest_dir (stale ones from a crash removed first), locked so a
 * concurrent fetch into the same dest_dir never removes it. local: scratch of PATH_MAX. */
static kinfer_status *open_staging(storage_job *job, const char *dest_dir, char *staging,
                                   char *local, int *lock_fd)
{
    if (mkdirs(dest_dir))
        return kinfer_status_new(KINFER_EIO, "cannot create %s: %s", dest_dir, strerror(errno));
    remove_stale_staging(dest_dir);
    if (snprintf(staging, PATH_MAX, "%s/" STAGING_PREFIX "XXXXXX", dest_dir) >= PATH_MAX ||
        !mkdtemp(staging))
        return kinfer_status_new(KINFER_EIO, "cannot create a staging directory in %s: %s",
                                 dest_dir, strerror(errno));
    job->staging = staging;
    if (snprintf(local, PATH_MAX, "%s/" STAGING_LOCK, staging) >= PATH_MAX ||
        (*lock_fd = open(local, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0 ||
        flock(*lock_fd, LOCK_EX))
        return kinfer_status_new(KINFER_EIO, "cannot lock staging directory %s: %s", staging,
                                 strerror(errno));
    return NULL;
}

/* The job's limits (from the environment) and its HTTP client. */
static kinfer_status *job_configure(storage_job *job, const storage_options *opts)
{
    job->endpoint = opts->endpoint;
    job->max_objects = env_size("KINFER_STORAGE_MAX_OBJECTS", 10000, 1, 1000000);
    job->page_size = env_size("KINFER_STORAGE_PAGE_SIZE", 1000, 1, 1000);
    job->list_max_bytes = 16u << 20;
    storage_http_config hc = {
        .retries = opts->retries < 0 ? DEFAULT_RETRIES : opts->retries,
        .timeout_s = opts->timeout_s > 0 ? opts->timeout_s : DEFAULT_TIMEOUT_S,
        .backoff_ms = (long)env_size("KINFER_STORAGE_BACKOFF_MS", 500, 1, 60000),
        .insecure = !storage__env_flag("S3_VERIFY_SSL", 1),
        .cainfo =
            getenv("AWS_CA_BUNDLE") && *getenv("AWS_CA_BUNDLE") ? getenv("AWS_CA_BUNDLE") : NULL,
    };
    if (!(job->http = storage_http_create(&hc)))
        return kinfer_status_new(KINFER_ENOMEM, "cannot initialize libcurl");
    return NULL;
}

/* Fetches u into the job's staging directory (or, for a local directory that is dest_dir
 * itself, uses it in place: *in_place). local: scratch of PATH_MAX. */
static kinfer_status *fetch_by_scheme(storage_job *job, const storage_uri *u, const char *dest_dir,
                                      char *local, int *in_place)
{
    switch (u->scheme) {
    case STORAGE_SCHEME_S3:
        return storage__s3_fetch(job, u);
    case STORAGE_SCHEME_GS:
        return storage__gcs_fetch(job, u);
    case STORAGE_SCHEME_HTTP:
        return fetch_http(job, u->url);
    case STORAGE_SCHEME_LOCAL:
        return fetch_local(job, u->path, dest_dir, in_place);
    case STORAGE_SCHEME_PVC: {
        const char *root = getenv("KINFER_PVC_MOUNT") && *getenv("KINFER_PVC_MOUNT")
                               ? getenv("KINFER_PVC_MOUNT")
                               : "/mnt/pvc";
        if (snprintf(local, PATH_MAX, "%s/%s", root, u->key) >= PATH_MAX)
            return kinfer_status_new(KINFER_EINVAL, "pvc path too long");
        return fetch_local(job, local, dest_dir, in_place);
    }
    }
    return NULL;
}

/* --sha256: only for a single file, and it must match. */
static kinfer_status *check_sha256(const storage_job *job, const char *uri, const char *want)
{
    if (!want) return NULL;
    if (job->n_files != 1)
        return kinfer_status_new(KINFER_EINVAL,
                                 "--sha256 applies to a single-file model; %s has %zu files", uri,
                                 job->n_files);
    if (strcasecmp(job->last_sha256, want))
        return kinfer_status_new(KINFER_ECHECKSUM, "%s: sha256 is %s, expected %s (file discarded)",
                                 job->files[0], job->last_sha256, want);
    return NULL;
}

/* The fetch.done or fetch.error log line. */
static void log_fetch_end(const char *uri, const struct timespec *t0, const kinfer_status *st,
                          const storage_job *job, int in_place)
{
    json_object *f = json_object_new_object();
    json_object_object_add(f, "uri", json_object_new_string(uri ? uri : ""));
    json_object_object_add(f, "ms", json_object_new_int64(ms_since(t0)));
    if (st) {
        json_object_object_add(f, "code", json_object_new_string(err_name(kinfer_status_code(st))));
        json_object_object_add(f, "error", json_object_new_string(kinfer_status_msg(st)));
        kinfer_log_fields("error", "storage", "fetch.error", f);
    } else {
        json_object_object_add(f, "files", json_object_new_int64((int64_t)job->n_files));
        json_object_object_add(f, "bytes", json_object_new_int64(job->total_bytes));
        json_object_object_add(f, "in_place", json_object_new_boolean(in_place));
        kinfer_log_fields("info", "storage", "fetch.done", f);
    }
}

kinfer_status *storage_fetch(const char *uri, const char *dest_dir, const storage_options *opts)
{
    kinfer_status *st = NULL;
    storage_options defaults = {.retries = -1};
    storage_uri u = {0};
    storage_job job = {0};
    char staging[PATH_MAX], local[PATH_MAX];
    int in_place = 0, lock_fd = -1;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (!opts) opts = &defaults;
    kinfer_log_set_quiet(opts->quiet);
    if (!dest_dir || !*dest_dir)
        return kinfer_status_new(KINFER_EINVAL, "no destination directory");
    if (opts->sha256 && !valid_sha256(opts->sha256))
        return kinfer_status_new(KINFER_EINVAL, "--sha256 wants 64 hex digits, got '%.80s'",
                                 opts->sha256);
    if ((st = storage_uri_parse(uri, &u))) return st;

    json_object *f = json_object_new_object();
    json_object_object_add(f, "uri", json_object_new_string(uri));
    json_object_object_add(f, "dest", json_object_new_string(dest_dir));
    kinfer_log_fields("info", "storage", "fetch.start", f);

    if ((st = open_staging(&job, dest_dir, staging, local, &lock_fd))) goto out;
    if ((st = job_configure(&job, opts))) goto out;
    if ((st = fetch_by_scheme(&job, &u, dest_dir, local, &in_place))) goto out;
    if ((st = check_sha256(&job, uri, opts->sha256))) goto out;
    st = commit(&job, dest_dir);
out:
    if (job.staging) nftw(job.staging, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (lock_fd >= 0) close(lock_fd);
    log_fetch_end(uri, &t0, st, &job, in_place);
    for (size_t i = 0; i < job.n_files; i++) free(job.files[i]);
    free(job.files);
    storage_http_destroy(job.http);
    storage_uri_clear(&u);
    return st;
}

static void usage(FILE *out, const char *prog)
{
    fprintf(out,
            "usage: %s fetch URI DIR [--sha256 HEX] [--retries N] [--timeout SECONDS] [--endpoint "
            "URL] [--quiet]\n"
            "  URI: s3://BUCKET/KEY-OR-PREFIX, gs://BUCKET/PATH, http(s)://..., file:///PATH, "
            "pvc://CLAIM/PATH, PATH\n"
            "  Downloads the model into DIR atomically. Environment: see docs/storage.md.\n",
            prog);
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* Value of --name VALUE or --name=VALUE at argv[*i] (advancing *i), or NULL if argv[*i] is not
 * that option. *missing is set when the option is there but its value is not. */
static const char *opt_value(int argc, char **argv, int *i, const char *name, int *missing)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n)) return NULL;
    if (argv[*i][n] == '=') return argv[*i] + n + 1;
    if (argv[*i][n]) return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
}

int storage_fetch_main(int argc, char **argv)
{
    const char *prog = argc > 0 && argv[0]
                           ? (strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0])
                           : "kinfer-server";
    const char *pos[2] = {NULL, NULL}, *val;
    storage_options o = {.retries = -1};
    int npos = 0;
    long v;
    /* argv[1] is "fetch"; options and the two positionals may come in any order. */
    for (int i = 2; i < argc; i++) {
        int missing = 0;
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            usage(stdout, prog);
            return 0;
        } else if (!strcmp(arg, "--quiet")) {
            o.quiet = 1;
        } else if ((val = opt_value(argc, argv, &i, "--sha256", &missing))) {
            o.sha256 = val;
        } else if ((val = opt_value(argc, argv, &i, "--endpoint", &missing))) {
            o.endpoint = val;
        } else if ((val = opt_value(argc, argv, &i, "--retries", &missing))) {
            if (parse_long(val, 0, 100, &v)) {
                fprintf(stderr, "%s fetch: --retries wants an integer 0..100, got '%s'\n", prog,
                        val);
                return 2;
            }
            o.retries = (int)v;
        } else if ((val = opt_value(argc, argv, &i, "--timeout", &missing))) {
            if (parse_long(val, 1, 86400, &v)) {
                fprintf(stderr, "%s fetch: --timeout wants seconds 1..86400, got '%s'\n", prog,
                        val);
                return 2;
            }
            o.timeout_s = v;
        } else if (missing) {
            fprintf(stderr, "%s fetch: option '%s' needs a value\n", prog, arg);
            return 2;
        } else if (arg[0] == '-' && arg[1]) {
            fprintf(stderr, "%s fetch: unknown option '%s'\n", prog, arg);
            usage(stderr, prog);
            return 2;
        } else if (npos == 2) {
            fprintf(stderr, "%s fetch: unexpected argument '%s'\n", prog, arg);
            return 2;
        } else {
            pos[npos++] = arg;
        }
        if (missing) {
            fprintf(stderr, "%s fetch: option '%s' needs a value\n", prog, arg);
            return 2;
        }
    }
    if (npos != 2) {
        fprintf(stderr, "%s fetch: need URI and DIR\n", prog);
        usage(stderr, prog);
        return 2;
    }
    kinfer_status *st = storage_fetch(pos[0], pos[1], &o);
    if (!st) return 0;
    fprintf(stderr, "%s fetch: %s: %s\n", prog, err_name(kinfer_status_code(st)),
            kinfer_status_msg(st));
    kinfer_status_free(st);
    return 1;
}
