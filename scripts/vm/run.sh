#!/usr/bin/env bash
# Runs a script inside a QEMU guest booted on Debian's own kernel (which has ESP, xfrm
# interfaces and module loading, unlike the host kernel), with the host's root file system
# visible read-only at the same paths (writes land in a tmpfs overlay), and exits with
# the script's exit code.
#
#   scripts/vm/run.sh [-t SECONDS] [-m MB] [-c CPUS] [-d DIR] [-e NAME]... SCRIPT [ARGS...]
#
#   SCRIPT   a file, run as `bash SCRIPT ARGS` in the guest from the current directory;
#            anything else is run as a command (scripts/vm/run.sh uname -r)
#   -t       hard timeout for the whole run, boot included (VM_TIMEOUT, default 600)
#   -m       guest memory in MB (VM_MEMORY, default 2048)
#   -c       guest CPUs (VM_CPUS, default 2)
#   -d DIR   the run's directory on the host (default: a fresh one, removed at the end);
#            the guest sees it uncached at /vmio, so the host can hand a running guest
#            files there and read what it writes
#   -e NAME  pass the host's $NAME into the guest (BUILD and VNET_XDP always are;
#            VM_ENV="A B" adds more)
#
# The guest's console (the script's stdout and stderr, kernel warnings) streams to
# stdout. Exit codes: the script's own; 77 with a "SKIP name: why" line when qemu cannot
# run here (no qemu, no kernel from the Debian archive); 124 on timeout; 125 when the
# guest broke before running the script. Prints the boot time and the total time on
# stderr. The kernel and initramfs are prepared once (scripts/vm/prepare.sh) and cached
# under build/vm/.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

timeout_s=${VM_TIMEOUT:-600}
memory=${VM_MEMORY:-2048}
cpus=${VM_CPUS:-2}
pass_env=(BUILD VNET_XDP ${VM_ENV:-})
rundir=
timeout_given=

usage() { sed -n '/^#   scripts/,/^#   -e/p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while getopts 't:m:c:d:e:h' opt; do
	case $opt in
	t) timeout_s=$OPTARG timeout_given=1 ;;
	m) memory=$OPTARG ;;
	c) cpus=$OPTARG ;;
	d) rundir=$OPTARG ;;
	e) pass_env+=("$OPTARG") ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || usage
name=$1
[ -f "$1" ] && name=${1#./} && name=${name%.sh}
# A script that needs longer says so in its own `export VM_TIMEOUT=${VM_TIMEOUT:-N}` line
# (read here too, so that tests/run.sh, which starts the guest itself, grants it), up to
# 1200 s: the whole suite must stay well within CI's time.
if [ -z "${VM_TIMEOUT:-}" ] && [ -z "$timeout_given" ] && [ -f "$1" ]; then
	wanted=$(sed -n 's/^export VM_TIMEOUT=\${VM_TIMEOUT:-\([0-9]\+\)}$/\1/p' "$1" | head -1)
	[ -n "$wanted" ] && timeout_s=$((wanted < 1200 ? wanted : 1200))
fi

skip() { echo "SKIP $name: qemu cannot run here: $*"; exit 77; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}'; }

start=$(now)
settings=$("$ROOT/scripts/vm/prepare.sh") ||
	skip "scripts/vm/prepare.sh failed (kernel or packages not available from the Debian archive)"
eval "$settings"
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is not installed"
[ -f "$VM_KERNEL" ] && [ -f "$VM_INITRD" ] || skip "no guest kernel in the cache"

if [ -n "$rundir" ]; then
	mkdir -p "$rundir" && rm -f "$rundir/rc" || exit 2
else
	rundir=$(mktemp -d /tmp/vnet-xdp-vm.XXXXXX)
	trap 'rm -rf "$rundir"' EXIT
fi

# The job the guest's second stage runs: directory, environment, command.
{
	printf 'VM_CWD=%q\n' "$PWD"
	if [ -f "$1" ]; then
		printf 'VM_ARGV=(bash'; printf ' %q' "$@"; printf ')\n'
	else
		printf 'VM_ARGV=('; printf ' %q' "$@"; printf ')\n'
	fi
	for v in "${pass_env[@]}"; do
		[ -n "${!v+x}" ] && printf 'export %s=%q\n' "$v" "${!v}"
	done
} >"$rundir/job"

# mitigations=off: nothing in the guest to protect from; cryptomgr.notests=1: the crypto
# self-tests take seconds per module under emulation.
echo "vm: booting $VM_KERNEL_VERSION under TCG ($cpus cpu, $memory MB, timeout ${timeout_s}s)" >&2
boot=$(now)
timeout -k 10 "$timeout_s" qemu-system-x86_64 \
	-accel tcg -cpu max -m "$memory" -smp "$cpus" \
	-nodefaults -no-user-config -display none -serial stdio -no-reboot \
	-kernel "$VM_KERNEL" -initrd "$VM_INITRD" \
	-append "console=ttyS0 quiet panic=-1 mitigations=off cryptomgr.notests=1 vm.modules=$VM_MODULES vm.stage2=$ROOT/scripts/vm/guest-init.sh" \
	-fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap \
	-device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot \
	-fsdev local,id=vmio,path="$rundir",security_model=none \
	-device virtio-9p-pci,fsdev=vmio,mount_tag=vmio \
	</dev/null 2>"$rundir/qemu.err" | sed -u 's/\r$//' | tee "$rundir/console" | while IFS= read -r line || [ -n "$line" ]; do
	case $line in
	"vm: guest ready"*) echo "$line (host: $(elapsed "$boot")s since qemu started)" ;;
	*) printf '%s\n' "$line" ;;
	esac
done
qemu_rc=${PIPESTATUS[0]}

if [ -s "$rundir/rc" ]; then
	rc=$(cat "$rundir/rc")
elif [ "$qemu_rc" -eq 124 ] || [ "$qemu_rc" -eq 137 ]; then
	echo "vm: timed out after ${timeout_s}s" >&2
	rc=124
elif ! grep -q '^vm: guest ready' "$rundir/console" && ! grep -q . "$rundir/console"; then
	cat "$rundir/qemu.err" >&2
	skip "qemu-system-x86_64 exited $qemu_rc before the guest printed anything"
else
	rc=$(grep -oP '^VM-EXIT \K[0-9]+' "$rundir/console" | tail -1)
	[ -n "$rc" ] || { cat "$rundir/qemu.err" >&2; echo "vm: the guest stopped without an exit code" >&2; rc=125; }
fi
echo "vm: $name exited $rc, ${cpus} cpu, $(elapsed "$start")s in all" >&2
exit "$rc"
