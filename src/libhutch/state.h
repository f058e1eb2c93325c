/* On-disk state of live sandboxes under the data directory.

   DATA/sandboxes/ID/      one directory per sandbox; its file "lock" is
                           flock()ed by the supervisor for the sandbox's life,
                           so a free lock means the supervisor is gone.
   DATA/sandboxes/ID/slot  the uid slot number
   DATA/slots/N            a symlink to ID: slot N (host uids
                           HUTCH_UID_BASE + N * 65536 ...) belongs to ID.  */
#pragma once

#include "error.h"

#include <sys/types.h>

#define HUTCH_UID_BASE 0x10000000u
#define HUTCH_UID_RANGE 65536u
#define HUTCH_SLOTS 32768u

/* Create DATA/sandboxes/ID and lock it.  Returns the lock fd (>= 0).  */
int hutch__state_create (int data_fd, const char *id, hutch_error_t *err);

/* Claim a free uid slot for ID and record it.  Returns the slot.  */
int hutch__slot_claim (int data_fd, const char *id, hutch_error_t *err);

/* Release slot SLOT if it belongs to ID.  */
void hutch__slot_release (int data_fd, int slot, const char *id);

/* Slot recorded for ID, or -1.  */
int hutch__state_slot (int data_fd, const char *id);

/* Remove the state directory of ID.  */
int hutch__state_remove (int data_fd, const char *id, hutch_error_t *err);

static inline uid_t
hutch__slot_uid (int slot)
{
  return HUTCH_UID_BASE + (uid_t)slot * HUTCH_UID_RANGE;
}
