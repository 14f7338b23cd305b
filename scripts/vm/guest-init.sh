#!/bin/bash
# Second stage of the test guest, PID 1 after switch_root: the host's root is / (read-only
# lower layer, writes go to tmpfs), /vmio is the host's results dir for this run. Sets up
# a minimal system, runs the job that scripts/vm/run.sh wrote to /vmio/job, stores its
# exit code in /vmio/rc and powers the guest off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb LANG=C.UTF-8
export VNET_XDP_VM=1 # tests/vm/lib.sh: we are inside the test guest
exec </dev/null >/dev/console 2>&1

finish() {
	echo "$1" >/vmio/rc
	sync
	echo "VM-EXIT $1"
	echo 1 >/proc/sys/kernel/printk # no "Power down" chatter after the marker
	echo o >/proc/sysrq-trigger
	sleep 10
	exit "$1" # PID 1 exiting panics the kernel; with panic=-1 and -no-reboot qemu stops
}

mount -t proc proc /proc
mount -t sysfs sys /sys
mkdir -p /dev/pts /dev/shm
ln -sf /proc/self/fd /dev/fd # bash's <(...) and /dev/stdin need these; devtmpfs lacks them
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 shm /dev/shm
# /run is the guest's own (the host's holds its netns mounts and pid files); /tmp stays
# the host's, seen through the overlay, so scripts and data the host put there are found.
mount -t tmpfs -o mode=0755 run /run
mount -t bpf bpf /sys/fs/bpf
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null || true
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null || true
mkdir -p /run/netns /run/lock
# The kernel loads crypto algorithms and other modules on demand through this.
echo /sbin/modprobe >/proc/sys/kernel/modprobe
hostname vnet-xdp-vm
ip link set lo up

read -r up _ </proc/uptime
echo "vm: guest ready after ${up}s (kernel $(uname -r), $(nproc) cpu)"

if [ ! -f /vmio/job ]; then
	echo "vm: no job in /vmio"
	finish 125
fi
. /vmio/job
cd "$VM_CWD" || finish 125
"${VM_ARGV[@]}"
rc=$?
read -r up _ </proc/uptime
echo "vm: guest script exited $rc after ${up}s of guest uptime"
finish $rc
