#!/usr/bin/env bash
# Prepares what scripts/vm/run.sh boots: Debian's own kernel (the one with ESP and xfrm
# interfaces, which the host kernel lacks), its modules and a small busybox initramfs.
#
#   scripts/vm/prepare.sh [--force]
#
# Installs the Debian packages the guest needs (qemu, busybox, strongSwan), downloads
# the current linux-image-6.1.0-N-amd64 from Debian's archive, unpacks it under the
# cache dir ($VNET_VM_CACHE, default build/vm/) and builds the initramfs. Everything is
# reused while it is there: a second run costs nothing and touches no network.
# Prints the cache dir's settings as VAR=value lines on stdout (for run.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${VNET_VM_CACHE:-$ROOT/build/vm}
FORCE=0
[ "${1:-}" = --force ] && FORCE=1

PACKAGES=(qemu-system-x86 busybox-static cpio kmod xz-utils strongswan-charon strongswan-swanctl
	iproute2 iputils-ping netcat-openbsd util-linux procps)
# Modules the initramfs loads before it can mount the host's root over virtio-9p.
INITRD_MODULES=(virtio_pci 9pnet_virtio 9p overlay)

log() { echo "vm-prepare: $*" >&2; }

install_packages() {
	local missing=() p
	for p in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	local sudo=
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The kernel package that linux-image-amd64 currently points at: linux-image-6.1.0-N-amd64.
kernel_package() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		awk '/Depends: linux-image-[0-9].*-amd64$/ {print $2; exit}'
}

fetch_kernel() {
	local pkg=$1 version=${1#linux-image-} tmp deb
	tmp=$(mktemp -d "$CACHE/.fetch.XXXXXX")
	log "downloading $pkg"
	# apt's sandbox user may not write into the cache dir: download in a world-writable one.
	chmod 0777 "$tmp"
	(cd "$tmp" && apt-get download -q "$pkg" >/dev/null 2>&1) ||
		(cd "$tmp" && apt-get update -qq && apt-get download -q "$pkg" >/dev/null 2>&1) || {
		log "cannot download $pkg from the Debian archive"
		rm -rf "$tmp"
		return 1
	}
	deb=$(ls "$tmp"/*.deb)
	log "$(basename "$deb"): $(du -m "$deb" | cut -f1) MB"
	dpkg -x "$deb" "$tmp/root"
	# Keep what a network test guest can use; drop graphics, sound, media, wireless...
	# (about 60% of the modules) to keep the cache small.
	local mods="$tmp/root/lib/modules/$version/kernel"
	rm -rf "$mods"/drivers/{gpu,media,infiniband,staging,iio,input,hid,usb,bluetooth,scsi,ata,mmc,mtd,isdn,platform,hwmon,video} \
		"$mods"/sound "$mods"/drivers/net/{wireless,ethernet,can,usb,wwan} "$mods"/net/{bluetooth,mac80211,wireless}
	depmod -b "$tmp/root" "$version"
	rm -rf "$CACHE/kernel-$version"
	mv "$tmp/root" "$CACHE/kernel-$version"
	rm -rf "$tmp"
}

# The uncompressed ELF kernel: qemu boots it through its PVH entry point, which skips the
# firmware's real-mode setup and the xz decompression, about 10 s of emulated time.
# Without it run.sh boots the bzImage.
extract_vmlinux() {
	local off
	off=$(LC_ALL=C grep -abo $'\xfd7zXZ\x00' "$1" | head -1 | cut -d: -f1)
	[ -n "$off" ] || return 0
	# xz complains about the bytes after its stream; what it wrote is complete.
	tail -c +$((off + 1)) "$1" | xz -dc >"$2.tmp" 2>/dev/null || true
	if readelf -n "$2.tmp" 2>/dev/null | grep -q Xen; then mv "$2.tmp" "$2"; else rm -f "$2.tmp"; fi
}

build_initrd() {
	local version=$1 kdir=$CACHE/kernel-$1 out=$CACHE/initrd-$1.gz stage ko
	stage=$(mktemp -d "$CACHE/.initrd.XXXXXX")
	mkdir -p "$stage"/{bin,dev,proc,sys,newroot,lower,rw,modules}
	cp /bin/busybox "$stage/bin/busybox"
	cp "$ROOT/scripts/vm/initrd-init" "$stage/init"
	chmod 0755 "$stage/init"
	# modprobe resolves the dependencies once, here; the initramfs only runs insmod in order.
	local m
	for m in "${INITRD_MODULES[@]}"; do
		modprobe -d "$kdir" -S "$version" --show-depends "$m"
	done |
		awk '$1 == "insmod" && !seen[$2]++ {print $2}' | while read -r ko; do
		cp "$ko" "$stage/modules/"
		echo "/modules/$(basename "$ko")" >>"$stage/modules/order"
	done
	(cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) >"$out.tmp"
	mv "$out.tmp" "$out"
	rm -rf "$stage"
}

main() {
	mkdir -p "$CACHE"
	exec 9>"$CACHE/.lock"
	flock 9 # two test runs in one tree share one cache
	install_packages

	local version=
	[ -f "$CACHE/kernel-version" ] && version=$(cat "$CACHE/kernel-version")
	if [ "$FORCE" = 1 ] || [ -z "$version" ] || [ ! -d "$CACHE/kernel-$version/lib/modules/$version" ]; then
		local pkg
		pkg=$(kernel_package)
		[ -n "$pkg" ] || { apt-get update -qq; pkg=$(kernel_package); }
		[ -n "$pkg" ] || { log "apt-cache knows no linux-image-amd64"; return 1; }
		version=${pkg#linux-image-}
		fetch_kernel "$pkg"
		echo "$version" >"$CACHE/kernel-version"
	fi
	local initrd=$CACHE/initrd-$version.gz
	if [ "$FORCE" = 1 ] || [ ! -s "$initrd" ] || [ "$ROOT/scripts/vm/initrd-init" -nt "$initrd" ]; then
		build_initrd "$version"
	fi
	local boot=$CACHE/kernel-$version/boot kernel
	[ -e "$boot/vmlinux-$version" ] || [ -e "$boot/.no-pvh" ] ||
		extract_vmlinux "$boot/vmlinuz-$version" "$boot/vmlinux-$version"
	kernel=$boot/vmlinux-$version
	[ -s "$kernel" ] || { touch "$boot/.no-pvh"; kernel=$boot/vmlinuz-$version; }
	echo "VM_KERNEL=$kernel"
	echo "VM_INITRD=$initrd"
	echo "VM_MODULES=$CACHE/kernel-$version/lib/modules/$version"
	echo "VM_KERNEL_VERSION=$version"
}

main "$@"
