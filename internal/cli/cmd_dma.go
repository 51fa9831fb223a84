package cli

// tapestry ndmp backup|restore: Tapestry's own small DMA verbs (package
// dma). They are not ONTAP commands: ONTAP leaves backups to a DMA; these
// drive one NDMP dump backup or restore on one server whose tape device
// and data share the session (local topology), for demos and scripts.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/tapestry-ndmp/tapestry/internal/dma"
	"github.com/tapestry-ndmp/tapestry/internal/ndmpcopy"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// addDMACommands adds "ndmp backup" and "ndmp restore".
func addDMACommands(root *cobra.Command, env Env) {
	g := subgroup(root, "ndmp", "Tapestry's own small DMA: run an NDMP backup or restore (not an ONTAP command)")
	g.AddCommand(dmaCmd(env, true), dmaCmd(env, false))
}

// dmaFlags are the parameters of the DMA verbs.
type dmaFlags struct {
	server, user, password, authType string
	device, path                     string
	level, tapeFile                  int
	recordSize                       uint32
	hist, verbose                    bool
	names, env                       []string
}

const dmaBackupLong = `Runs one NDMP dump backup as a small DMA (Tapestry's own verb, not an ONTAP
command): it logs in to the NDMP server, opens the tape device, positions it
to -tape-file (rewind, then forward over that many file marks; -1 leaves it
where it is), backs up -path (/svm/volume[/dir]) at -level through a LOCAL
data connection, writes a file mark after the image and prints one summary
line. The NDMP password is the one "vserver services ndmp generate-password"
gives (or $TAPESTRY_NDMP_PASSWORD).`

const dmaRestoreLong = `Runs one NDMP dump restore as a small DMA (Tapestry's own verb, not an ONTAP
command): it positions the tape device to -tape-file, restores that image into
-path (/svm/volume[/dir]) and prints one summary line. Restore a level 0 image
first, then each incremental in order into the same place. -name restores only
the given paths of the image (repeatable).`

func dmaCmd(env Env, backup bool) *cobra.Command {
	f := &dmaFlags{}
	c := &cobra.Command{
		Use:   "backup -ndmp-server HOST:PORT -user NAME [-password P] -device nrst0l -path /svm/volume [-level N] [-tape-file N]",
		Short: "Back up a volume to tape over NDMP (Tapestry's DMA verb)",
		Long:  dmaBackupLong,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDMA(cmd.Context(), env, f, backup)
		},
	}
	if !backup {
		c.Use = "restore -ndmp-server HOST:PORT -user NAME [-password P] -device nrst0l -tape-file N -path /svm/volume [-name PATH]..."
		c.Short = "Restore a dump image from tape over NDMP (Tapestry's DMA verb)"
		c.Long = dmaRestoreLong
	}
	fl := c.Flags()
	fl.StringVar(&f.server, "ndmp-server", "", "NDMP server address HOST:PORT (port 10000 if omitted)")
	fl.StringVar(&f.user, "user", "", "NDMP user name")
	fl.StringVar(&f.password, "password", "", "NDMP password (env TAPESTRY_NDMP_PASSWORD)")
	fl.StringVar(&f.authType, "auth-type", "md5", "authentication type: md5 or text")
	fl.StringVar(&f.device, "device", "nrst0l", "tape device")
	fl.StringVar(&f.path, "path", "", "volume path /svm/volume[/dir]: what to back up, or where to restore")
	fl.IntVar(&f.tapeFile, "tape-file", 0, "tape file to position to (0 is the first; -1 leaves the tape where it is)")
	fl.Uint32Var(&f.recordSize, "record-size", dma.DefaultRecordSize, "tape record size in bytes (a restore must use the backup's)")
	fl.StringArrayVar(&f.env, "env", nil, "extra environment variable NAME=VALUE (repeatable)")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "print the server's informational log messages too")
	if backup {
		fl.IntVar(&f.level, "level", 0, "dump level 0-9")
		fl.BoolVar(&f.hist, "hist", false, "ask for file history (counted in the summary)")
	} else {
		fl.StringArrayVar(&f.names, "name", nil, "path in the image to restore (repeatable; default everything)")
	}
	return c
}

// terminal reports whether w is a terminal.
func terminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// dmaJob checks the parameters and builds the job; the password comes
// from -password or TAPESTRY_NDMP_PASSWORD and may be left empty.
func dmaJob(f *dmaFlags, backup bool, getenv func(string) string) (dma.Job, error) {
	if err := required(req("ndmp-server", f.server), req("user", f.user), req("device", f.device), req("path", f.path)); err != nil {
		return dma.Job{}, err
	}
	job := dma.Job{
		Addr: f.server, User: f.user, Password: first(f.password, getenv("TAPESTRY_NDMP_PASSWORD")),
		Device: f.device, Level: f.level, TapeFile: f.tapeFile, RecordSize: f.recordSize, Hist: f.hist,
		Names: f.names,
	}
	if _, _, err := net.SplitHostPort(job.Addr); err != nil {
		// No port: NDMP's.
		job.Addr = net.JoinHostPort(strings.Trim(job.Addr, "[]"), strconv.Itoa(ndmp.DefaultPort))
		if _, _, err := net.SplitHostPort(job.Addr); err != nil {
			return dma.Job{}, fmt.Errorf("-ndmp-server %q: want HOST:PORT", f.server)
		}
	}
	switch strings.ToLower(f.authType) {
	case "md5", "challenge":
		job.AuthType = ndmp.AuthMD5
	case "text", "plaintext":
		job.AuthType = ndmp.AuthText
	default:
		return dma.Job{}, fmt.Errorf("-auth-type %q: use md5 or text", f.authType)
	}
	if f.level < 0 || f.level > 9 {
		return dma.Job{}, fmt.Errorf("-level %d: use 0 to 9", f.level)
	}
	if f.tapeFile < -1 {
		return dma.Job{}, fmt.Errorf("-tape-file %d: use -1 (stay) or a tape file number from 0", f.tapeFile)
	}
	for _, e := range f.env {
		name, val, ok := strings.Cut(e, "=")
		if !ok || name == "" {
			return dma.Job{}, fmt.Errorf("-env %q: want NAME=VALUE", e)
		}
		job.Env = append(job.Env, ndmp.Pval{Name: name, Value: val})
	}
	if backup {
		job.FileSystem = f.path
	} else {
		job.Dest = f.path
	}
	return job, nil
}

func runDMA(ctx context.Context, env Env, f *dmaFlags, backup bool) error {
	job, err := dmaJob(f, backup, env.Getenv)
	if err != nil {
		return err
	}
	if job.Password == "" {
		if env.ReadPassword == nil {
			return errors.New("no NDMP password: give -password or set TAPESTRY_NDMP_PASSWORD")
		}
		p, err := env.ReadPassword(fmt.Sprintf("NDMP password for %s: ", f.user))
		if err != nil {
			return fmt.Errorf("read password: %w", err)
		}
		job.Password = p
	}
	// Log messages go to stderr; on a terminal a progress line is
	// rewritten in place there.
	var mu sync.Mutex
	showing := false
	tty := terminal(env.Stderr)
	clearLine := func() {
		if showing {
			fmt.Fprint(env.Stderr, "\r\033[K")
			showing = false
		}
	}
	job.Progress = func(p dma.Progress) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case p.Message != "":
			// Errors end up in the final error; warnings are shown.
			if p.Type != ndmp.LogWarning && !f.verbose || p.Type == ndmp.LogDebug {
				return
			}
			clearLine()
			prefix := ""
			switch p.Type {
			case ndmp.LogError:
				prefix = "error: "
			case ndmp.LogWarning:
				prefix = "warning: "
			}
			fmt.Fprintf(env.Stderr, "ndmp: %s%s\n", prefix, p.Message)
		case tty:
			rate := float64(p.Bytes) / max(p.Elapsed.Seconds(), 0.001)
			state := strings.ToLower(strings.TrimPrefix(p.DataState.String(), "NDMP_DATA_STATE_"))
			fmt.Fprintf(env.Stderr, "\r\033[K%s: %s, %s/s, %s elapsed", state, ndmpcopy.FormatBytes(p.Bytes),
				ndmpcopy.FormatBytes(uint64(rate)), ndmpcopy.FormatDuration(p.Elapsed))
			showing = true
		}
	}
	var res *dma.Result
	if backup {
		res, err = dma.Backup(ctx, job)
	} else {
		res, err = dma.Restore(ctx, job)
	}
	mu.Lock()
	clearLine()
	mu.Unlock()
	if err != nil {
		return err
	}
	out := env.Stdout
	if backup {
		fmt.Fprintf(out, "Backup of %s level %d to %s tape file %d: %d bytes (%s) in %s, DUMP_DATE %s, %d file history entries\n",
			f.path, f.level, f.device, res.TapeFile, res.Bytes, ndmpcopy.FormatBytes(res.Bytes), ndmpcopy.FormatDuration(res.Elapsed.Round(time.Second)),
			res.DumpDate, res.FileHistory)
	} else {
		fmt.Fprintf(out, "Restore of %s tape file %d into %s: %d bytes (%s) in %s, %d names reported, %d failed\n",
			f.device, res.TapeFile, f.path, res.Bytes, ndmpcopy.FormatBytes(res.Bytes), ndmpcopy.FormatDuration(res.Elapsed.Round(time.Second)),
			res.Files, res.Failed)
	}
	return nil
}
