#!/usr/bin/env bash
# Builds the Debian package (debian/) from a clean copy of the tree, so that the tree
# itself is left as it was (dpkg-buildpackage cleans, builds and writes where it runs).
#
#   scripts/deb.sh OUTDIR
#
# OUTDIR is emptied; the copy goes to OUTDIR/vnet-xdp/ (the files git tracks or would
# track, with uncommitted edits; the whole tree but its build folders outside git), the
# package, its source, .buildinfo and .changes to OUTDIR/, dpkg-buildpackage's output
# to OUTDIR/build.log. Prints the .changes file's path. JOBS (default: every CPU) is
# passed to dpkg-buildpackage -j.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:?usage: scripts/deb.sh OUTDIR}

copy_tree() { # copy_tree DEST
	if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		# tracked files deleted in the work tree are not in the copy either
		(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard |
			while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
			tar --null -T - -cf -) | tar -xf - -C "$1"
	else
		tar -C "$ROOT" --exclude='./build*' -cf - . | tar -xf - -C "$1"
	fi
}

rm -rf "$OUT"
mkdir -p "$OUT/vnet-xdp"
OUT=$(cd "$OUT" && pwd)
copy_tree "$OUT/vnet-xdp"
# -us -uc: nothing is signed; the source package too, for lintian to check. A calling
# make's flags and variables (make deb BUILD=...) are not the package build's.
unset MAKEFLAGS MFLAGS MAKELEVEL
if ! (cd "$OUT/vnet-xdp" && dpkg-buildpackage -us -uc -j"${JOBS:-$(nproc)}") >"$OUT/build.log" 2>&1; then
	tail -20 "$OUT/build.log" >&2
	echo "deb: dpkg-buildpackage failed, its output: $OUT/build.log" >&2
	exit 1
fi
ls "$OUT"/vnet-xdp_*.changes
