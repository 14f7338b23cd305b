#!/usr/bin/env bash
# End to end: the systemd unit `make install` puts in place, run as systemd runs it.
# These machines have no systemd as PID 1, so the test plays the manager's part: it
# installs the unit, has `systemd-analyze verify` check it, and runs the unit's own
# ExecStart and ExecReload lines (%i and the Environment= variables expanded as systemd
# does) with NOTIFY_SOCKET on a datagram socket it listens on, recording every message
# and the pid that sent it.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.bash
e2e_begin e2e_service vxsvc svc
e2e_cleanup() {
	stop_pid_file "$WORK/serve.pid" KILL
	stop_pid_file "$WORK/listener.pid" KILL
}

PREFIX_DIR=$WORK/usr
UNIT_DIR=$PREFIX_DIR/lib/systemd/system
CONFIG_DIR=$WORK/etc
NOTIFY=$WORK/notify.sock
MESSAGES=$WORK/notify.log
SERVE_OPTIONS=

e2e_topology "$WORK/a.json"
mkdir -p "$CONFIG_DIR"
cp "$WORK/a.json" "$CONFIG_DIR/$GATEWAY.json"
jq '(.resources[] | select(.name == "hub") | .properties.virtualNetworkPeerings) |=
	map(select(.properties.remoteVirtualNetwork.id | test("spoke2$") | not))' \
	"$WORK/a.json" >"$WORK/b.json"

# One line per datagram: "PID MESSAGE" (newlines in the message become spaces). The
# sender's pid comes from its credentials, as systemd checks NotifyAccess=main.
notify_listen() {
	stop_pid_file "$WORK/listener.pid" KILL
	rm -f "$NOTIFY" "$MESSAGES"
	python3 - "$NOTIFY" "$MESSAGES" >"$WORK/listener.log" 2>&1 <<'PY' &
import socket, struct, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
sock.bind(sys.argv[1])
with open(sys.argv[2], "a") as log:
    log.write("")
    log.flush()
    while True:
        data, ancdata, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = 0
        for level, kind, value in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", value[:12])[0]
        log.write("%d %s\n" % (pid, data.decode(errors="replace").replace("\n", " ")))
        log.flush()
PY
	echo $! >"$WORK/listener.pid"
	for _ in $(seq 50); do [ -S "$NOTIFY" ] && [ -e "$MESSAGES" ] && return 0; sleep 0.1; done
	echo "the notify listener did not start"
	return 1
}

# unit_command KEY: the unit's KEY= command line as systemd would run it for instance
# $GATEWAY: %i expanded, ${VAR} as one word, $VAR split into words.
unit_command() {
	local line
	line=$(sed -n "s/^$1=//p" "$UNIT_DIR/vnet-xdp@.service")
	line=${line//%i/$GATEWAY}
	line=${line//\$\{CONFIG_DIR\}/$CONFIG_DIR}
	line=${line//\$SERVE_OPTIONS/$SERVE_OPTIONS}
	line=${line//\$RELOAD_OPTIONS/}
	echo "$line"
}

# unit_start: ExecStart in the gateway's namespace, its pid (the main pid: nsenter and
# env exec it) in $WORK/serve.pid and, once it exits, its status in $WORK/serve.rc (a
# shell of its own waits for it: each case runs in a subshell); waits for READY=1.
unit_start() {
	local cmd
	read -ra cmd <<<"$(unit_command ExecStart)"
	notify_listen || return 1
	rm -f "$WORK/serve.pid" "$WORK/serve.rc"
	(
		nsenter --net=/run/netns/"$NS" env NOTIFY_SOCKET="$NOTIFY" "${cmd[@]}" &
		echo $! >"$WORK/serve.pid"
		wait $!
		echo $? >"$WORK/serve.rc"
	) >>"$WORK/serve.log" 2>&1 &
	for _ in $(seq 50); do [ -s "$WORK/serve.pid" ] && break; sleep 0.1; done
	notified "READY=1" 120 || { cat "$WORK/serve.log"; return 1; }
}

unit_reload() {
	local cmd
	read -ra cmd <<<"$(unit_command ExecReload)"
	in_gw "${cmd[@]}"
}

# notified PATTERN [SECONDS]: a message matching PATTERN came from the main pid.
notified() {
	local pid
	pid=$(cat "$WORK/serve.pid")
	for _ in $(seq $((${2:-10} * 10))); do
		grep -q "^$pid .*$1" "$MESSAGES" 2>/dev/null && return 0
		kill -0 "$pid" 2>/dev/null || { echo "serve exited"; break; }
		sleep 0.1
	done
	echo "no '$1' from pid $pid; messages:"
	cat "$MESSAGES"
	return 1
}

# Waits for serve to exit and its status to be in $WORK/serve.rc.
serve_exit() {
	for _ in $(seq 300); do [ -s "$WORK/serve.rc" ] && break; sleep 0.1; done
	[ -s "$WORK/serve.rc" ] || { echo "serve still runs"; return 1; }
	cat "$WORK/serve.log"
	rm -f "$WORK/serve.pid"
}

generation() { gw status -n $GATEWAY -j | jq -r '.[0].generation'; }

instance_verifies() { unit_verifies --man=no "$UNIT_DIR/vnet-xdp@$GATEWAY.service"; }

unit_passes_systemd_analyze_verify() {
	make -s install PREFIX="$PREFIX_DIR" >/dev/null || return 1
	[ -x "$PREFIX_DIR/sbin/vnet-xdp" ] || return 1
	ln -sf vnet-xdp@.service "$UNIT_DIR/vnet-xdp@$GATEWAY.service"
	grep -q "^ExecStart=$PREFIX_DIR/sbin/vnet-xdp serve" "$UNIT_DIR/vnet-xdp@.service" || return 1
	instance_verifies
}

systemd_analyze_refuses_a_broken_unit() {
	cp "$UNIT_DIR/vnet-xdp@.service" "$WORK/unit.good"
	sed -i 's/^Type=notify/Type=notfy/' "$UNIT_DIR/vnet-xdp@.service"
	instance_verifies
	local rc=$?
	cp "$WORK/unit.good" "$UNIT_DIR/vnet-xdp@.service"
	[ $rc -ne 0 ] && instance_verifies
}

start_says_ready_once_the_gateway_is_up() {
	unit_start || return 1
	grep -q "READY=1 STATUS=gateway $GATEWAY up" "$MESSAGES" || { cat "$MESSAGES"; return 1; }
	gw status -n $GATEWAY >/dev/null && reaches hub 10.12.1.4 && reaches hub 10.11.1.4
}

exec_reload_applies_the_edited_config() {
	local gen
	gen=$(generation)
	cp "$WORK/b.json" "$CONFIG_DIR/$GATEWAY.json"
	unit_reload || return 1
	[ "$(generation)" -eq $((gen + 1)) ] || return 1
	reaches hub 10.12.1.4 && { echo "spoke2 still reachable"; return 1; }
	reaches hub 10.11.1.4
}

exec_reload_fails_on_an_invalid_config_and_changes_nothing() {
	local gen
	gen=$(generation)
	echo '{"gateway": {"name": "'$GATEWAY'"' >"$CONFIG_DIR/$GATEWAY.json"
	unit_reload && { echo "reload of a broken config succeeded"; return 1; }
	[ "$(generation)" = "$gen" ] && reaches hub 10.11.1.4 &&
		kill -0 "$(cat "$WORK/serve.pid")"
}

sighup_reloads_saying_reloading_then_ready() {
	local gen pid
	gen=$(generation) pid=$(cat "$WORK/serve.pid")
	cp "$WORK/a.json" "$CONFIG_DIR/$GATEWAY.json"
	: >"$MESSAGES"
	kill -HUP "$pid"
	notified "READY=1 STATUS=gateway $GATEWAY reloaded" 60 || return 1
	[ "$(sed -n 1p "$MESSAGES" | cut -d' ' -f2)" = RELOADING=1 ] || { cat "$MESSAGES"; return 1; }
	[ "$(generation)" -eq $((gen + 1)) ] && reaches hub 10.12.1.4
}

sighup_with_an_invalid_config_keeps_the_running_one() {
	local gen pid
	gen=$(generation) pid=$(cat "$WORK/serve.pid")
	jq '.gateway.interfaces[0].name = "no-such-if0"' "$WORK/a.json" >"$CONFIG_DIR/$GATEWAY.json"
	: >"$MESSAGES"
	kill -HUP "$pid"
	notified "READY=1 STATUS=gateway $GATEWAY kept its config" 60 || return 1
	grep -q "^$pid RELOADING=1" "$MESSAGES" || return 1
	cp "$WORK/a.json" "$CONFIG_DIR/$GATEWAY.json"
	[ "$(generation)" = "$gen" ] && reaches hub 10.12.1.4 && kill -0 "$pid"
}

stop_leaves_the_gateway_forwarding() {
	kill -TERM "$(cat "$WORK/serve.pid")"
	notified "STOPPING=1" || return 1
	serve_exit || return 1
	[ "$(cat "$WORK/serve.rc")" -eq 0 ] || return 1
	gw status -n $GATEWAY >/dev/null && reaches hub 10.12.1.4
}

# The datapath outlived the stop; a start then applies the config as it is now.
restart_applies_the_config_edited_while_stopped() {
	local gen
	gen=$(generation)
	cp "$WORK/b.json" "$CONFIG_DIR/$GATEWAY.json"
	unit_start || return 1
	[ "$(generation)" -eq $((gen + 1)) ] || return 1
	reaches hub 10.12.1.4 && { echo "still the config from before the stop"; return 1; }
	reaches hub 10.11.1.4 || return 1
	kill -TERM "$(cat "$WORK/serve.pid")"
	serve_exit
	cp "$WORK/a.json" "$CONFIG_DIR/$GATEWAY.json"
}

# --down-on-stop takes the gateway down when the service stops.
down_on_stop_takes_the_gateway_down() {
	SERVE_OPTIONS=--down-on-stop
	unit_start || return 1
	reaches hub 10.12.1.4 || return 1
	kill -TERM "$(cat "$WORK/serve.pid")"
	serve_exit || return 1
	[ "$(cat "$WORK/serve.rc")" -eq 0 ] || return 1
	[ ! -e /sys/fs/bpf/vnet-xdp/$GATEWAY ] || return 1
	! xdp_attached to-hub && ! reaches hub 10.12.1.4
}

if ! command -v systemd-analyze >/dev/null; then
	skip e2e_service "systemd-analyze is missing (package systemd)"
	exit 0
fi
run_case unit_passes_systemd_analyze_verify
run_case systemd_analyze_refuses_a_broken_unit
run_case start_says_ready_once_the_gateway_is_up
run_case exec_reload_applies_the_edited_config
run_case exec_reload_fails_on_an_invalid_config_and_changes_nothing
run_case sighup_reloads_saying_reloading_then_ready
run_case sighup_with_an_invalid_config_keeps_the_running_one
run_case stop_leaves_the_gateway_forwarding
run_case restart_applies_the_config_edited_while_stopped
run_case down_on_stop_takes_the_gateway_down
