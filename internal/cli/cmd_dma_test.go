package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// tapestry ndmp backup|restore (D1, N14): a level 0 backup to tape file 0
// and a restore of it into another volume through the real daemon, each
// printing one summary line; bad parameters and a bad device give clear
// errors.
func TestDMABackupRestoreVerbs(t *testing.T) {
	n := startNode(t)
	src := filepath.Join(t.TempDir(), "vol1")
	dst := filepath.Join(t.TempDir(), "vol2")
	for _, d := range []string{filepath.Join(src, "sub"), dst} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	body := strings.Repeat("tapestry ", 5000)
	if err := os.WriteFile(filepath.Join(src, "sub", "f.txt"), []byte(body), 0o640); err != nil {
		t.Fatal(err)
	}
	n.ok("vserver", "create", "-vserver", "vs1")
	n.ok("volume", "create", "-vserver", "vs1", "-volume", "vol1", "-path", src, "-snapshot-provider", "copy")
	n.ok("volume", "create", "-vserver", "vs1", "-volume", "vol2", "-path", dst, "-snapshot-provider", "copy")
	out := n.ok("vserver", "services", "ndmp", "generate-password", "-vserver", "cluster1", "-user", "admin")
	_, pw, _ := strings.Cut(out, "Password: ")
	pw = strings.TrimSpace(pw)
	addr := n.ndmpAddr()
	common := []string{"-ndmp-server", addr, "-user", "admin", "-password", pw, "-device", "nrst0l"}

	out = n.ok(append([]string{"ndmp", "backup", "-path", "/vs1/vol1", "-level", "0", "-hist"}, common...)...)
	if !regexp.MustCompile(`^Backup of /vs1/vol1 level 0 to nrst0l tape file 0: [1-9]\d* bytes \([0-9.]+ KiB\) in 0:00:0\d, DUMP_DATE \d+, [1-9]\d* file history entries\n$`).MatchString(out) {
		t.Fatalf("backup summary %q", out)
	}
	out = n.ok(append([]string{"ndmp", "restore", "-tape-file", "0", "-path", "/vs1/vol2"}, common...)...)
	if !regexp.MustCompile(`^Restore of nrst0l tape file 0 into /vs1/vol2: [1-9]\d* bytes \([0-9.]+ KiB\) in 0:00:0\d, \d+ names reported, 0 failed\n$`).MatchString(out) {
		t.Fatalf("restore summary %q", out)
	}
	got, err := os.ReadFile(filepath.Join(dst, "sub", "f.txt"))
	if err != nil || string(got) != body {
		t.Fatalf("restored file: %v (%d bytes)", err, len(got))
	}
	if fi, err := os.Stat(filepath.Join(dst, "sub", "f.txt")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("restored mode: %v %v", fi.Mode(), err)
	}

	n.fail("missing required parameter -path", append([]string{"ndmp", "backup"}, common...)...)
	n.fail(`cannot open tape device "nrst7z"`, "ndmp", "backup", "-ndmp-server", addr, "-user", "admin", "-password", pw, "-device", "nrst7z", "-path", "/vs1/vol1")
	n.fail("Could not obtain vol ref for Volume nosuch", append([]string{"ndmp", "backup", "-path", "/vs1/nosuch"}, common...)...)
	n.fail(`-auth-type "rot13": use md5 or text`, append([]string{"ndmp", "backup", "-path", "/vs1/vol1", "-auth-type", "rot13"}, common...)...)
	n.fail("wrong user name or password", "ndmp", "restore", "-ndmp-server", addr, "-user", "admin", "-password", "wrong", "-path", "/vs1/vol2")
}
