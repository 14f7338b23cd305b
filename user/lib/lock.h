/* One lock per gateway, so that the commands that change it (up, reload, down) and the
 * collectors that delete from its maps (serve's periodic jobs, flows/snat --gc) take turns:
 * two reloads at once would share the staging directory and remove each other's maps.
 * Commands that only read (status, stats, routes) take none. */
#ifndef VNET_XDP_LOCK_H
#define VNET_XDP_LOCK_H

/* How long a command waits for another to finish before it refuses. */
#define GATEWAY_LOCK_WAIT_MS 5000

/* Takes the lock of `gateway` (flock on STATE_ROOT/NAME.lock), waiting up to wait_ms.
 * Returns the descriptor to pass to gateway_unlock, or -EBUSY when another command held
 * it throughout (after one line naming the gateway; wait_ms 0 is a silent try), or -errno
 * after one line. */
int gateway_lock(const char *gateway, int wait_ms);
void gateway_unlock(int fd);
/* For `down`, holding the lock: the gateway's lock files go with the rest of it. */
void gateway_lock_remove(const char *gateway);
/* The lock `vnet-xdp monitor` holds while it reads the gateway's events (the ring buffer
 * has one reader): its descriptor, -EBUSY when another monitor holds it, or -errno. */
int gateway_monitor_lock(const char *gateway);

#endif
