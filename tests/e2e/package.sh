#!/usr/bin/env bash
# End to end: the Debian package. `make deb` builds it from a clean copy of the tree
# (scripts/deb.sh: the tree is left as it was) and lintian checks it; then it is installed
# with dpkg -i as an operator would, looked at where Debian puts things, and purged, so
# that the machine is left as it was. A vnet-xdp installed from elsewhere (another
# package, or `make install PREFIX=/usr`) is never replaced: the install cases skip.
# dpkg-buildpackage takes about 1.5 minutes here (2 CPUs, -j2), lintian about 40 s.
cd "$(dirname "$0")/../.."
. tests/e2e/lib.bash

SUITE=e2e_package
WORK=$(mktemp -d /tmp/vnet-xdp-package.XXXXXX)
INSTANCE=pkg$$
INSTALLED=0
package_end() {
	[ "$INSTALLED" = 1 ] && dpkg --purge vnet-xdp >/dev/null 2>&1
	rm -rf "$WORK"
}
trap package_end EXIT

# The one version: the Makefile's (what --version says outside git).
makefile_version() {
	MAKEFLAGS='' make -s --no-print-directory -f Makefile \
		--eval 'print-version-fallback: ; @echo $(VERSION_FALLBACK)' print-version-fallback
}

changelog_version_is_the_makefiles() {
	local changelog makefile
	changelog=$(dpkg-parsechangelog -l debian/changelog -S Version) || return 1
	makefile=$(makefile_version) || return 1
	[ -n "$makefile" ] && [ "$changelog" = "$makefile" ] ||
		{ echo "debian/changelog says '$changelog', the Makefile '$makefile'"; return 1; }
}

# debian/rules refuses to build a package whose version is not the Makefile's.
a_changelog_that_disagrees_stops_the_build() {
	local copy=$WORK/disagree out
	mkdir -p "$copy" && cp -r Makefile debian "$copy/" || return 1
	sed -i '1s/(\([^)]*\))/(\1.1)/' "$copy/debian/changelog"
	out=$(cd "$copy" && debian/rules override_dh_auto_configure 2>&1) &&
		{ echo "debian/rules accepted $(head -1 "$copy/debian/changelog")"; return 1; }
	grep -q "make them agree" <<<"$out" || { echo "$out"; return 1; }
}

# make_deb: `make deb` into $WORK/deb (its output in $WORK/make-deb.log, its status in
# $WORK/make-deb.rc), with the tree's git status before and after.
make_deb() {
	git status --porcelain >"$WORK/status.before" 2>/dev/null
	make -s deb BUILD="$WORK" >"$WORK/make-deb.log" 2>&1
	echo $? >"$WORK/make-deb.rc"
	git status --porcelain >"$WORK/status.after" 2>/dev/null
}

package_builds_from_a_clean_copy_of_the_tree() {
	[ -n "$DEB" ] && [ -n "$CHANGES" ] || { tail -30 "$WORK/make-deb.log"; return 1; }
	diff "$WORK/status.before" "$WORK/status.after" || { echo "the tree changed"; return 1; }
	[ ! -e debian/vnet-xdp ] && [ ! -e debian/files ] || { echo "the build wrote into debian/"; return 1; }
}

# make deb runs lintian and fails on an error or a warning; its tags are shown here.
lintian_finds_no_errors_or_warnings() {
	! grep -E '^[EW]: ' "$WORK/make-deb.log" || return 1
	[ "$(cat "$WORK/make-deb.rc")" = 0 ] || { tail -30 "$WORK/make-deb.log"; return 1; }
}

# What the package ships, from the .deb itself: files and links, without the leading ".".
shipped_files() { dpkg-deb -c "$DEB" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $6 }'; }

# Why the install cases cannot run, if they cannot: a vnet-xdp from elsewhere is kept.
install_blocker() {
	local status file
	[ "$(id -u)" -eq 0 ] || { echo "dpkg -i needs root"; return 0; }
	status=$(dpkg-query -W -f='${Status}' vnet-xdp 2>/dev/null)
	[ -n "$status" ] && [ "$status" != "unknown ok not-installed" ] &&
		{ echo "a vnet-xdp package is already on this machine ($status); not replacing it"; return 0; }
	for file in $(shipped_files); do
		[ -e "$file" ] || [ -L "$file" ] || continue
		echo "$file exists and is no package's (make install PREFIX=/usr?); not overwriting it"
		return 0
	done
	return 1
}

package_installs_with_dpkg() {
	dpkg -i "$DEB" >"$WORK/dpkg-i.log" 2>&1 || { cat "$WORK/dpkg-i.log"; return 1; }
	dpkg-query -W -f='${Status}' vnet-xdp | grep -q "install ok installed"
}

binary_says_the_packages_version() {
	local version got
	version=$(dpkg-query -W -f='${Version}' vnet-xdp)
	got=$(/usr/sbin/vnet-xdp --version) || return 1
	[ "$got" = "vnet-xdp $version" ] || { echo "--version says '$got', the package is $version"; return 1; }
}

# man_page_renders PAGE: man finds PAGE where the package put it and renders it, NAME
# first, without a warning from groff.
man_page_renders() {
	local file out
	file=$(man -aw 8 "$1" | grep -x "/usr/share/man/man8/$1.8.gz") ||
		{ echo "man does not find /usr/share/man/man8/$1.8.gz: $(man -aw 8 "$1" 2>&1)"; return 1; }
	out=$(MANWIDTH=80 man --warnings -P cat -l "$file" 2>"$WORK/man.err") || return 1
	[ ! -s "$WORK/man.err" ] || { cat "$WORK/man.err"; return 1; }
	grep -A1 '^NAME' <<<"$out" | grep -q "^ *$1 " || { head -5 <<<"$out"; return 1; }
}

man_pages_render() {
	local page
	for page in vnet-xdp vnet-xdp-up vnet-xdp-serve; do
		man_page_renders "$page" || return 1
	done
}

# Documentation=man:vnet-xdp(8) is checked too: systemd-analyze looks the page up.
unit_is_installed_and_passes_systemd_analyze_verify() {
	local unit=/lib/systemd/system/vnet-xdp@.service
	[ -f "$unit" ] || { echo "no $unit"; return 1; }
	grep -q '^ExecStart=/usr/sbin/vnet-xdp serve ' "$unit" || { grep ^Exec "$unit"; return 1; }
	mkdir -p "$WORK/units"
	ln -s "$unit" "$WORK/units/vnet-xdp@$INSTANCE.service"
	unit_verifies --man=yes "$WORK/units/vnet-xdp@$INSTANCE.service"
}

# A template: nothing to enable or start until the operator names a gateway. Without
# systemd as PID 1 an enabling postinst would still leave its links in /etc/systemd.
unit_is_neither_enabled_nor_started() {
	local links
	links=$(find /etc/systemd/system -name 'vnet-xdp@*' 2>/dev/null)
	[ -z "$links" ] || { echo "enabled: $links"; return 1; }
	! dpkg-deb --ctrl-tarfile "$DEB" | tar -xOf - | grep -E 'deb-systemd-(invoke|helper enable)'
}

# installed_as_in_the_tree PATH TREE-FILE
installed_as_in_the_tree() {
	cmp "$1" "$2" || { echo "$1 is not $2"; return 1; }
}

completion_dashboard_and_alert_rules_are_installed() {
	installed_as_in_the_tree /usr/share/bash-completion/completions/vnet-xdp scripts/completion/vnet-xdp &&
		installed_as_in_the_tree /usr/share/vnet-xdp/vnet-xdp.grafana.json dashboards/vnet-xdp.grafana.json &&
		installed_as_in_the_tree /usr/share/vnet-xdp/vnet-xdp.rules.yml dashboards/vnet-xdp.rules.yml &&
		bash -c '. /usr/share/bash-completion/completions/vnet-xdp && complete -p vnet-xdp' >/dev/null
}

# The configs can hold pre-shared keys.
config_folder_is_roots_alone() {
	[ "$(stat -c '%a %U' /etc/vnet-xdp)" = "700 root" ] || { stat -c '%a %U' /etc/vnet-xdp; return 1; }
}

nothing_is_installed_under_usr_local() {
	! dpkg -L vnet-xdp | grep '^/usr/local'
}

purge_removes_everything() {
	local file left=
	dpkg -L vnet-xdp >"$WORK/files" || return 1
	dpkg --purge vnet-xdp >"$WORK/purge.log" 2>&1 || { cat "$WORK/purge.log"; return 1; }
	INSTALLED=0
	[ -z "$(dpkg-query -W -f='${Status}' vnet-xdp 2>/dev/null | grep -v not-installed)" ] ||
		{ dpkg-query -W -f='${Status}\n' vnet-xdp; return 1; }
	# the package's own files and folders; shared folders (/usr/share/man/man8) stay
	while read -r file; do
		if [ -d "$file" ]; then
			case $file in */vnet-xdp | */vnet-xdp/*) ;; *) continue ;; esac
		fi
		[ -e "$file" ] || [ -L "$file" ] && left+="$file "
	done <"$WORK/files"
	[ -z "$left" ] || { echo "left after purge: $left"; return 1; }
}

run_case changelog_version_is_the_makefiles
run_case a_changelog_that_disagrees_stops_the_build
for tool in dpkg-buildpackage dh lintian; do
	if ! command -v $tool >/dev/null; then
		skip $SUITE "$tool is missing (scripts/install-deps.sh installs it)"
		exit 0
	fi
done
start=$SECONDS
make_deb
echo "    (make deb, lintian included: $((SECONDS - start)) s)"
DEB=$(ls "$WORK"/deb/vnet-xdp_*_amd64.deb 2>/dev/null)
CHANGES=$(ls "$WORK"/deb/vnet-xdp_*.changes 2>/dev/null)
run_case package_builds_from_a_clean_copy_of_the_tree
run_case lintian_finds_no_errors_or_warnings
[ -n "$DEB" ] || exit 1

if why=$(install_blocker); then
	skip "$SUITE install" "$why"
	exit 0
fi
INSTALLED=1
run_case package_installs_with_dpkg
run_case binary_says_the_packages_version
run_case man_pages_render
run_case unit_is_installed_and_passes_systemd_analyze_verify
run_case unit_is_neither_enabled_nor_started
run_case completion_dashboard_and_alert_rules_are_installed
run_case config_folder_is_roots_alone
run_case nothing_is_installed_under_usr_local
run_case purge_removes_everything
