/* multipart/form-data (RFC 7578), parsed as it streams: the delimiter
   scanner, part headers and their Content-Disposition parameters.  */
#define _GNU_SOURCE
#include "files-multipart.h"
#include "libhutch/util.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Go's quoted-string rule: a backslash escapes only special characters
   (browsers send Windows paths with bare backslashes).  */
static char *
quoted_value (const char **pp)
{
  const char *p = *pp + 1;
  char *out = xmalloc (strlen (p) + 1), *w = out;

  for (; *p && *p != '"'; p++)
    {
      if (*p == '\r' || *p == '\n')
        break;
      if (*p == '\\' && p[1] && strchr ("()<>@,;:\\\"/[]?=", p[1]))
        p++;
      *w++ = *p;
    }
  *w = '\0';
  if (*p != '"')
    {
      free (out);
      return NULL;
    }
  *pp = p + 1;
  return out;
}

static char *
param_value (const char **pp)
{
  const char *p = *pp;
  size_t n = 0;

  if (*p == '"')
    return quoted_value (pp);
  while (p[n] && p[n] != ';' && p[n] != ' ' && p[n] != '\t')
    n++;
  *pp = p + n;
  return xstrndup (p, n);
}

static int
hex_digit (char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  c = (char)tolower ((unsigned char)c);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The WHATWG form encoding of filenames: %22, %0D and %0A.  */
static void
whatwg_decode (char *s)
{
  char *w = s;
  for (char *p = s; *p; p++)
    {
      if (p[0] == '%'
          && (strncmp (p + 1, "22", 2) == 0 || strncasecmp (p + 1, "0D", 2) == 0
              || strncasecmp (p + 1, "0A", 2) == 0))
        {
          *w++ = (char)(hex_digit (p[1]) * 16 + hex_digit (p[2]));
          p += 2;
          continue;
        }
      *w++ = *p;
    }
  *w = '\0';
}

/* RFC 5987 ext-value: charset'language'pct-encoded (utf-8 or us-ascii).  */
static char *
ext_value_decode (const char *v)
{
  const char *q1 = strchr (v, '\''), *q2 = q1 ? strchr (q1 + 1, '\'') : NULL;
  char *out, *w;

  if (q2 == NULL
      || !((q1 - v == 5 && strncasecmp (v, "utf-8", 5) == 0)
           || (q1 - v == 8 && strncasecmp (v, "us-ascii", 8) == 0)))
    return NULL;
  out = w = xmalloc (strlen (q2) + 1);
  for (const char *p = q2 + 1; *p; p++)
    {
      int hi, lo;
      if (*p != '%')
        {
          *w++ = *p;
          continue;
        }
      hi = hex_digit (p[1]);
      lo = hi < 0 ? -1 : hex_digit (p[2]);
      if (lo < 0 || (hi == 0 && lo == 0))
        {
          free (out);
          return NULL;
        }
      *w++ = (char)(hi * 16 + lo);
      p += 2;
    }
  *w = '\0';
  return out;
}

/* The name and filename parameters of a Content-Disposition value;
   filename* wins over filename (RFC 6266).  */
static void
parse_disposition (const char *v, char **name, char **filename)
{
  cleanup_free char *plain = NULL;
  cleanup_free char *ext = NULL;
  const char *p = strchr (v, ';');

  while (p && *p == ';')
    {
      char key[32];
      size_t n;
      char *value;

      p += 1 + strspn (p + 1, " \t");
      n = strcspn (p, "=; \t");
      snprintf (key, sizeof key, "%.*s", (int)(n < sizeof key ? n : sizeof key - 1), p);
      p += n + strspn (p + n, " \t");
      if (*p != '=')
        {
          p = strchr (p, ';');
          continue;
        }
      p += 1 + strspn (p + 1, " \t");
      value = param_value (&p);
      if (value && strcasecmp (key, "name") == 0 && *name == NULL)
        *name = steal_pointer (&value);
      else if (value && strcasecmp (key, "filename") == 0 && plain == NULL)
        plain = steal_pointer (&value);
      else if (value && strcasecmp (key, "filename*") == 0 && ext == NULL)
        ext = ext_value_decode (value);
      free (value);
      p = p ? strchr (p, ';') : NULL;
    }
  if (plain)
    whatwg_decode (plain);
  *filename = ext ? steal_pointer (&ext) : steal_pointer (&plain);
}

/* The Content-Disposition line of the part headers in MP->headers.  */
static const char *
find_disposition (struct mp_parser *mp)
{
  static const char key[] = "content-disposition";
  for (char *line = mp->headers; line && *line;)
    {
      char *end = strstr (line, "\r\n");
      if (end)
        *end = '\0';
      if (strncasecmp (line, key, sizeof key - 1) == 0)
        {
          const char *v = line + sizeof key - 1;
          v += strspn (v, " \t");
          if (*v == ':')
            return v + 1 + strspn (v + 1, " \t");
        }
      line = end ? end + 2 : NULL;
    }
  return NULL;
}

/* The part whose headers are in MP->headers starts.  */
static void
part_begin (struct mp_parser *mp)
{
  const char *cd = find_disposition (mp);
  cleanup_free char *name = NULL;
  cleanup_free char *filename = NULL;

  if (cd)
    parse_disposition (cd, &name, &filename);
  if (!mp->handler->part_begin (mp->cls, name, filename))
    mp->stopped = true;
}

static void
part_data (struct mp_parser *mp, const char *data, size_t size)
{
  if (mp->state == MP_BODY && size > 0 && !mp->handler->part_data (mp->cls, data, size))
    mp->stopped = true;
}

static void
part_end (struct mp_parser *mp)
{
  if (mp->state == MP_BODY && !mp->handler->part_end (mp->cls))
    mp->stopped = true;
}

/* Scan body or preamble bytes for the delimiter.  The delimiter starts
   with the only CR it contains (boundaries have none), so a failed partial
   match never hides the start of another: matching needs no lookback, and
   the bytes of a failed match are the delimiter's own prefix.  */
static size_t
mp_scan (struct mp_parser *mp, const char *p, size_t n)
{
  size_t i = 0, start = 0;

  while (i < n)
    {
      if (mp->matched == 0)
        {
          const char *cr = memchr (p + i, '\r', n - i);
          if (cr == NULL)
            break;
          i = (size_t)(cr - p);
          part_data (mp, p + start, i - start);
          mp->matched = 1;
          start = ++i;
        }
      else if (p[i] == mp->delim[mp->matched])
        {
          start = ++i;
          if (++mp->matched < mp->dlen)
            continue;
          mp->matched = 0;
          part_end (mp);
          mp->state = MP_AFTER_DELIM;
          mp->after = 0;
          return i;
        }
      else
        {
          part_data (mp, mp->delim, mp->matched);
          mp->matched = 0;
          start = i;
        }
    }
  if (mp->matched == 0)
    part_data (mp, p + start, n - start);
  return n;
}

/* After a delimiter: "--" ends the body; else optional blanks and CRLF
   start a part's headers.  */
static size_t
mp_after_delim (struct mp_parser *mp, const char *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    {
      char c = p[i];
      if (mp->after == 0 && (c == ' ' || c == '\t'))
        continue;
      if (mp->after == 0 && (c == '-' || c == '\r'))
        mp->after = c == '-' ? 1 : 2;
      else if (mp->after == 1 && c == '-')
        {
          mp->state = MP_END;
          return i + 1;
        }
      else if (mp->after == 2 && c == '\n')
        {
          mp->state = MP_HEADERS;
          mp->hlen = 0;
          return i + 1;
        }
      else
        {
          mp->error = "malformed multipart body after a boundary";
          return n;
        }
    }
  return n;
}

static size_t
mp_headers (struct mp_parser *mp, const char *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    {
      if (mp->hlen == sizeof mp->headers - 1)
        {
          mp->error = "multipart part headers too large";
          return n;
        }
      mp->headers[mp->hlen++] = p[i];
      if ((mp->hlen == 2 && memcmp (mp->headers, "\r\n", 2) == 0)
          || (mp->hlen >= 4 && memcmp (mp->headers + mp->hlen - 4, "\r\n\r\n", 4) == 0))
        {
          mp->headers[mp->hlen] = '\0';
          mp->state = MP_BODY;
          part_begin (mp);
          return i + 1;
        }
    }
  return n;
}

bool
mp_feed (struct mp_parser *mp, const char *p, size_t n)
{
  while (n > 0 && mp->error == NULL && !mp->stopped && mp->state != MP_END)
    {
      size_t used = mp->state == MP_AFTER_DELIM ? mp_after_delim (mp, p, n)
                    : mp->state == MP_HEADERS   ? mp_headers (mp, p, n)
                                                : mp_scan (mp, p, n);
      p += used;
      n -= used;
    }
  return mp->error == NULL && !mp->stopped;
}

bool
mp_done (const struct mp_parser *mp)
{
  return mp->state == MP_END;
}

/* The value of parameter KEY in a header value such as
   "multipart/form-data; boundary=xyz".  */
static char *
header_param (const char *v, const char *key)
{
  size_t klen = strlen (key);
  for (const char *p = strchr (v, ';'); p; p = strchr (p, ';'))
    {
      p += 1 + strspn (p + 1, " \t");
      if (strncasecmp (p, key, klen) == 0 && p[klen] == '=')
        {
          p += klen + 1;
          return param_value (&p);
        }
    }
  return NULL;
}

bool
mp_init (struct mp_parser *mp, const char *content_type, const struct mp_handler *handler,
         void *cls)
{
  cleanup_free char *boundary = header_param (content_type, "boundary");

  mp->handler = handler;
  mp->cls = cls;
  if (boundary == NULL || *boundary == '\0' || strlen (boundary) > MP_BOUNDARY_MAX
      || strpbrk (boundary, "\r\n"))
    return false;
  xasprintf (&mp->delim, "\r\n--%s", boundary);
  mp->dlen = strlen (mp->delim);
  /* The body starts with a delimiter without its CRLF.  */
  mp->state = MP_PREAMBLE;
  mp->matched = 2;
  return true;
}

void
mp_free (struct mp_parser *mp)
{
  free (mp->delim);
  mp->delim = NULL;
}
