/* Root inside a sandbox keeps Docker's default capability set minus
   CAP_NET_RAW (raw sockets are refused by the seccomp filter anyway), and
   only within its own user namespace: on the host it has none.  */
#define _GNU_SOURCE
#include "caps.h"
#include "util.h"

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static const int root_caps[] = {
  CAP_CHOWN,  CAP_DAC_OVERRIDE, CAP_FSETID,     CAP_FOWNER,  CAP_MKNOD,
  CAP_SETGID, CAP_SETUID,       CAP_SETFCAP,    CAP_SETPCAP, CAP_NET_BIND_SERVICE,
  CAP_KILL,   CAP_AUDIT_WRITE,  CAP_SYS_CHROOT,
};

static unsigned long long
root_mask (void)
{
  unsigned long long mask = 0;
  for (size_t i = 0; i < ARRAY_SIZE (root_caps); i++)
    mask |= 1ULL << root_caps[i];
  return mask;
}

int
hutch__caps_limit_bounding (void)
{
  unsigned long long keep = root_mask ();

  for (int cap = 0; cap <= 63; cap++)
    {
      if (keep & (1ULL << cap))
        continue;
      if (prctl (PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
        return -1;
    }
  if (prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    return -1;
  return 0;
}

int
hutch__caps_set (bool root)
{
  struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
  struct __user_cap_data_struct data[2] = { { 0, 0, 0 }, { 0, 0, 0 } };
  unsigned long long mask = root ? root_mask () : 0;

  data[0].effective = data[0].permitted = (unsigned)mask;
  data[1].effective = data[1].permitted = (unsigned)(mask >> 32);
  return (int)syscall (SYS_capset, &hdr, data);
}
