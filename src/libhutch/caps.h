/* Capabilities of processes inside a sandbox.  */
#pragma once

#include <stdbool.h>

/* Drop every capability outside the sandbox root set from the bounding set,
   and clear the inheritable and ambient sets.  Needs CAP_SETPCAP (in the
   sandbox user namespace).  Returns 0 or -1 with errno set.  */
int hutch__caps_limit_bounding (void);

/* Set the effective and permitted sets to the sandbox root set (ROOT) or to
   nothing.  Returns 0 or -1 with errno set.  */
int hutch__caps_set (bool root);
