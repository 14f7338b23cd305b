/* One place for messages: errors go to stderr as one line, prefixed with the program. */
#ifndef VNET_XDP_LOG_H
#define VNET_XDP_LOG_H

#include <stdbool.h>

extern bool log_verbose;

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Something an operator should hear of that is no fault: a tunnel being dialled again. */
void log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Routes libbpf's and libxdp's own messages through ours (debug unless verbose). */
void log_setup_libraries(void);

#endif
