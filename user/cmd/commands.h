/* The subcommands that have a file of their own in cmd/, each `NAME_main(argc, argv)`:
 * arguments parsed, the library called, one line of error at the edge. */
#ifndef VNET_XDP_CMD_COMMANDS_H
#define VNET_XDP_CMD_COMMANDS_H

/* `vnet-xdp import [-o FILE] [-p NAME=VALUE] [--param-file NAME=PATH] FILE...`: argv[0] is
 * "import". Returns the exit code: 0 ok, 1 input error, 2 usage. */
int import_main(int argc, char **argv);

/* `vnet-xdp snat [-n NAME] [-j] [--gc]`: the mappings, optionally after a GC pass. */
int snat_main(int argc, char **argv);

/* `vnet-xdp flows [-n NAME] [-j] [--gc] [filters]`. */
int flows_main(int argc, char **argv);

/* `vnet-xdp stats [-n NAME] [-j | --prometheus]`. */
int stats_main(int argc, char **argv);

/* `vnet-xdp clients [-n NAME] [-j]`: the point-to-site clients, with the datapath's
 * counters of each. */
int clients_main(int argc, char **argv);

/* `vnet-xdp monitor [-n NAME] [-j] [--type T,..] [--reason R] [--count N] [--timeout S]
 * [--rate N] [filters]`: the live events. */
int monitor_main(int argc, char **argv);

#endif
