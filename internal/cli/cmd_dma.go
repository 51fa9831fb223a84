package cli

// tapestry ndmp backup|restore: Tapestry's own small DMA verbs (package
// dma). They are not ONTAP commands: ONTAP leaves backups to a DMA; these
// drive one NDMP dump backup or restore, either on one server whose tape
// device and data share the session (local topology) or, with
// -data-server, with the data service on another server (or the same one)
// connected to the tape server's mover over TCP (three-way topology), for
// demos and scripts.

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
	// The data server of a three-way job (empty: local job).
	dataServer, dataUser, dataPassword, dataAuthType string
	ipv6                                             bool
	device, path                                     string
	level, tapeFile                                  int
	recordSize                                       uint32
	hist, verbose                                    bool
	names, env                                       []string
}

const dmaBackupLong = `Runs one NDMP dump backup as a small DMA (Tapestry's own verb, not an ONTAP
command): it logs in to the NDMP server, opens the tape device, positions it
to -tape-file (rewind, then forward over that many file marks; -1 leaves it
where it is), backs up -path (/svm/volume[/dir]) at -level through a LOCAL
data connection, writes a file mark after the image and prints one summary
line. The NDMP password is the one "vserver services ndmp generate-password"
gives (or $TAPESTRY_NDMP_PASSWORD).

With -data-server the backup is three-way: -ndmp-server is the tape server
(its mover and -device), -data-server the server that reads -path (its data
service); the mover listens on TCP (-ipv6: TCP over IPv6) and the data
service connects to it. Both may be the same node. The data server's login
is -data-user (default -user) with -data-password (or
$TAPESTRY_NDMP_DATA_PASSWORD; default the tape server's password).`

const dmaRestoreLong = `Runs one NDMP dump restore as a small DMA (Tapestry's own verb, not an ONTAP
command): it positions the tape device to -tape-file, restores that image into
-path (/svm/volume[/dir]) and prints one summary line. Restore a level 0 image
first, then each incremental in order into the same place. -name restores only
the given paths of the image (repeatable). With -data-server the restore is
three-way, as for backup: -path is then a path of the data server.`

func dmaCmd(env Env, backup bool) *cobra.Command {
	f := &dmaFlags{}
	c := &cobra.Command{
		Use:   "backup -ndmp-server HOST:PORT -user NAME [-password P] -device nrst0l -path /svm/volume [-level N] [-tape-file N] [-data-server HOST:PORT [-data-user NAME] [-data-password P]]",
		Short: "Back up a volume to tape over NDMP (Tapestry's DMA verb)",
		Long:  dmaBackupLong,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDMA(cmd.Context(), env, f, backup)
		},
	}
	if !backup {
		c.Use = "restore -ndmp-server HOST:PORT -user NAME [-password P] -device nrst0l -tape-file N -path /svm/volume [-name PATH]... [-data-server HOST:PORT [-data-user NAME] [-data-password P]]"
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
	fl.StringVar(&f.dataServer, "data-server", "", "three-way: the data server HOST:PORT (port 10000 if omitted); -ndmp-server keeps the tape")
	fl.StringVar(&f.dataUser, "data-user", "", "three-way: NDMP user name on the data server (default -user)")
	fl.StringVar(&f.dataPassword, "data-password", "", "three-way: NDMP password on the data server (env TAPESTRY_NDMP_DATA_PASSWORD; default the -password)")
	fl.StringVar(&f.dataAuthType, "data-auth-type", "", "three-way: authentication type on the data server: md5 or text (default -auth-type)")
	fl.BoolVar(&f.ipv6, "ipv6", false, "three-way: the data connection uses TCP over IPv6 (NDMP_ADDR_TCP_IPV6)")
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
	var err error
	if job.Addr, err = hostPort("ndmp-server", f.server); err != nil {
		return dma.Job{}, err
	}
	if job.AuthType, err = authType("auth-type", f.authType); err != nil {
		return dma.Job{}, err
	}
	if f.dataServer != "" {
		a := &dma.Agent{User: first(f.dataUser, f.user), Password: first(f.dataPassword, getenv("TAPESTRY_NDMP_DATA_PASSWORD"), job.Password)}
		if a.Addr, err = hostPort("data-server", f.dataServer); err != nil {
			return dma.Job{}, err
		}
		if a.AuthType, err = authType("data-auth-type", first(f.dataAuthType, f.authType)); err != nil {
			return dma.Job{}, err
		}
		job.Data, job.IPv6 = a, f.ipv6
	} else if f.dataUser != "" || f.dataPassword != "" || f.dataAuthType != "" || f.ipv6 {
		return dma.Job{}, errors.New("-data-user, -data-password, -data-auth-type and -ipv6 are for a three-way job: give -data-server too")
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

// hostPort checks a server address of flag name; without a port it gets
// NDMP's.
func hostPort(name, addr string) (string, error) {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr, nil
	}
	a := net.JoinHostPort(strings.Trim(addr, "[]"), strconv.Itoa(ndmp.DefaultPort))
	if _, _, err := net.SplitHostPort(a); err != nil {
		return "", fmt.Errorf("-%s %q: want HOST:PORT", name, addr)
	}
	return a, nil
}

// authType reads the authentication type of flag name.
func authType(name, v string) (ndmp.AuthType, error) {
	switch strings.ToLower(v) {
	case "md5", "challenge":
		return ndmp.AuthMD5, nil
	case "text", "plaintext":
		return ndmp.AuthText, nil
	}
	return 0, fmt.Errorf("-%s %q: use md5 or text", name, v)
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
		if job.Data != nil && job.Data.Password == "" {
			job.Data.Password = p
		}
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
	three := ""
	if job.Data != nil {
		three = fmt.Sprintf(" (three-way: data server %s, mover at %s)", job.Data.Addr, res.MoverAddr)
	}
	if backup {
		fmt.Fprintf(out, "Backup of %s level %d to %s tape file %d: %d bytes (%s) in %s, DUMP_DATE %s, %d file history entries%s\n",
			f.path, f.level, f.device, res.TapeFile, res.Bytes, ndmpcopy.FormatBytes(res.Bytes), ndmpcopy.FormatDuration(res.Elapsed.Round(time.Second)),
			res.DumpDate, res.FileHistory, three)
	} else {
		fmt.Fprintf(out, "Restore of %s tape file %d into %s: %d bytes (%s) in %s, %s, %d failed%s\n",
			f.device, res.TapeFile, f.path, res.Bytes, ndmpcopy.FormatBytes(res.Bytes), ndmpcopy.FormatDuration(res.Elapsed.Round(time.Second)),
			restoredText(res), res.Failed, three)
	}
	return nil
}

// restoredText says how many files a restore restored (issue 17 item 5:
// the summary counted the names asked for), or, from a server that does
// not say, how many names it reported.
func restoredText(res *dma.Result) string {
	if res.Restored < 0 {
		return fmt.Sprintf("%d names reported", res.Files)
	}
	if res.Restored == 1 {
		return "1 file restored"
	}
	return fmt.Sprintf("%d files restored", res.Restored)
}
