/* Pid 1 for sandboxes that run one command (`hutch run`).  */
#pragma once

struct hutch_exec_spec
{
  char *const *argv; /* argv[0] is looked up in PATH */
  char *const *envp;
};

/* Run inside the sandbox as pid 1: start SPEC's command, forward
   termination signals to it, reap every orphan, and return its exit status
   (128 + signal when killed; 126/127 when it cannot be executed).  SPEC is
   a struct hutch_exec_spec *.  */
int hutch_init_exec (void *spec);
