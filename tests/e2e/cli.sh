#!/usr/bin/env bash
# The command line's edge: every refused argument gets one line saying what is wrong and
# exit code 2 (usage), a file that cannot be read exit code 1 and one line; nothing of
# it needs a gateway or the kernel (root only to watch a command run as nobody).
cd "$(dirname "$0")/../.."
. tests/lib.sh

# refuses EXPECTED_RC FIRST_LINE_PATTERN ARGS...: the exit code and the first line.
refuses() {
	local rc=$1 pattern=$2 out got
	shift 2
	out=$("$VNET_XDP" "$@" 2>&1 </dev/null)
	got=$?
	[ "$got" = "$rc" ] || { echo "vnet-xdp $*: exit $got, expected $rc: $out"; return 1; }
	grep -qE -e "$pattern" <<<"$(head -1 <<<"$out")" ||
		{ echo "vnet-xdp $*: first line '$(head -1 <<<"$out")' is not /$pattern/"; return 1; }
}

missing_values_are_named() {
	local cmd
	for cmd in "up -c" "check -c" "reload -c" "down -n" "status -n" "stats -n" "flows -n" \
		"snat -n" "serve --listen" "verify --in" "routes --vnet"; do
		# shellcheck disable=SC2086
		refuses 2 "^vnet-xdp ${cmd%% *}: option '${cmd#* }' needs a value$" $cmd || return 1
	done
}

unknown_options_are_named() {
	local cmd
	for cmd in "up -q" "status -x" "stats --bogus" "flows -z" "snat --nope" "serve -q" "verify -k"; do
		# shellcheck disable=SC2086
		refuses 2 "^vnet-xdp ${cmd%% *}: unknown or misplaced option '${cmd#* }'$" $cmd || return 1
	done
}

commands_without_what_they_need_say_so() {
	refuses 2 "no command given" &&
		refuses 2 "unknown command 'bogus'" bogus &&
		refuses 2 "up needs -c FILE" up &&
		refuses 2 "routes needs --vnet NAME" routes &&
		refuses 2 "mode is native or generic" up --mode weird -c x &&
		refuses 2 "expected ADDR:PORT" serve --listen 1.2.3 -c /dev/null
}

unreadable_config_is_one_line() {
	local out
	out=$("$VNET_XDP" check -c /nonexistent/gw.json 2>&1)
	[ $? = 1 ] || return 1
	[ "$(wc -l <<<"$out")" = 1 ] || { echo "$out"; return 1; }
	grep -q "^/nonexistent/gw.json: cannot open: No such file or directory$" <<<"$out"
}

# Every command that takes -n refuses what is not a gateway name, before it touches a file.
bad_gateway_names_are_refused_in_one_line() {
	local cmd name out
	for cmd in "down" "status" "stats" "flows" "flows --gc" "snat" "snat --gc" "serve" \
		"verify --in lo --src 10.0.0.1 --dst 10.0.0.2 --proto icmp"; do
		for name in . .. a/b ../../../../tmp/victim gw1.nsg-ids .hidden "" -x \
			abcdefghijklmnop; do
			# shellcheck disable=SC2086
			refuses 2 "^vnet-xdp ${cmd%% *}: -n '.*' is not a gateway name: " \
				$cmd -n "$name" || return 1
			# shellcheck disable=SC2086
			out=$("$VNET_XDP" $cmd -n "$name" 2>&1)
			[ "$(wc -l <<<"$out")" = 1 ] || { echo "$cmd -n '$name': $out"; return 1; }
		done
	done
}

# `down -n ../../../../tmp/DIR` once emptied DIR: the pins' directory and the state files
# are made from the name, and bpffs's /sys/fs/bpf/vnet-xdp/../../../.. is /.
down_leaves_a_directory_outside_its_own_alone() {
	local victim=/tmp/vnet-xdp-victim.$$ made_root=""
	mkdir -p "$victim/inner" && echo keep >"$victim/file" && echo keep >"$victim.json" &&
		echo keep >"$victim.nsg-ids.json" || return 1
	if [ "$(id -u)" = 0 ] && [ -d /sys/fs/bpf ] && [ ! -d /sys/fs/bpf/vnet-xdp ]; then
		mkdir /sys/fs/bpf/vnet-xdp && made_root=1 # the path resolves through it
	fi
	"$VNET_XDP" down -n "../../../..$victim" >"$victim.out" 2>&1
	echo "exit $?" >>"$victim.out"
	[ -n "$made_root" ] && rmdir /sys/fs/bpf/vnet-xdp 2>/dev/null
	grep -q "^exit 2$" "$victim.out" && [ -f "$victim/file" ] && [ -d "$victim/inner" ] &&
		[ -f "$victim.json" ] && [ -f "$victim.nsg-ids.json" ] ||
		{ cat "$victim.out"; ls -la "$victim" "$victim".*; rm -rf "$victim" "$victim".*; return 1; }
	rm -rf "$victim" "$victim".*
}

# A command may hold a key (a config, a --param-file): it runs with no core dump allowed,
# whatever limit it was started with. Run as nobody so that /proc shows dumpability:
# the files of a process that is not dumpable belong to root.
a_running_command_cannot_dump_core() {
	local pid owner limits rc=0
	setpriv --reuid=65534 --regid=65534 --clear-groups -- bash -c \
		'ulimit -c unlimited; exec "$0" import -' "$VNET_XDP" < <(sleep 3) >/dev/null 2>&1 &
	pid=$!
	sleep 0.5
	owner=$(stat -c %u "/proc/$pid/status")
	limits=$(grep "^Max core file size" "/proc/$pid/limits")
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	[ "$owner" = 0 ] || { echo "/proc/$pid belongs to uid $owner: the process is dumpable"; rc=1; }
	grep -qE "size +0 +0 " <<<"$limits" || { echo "$limits"; rc=1; }
	return $rc
}

run_case missing_values_are_named
run_case unknown_options_are_named
run_case commands_without_what_they_need_say_so
run_case unreadable_config_is_one_line
run_case bad_gateway_names_are_refused_in_one_line
run_case down_leaves_a_directory_outside_its_own_alone
run_case a_running_command_cannot_dump_core
