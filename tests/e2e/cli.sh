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

# More VMs (network interface addresses) behind a VIP than its port blocks: check warns
# and names the numbers; as many as the blocks: no warning.
check_warns_of_more_vms_than_snat_port_blocks() {
	local conf="$STAGE/blocks$$.json" out nic
	nic='{"type": "Microsoft.Network/networkInterfaces", "name": "vm\(.)-nic", "properties":
	      {"ipConfigurations": [{"name": "c", "properties": {"privateIPAddress": "10.10.1.\(.)",
	       "subnet": {"id": "[resourceId(\u0027Microsoft.Network/virtualNetworks/subnets\u0027, \u0027hub\u0027, \u0027AzureFirewallSubnet\u0027)]"}}}]}}'
	jq ".gateway.limits = {\"snatPortMin\": 1024, \"snatPortMax\": 1039, \"snatMappingsPerVm\": 8}
	    | .resources += [20, 21 | $nic]" tests/data/config/hub-firewall.json >"$conf"
	out=$("$VNET_XDP" check -c "$conf" 2>&1) || { echo "$out"; return 1; }
	grep -q "3 network interface addresses take SNAT through hub, whose ports 1024-1039 make 2 blocks of limits.snatMappingsPerVm 8" <<<"$out" ||
		{ echo "no warning: $out"; return 1; }
	jq '.gateway.limits.snatPortMax = 1047' "$conf" >"$conf.3" && mv "$conf.3" "$conf"
	out=$("$VNET_XDP" check -c "$conf" 2>&1) || { echo "$out"; return 1; }
	! grep -q "take SNAT through" <<<"$out" || { echo "warned with room for all: $out"; return 1; }
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
		'ulimit -c unlimited; exec "$0" import -' "$VNET_XDP" < <(sleep 10) >/dev/null 2>&1 &
	pid=$!
	# until the exec and the command's first steps are done (slow on a loaded machine);
	# a dumpable process never gets there and fails after 5 s
	for _ in $(seq 50); do
		owner=$(stat -c %u "/proc/$pid/status")
		limits=$(grep "^Max core file size" "/proc/$pid/limits")
		[ "$owner" = 0 ] && grep -qE "size +0 +0 " <<<"$limits" && break
		sleep 0.1
	done
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	[ "$owner" = 0 ] || { echo "/proc/$pid belongs to uid $owner: the process is dumpable"; rc=1; }
	grep -qE "size +0 +0 " <<<"$limits" || { echo "$limits"; rc=1; }
	return $rc
}

# ---- help, version, man pages, completion ----------------------------------------------

STAGE=$(mktemp -d /tmp/vnet-xdp-cli.$$.XXXXXX)
trap 'rm -rf "$STAGE"' EXIT
COMMANDS="check import up reload down status stats serve routes verify flows snat"

version_prints_one_line_and_exits_0() {
	local out
	out=$("$VNET_XDP" --version) || return 1
	grep -qE '^vnet-xdp [0-9a-z][0-9A-Za-z.+~-]*$' <<<"$out" || { echo "$out"; return 1; }
}

# help CMD, CMD --help and CMD -h (wherever it stands): the usage on stdout, nothing on
# stderr, exit 0, and nothing done (-c of a file that does not exist is not read).
help_and_dash_dash_help_print_the_usage_on_stdout() {
	local cmd args out err
	for cmd in $COMMANDS; do
		for args in "help $cmd" "$cmd --help" "$cmd -h" "$cmd -c /nonexistent --help"; do
			# shellcheck disable=SC2086
			out=$("$VNET_XDP" $args 2>"$STAGE/err") ||
				{ echo "vnet-xdp $args: exit $?"; return 1; }
			err=$(cat "$STAGE/err")
			[ -z "$err" ] || { echo "vnet-xdp $args: stderr: $err"; return 1; }
			grep -q "^usage: vnet-xdp $cmd" <<<"$out" ||
				{ echo "vnet-xdp $args: stdout: $out"; return 1; }
		done
	done
	out=$("$VNET_XDP" --help) && grep -q "^Commands:" <<<"$out" &&
		out=$("$VNET_XDP" help) && grep -q "^Commands:" <<<"$out"
}

# A refused command line: nothing on stdout, the problem then a hint on stderr, exit 2.
usage_errors_say_what_and_where_to_read_on_stderr() {
	local args out rc
	for args in bogus "-x" "help bogus" "check -q" "import --bogus" "stats a" "verify --in lo"; do
		# shellcheck disable=SC2086
		out=$("$VNET_XDP" $args 2>"$STAGE/err")
		rc=$?
		[ $rc = 2 ] && [ -z "$out" ] || { echo "vnet-xdp $args: exit $rc, stdout '$out'"; return 1; }
		[ "$(wc -l <"$STAGE/err")" = 2 ] && grep -q "^Try 'vnet-xdp " "$STAGE/err" ||
			{ echo "vnet-xdp $args: stderr: $(cat "$STAGE/err")"; return 1; }
	done
}

# The option names of "  -x, --long VALUE  what" lines (help) or of the "*-x*, *--long* _V_"
# lines of the OPTIONS section (scdoc source), sorted.
help_options() {
	"$VNET_XDP" "$@" --help | sed -n 's/^  \(-[^ ,]*\(, -[^ ,]*\)\?\).*/\1/p' | tr ',' '\n' |
		tr -d ' ' | sort -u
}
man_options() {
	awk '/^# / { on = $0 == "# OPTIONS" } on' "$1" | grep '^\*-' | grep -oE -- '\*--?[a-z][a-z-]*\*' | tr -d '*' | sort -u
}

every_option_in_help_is_in_the_man_page_and_back() {
	local cmd diff rc=0
	diff=$(diff <(help_options) <(man_options docs/man/vnet-xdp.8.scd)) ||
		{ echo "vnet-xdp --help vs vnet-xdp(8): $diff"; rc=1; }
	for cmd in $COMMANDS; do
		[ -f "docs/man/vnet-xdp-$cmd.8.scd" ] || { echo "no vnet-xdp-$cmd(8)"; rc=1; continue; }
		diff=$(diff <(help_options "$cmd") <(man_options "docs/man/vnet-xdp-$cmd.8.scd")) ||
			{ echo "vnet-xdp $cmd --help (<) vs vnet-xdp-$cmd(8) (>): $diff"; rc=1; }
	done
	return $rc
}

# What help lists, the command's parser takes: given with a value that leads nowhere
# (no such file, gateway or interface), no option is "unknown".
every_option_in_help_is_one_the_command_takes() {
	local cmd opt
	for cmd in $COMMANDS; do
		for opt in $(help_options "$cmd"); do
			"$VNET_XDP" "$cmd" "$opt" nonexistent-$$ >/dev/null 2>"$STAGE/err" </dev/null
			! grep -q "unknown or misplaced option" "$STAGE/err" ||
				{ echo "vnet-xdp $cmd $opt: $(cat "$STAGE/err")"; return 1; }
		done
	done
}

make_install_puts_man_pages_and_completion_in_place() {
	local cmd
	make -s install DESTDIR="$STAGE/root" PREFIX=/usr >/dev/null || return 1
	[ -x "$STAGE/root/usr/sbin/vnet-xdp" ] &&
		[ -f "$STAGE/root/usr/share/bash-completion/completions/vnet-xdp" ] &&
		[ -f "$STAGE/root/usr/share/man/man8/vnet-xdp.8" ] || { find "$STAGE/root"; return 1; }
	for cmd in $COMMANDS; do
		[ -f "$STAGE/root/usr/share/man/man8/vnet-xdp-$cmd.8" ] || { echo "no vnet-xdp-$cmd.8"; return 1; }
	done
}

# groff's warnings on (-ww), output off (-z): a page it has anything to say about fails.
man_pages_render_without_warnings() {
	local page out
	[ -d "$STAGE/root/usr/share/man/man8" ] || return 1
	for page in "$STAGE"/root/usr/share/man/man8/*.8; do
		out=$(groff -man -ww -z "$page" 2>&1)
		[ -z "$out" ] || { echo "$page: $out"; return 1; }
		out=$(MANWIDTH=80 man -l "$page" 2>&1 >/dev/null)
		[ -z "$out" ] || { echo "man -l $page: $out"; return 1; }
	done
	MANWIDTH=80 man -l "$STAGE/root/usr/share/man/man8/vnet-xdp.8" 2>/dev/null | grep -q "EXIT STATUS"
}

# completes WORD...: what the completion offers for the last word, as bash would ask it.
completes() {
	bash -c '. "$0"; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _vnet_xdp; echo "${COMPREPLY[*]}"' \
		"$STAGE/root/usr/share/bash-completion/completions/vnet-xdp" "$@"
}

completion_offers_commands_options_gateways_and_files() {
	local got
	[ -f "$STAGE/root/usr/share/bash-completion/completions/vnet-xdp" ] || return 1
	mkdir -p "$STAGE/pins/gwa$$" "$STAGE/pins/gwb$$" && : >"$STAGE/conf$$.json"
	got=$(completes "$VNET_XDP" s) && [ "$got" = "status stats serve snat" ] ||
		{ echo "commands: '$got'"; return 1; }
	got=$(completes "$VNET_XDP" -v up --) && [ "$got" = "--config --mode --strict" ] ||
		{ echo "up options: '$got'"; return 1; }
	got=$(completes "$VNET_XDP" help ro) && [ "$got" = routes ] || { echo "help: '$got'"; return 1; }
	got=$(completes "$VNET_XDP" up --mode g) && [ "$got" = generic ] ||
		{ echo "--mode: '$got'"; return 1; }
	got=$(_VNET_XDP_PIN_ROOT=$STAGE/pins completes "$VNET_XDP" status -n gw) &&
		[ "$got" = "gwa$$ gwb$$" ] || { echo "gateways: '$got'"; return 1; }
	got=$(completes "$VNET_XDP" check -c "$STAGE/conf") && [ "$got" = "$STAGE/conf$$.json" ] ||
		{ echo "files: '$got'"; return 1; }
}

run_case missing_values_are_named
run_case unknown_options_are_named
run_case commands_without_what_they_need_say_so
run_case unreadable_config_is_one_line
run_case check_warns_of_more_vms_than_snat_port_blocks
run_case bad_gateway_names_are_refused_in_one_line
run_case down_leaves_a_directory_outside_its_own_alone
run_case a_running_command_cannot_dump_core
run_case version_prints_one_line_and_exits_0
run_case help_and_dash_dash_help_print_the_usage_on_stdout
run_case usage_errors_say_what_and_where_to_read_on_stderr
run_case every_option_in_help_is_in_the_man_page_and_back
run_case every_option_in_help_is_one_the_command_takes
run_case make_install_puts_man_pages_and_completion_in_place
run_case man_pages_render_without_warnings
run_case completion_offers_commands_options_gateways_and_files
