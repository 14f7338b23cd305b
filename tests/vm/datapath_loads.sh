#!/usr/bin/env bash
# Every program of the datapath object passes the verifier of Debian's own kernel (the
# guest's), not only the host's newer one: a gateway runs on a distribution kernel.
cd "$(dirname "$0")/../.."
. tests/vm/lib.sh
vm_enter "$@"

OBJ=${BUILD:-build}/vnet_xdp.bpf.o
LOG=$(mktemp /tmp/vxload.XXXXXX)

# a private bpffs, so no pin outlives the probe; prints the programs it pinned
if unshare -m sh -c "mount -t bpf bpf /sys/fs/bpf && mkdir /sys/fs/bpf/probe &&
	bpftool prog loadall $OBJ /sys/fs/bpf/probe && ls /sys/fs/bpf/probe" >"$LOG" 2>&1 &&
	grep -qx xdp_gateway "$LOG"; then
	pass "datapath_loads_on_debian_kernel: kernel $(uname -r) verifies $(grep -E \
		'^(xdp|tc)_' "$LOG" | tr '\n' ' ')"
else
	fail datapath_loads_on_debian_kernel "kernel $(uname -r) refuses it: $(grep -E \
		'invalid|unbounded|Too large|too complex|failed to load|load failed' "$LOG" |
		head -3 | tr '\n' ' ')"
fi
rm -f "$LOG"
