/* `vnet-xdp verify`: Azure's IP flow verify, answered by the datapath itself. A packet is
 * synthesized and run with BPF_PROG_TEST_RUN through a second, dry-run instance of the
 * same program on the pinned maps (no flow written, nothing counted); the decision trace
 * says the verdict, the route and what each NSG stage decided. */
#ifndef VNET_XDP_VERIFY_H
#define VNET_XDP_VERIFY_H

int verify_main(int argc, char **argv);

#endif
