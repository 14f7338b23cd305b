/* `vnet-xdp serve`: brings the gateway up, then serves /metrics over HTTP. */
#ifndef VNET_XDP_SERVE_H
#define VNET_XDP_SERVE_H

/* Returns the process exit code. */
int serve_main(int argc, char **argv);

#endif
