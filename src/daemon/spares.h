/* Spare sandboxes: a few sandboxes of the default template made in
   advance, their agent and default Python kernel already up.  A create
   takes one and hands it out once the agent has its settings; a new
   spare is made after, in the background.  Spares belong to nobody: no
   access token, no variables, not listed, no deadline.  */
#pragma once

#include "libhutch/error.h"
#include "zygote.h"

#include <stdbool.h>

struct spares_config
{
  int count;                   /* how many to keep; 0: none */
  const char *template_id;     /* canonical name of the template they run */
  const char *agent_init_json; /* their agent's settings (copied) */
  unsigned long long memory_bytes, disk_bytes;
  unsigned long cpu_millis, pids;
};

struct spare
{
  char id[65];
  struct zygote_sandbox z;
};

/* Start the thread that keeps CONFIG->count spares.  COUNT_LIVE tells
   how many sandboxes are in use: spares are made only while in use plus
   spares stays below MAX_TOTAL.  */
int spares_start (const struct spares_config *config, int (*count_live) (void), int max_total,
                  hutch_error_t *err);

/* Take a live spare made for TEMPLATE_ID (canonical) with these limits.
   False when there is none.  */
bool spares_take (const char *template_id, unsigned long long memory_bytes,
                  unsigned long long disk_bytes, unsigned long cpu_millis, struct spare *ret);

/* Destroy a spare taken but not used, WHY telling the log.  */
void spares_discard (struct spare *s, const char *why);

/* Something changed the number of sandboxes in use: reconsider.  */
void spares_wake (void);

/* Stop making spares and destroy those left.  */
void spares_stop (void);
