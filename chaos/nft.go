//go:build linux

package chaos

// nftBase is the WAN's nftables table: per-direction packet counters, and a
// "faults" chain that scenarios fill (and flush) for loss, partitions and
// blackholes. It sees each packet once, where it enters the WAN (from
// east on "we", from west on "ww"), whether it is forwarded or, with a
// TUN in the path, routed into it.
const nftBase = `
table inet wdchaos {
	counter e2w { }
	counter w2e { }
	counter drop_e2w { }
	counter drop_w2e { }
	chain faults {
	}
	chain fw {
		type filter hook forward priority 0; policy accept;
		iifname "we" counter name "e2w"
		iifname "ww" counter name "w2e"
		jump faults
	}
	chain in {
		type filter hook input priority 0; policy accept;
		jump faults
	}
}
`
