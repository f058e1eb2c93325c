/* The agent's settings (struct agent_state) and their lock: apart from
   agent.c so that the code-interpreter driver of tests/interp links them
   without the envd server.  */
#include "agent.h"

#include <pthread.h>

struct agent_state agent;
static pthread_mutex_t agent_mu = PTHREAD_MUTEX_INITIALIZER;

void
agent_lock (void)
{
  pthread_mutex_lock (&agent_mu);
}

void
agent_unlock (void)
{
  pthread_mutex_unlock (&agent_mu);
}
