/* POST /files: uploads as multipart/form-data or a raw body, gzip'd or
   not, streamed to their destination as the body arrives and written as
   the request's user directly to the final path.  */
#define _GNU_SOURCE
#include "agent.h"
#include "files-internal.h"
#include "files-multipart.h"
#include "fs-internal.h"
#include "libhutch/util.h"
#include "services.h"

#include <ctype.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define INFLATE_CHUNK (64 * 1024)
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
  struct mp_parser mp; /* multipart/form-data */
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
  mp_free (&u->mp);
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
  entry = json_pack ("{s:s, s:s, s:s}", "path", path, "name", files_base_of (path), "type", "file");
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

/* The parts of a multipart body: those named "file" go to their
   destination, the others are skipped.  */

static bool
part_begin (void *cls, const char *name, const char *filename)
{
  struct upload *u = cls;

  if (name == NULL || strcmp (name, "file") != 0)
    return true;
  if (u->path_query == NULL && filename == NULL)
    return upload_fail (u, MHD_HTTP_BAD_REQUEST,
                        "filename not found in Content-Disposition header");
  return open_dest (u, u->path_query ? u->path_query : filename);
}

static bool
part_data (void *cls, const char *data, size_t size)
{
  struct upload *u = cls;
  write_dest (u, data, size);
  return u->status == 0;
}

static bool
part_end (void *cls)
{
  struct upload *u = cls;
  finish_dest (u);
  return u->status == 0;
}

static const struct mp_handler upload_parts = { part_begin, part_data, part_end };

/* Decoded body bytes.  */
static void
sink (struct upload *u, const char *data, size_t size)
{
  if (u->raw)
    write_dest (u, data, size);
  else if (!mp_feed (&u->mp, data, size) && u->mp.error)
    upload_fail (u, MHD_HTTP_BAD_REQUEST, "%s", u->mp.error);
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
  if (!u->raw && !mp_done (&u->mp))
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
  if (!mp_init (&u->mp, content_type, &upload_parts, u))
    return upload_fail (u, MHD_HTTP_BAD_REQUEST, "multipart body without a valid boundary");
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
  const char *denied = files_access_denied (req->conn, "write");
  const char *path = http_query (req->conn, "path");

  u->fd = -1;
  u->written = json_array ();
  u->path_query = path ? xstrdup (path) : NULL;
  req->state = u;
  req->free_state = upload_free;
  if (files_query_has_nul (req->conn))
    upload_fail (u, MHD_HTTP_BAD_REQUEST, "NUL byte in the query");
  else if (denied)
    upload_fail (u, MHD_HTTP_UNAUTHORIZED, "%s", denied);
  else if (files_user (req->conn, &u->user) < 0)
    upload_fail (u, MHD_HTTP_UNAUTHORIZED, "error looking up user '%s'",
                 files_user_name (req->conn));
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
