# Helpers for test scripts that run INSIDE the QEMU guest of scripts/vm/run.sh (Debian's
# own kernel: ESP, xfrm interfaces, module loading). Source it after tests/lib.sh's
# neighbours, from the repository root:
#
#   cd "$(dirname "$0")/../.." && . tests/vm/lib.sh
#   vm_enter "$@"          # on the host: re-runs this script in the guest and exits
#   vm_modules_load        # veth, esp4/esp6, xfrm_interface, xfrm_user, AEAD crypto
#
# and from there tests/lib.sh's pass/fail/skip/run_case/in_ns/veth_link plus the helpers
# below. Every guest is fresh (a tmpfs over the host's root), so a test need not clean
# up after itself, but it may.
. tests/lib.sh

# Per-namespace charon dirs (conf, vici socket, log); not under /run, which each charon
# replaces with its own.
VM_IPSEC_DIR=${VM_IPSEC_DIR:-/tmp/vnet-xdp-ipsec}

vm_in_guest() { [ -n "${VNET_XDP_VM:-}" ]; }

# vm_enter "$@": run the calling script inside the guest. On the host this boots a guest
# (scripts/vm/run.sh) that runs the same script with the same arguments, and exits with
# its exit code; inside the guest it returns at once.
VM_HARNESS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
vm_enter() {
	vm_in_guest && return 0
	exec "$VM_HARNESS_ROOT/scripts/vm/run.sh" "$0" "$@"
}

# vm_modules_load [MODULE...]: loads what ESP through xfrm interfaces needs, plus any
# MODULE given; fails naming the first module that is not there afterwards. One modprobe
# for all: every process start costs a good part of a second under emulation.
VM_MODULES_NEEDED=(veth esp4 esp6 xfrm_interface xfrm_user)
# The crypto of Azure's proposals (AES-GCM, AES-CBC with SHA-HMAC), loaded up front so a
# first SA is not slowed down; anything else the kernel loads on demand (/sbin/modprobe).
VM_MODULES_CRYPTO=(aesni_intel gcm ghash_clmulni_intel seqiv echainiv authenc authencesn
	cbc ctr ccm sha1_ssse3 sha256_ssse3 sha512_ssse3 hmac)
vm_modules_load() {
	local m
	modprobe -a "${VM_MODULES_NEEDED[@]}" "$@" || true
	modprobe -aq "${VM_MODULES_CRYPTO[@]}" 2>/dev/null || true
	for m in "${VM_MODULES_NEEDED[@]}" "$@"; do
		[ -d "/sys/module/${m//-/_}" ] || { echo "vm: cannot load module $m" >&2; return 1; }
	done
}

# vm_ns_add NS...: network namespaces with loopback up and forwarding on.
vm_ns_add() {
	local ns
	for ns in "$@"; do
		ip netns add "$ns" || return 1
		ip -n "$ns" link set lo up
		in_ns "$ns" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
	done
}

# vm_xfrm_if NS NAME UNDERLAY_DEV IF_ID: an xfrm interface bound to IF_ID, up. Traffic
# routed into it is encrypted by the SAs carrying the same if_id (strongSwan's
# if_id_in/if_id_out); what those SAs decrypt comes out of it.
vm_xfrm_if() {
	local ns=$1 name=$2 dev=$3 if_id=$4
	ip -n "$ns" link add "$name" type xfrm dev "$dev" if_id "$if_id" || return 1
	ip -n "$ns" link set "$name" up
}

# vm_link_stat NS DEV FIELD: one counter of a link (rx_packets, tx_bytes, rx_errors...).
# (`ip netns exec` mounts the namespace's own /sys; nsenter --net would not.)
vm_link_stat() {
	ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3"
}

# vm_esp_counters NS [IF_ID]: "PACKETS BYTES" summed over the namespace's ESP SAs (both
# directions), or only those bound to IF_ID: what really went through ESP.
vm_esp_counters() {
	ip -n "$1" -s xfrm state | awk -v want="${2:-}" '
		function hex(s,  i, n) {
			n = 0; s = tolower(substr(s, 3))
			for (i = 1; i <= length(s); i++) n = n * 16 + index("0123456789abcdef", substr(s, i, 1)) - 1
			return n
		}
		function num(s) { return s ~ /^0x/ ? hex(s) : s + 0 }
		function flush() {
			if (esp && (want == "" || id == num(want))) { p += pk; b += by }
			esp = 0; id = ""; pk = by = 0
		}
		/^src / { flush() }
		/proto esp/ { esp = 1 }
		{ for (i = 1; i < NF; i++) if ($i == "if_id") id = num($(i + 1)) }
		/lifetime current:/ { getline; by = $1 + 0; pk = $2 + 0 }
		END { flush(); print p + 0, b + 0 }'
}

# ---------------------------------------------------------------------------------------
# strongSwan: one charon per gateway namespace. Each runs in its own mount namespace with
# a private /run (charon refuses a second instance on /run/charon.pid and ignores piddir),
# its own STRONGSWAN_CONF and a vici socket in $VM_IPSEC_DIR/NS/ (outside that private
# /run, so swanctl on the outside reaches it), and kernel-libipsec off (it crashes in the
# guest; the kernel does ESP here).
#
#   charon_start NS [EXTRA]   start and wait for its vici socket; EXTRA is strongswan.conf
#                             text added inside charon { } (e.g. "retransmit_tries = 3")
#   swanctl_in NS ARGS...     swanctl talking to that charon: swanctl_in gw-a --list-sas
#   swanctl_load NS FILE      load connections and secrets from a swanctl.conf FILE
#   charon_stop NS            stop it
#   charon_log NS             its log (IKE at level 2), for a failing test's output
#   charon_dir NS             its directory: strongswan.conf, charon.vici, charon.log

charon_dir() { echo "$VM_IPSEC_DIR/$1"; }

# The plugins each charon loads. Empty (the default) loads everything installed
# (/etc/strongswan.d/charon/*.conf); CHARON_PLUGINS_IKE, the plugins IKEv2 with PSKs or
# certificates, MODP/ECP groups, kernel-netlink and vici need, halves charon's start
# under emulation: CHARON_PLUGINS=$CHARON_PLUGINS_IKE before charon_start.
# (openssl, curve25519, gcm, ccm, ctr, chapoly, des come with libstrongswan-standard-plugins
# or -extra-plugins; listed so they load where installed: ECP groups need openssl.)
CHARON_PLUGINS=${CHARON_PLUGINS:-}
CHARON_PLUGINS_IKE="random nonce aes des sha1 sha2 md5 hmac xcbc cmac gcm ccm ctr \
chapoly mgf1 gmp curve25519 openssl kdf drbg fips-prf pem pkcs1 pkcs8 x509 pubkey \
constraints kernel-netlink socket-default vici updown counters"

charon_start() {
	local ns=$1 extra=${2:-} dir i
	dir=$(charon_dir "$ns")
	mkdir -p "$dir"
	cat >"$dir/strongswan.conf" <<-CONF
	# strongSwan for namespace $ns (written by tests/vm/lib.sh)
	charon {
	    $(if [ -n "$CHARON_PLUGINS" ]; then echo "load = $CHARON_PLUGINS"; else echo "load_modular = yes"; fi)
	    plugins {
	        $([ -n "$CHARON_PLUGINS" ] || echo "include /etc/strongswan.d/charon/*.conf")
	        kernel-libipsec {
	            load = no
	        }
	        vici {
	            socket = unix://$dir/charon.vici
	        }
	    }
	    # routes come from the test (into xfrm interfaces), not from charon
	    install_routes = no
	    filelog {
	        charon {
	            path = $dir/charon.log
	            time_format = %T
	            default = 1
	            ike = 2
	            cfg = 2
	            knl = 2
	            flush_line = yes
	        }
	    }
	    syslog {
	        daemon {
	            default = -1
	        }
	    }
	    $extra
	}
	swanctl {
	    load = random nonce pem pkcs1 pkcs8 x509 pubkey
	}
	CONF
	STRONGSWAN_CONF=$dir/strongswan.conf nsenter --net=/run/netns/"$ns" \
		unshare -m --propagation private sh -c \
		'mount -t tmpfs -o mode=0755 run /run && exec /usr/lib/ipsec/charon' \
		>"$dir/charon.out" 2>&1 </dev/null &
	echo $! >"$dir/pid"
	for ((i = 0; i < 300; i++)); do
		[ -S "$dir/charon.vici" ] && return 0
		kill -0 "$(cat "$dir/pid")" 2>/dev/null || break
		sleep 0.1
	done
	echo "charon in $ns did not come up:" >&2
	cat "$dir/charon.out" "$dir/charon.log" >&2 2>/dev/null
	return 1
}

swanctl_in() { # swanctl_in NS COMMAND [OPTIONS...]: swanctl wants its command first
	local ns=$1 command=$2
	shift 2
	STRONGSWAN_CONF=$(charon_dir "$ns")/strongswan.conf \
		swanctl "$command" --uri "unix://$(charon_dir "$ns")/charon.vici" "$@"
}

swanctl_load() {
	swanctl_in "$1" --load-all --noprompt --file "$2"
}

charon_stop() {
	local dir pid
	dir=$(charon_dir "$1")
	[ -f "$dir/pid" ] || return 0
	pid=$(cat "$dir/pid")
	kill "$pid" 2>/dev/null
	for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$pid" 2>/dev/null
	rm -f "$dir/pid"
}

charon_log() { cat "$(charon_dir "$1")/charon.log" 2>/dev/null; }
