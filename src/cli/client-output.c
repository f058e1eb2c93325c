/* What the client commands print: JSON for scripts, tables for people.  */
#define _GNU_SOURCE
#include "client.h"
#include "libhutch/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
client_print_json (json_t *value)
{
  json_dumpf (value, stdout, JSON_INDENT (2) | JSON_ENCODE_ANY);
  fputc ('\n', stdout);
  fflush (stdout);
}

int
client_write (int fd, const char *buf, size_t len)
{
  if (write_all (fd, buf, len) == 0)
    return 0;
  /* A reader that went away (`| head`, SIGPIPE ignored) needs no message.  */
  if (errno != EPIPE)
    fprintf (stderr, "hutch: writing to %s: %s\n", fd == 2 ? "stderr" : "stdout", strerror (errno));
  return CLIENT_EXIT_FAILURE;
}

const char *
client_format_time (const char *rfc3339, char *buf, size_t size)
{
  static const char shape[] = "dddd-dd-ddTdd:dd:dd";
  size_t n = sizeof shape - 1;

  if (rfc3339 == NULL)
    return "";
  for (size_t i = 0; i < n; i++)
    if (rfc3339[i] == '\0'
        || (shape[i] == 'd' ? rfc3339[i] < '0' || rfc3339[i] > '9' : rfc3339[i] != shape[i]))
      return rfc3339;
  /* Only UTC times are shortened: an offset would be lost.  */
  if (rfc3339[n] != 'Z' && !(rfc3339[n] == '.' && rfc3339[strlen (rfc3339) - 1] == 'Z'))
    return rfc3339;
  snprintf (buf, size, "%.*sZ", (int)n, rfc3339);
  return buf;
}

void
client_strip_ansi (char *s)
{
  char *out = s;

  while (*s)
    {
      if (*s != '\033')
        {
          *out++ = *s++;
          continue;
        }
      s++;
      if (*s == '[')
        {
          /* CSI: parameters and intermediates, then one final byte.  */
          for (s++; *s && !(*s >= 0x40 && *s <= 0x7e); s++)
            ;
          if (*s)
            s++;
        }
      else if (*s)
        s++;
    }
  *out = '\0';
}

void
table_init (struct table *t, size_t ncols, const char *const *header)
{
  memset (t, 0, sizeof *t);
  t->ncols = ncols;
  table_add (t, header);
}

void
table_add (struct table *t, const char *const *row)
{
  if (t->nrows == t->cap)
    {
      t->cap = t->cap ? t->cap * 2 : 16;
      t->cells = xrealloc (t->cells, t->cap * t->ncols * sizeof (char *));
    }
  for (size_t i = 0; i < t->ncols; i++)
    t->cells[t->nrows * t->ncols + i] = xstrdup (row[i] ? row[i] : "");
  t->nrows++;
}

static int
compare_rows (const void *a, const void *b, void *arg)
{
  char *const *ra = a, *const *rb = b;
  size_t col = *(const size_t *)arg;
  return strcmp (ra[col], rb[col]);
}

void
table_sort (struct table *t, size_t col)
{
  /* Rows are NCOLS consecutive pointers: sort them as blocks.  */
  if (t->nrows > 2)
    qsort_r (t->cells + t->ncols, t->nrows - 1, t->ncols * sizeof (char *), compare_rows, &col);
}

void
table_print (const struct table *t)
{
  cleanup_free size_t *width = xzalloc (t->ncols * sizeof (size_t));

  for (size_t r = 0; r < t->nrows; r++)
    for (size_t i = 0; i < t->ncols; i++)
      {
        size_t w = strlen (t->cells[r * t->ncols + i]);
        if (w > width[i])
          width[i] = w;
      }
  for (size_t r = 0; r < t->nrows; r++)
    {
      for (size_t i = 0; i + 1 < t->ncols; i++)
        printf ("%-*s  ", (int)width[i], t->cells[r * t->ncols + i]);
      printf ("%s\n", t->cells[r * t->ncols + t->ncols - 1]);
    }
  fflush (stdout);
}

void
table_release (struct table *t)
{
  for (size_t i = 0; i < t->nrows * t->ncols; i++)
    free (t->cells[i]);
  free (t->cells);
  memset (t, 0, sizeof *t);
}
