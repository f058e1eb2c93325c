/* GET and POST /files: download and upload as a user of the sandbox.
   Downloads are served from the open descriptor; uploads are streamed to
   their destination as the body arrives (through gzip and multipart
   decoding), written directly to the final path.  */
#define _GNU_SOURCE
#include "agent.h"
#include "fs-internal.h"
#include "libhutch/util.h"
#include "services.h"

#include <ctype.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <zlib.h>

#define MP_HEADERS_MAX (16 * 1024)
#define MP_BOUNDARY_MAX 200
#define INFLATE_CHUNK (64 * 1024)

/* Errors: {"code": N, "message": "..."} as envd sends them.  */
static enum MHD_Result files_error (struct MHD_Connection *conn, unsigned status, const char *fmt,
                                    ...) __attribute__ ((format (printf, 3, 4)));

static enum MHD_Result
files_error (struct MHD_Connection *conn, unsigned status, const char *fmt, ...)
{
  char message[1024];
  json_t *body;
  char *text;
  struct MHD_Response *r;
  enum MHD_Result ret;
  va_list ap;

  va_start (ap, fmt);
  vsnprintf (message, sizeof message, fmt, ap);
  va_end (ap);
  body = json_pack ("{s:i, s:s}", "code", (int)status, "message", message);
  text = json_dumps (body, JSON_COMPACT | JSON_ENSURE_ASCII);
  json_decref (body);
  r = MHD_create_response_from_buffer (strlen (text), text, MHD_RESPMEM_MUST_FREE);
  MHD_add_response_header (r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json; charset=utf-8");
  http_add_cors (r);
  ret = MHD_queue_response (conn, status, r);
  MHD_destroy_response (r);
  return ret;
}

/* Access: the access token, or a signed URL.  */

static bool
secret_equal (const char *a, const char *b)
{
  size_t n = strlen (a);
  return n == strlen (b) && CRYPTO_memcmp (a, b, n) == 0;
}

/* "v1_" + unpadded base64 of sha256("path:op:user:token[:exp]").  */
static char *
make_signature (const char *path, const char *op, const char *user, const char *token,
                const char *exp)
{
  cleanup_free char *input = NULL;
  unsigned char digest[EVP_MAX_MD_SIZE], b64[64];
  unsigned int len = 0;
  char *out;
  int n;

  xasprintf (&input, "%s:%s:%s:%s%s%s", path, op, user, token, exp ? ":" : "", exp ? exp : "");
  EVP_Digest (input, strlen (input), digest, &len, EVP_sha256 (), NULL);
  explicit_bzero (input, strlen (input));
  n = EVP_EncodeBlock (b64, digest, (int)len);
  while (n > 0 && b64[n - 1] == '=')
    n--;
  xasprintf (&out, "v1_%.*s", n, (const char *)b64);
  return out;
}

static bool
parse_unix_time (const char *s, long long *ret, char *canon, size_t canon_size)
{
  char *end;
  errno = 0;
  *ret = strtoll (s, &end, 10);
  if (errno || end == s || *end)
    return false;
  snprintf (canon, canon_size, "%lld", *ret);
  return true;
}

/* NULL when the request may use /files for OP ("read", "write"), else why
   not.  */
static const char *
access_denied (struct MHD_Connection *conn, const char *op)
{
  const char *header = http_header (conn, "X-Access-Token");
  const char *sig = http_query (conn, "signature");
  const char *exp = http_query (conn, "signature_expiration");
  const char *path = http_query (conn, "path"), *user = http_query (conn, "username");
  cleanup_free char *token = NULL;
  cleanup_free char *expected = NULL;
  char canon[32];
  long long exp_unix = 0;
  bool ok;

  agent_lock ();
  token = agent.access_token ? xstrdup (agent.access_token) : NULL;
  agent_unlock ();
  if (token == NULL)
    return NULL;
  if (header && *header)
    ok = secret_equal (header, token);
  else if (sig == NULL)
    ok = false;
  else if (exp && !parse_unix_time (exp, &exp_unix, canon, sizeof canon))
    ok = false;
  else
    {
      expected = make_signature (path ? path : "", op, user ? user : "", token, exp ? canon : NULL);
      ok = secret_equal (sig, expected);
      if (ok && exp && exp_unix < (long long)time (NULL))
        {
          explicit_bzero (token, strlen (token));
          return "signature is already expired";
        }
    }
  explicit_bzero (token, strlen (token));
  if (ok)
    return NULL;
  if (header && *header)
    return "access token present in header but does not match";
  return sig ? "invalid signature" : "missing signature query parameter";
}

static enum MHD_Result
find_nul (void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size, const char *value,
          size_t value_size)
{
  bool *found = cls;
  if (strlen (key) != key_size || (value && strlen (value) != value_size))
    *found = true;
  return *found ? MHD_NO : MHD_YES;
}

/* A query argument holding a NUL ("path=/x%00y") would be cut short by
   every C string use: refuse the request instead.  */
static bool
query_has_nul (struct MHD_Connection *conn)
{
  bool found = false;
  MHD_get_connection_values_n (conn, MHD_GET_ARGUMENT_KIND, find_nul, &found);
  return found;
}

static const char *
user_name (struct MHD_Connection *conn)
{
  const char *name = http_query (conn, "username");
  return name && *name ? name : "(default user)";
}

/* The ?username= user, else the default user.  */
static int
files_user (struct MHD_Connection *conn, struct agent_user *ret)
{
  const char *name = http_query (conn, "username");
  if (name == NULL || *name == '\0')
    return agent_user_from_basic_auth (NULL, ret);
  return agent_user_lookup (name, ret);
}

/* GET /files.  */

static const struct
{
  const char *ext, *type;
} mime_types[] = {
  { "avif", "image/avif" },
  { "bmp", "image/bmp" },
  { "css", "text/css; charset=utf-8" },
  { "csv", "text/csv; charset=utf-8" },
  { "gif", "image/gif" },
  { "gz", "application/gzip" },
  { "htm", "text/html; charset=utf-8" },
  { "html", "text/html; charset=utf-8" },
  { "ico", "image/vnd.microsoft.icon" },
  { "jpeg", "image/jpeg" },
  { "jpg", "image/jpeg" },
  { "js", "text/javascript; charset=utf-8" },
  { "json", "application/json" },
  { "md", "text/markdown; charset=utf-8" },
  { "mjs", "text/javascript; charset=utf-8" },
  { "mp3", "audio/mpeg" },
  { "mp4", "video/mp4" },
  { "pdf", "application/pdf" },
  { "png", "image/png" },
  { "py", "text/x-python; charset=utf-8" },
  { "sh", "text/x-sh; charset=utf-8" },
  { "svg", "image/svg+xml" },
  { "tar", "application/x-tar" },
  { "txt", "text/plain; charset=utf-8" },
  { "wasm", "application/wasm" },
  { "wav", "audio/wav" },
  { "webm", "video/webm" },
  { "webp", "image/webp" },
  { "xml", "text/xml; charset=utf-8" },
  { "yaml", "application/yaml" },
  { "yml", "application/yaml" },
  { "zip", "application/zip" },
};

static const char *
base_of (const char *path)
{
  const char *slash = strrchr (path, '/');
  return slash && slash[1] ? slash + 1 : path;
}

static const char *
guess_type (const char *path)
{
  const char *dot = strrchr (base_of (path), '.');
  if (dot)
    for (size_t i = 0; i < ARRAY_SIZE (mime_types); i++)
      if (strcasecmp (dot + 1, mime_types[i].ext) == 0)
        return mime_types[i].type;
  return "application/octet-stream";
}

static bool
is_token_char (unsigned char c)
{
  return c > 0x20 && c < 0x7f && !strchr ("()<>@,;:\\\"/[]?={}", c);
}

/* Content-Disposition as Go's mime.FormatMediaType writes it: a bare
   token, a quoted string, or RFC 5987 for anything not printable ASCII.  */
static char *
disposition (const char *name)
{
  bool token = *name != '\0', ascii = true;
  size_t n = strlen (name);
  char *out = xmalloc (n * 3 + 64), *w;

  for (const unsigned char *p = (const unsigned char *)name; *p; p++)
    {
      token = token && is_token_char (*p);
      ascii = ascii && *p >= 0x20 && *p < 0x7f;
    }
  w = out + sprintf (out, "inline; filename%s", token ? "=" : ascii ? "=\"" : "*=utf-8''");
  for (const unsigned char *p = (const unsigned char *)name; *p; p++)
    if (token)
      *w++ = (char)*p;
    else if (ascii)
      w += sprintf (w, "%s%c", *p == '"' || *p == '\\' ? "\\" : "", *p);
    else if (isalnum (*p) || strchr ("!#$&+-.^_`|~", *p))
      *w++ = (char)*p;
    else
      w += sprintf (w, "%%%02X", *p);
  if (!token && ascii)
    *w++ = '"';
  *w = '\0';
  return out;
}

static ssize_t
read_pseudo (void *cls, uint64_t pos, char *buf, size_t max)
{
  ssize_t n = pread ((int)(intptr_t)cls, buf, max, (off_t)pos);
  if (n == 0)
    return MHD_CONTENT_READER_END_OF_STREAM;
  return n < 0 ? MHD_CONTENT_READER_END_WITH_ERROR : n;
}

static void
close_pseudo (void *cls)
{
  close ((int)(intptr_t)cls);
}

/* Kernel files (/proc, /sys) say size 0 but have content: stream them.  */
static bool
is_pseudo_file (int fd)
{
  struct statfs sfs;
  return fstatfs (fd, &sfs) == 0 && (sfs.f_type == PROC_SUPER_MAGIC || sfs.f_type == SYSFS_MAGIC);
}

/* The response for the open regular file FD (taken).  */
static struct MHD_Response *
file_response (int fd, const struct stat *st)
{
  struct MHD_Response *r = NULL;

  if (st->st_size > 0)
    r = MHD_create_response_from_fd ((uint64_t)st->st_size, fd);
  else if (is_pseudo_file (fd))
    r = MHD_create_response_from_callback (MHD_SIZE_UNKNOWN, 64 * 1024, read_pseudo,
                                           (void *)(intptr_t)fd, close_pseudo);
  else
    {
      close (fd);
      return MHD_create_response_from_buffer (0, NULL, MHD_RESPMEM_PERSISTENT);
    }
  if (r == NULL)
    close (fd);
  return r;
}

static enum MHD_Result
send_file (struct MHD_Connection *conn, const char *path, int fd, const struct stat *st)
{
  cleanup_free char *cd = disposition (base_of (path));
  struct MHD_Response *r = file_response (fd, st);
  enum MHD_Result ret;

  if (r == NULL)
    return files_error (conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot serve '%s'", path);
  MHD_add_response_header (r, MHD_HTTP_HEADER_CONTENT_TYPE, guess_type (path));
  MHD_add_response_header (r, MHD_HTTP_HEADER_CONTENT_DISPOSITION, cd);
  http_add_cors (r);
  ret = MHD_queue_response (conn, MHD_HTTP_OK, r);
  MHD_destroy_response (r);
  return ret;
}

static enum MHD_Result
open_error (struct MHD_Connection *conn, const char *path, int err)
{
  if (err == ENOENT || err == ENOTDIR)
    return files_error (conn, MHD_HTTP_NOT_FOUND, "path '%s' does not exist", path);
  if (err == EACCES || err == EPERM)
    return files_error (conn, MHD_HTTP_FORBIDDEN, "permission denied: '%s'", path);
  if (err == ENAMETOOLONG || err == ELOOP)
    return files_error (conn, MHD_HTTP_BAD_REQUEST, "bad path '%s': %s", path, strerror (err));
  return files_error (conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "error opening file '%s': %s", path,
                      strerror (err));
}

static enum MHD_Result
download (struct MHD_Connection *conn, const struct agent_user *user, const char *path)
{
  struct stat st;
  int fd;

  {
    FS_AS (user);
    /* O_NONBLOCK: opening a FIFO must not wait for a writer.  */
    fd = open (path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  }
  if (fd < 0)
    return open_error (conn, path, errno);
  if (fstat (fd, &st) < 0)
    {
      int err = errno;
      close (fd);
      return open_error (conn, path, err);
    }
  if (!S_ISREG (st.st_mode))
    {
      close (fd);
      return files_error (conn, MHD_HTTP_BAD_REQUEST, "path '%s' is %s", path,
                          S_ISDIR (st.st_mode) ? "a directory" : "not a regular file");
    }
  fcntl (fd, F_SETFL, 0);
  return send_file (conn, path, fd, &st);
}

enum MHD_Result
files_get (struct http_req *req)
{
  const char *denied = access_denied (req->conn, "read");
  const char *raw = http_query (req->conn, "path");
  cleanup_free char *path = NULL;
  struct agent_user user;

  if (query_has_nul (req->conn))
    return files_error (req->conn, MHD_HTTP_BAD_REQUEST, "NUL byte in the query");
  if (denied)
    return files_error (req->conn, MHD_HTTP_UNAUTHORIZED, "%s", denied);
  if (files_user (req->conn, &user) < 0)
    return files_error (req->conn, MHD_HTTP_UNAUTHORIZED, "error looking up user '%s'",
                        user_name (req->conn));
  path = agent_resolve_path (&user, raw ? raw : "");
  if (path == NULL)
    return files_error (req->conn, MHD_HTTP_BAD_REQUEST, "error resolving path '%s'", raw);
  return download (req->conn, &user, path);
}

/* POST /files.  */

enum mp_state
{
  MP_PREAMBLE,
  MP_AFTER_DELIM,
  MP_HEADERS,
  MP_BODY,
  MP_END,
};

#define WRITE_BUFFER (256 * 1024)

struct upload
{
  unsigned status; /* the first error; once set the rest of the body is discarded */
  char message[512];
  struct agent_user user;
  char *path_query; /* ?path=, NULL when absent */
  json_t *meta;     /* from X-Metadata-*: NULL when none */
  json_t *written;  /* the response */
  bool raw, prepared;
  int fd;     /* the file being written, -1 between files */
  char *wbuf; /* what is not yet written to fd (multipart arrives in bits) */
  size_t wlen;
  /* Content-Encoding: gzip */
  bool gzip, z_ready, z_end;
  z_stream z;
  /* multipart/form-data */
  enum mp_state state;
  char *delim; /* "\r\n--" boundary */
  size_t dlen, matched;
  int after; /* position in what follows a delimiter */
  char headers[MP_HEADERS_MAX];
  size_t hlen;
};

/* Record the first error (the rest of the body is then discarded).
   Returns false.  */
static bool upload_fail (struct upload *u, unsigned status, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
close_dest (struct upload *u)
{
  if (u->fd >= 0)
    close (u->fd);
  u->fd = -1;
  u->wlen = 0;
}

static bool
upload_fail (struct upload *u, unsigned status, const char *fmt, ...)
{
  va_list ap;
  if (u->status)
    return false;
  u->status = status;
  va_start (ap, fmt);
  vsnprintf (u->message, sizeof u->message, fmt, ap);
  va_end (ap);
  close_dest (u);
  return false;
}

static void
upload_free (void *p)
{
  struct upload *u = p;
  close_dest (u);
  if (u->z_ready)
    inflateEnd (&u->z);
  json_decref (u->meta);
  json_decref (u->written);
  free (u->path_query);
  free (u->delim);
  free (u->wbuf);
  free (u);
}

static bool
fail_errno (struct upload *u, int err, const char *what, const char *path)
{
  if (err == ENOSPC || err == EDQUOT)
    return upload_fail (u, MHD_HTTP_INSUFFICIENT_STORAGE,
                        "not enough disk space available: %s '%s'", what, path);
  if (err == EACCES || err == EPERM || err == EROFS)
    return upload_fail (u, MHD_HTTP_FORBIDDEN, "permission denied: %s '%s': %s", what, path,
                        strerror (err));
  if (err == EISDIR)
    return upload_fail (u, MHD_HTTP_BAD_REQUEST, "path is a directory: %s", path);
  if (err == ENOTDIR || err == ENAMETOOLONG || err == ELOOP || err == E2BIG)
    return upload_fail (u, MHD_HTTP_BAD_REQUEST, "bad path: %s '%s': %s", what, path,
                        strerror (err));
  return upload_fail (u, MHD_HTTP_INTERNAL_SERVER_ERROR, "error: %s '%s': %s", what, path,
                      strerror (err));
}

/* Destination files.  */

static char *
dir_of (const char *path)
{
  const char *slash = strrchr (path, '/');
  return slash == NULL || slash == path ? xstrdup ("/") : xstrndup (path, (size_t)(slash - path));
}

static bool
already_written (struct upload *u, const char *path)
{
  size_t i;
  json_t *e;
  json_array_foreach (u->written, i,
                      e) if (strcmp (json_string_value (json_object_get (e, "path")), path)
                             == 0) return true;
  return false;
}

static int
open_file (const char *path)
{
  struct stat st;
  /* O_NONBLOCK: a FIFO without reader must not block the upload.  */
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0644);

  if (fd < 0)
    return -1;
  if (fstat (fd, &st) < 0 || !(S_ISREG (st.st_mode) || S_ISCHR (st.st_mode)))
    {
      close (fd);
      errno = EINVAL;
      return -1;
    }
  fcntl (fd, F_SETFL, 0);
  return fd;
}

/* Start writing the file at RAW (unresolved) as the user.  */
static bool
open_dest (struct upload *u, const char *raw)
{
  cleanup_free char *path = agent_resolve_path (&u->user, raw);
  cleanup_free char *parent = NULL;
  json_t *entry;

  if (path == NULL)
    return upload_fail (u, MHD_HTTP_BAD_REQUEST, "error resolving path '%s'", raw);
  if (already_written (u, path))
    return upload_fail (u, MHD_HTTP_BAD_REQUEST,
                        "you cannot upload multiple files to the same path '%s' in one upload "
                        "request",
                        path);
  parent = dir_of (path);
  if (mkdir_p_at (AT_FDCWD, parent, 0755) < 0)
    return fail_errno (u, errno, "create directory", parent);
  u->fd = open_file (path);
  if (u->fd < 0)
    return errno == EINVAL ? upload_fail (u, MHD_HTTP_BAD_REQUEST, "not a regular file: %s", path)
                           : fail_errno (u, errno, "open", path);
  if (fs_meta_write (u->fd, u->meta) < 0 && !(errno == ENOTSUP && u->meta == NULL))
    return fail_errno (u, errno, "store metadata of", path);
  entry = json_pack ("{s:s, s:s, s:s}", "path", path, "name", base_of (path), "type", "file");
  if (u->meta)
    json_object_set (entry, "metadata", u->meta);
  json_array_append_new (u->written, entry);
  return true;
}

static void
flush_dest (struct upload *u)
{
  json_t *last = json_array_get (u->written, json_array_size (u->written) - 1);
  if (u->fd >= 0 && u->wlen && write_all (u->fd, u->wbuf, u->wlen) < 0)
    fail_errno (u, errno, "write", json_string_value (json_object_get (last, "path")));
  u->wlen = 0;
}

/* Buffered: the multipart scanner hands over data cut at every CR, which
   would otherwise cost a write per few hundred bytes.  */
static void
write_dest (struct upload *u, const char *data, size_t size)
{
  if (u->fd < 0 || size == 0)
    return;
  if (u->wbuf == NULL)
    u->wbuf = xmalloc (WRITE_BUFFER);
  if (u->wlen + size > WRITE_BUFFER)
    flush_dest (u);
  if (size >= WRITE_BUFFER)
    {
      json_t *last = json_array_get (u->written, json_array_size (u->written) - 1);
      if (write_all (u->fd, data, size) < 0)
        fail_errno (u, errno, "write", json_string_value (json_object_get (last, "path")));
      return;
    }
  memcpy (u->wbuf + u->wlen, data, size);
  u->wlen += size;
}

static void
finish_dest (struct upload *u)
{
  json_t *last;
  int fd;

  flush_dest (u);
  last = json_array_get (u->written, json_array_size (u->written) - 1);
  fd = get_and_reset (&u->fd);
  if (fd >= 0 && close (fd) < 0)
    fail_errno (u, errno, "close", json_string_value (json_object_get (last, "path")));
}

/* multipart/form-data (RFC 7578), parsed as it streams: part bodies go
   straight to their files.  */

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

/* The Content-Disposition line of the part headers in U->headers.  */
static const char *
find_disposition (struct upload *u)
{
  static const char key[] = "content-disposition";
  for (char *line = u->headers; line && *line;)
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

/* Start a part: parts named "file" go to their destination.  */
static bool
part_begin (struct upload *u)
{
  const char *cd = find_disposition (u);
  cleanup_free char *name = NULL;
  cleanup_free char *filename = NULL;

  if (cd)
    parse_disposition (cd, &name, &filename);
  if (name == NULL || strcmp (name, "file") != 0)
    return true;
  if (u->path_query == NULL && filename == NULL)
    return upload_fail (u, MHD_HTTP_BAD_REQUEST,
                        "filename not found in Content-Disposition header");
  return open_dest (u, u->path_query ? u->path_query : filename);
}

static void
part_data (struct upload *u, const char *data, size_t size)
{
  if (u->state == MP_BODY)
    write_dest (u, data, size);
}

/* Scan body or preamble bytes for the delimiter.  The delimiter starts
   with the only CR it contains (boundaries have none), so a failed partial
   match never hides the start of another: matching needs no lookback, and
   the bytes of a failed match are the delimiter's own prefix.  */
static size_t
mp_scan (struct upload *u, const char *p, size_t n)
{
  size_t i = 0, start = 0;

  while (i < n)
    {
      if (u->matched == 0)
        {
          const char *cr = memchr (p + i, '\r', n - i);
          if (cr == NULL)
            break;
          i = (size_t)(cr - p);
          part_data (u, p + start, i - start);
          u->matched = 1;
          start = ++i;
        }
      else if (p[i] == u->delim[u->matched])
        {
          start = ++i;
          if (++u->matched < u->dlen)
            continue;
          u->matched = 0;
          finish_dest (u);
          u->state = MP_AFTER_DELIM;
          u->after = 0;
          return i;
        }
      else
        {
          part_data (u, u->delim, u->matched);
          u->matched = 0;
          start = i;
        }
    }
  if (u->matched == 0)
    part_data (u, p + start, n - start);
  return n;
}

/* After a delimiter: "--" ends the body; else optional blanks and CRLF
   start a part's headers.  */
static size_t
mp_after_delim (struct upload *u, const char *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    {
      char c = p[i];
      if (u->after == 0 && (c == ' ' || c == '\t'))
        continue;
      if (u->after == 0 && (c == '-' || c == '\r'))
        u->after = c == '-' ? 1 : 2;
      else if (u->after == 1 && c == '-')
        {
          u->state = MP_END;
          return i + 1;
        }
      else if (u->after == 2 && c == '\n')
        {
          u->state = MP_HEADERS;
          u->hlen = 0;
          return i + 1;
        }
      else
        {
          upload_fail (u, MHD_HTTP_BAD_REQUEST, "malformed multipart body after a boundary");
          return n;
        }
    }
  return n;
}

static size_t
mp_headers (struct upload *u, const char *p, size_t n)
{
  for (size_t i = 0; i < n; i++)
    {
      if (u->hlen == sizeof u->headers - 1)
        {
          upload_fail (u, MHD_HTTP_BAD_REQUEST, "multipart part headers too large");
          return n;
        }
      u->headers[u->hlen++] = p[i];
      if ((u->hlen == 2 && memcmp (u->headers, "\r\n", 2) == 0)
          || (u->hlen >= 4 && memcmp (u->headers + u->hlen - 4, "\r\n\r\n", 4) == 0))
        {
          u->headers[u->hlen] = '\0';
          u->state = MP_BODY;
          part_begin (u);
          return i + 1;
        }
    }
  return n;
}

static void
mp_feed (struct upload *u, const char *p, size_t n)
{
  while (n > 0 && u->status == 0 && u->state != MP_END)
    {
      size_t used = u->state == MP_AFTER_DELIM ? mp_after_delim (u, p, n)
                    : u->state == MP_HEADERS   ? mp_headers (u, p, n)
                                               : mp_scan (u, p, n);
      p += used;
      n -= used;
    }
}

/* Decoded body bytes.  */
static void
sink (struct upload *u, const char *data, size_t size)
{
  if (u->raw)
    write_dest (u, data, size);
  else
    mp_feed (u, data, size);
}

/* Content-Encoding: gzip, inflated as it arrives; concatenated members
   are accepted as Go's reader does.  */
static bool
inflate_feed (struct upload *u, const char *data, size_t size)
{
  char out[INFLATE_CHUNK];

  u->z.next_in = (Bytef *)data;
  u->z.avail_in = (uInt)size;
  do
    {
      int ret;
      if (u->z_end)
        {
          inflateReset (&u->z);
          u->z_end = false;
        }
      u->z.next_out = (Bytef *)out;
      u->z.avail_out = sizeof out;
      ret = inflate (&u->z, Z_NO_FLUSH);
      if (ret != Z_OK && ret != Z_STREAM_END && ret != Z_BUF_ERROR)
        return upload_fail (u, MHD_HTTP_BAD_REQUEST, "error decompressing request body: %s",
                            u->z.msg ? u->z.msg : "invalid gzip data");
      sink (u, out, sizeof out - u->z.avail_out);
      u->z_end = ret == Z_STREAM_END;
      if (ret == Z_BUF_ERROR)
        break;
    }
  while (u->status == 0 && (u->z.avail_in > 0 || u->z.avail_out == 0));
  return u->status == 0;
}

static void
feed (struct upload *u, const char *data, size_t size)
{
  /* zlib counts in uInt.  */
  while (u->status == 0 && size > 0)
    {
      size_t n = size < (1u << 30) ? size : (1u << 30);
      if (u->gzip)
        inflate_feed (u, data, n);
      else
        sink (u, data, n);
      data += n;
      size -= n;
    }
}

static bool
upload_finish (struct upload *u)
{
  if (u->gzip && !u->z_end)
    return upload_fail (u, MHD_HTTP_BAD_REQUEST,
                        "error decompressing request body: unexpected end of gzip data");
  if (!u->raw && u->state != MP_END)
    return upload_fail (u, MHD_HTTP_BAD_REQUEST, "malformed multipart body: no closing boundary");
  finish_dest (u);
  return u->status == 0;
}

/* Request headers.  */

static enum MHD_Result
collect_metadata (void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
  static const char prefix[] = "x-metadata-";
  struct upload *u = cls;
  char *k;

  if (strncasecmp (key, prefix, sizeof prefix - 1) != 0)
    return MHD_YES;
  k = xstrdup (key + sizeof prefix - 1);
  for (char *p = k; *p; p++)
    *p = (char)tolower ((unsigned char)*p);
  for (const char *p = value; *p; p++)
    if (*p < 0x20 || *p > 0x7e)
      upload_fail (u, MHD_HTTP_BAD_REQUEST, "invalid metadata value for key '%s'", k);
  if (*k == '\0')
    upload_fail (u, MHD_HTTP_BAD_REQUEST, "empty metadata key");
  if (u->meta == NULL)
    u->meta = json_object ();
  json_object_set_new (u->meta, k, json_string (value));
  free (k);
  return MHD_YES;
}

static void
parse_metadata (struct upload *u, struct MHD_Connection *conn)
{
  cleanup_free char *text = NULL;

  MHD_get_connection_values (conn, MHD_HEADER_KIND, collect_metadata, u);
  if (u->meta == NULL || u->status)
    return;
  text = json_dumps (u->meta, JSON_COMPACT);
  if (strlen (text) > FS_META_MAX)
    upload_fail (u, MHD_HTTP_BAD_REQUEST, "metadata larger than %d bytes", FS_META_MAX);
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

static bool
media_type_is (const char *v, const char *type)
{
  size_t n = strlen (type);
  v += strspn (v, " \t");
  return strncasecmp (v, type, n) == 0 && (v[n] == '\0' || strchr ("; \t", v[n]));
}

static bool
setup_multipart (struct upload *u, const char *content_type)
{
  cleanup_free char *boundary = header_param (content_type, "boundary");

  if (boundary == NULL || *boundary == '\0' || strlen (boundary) > MP_BOUNDARY_MAX
      || strpbrk (boundary, "\r\n"))
    return upload_fail (u, MHD_HTTP_BAD_REQUEST, "multipart body without a valid boundary");
  xasprintf (&u->delim, "\r\n--%s", boundary);
  u->dlen = strlen (u->delim);
  /* The body starts with a delimiter without its CRLF.  */
  u->state = MP_PREAMBLE;
  u->matched = 2;
  return true;
}

static bool
setup_body (struct upload *u, struct MHD_Connection *conn)
{
  const char *type = http_header (conn, MHD_HTTP_HEADER_CONTENT_TYPE);
  const char *enc = http_header (conn, MHD_HTTP_HEADER_CONTENT_ENCODING);

  if (enc && *enc && !media_type_is (enc, "identity"))
    {
      if (!media_type_is (enc, "gzip") && !media_type_is (enc, "x-gzip"))
        return upload_fail (u, MHD_HTTP_BAD_REQUEST, "unsupported Content-Encoding: %s", enc);
      if (inflateInit2 (&u->z, 16 + MAX_WBITS) != Z_OK)
        return upload_fail (u, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot start gzip decoding");
      u->gzip = u->z_ready = true;
    }
  if (type && media_type_is (type, "application/octet-stream"))
    {
      u->raw = true;
      return u->path_query ? true
                           : upload_fail (u, MHD_HTTP_BAD_REQUEST,
                                          "path query parameter is required for raw body upload");
    }
  if (type && strncasecmp (type + strspn (type, " \t"), "multipart/", 10) == 0)
    return setup_multipart (u, type);
  return upload_fail (u, MHD_HTTP_BAD_REQUEST,
                      "unsupported content type: %s, expected multipart/form-data or "
                      "application/octet-stream",
                      type ? type : "(none)");
}

static struct upload *
upload_new (struct http_req *req)
{
  struct upload *u = xzalloc (sizeof *u);
  const char *denied = access_denied (req->conn, "write");
  const char *path = http_query (req->conn, "path");

  u->fd = -1;
  u->written = json_array ();
  u->path_query = path ? xstrdup (path) : NULL;
  req->state = u;
  req->free_state = upload_free;
  if (query_has_nul (req->conn))
    upload_fail (u, MHD_HTTP_BAD_REQUEST, "NUL byte in the query");
  else if (denied)
    upload_fail (u, MHD_HTTP_UNAUTHORIZED, "%s", denied);
  else if (files_user (req->conn, &u->user) < 0)
    upload_fail (u, MHD_HTTP_UNAUTHORIZED, "error looking up user '%s'", user_name (req->conn));
  if (u->status == 0)
    parse_metadata (u, req->conn);
  if (u->status == 0)
    setup_body (u, req->conn);
  return u;
}

bool
files_post_upload (struct http_req *req, const char *data, size_t size)
{
  struct upload *u = req->state ? req->state : upload_new (req);

  if (u->status)
    return true;
  FS_AS (&u->user);
  if (!u->prepared && u->raw)
    open_dest (u, u->path_query);
  u->prepared = true;
  if (size)
    feed (u, data, size);
  else if (u->status == 0)
    upload_finish (u);
  return true;
}

enum MHD_Result
files_post (struct http_req *req)
{
  struct upload *u = req->state;

  if (u == NULL)
    return files_error (req->conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "upload was not started");
  if (u->status)
    return files_error (req->conn, u->status, "%s", u->message);
  return http_send_json (req->conn, MHD_HTTP_OK, json_incref (u->written));
}
