/* The generated /etc of the host template.  */
#pragma once

#include "error.h"

/* Write etc/ below ROOTFD: generated account and network files plus a
   copy of the harmless, world-readable parts of the host's /etc.  */
int hutch__template_write_etc (int rootfd, hutch_error_t *err);
