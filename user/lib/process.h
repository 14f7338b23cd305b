/* What the process itself must be like before it reads a key. */
#ifndef VNET_XDP_PROCESS_H
#define VNET_XDP_PROCESS_H

/* No core dump and no ptrace by other users' processes: memory that held a sharedKey
 * never reaches a core file. Returns 0 or -errno. */
int process_forbid_core_dumps(void);

#endif
