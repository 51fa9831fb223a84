package ndmpcopy

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// Stdio is what Main reads and writes.
type Stdio struct {
	// Stdin is read by -p; it must be a terminal file (*os.File) then.
	Stdin any
	// Stdout receives the servers' messages and the final report; Stderr
	// the errors and, when it is a terminal, the progress line.
	Stdout, Stderr io.Writer
	// Getenv reads the environment (TAPESTRY_DATA_DIR); nil reads none.
	Getenv func(string) string
	// Now is the clock for the debug log name (time.Now if nil).
	Now func() time.Time
}

// Main runs ndmpcopy with args (without the program name) and returns the
// exit status.
func Main(ctx context.Context, args []string, std Stdio) int {
	if std.Now == nil {
		std.Now = time.Now
	}
	o, err := ParseArgs(args, std.Getenv)
	if err != nil {
		fmt.Fprintf(std.Stderr, "ndmpcopy: %v\n", err)
		return ExitUsage
	}
	if o.Help {
		fmt.Fprint(std.Stdout, Usage)
		return ExitOK
	}
	if o.Prompt {
		if err := PromptPasswords(o, std.Stdin, std.Stderr); err != nil {
			fmt.Fprintf(std.Stderr, "ndmpcopy: %v\n", err)
			return ExitUsage
		}
	}
	var dlog *DebugLog
	if o.Debug {
		var path string
		dlog, path, err = OpenDebugLog(o.DataDir, std.Now)
		if err != nil {
			fmt.Fprintf(std.Stderr, "ndmpcopy: %v\n", err)
			return ExitFailed
		}
		defer dlog.Close()
		fmt.Fprintf(std.Stdout, "ndmpcopy: debug log %s\n", path)
		dlog.Printf("ndmpcopy %s", strings.Join(redactArgs(args), " "))
	}
	cfg := &Config{Messages: std.Stdout, Log: dlog}
	if isTerminal(std.Stderr) {
		cfg.Progress = std.Stderr
	}
	if o.SMTape {
		fmt.Fprintf(std.Stdout, "ndmpcopy: copying %s to %s (SMTape image of Snapshot copy %s)\n", o.Source, o.Dest, o.Snapshot)
	} else {
		fmt.Fprintf(std.Stdout, "ndmpcopy: copying %s to %s (level %d)\n", o.Source, o.Dest, o.Level)
	}
	res, err := Copy(ctx, o, cfg)
	if err != nil {
		dlog.Printf("failed: %v", err)
		fmt.Fprintf(std.Stderr, "ndmpcopy: %v\n", err)
		return ExitCode(err)
	}
	rate := uint64(0)
	if s := res.Elapsed.Seconds(); s > 0 {
		rate = uint64(float64(res.Bytes) / s)
	}
	fmt.Fprintf(std.Stdout, "ndmpcopy: transfer successful: %s in %s (%s/s)\n", FormatBytes(res.Bytes), FormatDuration(res.Elapsed), FormatBytes(rate))
	dlog.Printf("done: %d bytes in %v over %s", res.Bytes, res.Elapsed, res.DataFamily)
	if o.SMTape {
		printNextUpdate(std.Stdout, res.Env)
	}
	return ExitOK
}

// redactArgs hides the passwords of -sa, -da and user:password@ endpoints
// for the debug log.
func redactArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		if i > 0 && (args[i-1] == "-sa" || args[i-1] == "-da") {
			out[i] = redactAuth(a)
			continue
		}
		if ep, err := ParseEndpoint(a); err == nil && ep.HasCreds {
			out[i] = ep.User + ":***@" + ep.String()
		}
	}
	return out
}

// printNextUpdate tells how to send the next update of an SMTape mirror:
// the image's DUMP_DATE and backup set id, which -base-date and -set-id
// take.
func printNextUpdate(w io.Writer, env []ndmp.Pval) {
	e := ndmp.Env(env)
	if e["DUMP_DATE"] == "" {
		return
	}
	fmt.Fprintf(w, "ndmpcopy: next update: -base-date %s -set-id %s\n", e["DUMP_DATE"], e["SMTAPE_BACKUP_SET_ID"])
}
