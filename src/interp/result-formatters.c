/* The result formatters (result-formatters.py, e2b/chart and e2b/data)
   that every Python kernel installs when it starts, as one Python
   statement: the zygote runs it in the shell it prepares, a kernel started
   from its kernelspec gets it as its start-up code.  */
#define _GNU_SOURCE
#include "interp-internal.h"
#include "libhutch/util.h"
#include "result-formatters.h"

#include <string.h>

#define NAME "'<hutch-result-formatters>'"

/* exec(compile('SOURCE', NAME, 'exec'), {...}): the module's names stay
   out of the user's namespace.  */
char *
result_formatters_code (void)
{
  static const char head[] = "exec(compile('",
                    tail[] = "', " NAME ", 'exec'), {'__name__': 'hutch_result_formatters'})";
  size_t n = 0;
  char *out, *p;

  for (const char *s = result_formatters_py; *s; s++)
    n += (*s == '\\' || *s == '\'' || *s == '\n') ? 2 : 1;
  out = p = xmalloc (sizeof head - 1 + n + sizeof tail);
  p = stpcpy (p, head);
  for (const char *s = result_formatters_py; *s; s++)
    {
      if (*s == '\\' || *s == '\'' || *s == '\n')
        *p++ = '\\';
      *p++ = *s == '\n' ? 'n' : *s;
    }
  strcpy (p, tail);
  return out;
}
