/* The hutch command line.  Exit codes are documented in docs/cli.md.  */
#pragma once

#define HUTCH_EXIT_OOM 123
#define HUTCH_EXIT_TIMEOUT 124
#define HUTCH_EXIT_FAILURE 125
#define HUTCH_EXIT_USAGE 2

#define HUTCH_DEFAULT_DATA_DIR "/var/lib/hutch"

/* $HUTCH_DATA_DIR, else the default.  */
const char *cli_default_data_dir (void);

int cmd_run (int argc, char **argv);
int cmd_gc (int argc, char **argv);

/* Clients of a running hutchd (client.h).  */
int cmd_sandbox (int argc, char **argv);
int cmd_exec (int argc, char **argv);
int cmd_code (int argc, char **argv);
int cmd_files (int argc, char **argv);
