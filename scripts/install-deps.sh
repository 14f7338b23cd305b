#!/usr/bin/env bash
# Installs every Debian package that building, the demo and the tests need.
# Idempotent: installs only what is missing, so `make test` can call it every time.
set -euo pipefail

PACKAGES=(
  # build
  make gcc clang llvm pkg-config libc6-dev linux-libc-dev
  libbpf-dev libxdp-dev bpftool
  libjansson-dev libmicrohttpd-dev libmnl-dev libsystemd-dev libcmocka-dev
  # man pages (docs/man/*.scd)
  scdoc
  # the Debian package (make deb, tests/e2e/package.sh): its build, its check, man to
  # read its pages back
  dpkg-dev debhelper lintian man-db
  # fuzzing: clang's libFuzzer runtime (the sanitizer runtimes come with gcc)
  libclang-rt-14-dev
  # datapath tooling, demo and end-to-end tests
  iproute2 xdp-tools ethtool iputils-ping netcat-openbsd iperf3 tcpdump procps util-linux jq
  python3 systemd
  # metrics: promtool and a real Prometheus server for the scrape tests, curl for /metrics
  prometheus curl
  # the alert rules' tests read the rules and their tests (YAML)
  python3-yaml
  # benchmarks (make bench): the kernel path's rules and state, the plot
  nftables conntrack gnuplot-nox linux-perf
  # IPsec: charon (IKE), which `up` drives over its vici socket; swanctl for the tests
  strongswan-charon strongswan-swanctl
  # ExpressRoute private peering: FRR's bgpd, which `up` runs per link, and vtysh
  frr
  # point-to-site test: the root, server and client certificates (tests/vm/ipsec_p2s.sh)
  openssl
  # the QEMU guest of the vm suite (Debian's kernel for ESP; scripts/vm/prepare.sh)
  qemu-system-x86 busybox-static cpio kmod xz-utils
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
