/* Message framing inside HTTP bodies (libcurl does the HTTP): Connect
   envelopes for envd's server streams, NDJSON lines for the code
   interpreter, and protojson's base64.  */
#define _GNU_SOURCE
#include "client.h"
#include "libhutch/util.h"

#include <stdio.h>
#include <string.h>

#define ENVELOPE_HEADER 5

/* Append LEN bytes to a growing buffer.  */
static void
buffer_append (char **buf, size_t *len, size_t *cap, const char *data, size_t n)
{
  if (*len + n + 1 > *cap)
    {
      size_t want = *cap ? *cap : 4096;
      while (want < *len + n + 1)
        want *= 2;
      *buf = xrealloc (*buf, want);
      *cap = want;
    }
  memcpy (*buf + *len, data, n);
  *len += n;
}

static void
buffer_consume (char *buf, size_t *len, size_t used)
{
  memmove (buf, buf + used, *len - used);
  *len -= used;
}

static size_t
envelope_length (const unsigned char *h)
{
  return (size_t)h[1] << 24 | (size_t)h[2] << 16 | (size_t)h[3] << 8 | (size_t)h[4];
}

int
envelope_feed (struct envelope_reader *r, const char *data, size_t len)
{
  size_t used = 0;
  int status = 0;

  buffer_append (&r->buf, &r->len, &r->cap, data, len);
  while (status == 0 && r->len - used >= ENVELOPE_HEADER)
    {
      const unsigned char *h = (const unsigned char *)r->buf + used;
      size_t n = envelope_length (h);
      char saved;

      if (n > CLIENT_MAX_BODY)
        {
          fprintf (stderr, "hutch: the server sent a %zu-byte message, more than %u\n", n,
                   CLIENT_MAX_BODY);
          return CLIENT_EXIT_FAILURE;
        }
      if (r->len - used < ENVELOPE_HEADER + n)
        break;
      /* NUL-terminate the payload in place for the JSON parser.  */
      saved = r->buf[used + ENVELOPE_HEADER + n];
      r->buf[used + ENVELOPE_HEADER + n] = '\0';
      status = r->on_message (r->arg, h[0], r->buf + used + ENVELOPE_HEADER, n);
      r->buf[used + ENVELOPE_HEADER + n] = saved;
      used += ENVELOPE_HEADER + n;
    }
  buffer_consume (r->buf, &r->len, used);
  return status;
}

void
envelope_reader_release (struct envelope_reader *r)
{
  free (r->buf);
  r->buf = NULL;
  r->len = r->cap = 0;
}

char *
envelope_frame (const char *payload, size_t len, size_t *ret_len)
{
  char *out = xmalloc (ENVELOPE_HEADER + len + 1);

  out[0] = 0;
  out[1] = (char)(len >> 24 & 0xff);
  out[2] = (char)(len >> 16 & 0xff);
  out[3] = (char)(len >> 8 & 0xff);
  out[4] = (char)(len & 0xff);
  memcpy (out + ENVELOPE_HEADER, payload, len);
  out[ENVELOPE_HEADER + len] = '\0';
  *ret_len = ENVELOPE_HEADER + len;
  return out;
}

static int
deliver_line (struct line_reader *r, char *line, size_t len)
{
  if (len > 0 && line[len - 1] == '\r')
    len--;
  line[len] = '\0';
  return r->on_line (r->arg, line, len);
}

int
line_feed (struct line_reader *r, const char *data, size_t len)
{
  size_t used = 0, scanned = r->len;
  int status = 0;
  char *nl;

  buffer_append (&r->buf, &r->len, &r->cap, data, len);
  while (status == 0 && (nl = memchr (r->buf + scanned, '\n', r->len - scanned)) != NULL)
    {
      status = deliver_line (r, r->buf + used, (size_t)(nl - (r->buf + used)));
      used = scanned = (size_t)(nl - r->buf) + 1;
    }
  buffer_consume (r->buf, &r->len, used);
  if (status == 0 && r->len > CLIENT_MAX_BODY)
    {
      fprintf (stderr, "hutch: the server sent a line longer than %u bytes\n", CLIENT_MAX_BODY);
      return CLIENT_EXIT_FAILURE;
    }
  return status;
}

int
line_finish (struct line_reader *r)
{
  size_t len = r->len;

  if (len == 0)
    return 0;
  r->len = 0;
  /* buffer_append always leaves room for the terminating NUL.  */
  return deliver_line (r, r->buf, len);
}

void
line_reader_release (struct line_reader *r)
{
  free (r->buf);
  r->buf = NULL;
  r->len = r->cap = 0;
}

static int
base64_value (char ch)
{
  if (ch >= 'A' && ch <= 'Z')
    return ch - 'A';
  if (ch >= 'a' && ch <= 'z')
    return ch - 'a' + 26;
  if (ch >= '0' && ch <= '9')
    return ch - '0' + 52;
  if (ch == '+' || ch == '-')
    return 62;
  if (ch == '/' || ch == '_')
    return 63;
  return -1;
}

long
base64_decode (const char *in, size_t len, unsigned char *out)
{
  unsigned acc = 0;
  int bits = 0;
  long n = 0;

  while (len > 0 && in[len - 1] == '=')
    len--;
  for (size_t i = 0; i < len; i++)
    {
      int v = base64_value (in[i]);
      if (v < 0)
        return -1;
      acc = (acc << 6 | (unsigned)v) & 0xffffff;
      bits += 6;
      if (bits >= 8)
        {
          bits -= 8;
          out[n++] = (unsigned char)(acc >> bits & 0xff);
        }
    }
  return n;
}
