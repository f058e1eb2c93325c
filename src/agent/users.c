#define _GNU_SOURCE
#include "users.h"
#include "agent.h"
#include "libhutch/util.h"

#include <grp.h>
#include <openssl/evp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <unistd.h>

int
agent_user_lookup (const char *name, struct agent_user *ret)
{
  struct passwd pw, *res = NULL;
  char buf[4096];

  if (getpwnam_r (name, &pw, buf, sizeof buf, &res) != 0 || res == NULL)
    {
      errno = ENOENT;
      return -1;
    }
  snprintf (ret->name, sizeof ret->name, "%s", pw.pw_name);
  ret->uid = pw.pw_uid;
  ret->gid = pw.pw_gid;
  snprintf (ret->home, sizeof ret->home, "%s", pw.pw_dir);
  snprintf (ret->shell, sizeof ret->shell, "%s", pw.pw_shell);
  return 0;
}

int
agent_user_from_basic_auth (const char *header, struct agent_user *ret)
{
  unsigned char decoded[256];
  const char *b64;
  char *colon;
  int n;

  if (header == NULL || *header == '\0')
    {
      char name[64];
      agent_lock ();
      snprintf (name, sizeof name, "%s", agent.default_user ? agent.default_user : "user");
      agent_unlock ();
      return agent_user_lookup (name, ret);
    }
  if (strncasecmp (header, "Basic ", 6) != 0)
    return -1;
  b64 = header + 6;
  if (strlen (b64) > 4 * (sizeof decoded / 3) - 4)
    return -1;
  n = EVP_DecodeBlock (decoded, (const unsigned char *)b64, (int)strlen (b64));
  if (n < 0)
    return -1;
  decoded[n] = '\0';
  colon = strchr ((char *)decoded, ':');
  if (colon == NULL || colon == (char *)decoded)
    return -1;
  *colon = '\0';
  return agent_user_lookup ((char *)decoded, ret);
}

/* Clean an absolute path lexically.  */
static char *
clean_path (const char *abs)
{
  char *out = xmalloc (strlen (abs) + 2);
  size_t len = 0;
  const char *p = abs;

  while (*p)
    {
      size_t n;
      while (*p == '/')
        p++;
      n = strcspn (p, "/");
      if (n == 0)
        break;
      if (n == 1 && p[0] == '.')
        ;
      else if (n == 2 && p[0] == '.' && p[1] == '.')
        {
          while (len > 0 && out[len - 1] != '/')
            len--;
          if (len > 0)
            len--;
        }
      else
        {
          out[len++] = '/';
          memcpy (out + len, p, n);
          len += n;
        }
      p += n;
    }
  if (len == 0)
    out[len++] = '/';
  out[len] = '\0';
  return out;
}

char *
agent_resolve_path (const struct agent_user *user, const char *path)
{
  cleanup_free char *joined = NULL;

  if (path == NULL || *path == '\0')
    return clean_path (user->home);
  if (path[0] == '~')
    {
      if (path[1] != '\0' && path[1] != '/')
        {
          errno = EINVAL;
          return NULL;
        }
      xasprintf (&joined, "%s/%s", user->home, path + 1);
    }
  else if (path[0] != '/')
    xasprintf (&joined, "%s/%s", user->home, path);
  else
    joined = xstrdup (path);
  return clean_path (joined);
}

void
agent_fs_as (const struct agent_user *user)
{
  gid_t groups[1] = { user->gid };
  /* Raw syscalls: glibc would apply setgroups to every thread.  */
  syscall (SYS_setgroups, 1, groups);
  setfsgid (user->gid);
  setfsuid (user->uid);
}

void
agent_fs_restore (void)
{
  setfsuid (0);
  setfsgid (0);
  syscall (SYS_setgroups, 0, NULL);
}
