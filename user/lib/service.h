/* What `serve` tells its service manager (systemd's notify protocol): ready, reloading,
 * stopping. Without a manager (no NOTIFY_SOCKET) every call does nothing. */
#ifndef VNET_XDP_SERVICE_H
#define VNET_XDP_SERVICE_H

/* status: one line for `systemctl status`, e.g. what is served and where. */
void service_ready(const char *status);
/* Before a reload starts; service_ready follows when it is done, whatever its result. */
void service_reloading(void);
void service_stopping(void);

#endif
