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
  { "sandbox", cmd_sandbox, "create, list, inspect and kill sandboxes of a running hutchd" },
  { "exec", cmd_exec, "run a command in a sandbox of a running hutchd" },
  { "code", cmd_code, "run code in a sandbox's code interpreter" },
  { "files", cmd_files, "copy files into and out of a sandbox, list them" },
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
  fprintf (out, "\nrun and gc work on this machine's sandboxes directly (as root); the\n"
                "others talk to hutchd at $HUTCH_API_URL (or $E2B_API_URL, default\n"
                "http://127.0.0.1:3000) with the key in $HUTCH_API_KEY (or $E2B_API_KEY).\n"
                "\n'hutch COMMAND --help' describes a command.\n");
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
