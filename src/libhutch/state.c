#define _GNU_SOURCE
#include "state.h"
#include "util.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* Made under a temporary name and renamed once locked, so a directory
   named ID always has a lock file that tells whether its owner lives.  */
int
hutch__state_create (int data_fd, const char *id, hutch_error_t *err)
{
  char tmp[256], path[320];
  int fd;

  snprintf (tmp, sizeof tmp, "sandboxes/.new-%s", id);
  snprintf (path, sizeof path, "sandboxes/%s", id);
  if (faccessat (data_fd, path, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
    return hutch_make_error (err, EEXIST, "create state of sandbox `%s`", id);
  if (mkdirat (data_fd, tmp, 0700) < 0)
    return hutch_make_error (err, errno, "create state of sandbox `%s`", id);
  snprintf (path, sizeof path, "%s/lock", tmp);
  fd = openat (data_fd, path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0 || flock (fd, LOCK_EX | LOCK_NB) < 0)
    goto fail;
  snprintf (path, sizeof path, "sandboxes/%s", id);
  if (renameat2 (data_fd, tmp, data_fd, path, RENAME_NOREPLACE) < 0)
    goto fail;
  return fd;

fail:
  {
    int saved = errno;
    if (fd >= 0)
      close (fd);
    rm_rf_at (data_fd, tmp);
    return hutch_make_error (err, saved, "create state of sandbox `%s`", id);
  }
}

static int
record_slot (int data_fd, const char *id, int slot)
{
  char path[256], value[32];

  snprintf (path, sizeof path, "sandboxes/%s/slot", id);
  snprintf (value, sizeof value, "%d\n", slot);
  return write_file_at (data_fd, path, value, 0600);
}

int
hutch__slot_claim (int data_fd, const char *id, hutch_error_t *err)
{
  unsigned start;

  if (getrandom (&start, sizeof start, 0) != sizeof start)
    start = (unsigned)getpid ();
  for (unsigned i = 0; i < HUTCH_SLOTS; i++)
    {
      int slot = (int)((start + i) % HUTCH_SLOTS);
      char path[64];

      snprintf (path, sizeof path, "slots/%d", slot);
      if (symlinkat (id, data_fd, path) < 0)
        {
          if (errno == EEXIST)
            continue;
          return hutch_make_error (err, errno, "claim uid slot `%s`", path);
        }
      if (record_slot (data_fd, id, slot) < 0)
        {
          int saved = errno;
          unlinkat (data_fd, path, 0);
          return hutch_make_error (err, saved, "record uid slot of `%s`", id);
        }
      return slot;
    }
  return hutch_make_error (err, EAGAIN, "no free uid slot (%u sandboxes alive)", HUTCH_SLOTS);
}

void
hutch__slot_release (int data_fd, int slot, const char *id)
{
  char path[64], owner[256];
  ssize_t n;

  if (slot < 0)
    return;
  snprintf (path, sizeof path, "slots/%d", slot);
  n = readlinkat (data_fd, path, owner, sizeof owner - 1);
  if (n < 0)
    return;
  owner[n] = '\0';
  if (strcmp (owner, id) == 0)
    unlinkat (data_fd, path, 0);
}

int
hutch__state_slot (int data_fd, const char *id)
{
  cleanup_free char *buf = NULL;
  char path[256];
  unsigned long v;

  snprintf (path, sizeof path, "sandboxes/%s/slot", id);
  if (read_file_at (data_fd, path, &buf, NULL) < 0)
    return -1;
  buf[strcspn (buf, "\n")] = '\0';
  if (parse_ulong (buf, HUTCH_SLOTS - 1, &v) < 0)
    return -1;
  return (int)v;
}

int
hutch__state_remove (int data_fd, const char *id, hutch_error_t *err)
{
  char path[256];

  snprintf (path, sizeof path, "sandboxes/%s", id);
  if (rm_rf_at (data_fd, path) < 0)
    return hutch_make_error (err, errno, "remove state of sandbox `%s`", id);
  return 0;
}
