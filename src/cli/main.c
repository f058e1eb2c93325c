#define _GNU_SOURCE
#include "cli.h"
#include "libhutch/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct
{
  const char *name;
  int (*fn) (int argc, char **argv);
  const char *help;
} commands[] = {
  { "run", cmd_run, "run one command in a fresh sandbox" },
  { "gc", cmd_gc, "remove what crashed sandboxes left behind" },
};

const char *
cli_default_data_dir (void)
{
  const char *env = getenv ("HUTCH_DATA_DIR");
  return env && *env ? env : HUTCH_DEFAULT_DATA_DIR;
}

static void
usage (FILE *out)
{
  fprintf (out, "usage: hutch COMMAND [OPTIONS]\n\ncommands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf (out, "  %-8s %s\n", commands[i].name, commands[i].help);
  fprintf (out, "\n'hutch COMMAND --help' describes a command.\n");
}

int
main (int argc, char **argv)
{
  hutch_log_init ("hutch", HUTCH_LOG_WARN);
  if (argc < 2)
    {
      usage (stderr);
      return HUTCH_EXIT_USAGE;
    }
  if (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0)
    {
      usage (stdout);
      return 0;
    }
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (strcmp (argv[1], commands[i].name) == 0)
      return commands[i].fn (argc - 1, argv + 1);
  fprintf (stderr, "hutch: unknown command `%s`\n", argv[1]);
  usage (stderr);
  return HUTCH_EXIT_USAGE;
}
