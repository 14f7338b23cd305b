#!/usr/bin/env bash
# The Prometheus alert rules in dashboards/: promtool accepts them, their tests
# (tests/prometheus/vnet-xdp.rules.test.yml) pass and see every alert both fire and stay
# silent, the rules ask only for families the exporter defines (user/observe/metrics.c), and
# `make install` puts rules and dashboard in $(PREFIX)/share/vnet-xdp under DESTDIR.
# That they evaluate against a live exporter is tests/e2e/dashboard.sh's part.
cd "$(dirname "$0")/../.."
. tests/lib.sh
RULES=dashboards/vnet-xdp.rules.yml
RULE_TESTS=tests/prometheus/vnet-xdp.rules.test.yml
WORK=$(mktemp -d /tmp/vnet-xdp-alerts.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

if ! command -v promtool >/dev/null; then
	skip alert_rules "promtool is not installed (scripts/install-deps.sh installs prometheus)"
	exit 0
fi

# yaml_json FILE: the YAML file as JSON
yaml_json() { python3 -c 'import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)' "$1"; }

alert_rules_pass_promtool_check() {
	promtool check rules "$RULES"
}

alert_rule_tests_pass() {
	promtool test rules "$RULE_TESTS"
}

# A test that only ever expects silence would pass on a rule that never fires.
every_alert_is_tested_firing_and_silent() {
	local alerts tests alert n=0
	alerts=$(yaml_json "$RULES" | jq -r '.groups[].rules[] | .alert // empty')
	tests=$(yaml_json "$RULE_TESTS" | jq -c '[.tests[].alert_rule_test[]]')
	for alert in $alerts; do
		n=$((n + 1))
		jq -e --arg a "$alert" 'any(.[]; .alertname == $a and (.exp_alerts | length) > 0)' \
			<<<"$tests" >/dev/null || { echo "$alert: never expected to fire"; return 1; }
		jq -e --arg a "$alert" 'any(.[]; .alertname == $a and (.exp_alerts | length) == 0)' \
			<<<"$tests" >/dev/null || { echo "$alert: never expected to stay silent"; return 1; }
	done
	echo "$n alerts"
	for alert in VnetXdpTunnelDown VnetXdpSnatPortExhaustion VnetXdpDropsRising \
		VnetXdpFlowTableNearlyFull; do
		grep -qx "$alert" <<<"$alerts" || { echo "no alert $alert"; return 1; }
	done
}

alert_rules_use_only_exported_families() {
	local name names
	names=$(yaml_json "$RULES" | jq -r '.groups[].rules[].expr' | grep -o 'vnetxdp_[a-z_]*' | sort -u)
	[ -n "$names" ] || return 1
	for name in $names; do
		grep -q "{ \"$name\"," user/observe/metrics.c || { echo "the exporter has no family $name"; return 1; }
	done
}

install_puts_rules_and_dashboard_in_share() {
	make -s install DESTDIR="$WORK/root" PREFIX=/usr >/dev/null || return 1
	cmp "$RULES" "$WORK/root/usr/share/vnet-xdp/vnet-xdp.rules.yml" &&
		cmp dashboards/vnet-xdp.grafana.json "$WORK/root/usr/share/vnet-xdp/vnet-xdp.grafana.json" &&
		promtool check rules "$WORK/root/usr/share/vnet-xdp/vnet-xdp.rules.yml" >/dev/null
}

run_case alert_rules_pass_promtool_check
run_case alert_rule_tests_pass
run_case every_alert_is_tested_firing_and_silent
run_case alert_rules_use_only_exported_families
run_case install_puts_rules_and_dashboard_in_share
exit ${FAILED:-0}
