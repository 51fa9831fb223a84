package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/tapestry-ndmp/tapestry/internal/catalog"
	enginedump "github.com/tapestry-ndmp/tapestry/internal/engine/filedump"
)

// addLocalDumpCommands adds the local dump and restore verbs, which read and
// write image files without a daemon.
func addLocalDumpCommands(root *cobra.Command, env Env) {
	root.AddCommand(localDumpCmd(env), localRestoreCmd(env))
}

const localDumpUsage = `dump -<level> -f IMAGE[,IMAGE...] [-D DUMPDATES] [-u] [-b KB] [-B RECORDS] DIR

Writes a dump image of the directory DIR (read directly, without a snapshot)
to IMAGE, which Linux restore can read. Levels 0-31; a level above 0 needs a
dumpdates catalog (-D) in which an earlier lower-level dump was recorded (-u).
-b sets the tape record size in KB (4-256, default 10); -B ends each image
file after RECORDS 1 KB records and goes on in the next file of the list.`

const localRestoreUsage = `restore -t|-x|-r -f IMAGE[,IMAGE...] [files...]

-t lists the image, -x extracts the named files (all when none) and -r
rebuilds the whole tree, applying an incremental image to an earlier
restore (the state is kept in restore_symboltable; an entry of the image
with that name is not restored). Restores into the current directory.`

type localArgs struct {
	level    int
	levelSet bool
	mode     byte
	images   []string
	dates    string
	update   bool
	recordKB int
	volRecs  int64
	rest     []string
}

// parseLocalArgs parses Linux dump/restore style arguments: "-0", "-0u",
// "-f IMAGE", "-fIMAGE" and so on; options that take a value (f, D, b, B)
// take the rest of the word or the next word.
func parseLocalArgs(args []string, modes string) (*localArgs, error) {
	la := &localArgs{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			la.rest = append(la.rest, args[i+1:]...)
			break
		}
		if len(a) > 2 && strings.HasPrefix(a, "--") {
			a = a[1:] // NormalizeArgs doubled the dash of "-fIMAGE"
		}
		if len(a) < 2 || a[0] != '-' {
			la.rest = append(la.rest, a)
			continue
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			switch {
			case c >= '0' && c <= '9' && modes == "":
				k := j
				for k < len(a) && a[k] >= '0' && a[k] <= '9' {
					k++
				}
				n, err := strconv.Atoi(a[j:k])
				if err != nil || n > 31 {
					return nil, fmt.Errorf("level %s: levels are 0 to 31", a[j:k])
				}
				la.level, la.levelSet = n, true
				j = k - 1
			case strings.IndexByte(modes, c) >= 0:
				if la.mode != 0 && la.mode != c {
					return nil, fmt.Errorf("give only one of -%s", strings.Join(strings.Split(modes, ""), ", -"))
				}
				la.mode = c
			case c == 'u' && modes == "":
				la.update = true
			case c == 'f' || (c == 'D' || c == 'b' || c == 'B') && modes == "":
				v := a[j+1:]
				if v == "" {
					if i+1 >= len(args) {
						return nil, fmt.Errorf("option -%c needs a value", c)
					}
					i++
					v = args[i]
				}
				switch c {
				case 'f':
					la.images = strings.Split(v, ",")
				case 'D':
					la.dates = v
				case 'b':
					n, err := strconv.Atoi(v)
					if err != nil {
						return nil, fmt.Errorf("-b %q: give the record size in KB", v)
					}
					la.recordKB = n
				case 'B':
					n, err := strconv.ParseInt(v, 10, 64)
					if err != nil || n <= 0 {
						return nil, fmt.Errorf("-B %q: give the number of 1 KB records per image file", v)
					}
					la.volRecs = n
				}
				j = len(a)
			default:
				return nil, fmt.Errorf("unknown option -%c", c)
			}
		}
	}
	if len(la.images) == 0 || la.images[0] == "" {
		return nil, errors.New("no image: give -f IMAGE")
	}
	return la, nil
}

// progressBar draws a one-line progress display on a terminal.
type progressBar struct {
	w     io.Writer
	on    bool
	last  time.Time
	verb  string
	drawn bool
}

func newProgressBar(w io.Writer, verb string) *progressBar {
	f, ok := w.(*os.File)
	return &progressBar{w: w, on: ok && term.IsTerminal(int(f.Fd())), verb: verb}
}

func (p *progressBar) update(pr enginedump.Progress) {
	if !p.on || time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	bar := ""
	if pr.Total > 0 {
		n := int(min(20*pr.Files/pr.Total, 20)) // never past the end, whatever the engine reports
		bar = "[" + strings.Repeat("#", n) + strings.Repeat(".", 20-n) + "] "
	}
	fmt.Fprintf(p.w, "\r%s phase %s %s%d files, %d KB ", p.verb, pr.Phase, bar, pr.Files, pr.Bytes>>10)
	p.drawn = true
}

func (p *progressBar) done() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

func localDumpCmd(env Env) *cobra.Command {
	return &cobra.Command{
		Use:                "dump -<level> -f IMAGE[,IMAGE...] [-D DUMPDATES] [-u] [-b KB] [-B RECORDS] DIR",
		Short:              "Write a dump image of a local directory (no daemon)",
		Long:               localDumpUsage,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
				fmt.Fprintln(env.Stdout, "Usage: tapestry "+localDumpUsage)
				return nil
			}
			la, err := parseLocalArgs(args, "")
			if err != nil {
				return err
			}
			if len(la.rest) != 1 {
				return errors.New("give exactly one directory to dump")
			}
			return runLocalDump(cmd.Context(), env, la, la.rest[0])
		},
	}
}

func runLocalDump(ctx context.Context, env Env, la *localArgs, dir string) error {
	var st catalog.Store
	if la.dates != "" {
		b, err := catalog.OpenBolt(la.dates)
		if err != nil {
			return fmt.Errorf("dumpdates %s: %w", la.dates, err)
		}
		defer b.Close()
		st = b
	} else if la.update {
		return errors.New("-u needs a dumpdates catalog: give -D DUMPDATES")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	// Each image file is written through a large buffer; a full volume is
	// flushed before the next one is opened.
	type imageFile struct {
		f *os.File
		b *bufio.Writer
	}
	var files []imageFile
	defer func() {
		for _, f := range files {
			f.f.Close()
		}
	}()
	flushAll := func() error {
		for _, f := range files {
			if err := f.b.Flush(); err != nil {
				return err
			}
		}
		return nil
	}
	open := func(n int) (io.Writer, error) {
		if n > len(la.images) {
			return nil, fmt.Errorf("image %d needed but only %d given with -f", n, len(la.images))
		}
		if err := flushAll(); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(la.images[n-1], os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return nil, err
		}
		b := bufio.NewWriterSize(f, 1<<20)
		files = append(files, imageFile{f, b})
		return b, nil
	}
	first, err := open(1)
	if err != nil {
		return err
	}
	upd := "N"
	if la.update {
		upd = "Y"
	}
	pb := newProgressBar(env.Stderr, "DUMP:")
	req := enginedump.BackupRequest{
		Dir: abs, Catalog: st, Output: first, RecordSize: la.recordKB << 10,
		Env:      enginedump.Env{"LEVEL": strconv.Itoa(la.level), "UPDATE": upd},
		Progress: pb.update,
	}
	if la.volRecs > 0 {
		req.VolumeSize = la.volRecs << 10
		req.NextVolume = open
	}
	if h, err := os.Hostname(); err == nil {
		req.Host = h
	}
	res, err := enginedump.Backup(ctx, req)
	pb.done()
	if err != nil {
		return errors.New(enginedump.Message(err))
	}
	if err := flushAll(); err != nil {
		return err
	}
	for _, f := range files {
		if err := f.f.Close(); err != nil {
			return err
		}
	}
	files = nil
	fmt.Fprintf(env.Stdout, "DUMP: Date of this level %d dump: %s\n", res.Level, res.Date.Format(time.ANSIC))
	if !res.BaseDate.IsZero() {
		fmt.Fprintf(env.Stdout, "DUMP: Date of last level dump: %s\n", res.BaseDate.Format(time.ANSIC))
	}
	fmt.Fprintf(env.Stdout, "DUMP: %d inodes, %d KB written to %s\n", res.Files, res.Bytes>>10, strings.Join(la.images, ","))
	fmt.Fprintln(env.Stdout, "DUMP: directory dumped without a snapshot (local dump)")
	return nil
}

func localRestoreCmd(env Env) *cobra.Command {
	return &cobra.Command{
		Use:                "restore -t|-x|-r -f IMAGE[,IMAGE...] [files...]",
		Short:              "List or restore a dump image into the current directory (no daemon)",
		Long:               localRestoreUsage,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
				fmt.Fprintln(env.Stdout, "Usage: tapestry "+localRestoreUsage)
				return nil
			}
			la, err := parseLocalArgs(args, "txr")
			if err != nil {
				return err
			}
			if la.mode == 0 {
				return errors.New("give one of -t, -x or -r")
			}
			if la.mode == 'r' && len(la.rest) > 0 {
				return errors.New("-r restores everything; name files with -x")
			}
			return runLocalRestore(cmd.Context(), env, la)
		},
	}
}

func runLocalRestore(ctx context.Context, env Env, la *localArgs) error {
	cwd, err := os.Getwd()
	if err != nil {
		return err
	}
	f, err := os.Open(la.images[0])
	if err != nil {
		return err
	}
	var opened []*os.File
	opened = append(opened, f)
	defer func() {
		for _, f := range opened {
			f.Close()
		}
	}()
	req := enginedump.RestoreRequest{Input: f, Dest: cwd, Env: enginedump.Env{"FORCE": "N"}, Policy: localRestorePolicy()}
	req.NextVolume = func(n int) (io.Reader, error) {
		if n > len(la.images) {
			// Truncated, or a volume of a multi-volume dump is missing:
			// the reader says which record the image ends at.
			return nil, nil
		}
		g, err := os.Open(la.images[n-1])
		if err != nil {
			return nil, err
		}
		opened = append(opened, g)
		return g, nil
	}
	switch la.mode {
	case 't':
		req.Env["LIST"] = "Y"
		req.OnList = func(e enginedump.ListEntry) {
			p := "."
			if e.Path != "" {
				p = "./" + e.Path
			}
			fmt.Fprintf(env.Stdout, "%10d\t%s\n", e.Ino, p)
		}
	case 'x':
		for _, n := range la.rest {
			req.Names = append(req.Names, enginedump.RestoreName{Original: n, FHInfo: -1})
		}
		if len(req.Names) == 0 {
			req.Names = []enginedump.RestoreName{{Original: "", FHInfo: -1}}
		}
	}
	var failed int
	req.OnName = func(n enginedump.NameResult) {
		if n.Err != nil {
			failed++
			fmt.Fprintf(env.Stderr, "restore: %s: %v\n", n.Path, n.Err)
		}
	}
	pb := newProgressBar(env.Stderr, "RESTORE:")
	req.Progress = pb.update
	res, err := enginedump.Restore(ctx, req)
	pb.done()
	if err != nil {
		return errors.New(enginedump.Message(err))
	}
	if la.mode != 't' {
		fmt.Fprintf(env.Stdout, "RESTORE: level %d dump of %s: %d inodes restored\n", res.Level, res.Date.Format(time.ANSIC), res.Files)
	}
	if failed > 0 {
		return fmt.Errorf("%d names could not be restored", failed)
	}
	return nil
}

// localRestorePolicy is the restore policy of tapestry restore (issue 10):
// none (the image as it is) when the real user is root, else the one of a
// non-root user: no device nodes, no set-ID bits, and every file owned by
// the user, with its group kept only when the user is a member of it. The
// real user decides, so a tapestry binary given privileges (set-user-ID
// root, capabilities) restores for the user who runs it.
func localRestorePolicy() *enginedump.RestorePolicy {
	uid := os.Getuid()
	if uid == 0 {
		return nil
	}
	gid := os.Getgid()
	gids := enginedump.IDRanges{{Lo: uint32(gid), Hi: uint32(gid)}}
	if groups, err := os.Getgroups(); err == nil {
		for _, g := range groups {
			gids = append(gids, enginedump.IDRange{Lo: uint32(g), Hi: uint32(g)})
		}
	}
	return &enginedump.RestorePolicy{
		Who:        "user " + strconv.Itoa(uid),
		UIDs:       enginedump.IDRanges{{Lo: uint32(uid), Hi: uint32(uid)}},
		GIDs:       gids,
		DefaultUID: uint32(uid),
		DefaultGID: uint32(gid),
	}
}
