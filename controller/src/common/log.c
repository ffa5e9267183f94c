/* JSON log lines; see log.h. Built with json-c so every string is escaped correctly. */
#include "log.h"

#include <json.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static _Atomic int min_level = LOG_LVL_INFO;
static _Atomic int out_fd = 2;

void log_set_level(log_level level)
{
    min_level = level;
}
void log_set_fd(int fd)
{
    out_fd = fd;
}

static const char *level_name(log_level l)
{
    switch (l) {
    case LOG_LVL_DEBUG:
        return "debug";
    case LOG_LVL_INFO:
        return "info";
    case LOG_LVL_WARN:
        return "warn";
    case LOG_LVL_ERROR:
        return "error";
    }
    return "info";
}

void log_write(log_level level, const char *msg, ...)
{
    if ((int)level < min_level) return;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    char ts[40];
    size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03dZ", (int)(tv.tv_usec / 1000));

    json_object *o = json_object_new_object();
    if (!o) return;
    json_object_object_add(o, "ts", json_object_new_string(ts));
    json_object_object_add(o, "level", json_object_new_string(level_name(level)));
    json_object_object_add(o, "msg", json_object_new_string(msg ? msg : ""));
    va_list ap;
    va_start(ap, msg);
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (!k) break;
        const char *v = va_arg(ap, const char *);
        json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
    }
    va_end(ap);
    size_t len = 0;
    const char *s = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    char buf[8192];
    if (s && len < sizeof(buf)) {
        memcpy(buf, s, len);
        buf[len] = '\n';
        ssize_t w = write(out_fd, buf, len + 1);
        (void)w;
    } else if (s) {
        /* Long lines go in two writes; interleaving is possible but rare and harmless. */
        ssize_t w = write(out_fd, s, len);
        w = write(out_fd, "\n", 1);
        (void)w;
    }
    json_object_put(o);
}
