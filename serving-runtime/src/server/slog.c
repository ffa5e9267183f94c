/* JSON-lines logging; see slog.h. */
#include "slog.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../protocol/pbuf.h"

void slog_event(const char *level, const char *event, const char *fmt, ...)
{
    char msg[1024], ts[40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", now.tv_nsec / 1000000);
    pbuf b;
    pbuf_init(&b, 0, 8192);
    pbuf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"event\":\"%s\",\"msg\":", ts, level, event);
    pbuf_add_json_str(&b, msg, strlen(msg));
    pbuf_adds(&b, "}\n");
    if (!pbuf_failed(&b)) {
        ssize_t w = write(STDERR_FILENO, pbuf_data(&b), b.len);
        (void)w;
    }
    pbuf_free(&b);
}
