package web

import (
	"fmt"
	"html/template"
	"time"
)

var funcs = template.FuncMap{
	"bytes": humanBytes,
	"rate": func(v float64) string {
		if v <= 0 {
			return "—"
		}
		return humanBytes(uint64(v)) + "/s"
	},
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.Local().Format("2006-01-02 15:04:05")
	},
	"uint": func(v int64) uint64 { return uint64(max(v, 0)) },
	"add": func(vs ...int64) int64 {
		var t int64
		for _, v := range vs {
			t += v
		}
		return t
	},
	"join": func(ss []string, sep string) string {
		out := ""
		for i, s := range ss {
			if i > 0 {
				out += sep
			}
			out += s
		}
		return out
	},
}

// humanBytes renders a byte count in binary units, with the exact count
// below 1 KiB.
func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
