/*
 * One JSON object per line on stderr: {"ts":"...","level":"info","msg":"...",key:value...}.
 * Keys and values are strings given in pairs and ended by NULL, so a log call never formats
 * user data into the message. Thread-safe: each line is written with one write(2).
 * It does not rotate, buffer or ship logs; the container runtime does that.
 */
#ifndef KINFER_CTL_LOG_H
#define KINFER_CTL_LOG_H

typedef enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR } log_level;

/* Lines below level are dropped. Default: LOG_LVL_INFO. */
void log_set_level(log_level level);
/* Redirects output to fd (tests); default 2. */
void log_set_fd(int fd);
/* log_write(LOG_LVL_INFO, "applied", "key", "ns/name", "kind", "Deployment", NULL).
 * NULL values are written as JSON null. */
void log_write(log_level level, const char *msg, ...) __attribute__((sentinel));

#define log_debug(...) log_write(LOG_LVL_DEBUG, __VA_ARGS__, (const char *)NULL)
#define log_info(...)  log_write(LOG_LVL_INFO, __VA_ARGS__, (const char *)NULL)
#define log_warn(...)  log_write(LOG_LVL_WARN, __VA_ARGS__, (const char *)NULL)
#define log_error(...) log_write(LOG_LVL_ERROR, __VA_ARGS__, (const char *)NULL)

#endif
