#define _GNU_SOURCE
#include "log.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int hutch_log_level = HUTCH_LOG_WARN;
static const char *log_program = "hutch";

void
hutch_log_init (const char *program, int level)
{
  static const char *const names[] = { "error", "warn", "info", "debug" };
  const char *env = getenv ("HUTCH_LOG");

  log_program = program;
  hutch_log_level = level;
  if (env == NULL)
    return;
  for (size_t i = 0; i < ARRAY_SIZE (names); i++)
    if (strcmp (env, names[i]) == 0)
      hutch_log_level = (int)i;
}

void
hutch_log_write (int level, const char *fmt, ...)
{
  static const char *const tags[] = { "error", "warning", "info", "debug" };
  char line[4096];
  int off;
  va_list ap;

  if (level == HUTCH_LOG_INFO || level == HUTCH_LOG_DEBUG)
    {
      struct timespec ts;
      struct tm tm;
      clock_gettime (CLOCK_REALTIME, &ts);
      gmtime_r (&ts.tv_sec, &tm);
      off = snprintf (line, sizeof line,
                      "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s: %s: ", tm.tm_year + 1900,
                      tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                      ts.tv_nsec / 1000000, log_program, tags[level]);
    }
  else
    off = snprintf (line, sizeof line, "%s: %s: ", log_program, tags[level]);
  va_start (ap, fmt);
  vsnprintf (line + off, sizeof line - (size_t)off - 1, fmt, ap);
  va_end (ap);
  off = (int)strlen (line);
  line[off++] = '\n';
  (void)write_all (STDERR_FILENO, line, (size_t)off);
}
