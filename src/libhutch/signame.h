/* Signal names as Go prints them (os.Signal.String), which is what envd
   reports in a process's end status, "signal: NAME".  */
#pragma once

/* The name of SIG, or NULL when it has none.  */
const char *hutch_signal_name (int sig);
