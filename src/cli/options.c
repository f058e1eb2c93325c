#define _GNU_SOURCE
#include "options.h"
#include "libhutch/util.h"

#include <stdio.h>
#include <string.h>

int
opt_size (const char *option, const char *value, unsigned long long *ret)
{
  if (parse_size (value, ret) < 0 || *ret == 0)
    {
      fprintf (stderr, "hutch: %s: invalid size `%s` (examples: 512M, 2G)\n", option, value);
      return -1;
    }
  return 0;
}

/* "1", "0.5", "2.25": thousandths of a cpu.  */
int
opt_cpus (const char *option, const char *value, unsigned long *ret_millis)
{
  unsigned long whole = 0, frac = 0, scale = 100;
  const char *p = value;

  if (*p < '0' || *p > '9')
    goto bad;
  for (; *p >= '0' && *p <= '9'; p++)
    if ((whole = whole * 10 + (unsigned long)(*p - '0')) > 4096)
      goto bad;
  if (*p == '.')
    for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
      if (scale > 0)
        frac += (unsigned long)(*p - '0') * scale;
  /* Below 0.01 cpu the kernel refuses the quota.  */
  if (*p != '\0' || whole * 1000 + frac < 10)
    goto bad;
  *ret_millis = whole * 1000 + frac;
  return 0;
bad:
  fprintf (stderr, "hutch: %s: invalid cpu count `%s` (at least 0.01; examples: 1, 0.5, 2)\n",
           option, value);
  return -1;
}

int
opt_count (const char *option, const char *value, unsigned long max, unsigned long *ret)
{
  if (parse_ulong (value, max, ret) < 0)
    {
      fprintf (stderr, "hutch: %s: expected a whole number from 0 to %lu, got `%s`\n", option, max,
               value);
      return -1;
    }
  return 0;
}
