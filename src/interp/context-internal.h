/* Between the contexts registry (contexts.c) and the kernel of one
   context (context-kernel.c).  */
#pragma once

#include "contexts.h"

/* With C held (or not yet published): start its kernel and apply its
   working directory.  On failure nothing is left running.  */
int ctx_kernel_start (struct interp_ctx *c, hutch_error_t *err);

/* With C held: kill the kernel and forget it.  */
void ctx_kernel_stop (struct interp_ctx *c);

/* From any thread: SIGKILL the kernel (and its process group).  */
void ctx_kill_kernel (struct interp_ctx *c);
