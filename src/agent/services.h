/* The envd services.  Each handler is a route of the agent's envd server
   (agent.c); they answer through connect.h.  */
#pragma once

#include "common/http.h"

/* process.Process (process.c) */
enum MHD_Result process_start (struct http_req *req);
enum MHD_Result process_connect (struct http_req *req);
enum MHD_Result process_list (struct http_req *req);
enum MHD_Result process_send_input (struct http_req *req);
enum MHD_Result process_stream_input (struct http_req *req);
enum MHD_Result process_send_signal (struct http_req *req);
enum MHD_Result process_update (struct http_req *req);
enum MHD_Result process_close_stdin (struct http_req *req);
/* Start the reaper: pid 1 collects every child and orphan.  */
void process_init (void);

/* filesystem.Filesystem (filesystem.c, watch.c) */
enum MHD_Result fs_stat (struct http_req *req);
enum MHD_Result fs_make_dir (struct http_req *req);
enum MHD_Result fs_move (struct http_req *req);
enum MHD_Result fs_list_dir (struct http_req *req);
enum MHD_Result fs_remove (struct http_req *req);
enum MHD_Result fs_watch_dir (struct http_req *req);
enum MHD_Result fs_create_watcher (struct http_req *req);
enum MHD_Result fs_get_watcher_events (struct http_req *req);
enum MHD_Result fs_remove_watcher (struct http_req *req);

/* GET and POST /files (files-download.c, files-upload.c).  POST streams
   its body to disk.  */
enum MHD_Result files_get (struct http_req *req);
bool files_post_upload (struct http_req *req, const char *data, size_t size);
enum MHD_Result files_post (struct http_req *req);
