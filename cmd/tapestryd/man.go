package main

import (
	"flag"
	"fmt"
	"strings"
)

// manDescription is the DESCRIPTION of tapestryd(8).
const manDescription = `tapestryd is the Tapestry node daemon, an NDMP v4 backup server for Linux file servers. It keeps the node's catalog, admin socket (DIR/admin.sock, used by tapestry(1)) and backup event log (DIR/mroot/etc/log/backup) in the data directory, which it creates on first start, and serves NDMP on port 10000 of every LIF of the node (30000 with TLS where enabled).
.PP
On first start the cluster user admin gets the password in TAPESTRY_ADMIN_PASSWORD, or a generated one that is printed once. The daemon logs every NDMP address it listens on, and a line when each backup and restore starts and ends. SIGTERM and SIGINT stop it cleanly. A second tapestryd on the same data directory is refused.`

// manPage renders tapestryd(8) from the daemon's flags (make man).
func manPage(fs *flag.FlagSet, version string) string {
	var b strings.Builder
	fmt.Fprintf(&b, ".TH TAPESTRYD 8 \"\" \"Tapestry %s\" \"Tapestry Manual\"\n", roff(version))
	b.WriteString(".SH NAME\ntapestryd \\- the Tapestry NDMP v4 backup server daemon\n")
	b.WriteString(".SH SYNOPSIS\n.B tapestryd\n[\\fIOPTIONS\\fR]\n")
	fmt.Fprintf(&b, ".SH DESCRIPTION\n%s\n", strings.ReplaceAll(manDescription, "-", `\-`))
	b.WriteString(".SH OPTIONS\n")
	fs.VisitAll(func(f *flag.Flag) {
		arg := " \\fIVALUE\\fR"
		if bf, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && bf.IsBoolFlag() {
			arg = ""
		}
		fmt.Fprintf(&b, ".TP\n.B \\-\\-%s%s\n%s\n", roff(f.Name), arg, roff(f.Usage))
	})
	b.WriteString(".SH ENVIRONMENT\n.TP\n.B TAPESTRY_ADMIN_PASSWORD\nthe password of the cluster user admin on first start\n")
	b.WriteString(".SH FILES\n.TP\n.I DIR/catalog.db\nthe catalog\n.TP\n.I DIR/admin.sock\nthe admin API socket\n.TP\n.I DIR/mroot/etc/log/backup\nthe backup event log\n")
	b.WriteString(".SH SEE ALSO\n\\fBtapestry\\fR(1), \\fBndmpcopy\\fR(1), \\fBsystemd.exec\\fR(5)\n")
	return b.String()
}

// roff escapes text for a man page line.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}
