/* GET /files: a regular file, read as the request's user and served from
   the open descriptor; files of /proc and /sys are streamed.  */
#define _GNU_SOURCE
#include "agent.h"
#include "files-internal.h"
#include "fs-internal.h"
#include "libhutch/util.h"
#include "services.h"

#include <ctype.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

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
guess_type (const char *path)
{
  const char *dot = strrchr (files_base_of (path), '.');
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
  cleanup_free char *cd = disposition (files_base_of (path));
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
  const char *denied = files_access_denied (req->conn, "read");
  const char *raw = http_query (req->conn, "path");
  cleanup_free char *path = NULL;
  struct agent_user user;

  if (files_query_has_nul (req->conn))
    return files_error (req->conn, MHD_HTTP_BAD_REQUEST, "NUL byte in the query");
  if (denied)
    return files_error (req->conn, MHD_HTTP_UNAUTHORIZED, "%s", denied);
  if (files_user (req->conn, &user) < 0)
    return files_error (req->conn, MHD_HTTP_UNAUTHORIZED, "error looking up user '%s'",
                        files_user_name (req->conn));
  path = agent_resolve_path (&user, raw ? raw : "");
  if (path == NULL)
    return files_error (req->conn, MHD_HTTP_BAD_REQUEST, "error resolving path '%s'", raw);
  return download (req->conn, &user, path);
}
