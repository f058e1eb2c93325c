/* The client's state, shared by the wire layer (jupyter-wire.c: sockets,
   framing, signatures, connection files) and the protocol layer
   (jupyter.c: readiness, executions, interrupts).  */
#pragma once

#include "jupyter.h"

struct jupyter_client
{
  void *sock[_JUPYTER_CHANNEL_MAX]; /* shell, iopub and control; NULL others */
  char session[JUPYTER_ID_LEN + 1];
  char key[sizeof ((struct jupyter_conn *)0)->key];
  pid_t pid;
  int pidfd; /* -1 once the exit was seen */
  bool dead;
  bool interrupt_by_message;
  /* An execution failed with stop_on_error: the kernel aborts execute
     requests until it has gone once more through its queue.  */
  bool aborting;
};
