/* Levelled logging to stderr.  Library code logs only at debug level; the
   programs log once where they handle an error.  The level comes from
   hutch_log_init() or the HUTCH_LOG environment variable
   (error, warn, info, debug).  */
#pragma once

enum hutch_log_level
{
  HUTCH_LOG_ERROR,
  HUTCH_LOG_WARN,
  HUTCH_LOG_INFO,
  HUTCH_LOG_DEBUG,
};

extern int hutch_log_level;

/* PROGRAM prefixes every line; LEVEL may be overridden by $HUTCH_LOG.  */
void hutch_log_init (const char *program, int level);

void hutch_log_write (int level, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

#define hutch_log(level, ...)                                                                      \
  do                                                                                               \
    {                                                                                              \
      if ((level) <= hutch_log_level)                                                              \
        hutch_log_write ((level), __VA_ARGS__);                                                    \
    }                                                                                              \
  while (0)

#define log_error(...) hutch_log (HUTCH_LOG_ERROR, __VA_ARGS__)
#define log_warn(...) hutch_log (HUTCH_LOG_WARN, __VA_ARGS__)
#define log_info(...) hutch_log (HUTCH_LOG_INFO, __VA_ARGS__)
#define log_debug(...) hutch_log (HUTCH_LOG_DEBUG, __VA_ARGS__)
