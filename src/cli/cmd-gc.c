/* hutch gc: remove what sandboxes of crashed supervisors left behind.  */
#define _GNU_SOURCE
#include "cli.h"
#include "libhutch/sandbox.h"

#include <stdio.h>
#include <string.h>

int
cmd_gc (int argc, char **argv)
{
  cleanup_error hutch_error_t err = NULL;
  struct hutch_runtime *rt = NULL;
  const char *data_dir = cli_default_data_dir ();
  int n;

  for (int i = 1; i < argc; i++)
    {
      if (strcmp (argv[i], "--data-dir") == 0 && i + 1 < argc)
        data_dir = argv[++i];
      else
        {
          fprintf (stderr, "usage: hutch gc [--data-dir DIR]\n");
          return HUTCH_EXIT_USAGE;
        }
    }
  if (hutch_runtime_new (data_dir, &rt, &err) < 0 || (n = hutch_gc (rt, &err)) < 0)
    {
      fprintf (stderr, "hutch: %s\n", err->msg);
      hutch_runtime_free (rt);
      return HUTCH_EXIT_FAILURE;
    }
  printf ("cleaned %d sandbox%s\n", n, n == 1 ? "" : "es");
  hutch_runtime_free (rt);
  return 0;
}
