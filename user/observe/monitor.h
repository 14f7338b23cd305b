/* `vnet-xdp monitor`: live drops, flows and SNAT exhaustion from the datapath's ring
 * buffer (bpf/monitor.h), as text or JSON lines, filtered. */
#ifndef VNET_XDP_MONITOR_H
#define VNET_XDP_MONITOR_H

/* Returns the exit code. */
int monitor_main(int argc, char **argv);

#endif
