/* Small helpers shared by every part of hutch: cleanup attributes, checked
   allocation, retrying syscalls and file helpers.  */
#pragma once

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#define UNLIKELY(x) __builtin_expect (!!(x), 0)
#define LIKELY(x) __builtin_expect (!!(x), 1)
#define ARRAY_SIZE(a) (sizeof (a) / sizeof ((a)[0]))

#ifndef TEMP_FAILURE_RETRY
#define TEMP_FAILURE_RETRY(expression)                                                             \
  (__extension__({                                                                                 \
    long int __result;                                                                             \
    do                                                                                             \
      __result = (long int)(expression);                                                           \
    while (__result == -1L && errno == EINTR);                                                     \
    __result;                                                                                      \
  }))
#endif

/* Out of memory is fatal: no caller has to handle it.  */
void *xmalloc (size_t size);
void *xzalloc (size_t size);
void *xrealloc (void *p, size_t size);
char *xstrdup (const char *s);
char *xstrndup (const char *s, size_t n);
int xasprintf (char **ret, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static inline void
cleanup_freep (void *p)
{
  void **pp = (void **)p;
  free (*pp);
}

static inline void
cleanup_closep (void *p)
{
  int *fd = (int *)p;
  if (*fd >= 0)
    {
      int saved = errno;
      close (*fd);
      errno = saved;
    }
}

static inline void
cleanup_filep (void *p)
{
  FILE **f = (FILE **)p;
  if (*f)
    fclose (*f);
}

static inline void
cleanup_dirp (void *p)
{
  DIR **d = (DIR **)p;
  if (*d)
    closedir (*d);
}

void cleanup_strvp (void *p);

#define cleanup_free __attribute__ ((cleanup (cleanup_freep)))
#define cleanup_close __attribute__ ((cleanup (cleanup_closep)))
#define cleanup_file __attribute__ ((cleanup (cleanup_filep)))
#define cleanup_dir __attribute__ ((cleanup (cleanup_dirp)))
#define cleanup_strv __attribute__ ((cleanup (cleanup_strvp)))

/* Hand ownership of a pointer or descriptor to the caller.  */
#define steal_pointer(pp)                                                                          \
  (__extension__({                                                                                 \
    __typeof__ (*(pp)) _ptr = *(pp);                                                               \
    *(pp) = NULL;                                                                                  \
    _ptr;                                                                                          \
  }))

static inline int
get_and_reset (int *fd)
{
  int tmp = *fd;
  *fd = -1;
  return tmp;
}

/* Fill BUF with N bytes from the kernel's random source.  Aborts when
   there is none: ids and tokens have nothing safe to fall back to.  */
void random_bytes (void *buf, size_t n);

/* N characters drawn from ALPHABET, then a NUL (OUT holds N + 1).  */
void random_string (char *out, size_t n, const char *alphabet);

/* Write all of BUF, retrying on EINTR and short writes.  Returns 0 or -1
   with errno set.  */
int write_all (int fd, const void *buf, size_t len);

/* Read exactly LEN bytes.  Returns LEN, the short count on EOF, or -1.  */
ssize_t read_all (int fd, void *buf, size_t len);

/* Write STR to the file at PATH relative to DIRFD (truncating).  Returns 0
   or -1 with errno set.  */
int write_file_at (int dirfd, const char *path, const char *str, mode_t mode);

/* Read a whole small file into a NUL-terminated buffer.  Returns 0 or -1.  */
int read_file_at (int dirfd, const char *path, char **ret, size_t *ret_len);

/* mkdir -p relative to DIRFD.  Returns 0 or -1 with errno set.  */
int mkdir_p_at (int dirfd, const char *path, mode_t mode);

/* rm -rf of PATH relative to DIRFD; never crosses mount points.  Missing
   paths are not an error.  Returns 0 or -1 with errno set.  */
int rm_rf_at (int dirfd, const char *path);

/* Parse "512M", "2G", "1048576" into bytes.  Returns 0 or -1 (EINVAL or
   ERANGE).  */
int parse_size (const char *s, unsigned long long *ret);

/* Parse a non-negative decimal number (no sign, no junk).  Returns 0 or -1.  */
int parse_ulong (const char *s, unsigned long max, unsigned long *ret);

/* Monotonic clock in nanoseconds.  */
unsigned long long now_ns (void);

/* Milliseconds from now until DEADLINE (now_ns () time), rounded up, for
   poll(): 0 when it has passed, -1 for no deadline (0), at most INT_MAX.  */
int ms_until (unsigned long long deadline);
