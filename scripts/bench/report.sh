#!/usr/bin/env bash
# Turns the benchmark's results.csv into results.txt (the table, the targets, the
# machine) and bench.png (gnuplot).  report.sh CSV OUT-DIR [ELAPSED-SECONDS]
set -euo pipefail
CSV=$1
OUT=$2
ELAPSED=${3:-}
TXT=$OUT/results.txt
PNG=$OUT/bench.png

machine() {
	local cpu
	cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	echo "machine: $(nproc) x ${cpu:-unknown CPU}, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME")"
}

{
	echo "vnet-xdp benchmark, $(date -u '+%Y-%m-%d %H:%M UTC')${ELAPSED:+, make bench run ${ELAPSED} s}"
	machine
	echo "60-byte UDP frames (ESP for esp-punt; checksum-* at 60 and 1500 bytes); sender, gateway and receivers share one core,"
	echo "so gateway ns/packet (CPU time of that core per delivered packet, minus the sender"
	echo "alone) is the figure to compare; pps is of the whole chain on that core."
	echo
	awk -F, '
	function fmt(v, d) { return v == "" ? "-" : sprintf("%." d "f", v) }
	function ratio(a, b) { return (a == "" || b == "" || b + 0 == 0) ? "-" : sprintf("%.2f", a / b) }
	NR == 1 { next }
	$2 == "-" { baseline = $4; next }
	{
		key = $1
		if (!(key in seen)) { seen[key] = 1; order[++n] = key }
		pps[key, $2] = $3; gw[key, $2] = $6; core[key, $2] = $4
		bpf[key, $2] = $7; tr[key, $2] = $8; note[key, $2] = $10
	}
	END {
		printf "%-22s %10s %10s %6s | %9s %9s %6s | %9s %9s\n", "scenario", "kernel", "ours", "o/k",
		       "kernel", "ours", "o/k", "ours BPF", "test_run"
		printf "%-22s %10s %10s %6s | %9s %9s %6s | %9s %9s\n", "", "pps", "pps", "", "gw ns/pkt",
		       "gw ns/pkt", "", "ns/pkt", "ns/pkt"
		for (i = 1; i <= n; i++) {
			k = order[i]
			if (note[k, "ours"] ~ /^n\/a/) {
				printf "%-22s %10s %10s %6s | %9s %9s %6s | %s\n", k, fmt(pps[k, "kernel"], 0), "n/a", "-",
				       fmt(gw[k, "kernel"], 0), "n/a", "-", note[k, "ours"]
				continue
			}
			printf "%-22s %10s %10s %6s | %9s %9s %6s | %9s %9s\n", k, fmt(pps[k, "kernel"], 0),
			       fmt(pps[k, "ours"], 0), ratio(pps[k, "ours"], pps[k, "kernel"]),
			       fmt(gw[k, "kernel"], 0), fmt(gw[k, "ours"], 0), ratio(gw[k, "ours"], gw[k, "kernel"]),
			       fmt(bpf[k, "ours"], 1), fmt(tr[k, "ours"], 1)
		}
		printf "\nsender alone (subtracted from gw ns/pkt): %s ns/packet\n", fmt(baseline, 0)
		for (i = 1; i <= n; i++)
			if (note[order[i], "ours"] != "" && note[order[i], "ours"] !~ /^n\/a/)
				printf "%s: %s\n", order[i], note[order[i], "ours"]
	}' "$CSV"
	echo
	echo "targets:"
	awk -F, '
	NR == 1 { next }
	{ pps[$1, $2] = $3; gw[$1, $2] = $6; bpf[$1, $2] = $7; tr[$1, $2] = $8; note[$1, $2] = $10
	  if ($1 == "monitor-bound") bound_events = $9 }
	function verdict(ok) { return ok ? "PASS" : "FAIL" }
	END {
		# 1. Established-flow forwarding at least 3x the kernel path.
		if (pps["peering", "ours"] != "" && pps["peering", "kernel"] + 0 > 0) {
			r = pps["peering", "ours"] / pps["peering", "kernel"]
			g = gw["peering", "ours"] > 0 ? gw["peering", "kernel"] / gw["peering", "ours"] : 0
			printf "  %s established-flow forwarding >= 3x the kernel pps: %.2fx at the receiver (peering; per packet of gateway work %.2fx)\n",
			       verdict(r >= 3), r, g
		} else
			print "  n/a established-flow forwarding >= 3x the kernel pps: no figures"
		# 2. NSG first-packet cost flat from 10 to 4096 rules; the kernel grows.
		if (note["nsg-10-first", "ours"] ~ /^n\/a/ || bpf["nsg-4096-first", "ours"] == "" || bpf["nsg-10-first", "ours"] + 0 == 0)
			printf "  n/a NSG first-packet cost at 4096 rules <= 2x at 10: %s\n", note["nsg-10-first", "ours"] != "" ? note["nsg-10-first", "ours"] : "no figures"
		else {
			r = bpf["nsg-4096-first", "ours"] / bpf["nsg-10-first", "ours"]
			printf "  %s NSG first-packet cost at 4096 rules <= 2x at 10: BPF %.0f -> %.0f ns (%.2fx)\n",
			       verdict(r <= 2), bpf["nsg-10-first", "ours"], bpf["nsg-4096-first", "ours"], r
		}
		if (gw["nsg-10-first", "kernel"] > 0 && gw["nsg-4096-first", "kernel"] != "") {
			k = gw["nsg-4096-first", "kernel"] / gw["nsg-10-first", "kernel"]
			printf "  %s kernel path first-packet cost grows with the rules: %.0f -> %.0f ns (%.2fx)\n",
			       verdict(k > 1.2), gw["nsg-10-first", "kernel"], gw["nsg-4096-first", "kernel"], k
		}
		# 3. BPF cost of an established flow under 100 ns.
		if (bpf["peering", "ours"] != "")
			printf "  %s BPF cost per packet of an established flow < 100 ns: %.1f ns (run-time statistics), %.1f ns (test_run repeat)\n",
			       verdict(bpf["peering", "ours"] < 100), bpf["peering", "ours"], tr["peering", "ours"]
		if (bpf["nsg-1000-established", "ours"] != "")
			printf "  %s BPF cost per packet of an established flow through a 1000-rule NSG < 100 ns: %.1f ns\n",
			       verdict(bpf["nsg-1000-established", "ours"] < 100), bpf["nsg-1000-established", "ours"]
		# 4. Checksums left to offload: completing them keeps us ahead of the kernel path,
		# and a full checksum pays the evidence test only, whatever the frame size.
		if (gw["checksum-partial-1500", "ours"] != "" && gw["checksum-partial-1500", "kernel"] != "")
			printf "  %s a 1500-byte frame with its checksum left to offload costs less than the kernel path: %.0f ns vs %.0f ns per packet of gateway work (BPF %.1f ns, full checksum %.1f ns)\n",
			       verdict(gw["checksum-partial-1500", "ours"] < gw["checksum-partial-1500", "kernel"]),
			       gw["checksum-partial-1500", "ours"], gw["checksum-partial-1500", "kernel"],
			       bpf["checksum-partial-1500", "ours"], bpf["checksum-full-1500", "ours"]
		if (bpf["checksum-partial-60", "ours"] != "" && bpf["checksum-full-60", "ours"] != "")
			printf "  %s completing a 60-byte frame'"'"'s checksum costs < 100 ns: BPF %.1f ns partial vs %.1f ns full\n",
			       verdict(bpf["checksum-partial-60", "ours"] - bpf["checksum-full-60", "ours"] < 100),
			       bpf["checksum-partial-60", "ours"], bpf["checksum-full-60", "ours"]
		if (bpf["checksum-full-1500", "ours"] != "" && bpf["checksum-full-60", "ours"] != "")
			printf "  %s a full checksum costs the same at 1500 bytes as at 60 (< 25 ns more): BPF %.1f ns vs %.1f ns\n",
			       verdict(bpf["checksum-full-1500", "ours"] - bpf["checksum-full-60", "ours"] < 25),
			       bpf["checksum-full-1500", "ours"], bpf["checksum-full-60", "ours"]
		# 5. Service chaining (spoke -> NVA -> spoke): the gateway crosses twice; with the
		# NVA'"'"'s own forwarding in both paths, ours costs at most 0.8x the kernel'"'"'s policy
		# routing per packet on the core.
		if (gw["service-chain", "ours"] != "" && gw["service-chain", "kernel"] + 0 > 0) {
			r = gw["service-chain", "ours"] / gw["service-chain", "kernel"]
			printf "  %s service chaining spoke -> NVA -> spoke costs <= 0.8x the kernel'"'"'s policy routing per packet: %.0f ns vs %.0f ns (%.2fx; %.0f vs %.0f pps at spoke2)\n",
			       verdict(r <= 0.8), gw["service-chain", "ours"], gw["service-chain", "kernel"], r,
			       pps["service-chain", "ours"], pps["service-chain", "kernel"]
		} else if (pps["service-chain", "kernel"] != "")
			print "  FAIL service chaining spoke -> NVA -> spoke: no figures for ours"
		# 6. A listening monitor: the established path writes no event, so a listener
		# (filtering or not) costs it < 10%; a flood of drops pays an event each up to the
		# per-CPU bound and a counter past it: < 100 ns more per drop; the bound holds.
		for (m = 1; m <= 2; m++) {
			mode = m == 1 ? "listening" : "filtered"
			a = tr["monitor-established-none", "ours"]; b = tr["monitor-established-" mode, "ours"]
			x = bpf["monitor-established-none", "ours"]; y = bpf["monitor-established-" mode, "ours"]
			if (a + 0 > 0 && b != "")
				printf "  %s a %s monitor costs the established path < 10%%: test_run %.1f -> %.1f ns (%+.1f%%), BPF %.1f -> %.1f ns\n",
				       verdict(b / a < 1.10), mode == "listening" ? "listening" : "filtering-out", a, b, (b / a - 1) * 100, x, y
		}
		a = bpf["monitor-drop-none", "ours"]; b = bpf["monitor-drop-listening", "ours"]
		if (a != "" && b != "")
			printf "  %s a drop past the monitor'"'"'s bound costs < 100 ns more with a listener: BPF %.1f -> %.1f ns (test_run %.1f -> %.1f ns, every repeat past the bound)\n",
			       verdict(b - a < 100), a, b, tr["monitor-drop-none", "ours"], tr["monitor-drop-listening", "ours"]
		if (bound_events != "")
			printf "  %s the monitor'"'"'s bound holds: %d events shown of 1 s of drops at --rate 1000 per CPU (at most %d on %d CPUs; %s)\n",
			       verdict(bound_events > 0 && bound_events <= 2000 * cpus), bound_events, 2000 * cpus, cpus, note["monitor-bound", "ours"]
		if (bpf["snat-established", "ours"] != "")
			printf "  %s BPF cost per packet of an established SNAT flow < 100 ns: %.1f ns\n",
			       verdict(bpf["snat-established", "ours"] < 100), bpf["snat-established", "ours"]
	}' cpus="$(nproc)" "$CSV"
	[ -s "$OUT/scrape-target.txt" ] && cat "$OUT/scrape-target.txt"
	if [ -s "$OUT/profile.txt" ]; then
		echo
		cat "$OUT/profile.txt"
	fi
	echo
	echo "csv: $CSV   plot: $PNG"
} >"$TXT"
cat "$TXT"

# The plot: gateway cost per packet for every scenario, and the NSG rows against the
# rule count.
awk -F, 'NR > 1 && $2 != "-" { print $1, $2, ($6 == "" ? "NaN" : $6), ($7 == "" ? "NaN" : $7) }' "$CSV" >"$OUT/plot.dat"
awk '{ k[$1] = 1; v[$1, $2] = $3; b[$1, $2] = $4; if (!($1 in o)) o[$1] = ++n; name[n] = $1 }
     END { for (i = 1; i <= n; i++) { s = name[i]; print i - 1, s, (s SUBSEP "kernel") in v ? v[s, "kernel"] : "NaN",
	   (s SUBSEP "ours") in v ? v[s, "ours"] : "NaN" } }' "$OUT/plot.dat" >"$OUT/plot-bars.dat"
awk '$1 ~ /^nsg-[0-9]+-(first|established)$/ { split($1, p, "-"); print p[2], p[3], $2, $3, $4 }' "$OUT/plot.dat" |
	sort -n >"$OUT/plot-nsg.dat"
gnuplot 2>/dev/null <<GNUPLOT || echo "report: gnuplot failed; the table above stands" >&2
set terminal pngcairo size 1400,600 font ",10" noenhanced
set output "$PNG"
set multiplot layout 1,2 title "vnet-xdp against the kernel path (gateway ns per packet, lower is better)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set ylabel "ns per packet (log scale)"
set logscale y
set xtics rotate by -35 nomirror
set key top left
set grid ytics
plot "$OUT/plot-bars.dat" using 3:xtic(2) title "kernel (ip_forward + nftables)", '' using 4 title "vnet-xdp (XDP)"
set style data linespoints
set logscale xy
set xrange [7:6000]
set xlabel "NSG rules"
set xtics norotate (10, 100, 1000, 4096)
set key top left
plot "< awk '\$2 == \"first\" && \$3 == \"kernel\"' $OUT/plot-nsg.dat" using 1:4 title "kernel first packet", \
     "< awk '\$2 == \"established\" && \$3 == \"kernel\"' $OUT/plot-nsg.dat" using 1:4 title "kernel established", \
     "< awk '\$2 == \"first\" && \$3 == \"ours\"' $OUT/plot-nsg.dat" using 1:4 title "vnet-xdp first packet", \
     "< awk '\$2 == \"established\" && \$3 == \"ours\"' $OUT/plot-nsg.dat" using 1:4 title "vnet-xdp established", \
     "< awk '\$2 == \"first\" && \$3 == \"ours\"' $OUT/plot-nsg.dat" using 1:5 title "vnet-xdp first packet (BPF only)"
unset multiplot
GNUPLOT
