#define _GNU_SOURCE
#include "error.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
hutch_make_error (hutch_error_t *err, int status, const char *fmt, ...)
{
  cleanup_free char *msg = NULL;
  va_list ap;
  struct hutch_error_s *e;

  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) < 0)
    msg = NULL;
  va_end (ap);

  e = xzalloc (sizeof *e);
  e->status = status;
  if (status != 0)
    xasprintf (&e->msg, "%s: %s", msg ? msg : "error", strerror (status));
  else
    e->msg = xstrdup (msg ? msg : "error");

  hutch_error_release (err);
  *err = e;
  return -status - 1;
}

int
hutch_error_wrap (hutch_error_t *err, const char *fmt, ...)
{
  cleanup_free char *ctx = NULL;
  char *joined;
  va_list ap;

  if (*err == NULL)
    return -1;
  va_start (ap, fmt);
  if (vasprintf (&ctx, fmt, ap) < 0)
    ctx = NULL;
  va_end (ap);
  if (ctx)
    {
      xasprintf (&joined, "%s: %s", ctx, (*err)->msg);
      free ((*err)->msg);
      (*err)->msg = joined;
    }
  return -(*err)->status - 1;
}

void
hutch_error_release (hutch_error_t *err)
{
  if (err == NULL || *err == NULL)
    return;
  free ((*err)->msg);
  free (*err);
  *err = NULL;
}
