/* Requests must arrive in time.  libmicrohttpd's timeout only measures
   silence, so a client sending one byte a second would hold a connection
   (and its thread) forever.  The watchdog gives each control-plane request
   a deadline for its headers and body, and closes connections that miss
   it.  Proxied requests have none: their bodies may stream for long.  */
#pragma once

#include <microhttpd.h>

/* Start the watchdog thread; requests get TIMEOUT_S seconds.  */
int watchdog_start (unsigned timeout_s);
void watchdog_stop (void);

/* MHD_OPTION_NOTIFY_CONNECTION callback.  */
void watchdog_notify (void *cls, struct MHD_Connection *conn, void **socket_context,
                      enum MHD_ConnectionNotificationCode code);

/* The request on CONN is proxied: no deadline until it completes.  */
void watchdog_disarm (struct MHD_Connection *conn);

/* The request on CONN completed: the next one gets a fresh deadline.  */
void watchdog_rearm (struct MHD_Connection *conn);
