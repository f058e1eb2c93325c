#define _GNU_SOURCE
#include "util.h"

#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

static void __attribute__ ((noreturn)) oom (void)
{
  static const char msg[] = "hutch: out of memory\n";
  (void)!write (STDERR_FILENO, msg, sizeof msg - 1);
  _exit (125);
}

void *
xmalloc (size_t size)
{
  void *p = malloc (size ? size : 1);
  if (UNLIKELY (p == NULL))
    oom ();
  return p;
}

void *
xzalloc (size_t size)
{
  void *p = calloc (1, size ? size : 1);
  if (UNLIKELY (p == NULL))
    oom ();
  return p;
}

void *
xrealloc (void *old, size_t size)
{
  void *p = realloc (old, size ? size : 1);
  if (UNLIKELY (p == NULL))
    oom ();
  return p;
}

char *
xstrdup (const char *s)
{
  char *p = strdup (s);
  if (UNLIKELY (p == NULL))
    oom ();
  return p;
}

char *
xstrndup (const char *s, size_t n)
{
  char *p = strndup (s, n);
  if (UNLIKELY (p == NULL))
    oom ();
  return p;
}

int
xasprintf (char **ret, const char *fmt, ...)
{
  va_list ap;
  int n;

  va_start (ap, fmt);
  n = vasprintf (ret, fmt, ap);
  va_end (ap);
  if (UNLIKELY (n < 0))
    oom ();
  return n;
}

void
cleanup_strvp (void *p)
{
  char ***v = (char ***)p;
  if (*v == NULL)
    return;
  for (char **s = *v; *s; s++)
    free (*s);
  free (*v);
}

void
random_bytes (void *buf, size_t n)
{
  size_t got = 0;

  while (got < n)
    {
      ssize_t r = getrandom ((char *)buf + got, n - got, 0);
      if (r > 0)
        got += (size_t)r;
      else if (errno != EINTR)
        abort ();
    }
}

void
random_string (char *out, size_t n, const char *alphabet)
{
  size_t len = strlen (alphabet);
  unsigned char raw[64];

  for (size_t done = 0; done < n;)
    {
      size_t k = n - done < sizeof raw ? n - done : sizeof raw;
      random_bytes (raw, k);
      for (size_t i = 0; i < k; i++)
        out[done + i] = alphabet[raw[i] % len];
      done += k;
    }
  out[n] = '\0';
}

int
write_all (int fd, const void *buf, size_t len)
{
  const char *p = buf;
  while (len > 0)
    {
      ssize_t n = write (fd, p, len);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          return -1;
        }
      p += n;
      len -= (size_t)n;
    }
  return 0;
}

ssize_t
read_all (int fd, void *buf, size_t len)
{
  char *p = buf;
  size_t got = 0;
  while (got < len)
    {
      ssize_t n = read (fd, p + got, len - got);
      if (n < 0)
        {
          if (errno == EINTR)
            continue;
          return -1;
        }
      if (n == 0)
        break;
      got += (size_t)n;
    }
  return (ssize_t)got;
}

int
write_file_at (int dirfd, const char *path, const char *str, mode_t mode)
{
  cleanup_close int fd = openat (dirfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0)
    return -1;
  return write_all (fd, str, strlen (str));
}

int
read_file_at (int dirfd, const char *path, char **ret, size_t *ret_len)
{
  cleanup_close int fd = openat (dirfd, path, O_RDONLY | O_CLOEXEC);
  cleanup_free char *buf = NULL;
  size_t len = 0, cap = 0;

  if (fd < 0)
    return -1;
  for (;;)
    {
      ssize_t n;
      if (cap - len < 4096)
        {
          cap = cap ? cap * 2 : 4096;
          buf = xrealloc (buf, cap + 1);
        }
      n = TEMP_FAILURE_RETRY (read (fd, buf + len, cap - len));
      if (n < 0)
        return -1;
      if (n == 0)
        break;
      len += (size_t)n;
    }
  if (buf == NULL)
    buf = xmalloc (1);
  buf[len] = '\0';
  if (ret_len)
    *ret_len = len;
  *ret = steal_pointer (&buf);
  return 0;
}

int
mkdir_p_at (int dirfd, const char *path, mode_t mode)
{
  cleanup_free char *copy = xstrdup (path);
  char *p = copy;

  while (*p == '/')
    p++;
  for (;;)
    {
      char *slash = strchr (p, '/');
      if (slash)
        *slash = '\0';
      if (*p && mkdirat (dirfd, copy, mode) < 0 && errno != EEXIST)
        return -1;
      if (slash == NULL)
        return 0;
      *slash = '/';
      p = slash + 1;
    }
}

static int
rm_rf_children (int dfd, dev_t dev)
{
  cleanup_dir DIR *dir = fdopendir (dfd);
  struct dirent *de;
  int ret = 0;

  if (dir == NULL)
    {
      close (dfd);
      return -1;
    }
  while ((de = readdir (dir)))
    {
      struct stat st;
      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      if (fstatat (dirfd (dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        continue;
      if (S_ISDIR (st.st_mode))
        {
          int child;
          if (st.st_dev != dev)
            {
              errno = EBUSY;
              ret = -1;
              continue;
            }
          child = openat (dirfd (dir), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
          if (child < 0 || rm_rf_children (child, dev) < 0)
            ret = -1;
          if (unlinkat (dirfd (dir), de->d_name, AT_REMOVEDIR) < 0 && errno != ENOENT)
            ret = -1;
        }
      else if (unlinkat (dirfd (dir), de->d_name, 0) < 0 && errno != ENOENT)
        ret = -1;
    }
  return ret;
}

int
rm_rf_at (int dirfd, const char *path)
{
  struct stat st;
  int dfd;

  if (fstatat (dirfd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
    return errno == ENOENT ? 0 : -1;
  if (!S_ISDIR (st.st_mode))
    return unlinkat (dirfd, path, 0) < 0 && errno != ENOENT ? -1 : 0;
  dfd = openat (dirfd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0)
    return -1;
  if (rm_rf_children (dfd, st.st_dev) < 0)
    return -1;
  if (unlinkat (dirfd, path, AT_REMOVEDIR) < 0 && errno != ENOENT)
    return -1;
  return 0;
}

int
parse_ulong (const char *s, unsigned long max, unsigned long *ret)
{
  char *end;
  unsigned long v;

  if (s == NULL || *s < '0' || *s > '9')
    {
      errno = EINVAL;
      return -1;
    }
  errno = 0;
  v = strtoul (s, &end, 10);
  if (errno == ERANGE || v > max)
    {
      errno = ERANGE;
      return -1;
    }
  if (*end != '\0')
    {
      errno = EINVAL;
      return -1;
    }
  *ret = v;
  return 0;
}

int
parse_size (const char *s, unsigned long long *ret)
{
  char *end;
  unsigned long long v, mult = 1;

  if (s == NULL || *s < '0' || *s > '9')
    {
      errno = EINVAL;
      return -1;
    }
  errno = 0;
  v = strtoull (s, &end, 10);
  if (errno == ERANGE)
    return -1;
  switch (*end)
    {
    case '\0':
      break;
    case 'k':
    case 'K':
      mult = 1ULL << 10;
      end++;
      break;
    case 'm':
    case 'M':
      mult = 1ULL << 20;
      end++;
      break;
    case 'g':
    case 'G':
      mult = 1ULL << 30;
      end++;
      break;
    case 't':
    case 'T':
      mult = 1ULL << 40;
      end++;
      break;
    default:
      errno = EINVAL;
      return -1;
    }
  if (*end == 'i' && mult > 1)
    end++;
  if ((*end == 'B' || *end == 'b') && end[1] == '\0')
    end++;
  if (*end != '\0')
    {
      errno = EINVAL;
      return -1;
    }
  if (v > ULLONG_MAX / mult)
    {
      errno = ERANGE;
      return -1;
    }
  *ret = v * mult;
  return 0;
}

unsigned long long
now_ns (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (unsigned long long)ts.tv_sec * 1000000000ULL + (unsigned long long)ts.tv_nsec;
}

int
ms_until (unsigned long long deadline)
{
  unsigned long long now = now_ns (), ms;

  if (deadline == 0)
    return -1;
  if (now >= deadline)
    return 0;
  ms = (deadline - now + 999999ULL) / 1000000ULL;
  return ms > INT_MAX ? INT_MAX : (int)ms;
}
