package ndmpcopy

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// fdFile is what an *os.File offers to tell whether it is a terminal.
type fdFile interface {
	Fd() uintptr
}

// isTerminal reports whether v is a terminal file.
func isTerminal(v any) bool {
	f, ok := v.(fdFile)
	return ok && term.IsTerminal(int(f.Fd()))
}

// errNotInteractive is returned by -p without a terminal.
var errNotInteractive = errors.New("-p can be used only in an interactive console")

// PromptPasswords asks on the terminal in (echo off) for the source and
// destination passwords, writing the prompts to out, and stores them in o,
// overriding -sa and -da. in must be a terminal. Echo is off from before
// the first prompt until the last password is read, so keys typed ahead of
// a prompt are not shown either.
func PromptPasswords(o *Options, in any, out io.Writer) error {
	if !isTerminal(in) {
		return errNotInteractive
	}
	fd := int(in.(fdFile).Fd())
	return withEchoOff(fd, func() error {
		for _, side := range []struct {
			name string
			ep   *Endpoint
		}{{"source", &o.Source}, {"destination", &o.Dest}} {
			fmt.Fprintf(out, "Password for %s user %s on %s: ", side.name, side.ep.User, side.ep.Host)
			pw, err := readLine(fd)
			fmt.Fprintln(out)
			if err != nil {
				return fmt.Errorf("reading the %s password: %w", side.name, err)
			}
			p := strings.TrimRight(string(pw), "\r\n")
			if p == "" {
				return fmt.Errorf("empty password for %s user %s", side.name, side.ep.User)
			}
			side.ep.Password = p
		}
		return nil
	})
}

// withEchoOff runs fn with echo off on the terminal fd (lines still
// edited by the terminal, signals still delivered) and restores its mode.
func withEchoOff(fd int, fn func() error) error {
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("reading the terminal mode: %w", err)
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	quiet.Lflag |= unix.ICANON | unix.ISIG
	quiet.Iflag |= unix.ICRNL
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return fmt.Errorf("turning echo off: %w", err)
	}
	defer unix.IoctlSetTermios(fd, unix.TCSETS, old)
	return fn()
}

// readLine reads one line from fd, a byte at a time so that nothing past
// the line is taken from the terminal, without its newline.
func readLine(fd int) ([]byte, error) {
	var line []byte
	b := make([]byte, 1)
	for {
		n, err := unix.Read(fd, b)
		switch {
		case n == 1 && b[0] == '\n':
			return line, nil
		case n == 1:
			line = append(line, b[0])
		case err == unix.EINTR:
		case err != nil:
			return nil, err
		default: // end of input
			return line, nil
		}
	}
}

// FormatBytes returns n in binary units: "512 B", "1.5 KiB", "3.2 GiB".
func FormatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// FormatDuration returns d as h:mm:ss, rounded to the second.
func FormatDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	s := int64(d.Round(time.Second) / time.Second)
	return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
}

// ProgressLine formats the progress shown on a terminal: bytes copied,
// the average rate and the estimated time left. remain is the estimated time
// remaining when the server reports one (ok), else the ETA comes from
// bytesLeft when that is known (bytesOK), else it is shown as unknown.
func ProgressLine(bytes uint64, elapsed time.Duration, remain time.Duration, ok bool, bytesLeft uint64, bytesOK bool) string {
	rate := 0.0
	if elapsed > 0 {
		rate = float64(bytes) / elapsed.Seconds()
	}
	eta := "--:--:--"
	switch {
	case ok:
		eta = FormatDuration(remain)
	case bytesOK && rate > 0:
		eta = FormatDuration(time.Duration(float64(bytesLeft) / rate * float64(time.Second)))
	}
	return fmt.Sprintf("%s copied, %s/s, ETA %s", FormatBytes(bytes), FormatBytes(uint64(rate)), eta)
}
