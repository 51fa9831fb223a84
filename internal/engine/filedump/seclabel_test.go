package filedump

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tapestry-ndmp/tapestry/internal/storage"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// labelled are the files of the security label test and their labels.
var labelled = map[string]string{
	"doc.txt": "system_u:object_r:user_home_t:s0\x00",
	"dir":     "system_u:object_r:httpd_sys_content_t:s0\x00",
	"dir/in":  "unconfined_u:object_r:admin_home_t:s0:c1,c2\x00",
	"link":    "system_u:object_r:tmp_t:s0\x00",
}

// labelTree writes the files of labelled in root, labels them (not
// following links) and gives doc.txt a user attribute too.
func labelTree(t *testing.T, root string) {
	t.Helper()
	writeFile(t, filepath.Join(root, "doc.txt"), []byte("labelled document"), 0o644)
	must(t, os.Mkdir(filepath.Join(root, "dir"), 0o755))
	writeFile(t, filepath.Join(root, "dir", "in"), []byte("inside"), 0o600)
	must(t, os.Symlink("doc.txt", filepath.Join(root, "link")))
	for rel, label := range labelled {
		err := unix.Lsetxattr(filepath.Join(root, rel), xattrSELinux, []byte(label), 0)
		if errors.Is(err, unix.EOPNOTSUPP) {
			t.Fatalf("the loop ext4 does not take %s on %s: %v", xattrSELinux, rel, err)
		}
		must(t, err)
	}
	must(t, unix.Lsetxattr(filepath.Join(root, "doc.txt"), "user.note", []byte("kept"), 0))
}

// backupVolume backs up /vs1/vol1 into the file img.
func backupVolume(t *testing.T, svc *storage.Service, img string) error {
	t.Helper()
	f, err := os.Create(img)
	must(t, err)
	defer f.Close()
	_, err = Backup(context.Background(), BackupRequest{Storage: svc, Path: "/vs1/vol1", Output: f, Snapshots: &SnapshotNamer{}})
	return err
}

// Issue 11 item 10 (D4, D8): files with an SELinux label (every file of an
// RHEL-family host) are backed up and restored with the label, compared
// byte for byte, like other extended attributes. Only when the SVM serves
// NFSv4.2 security labels (vserver nfs modify -v4.2-seclabel enabled) does
// the dump stop with ONTAP's message, leaving no snapshot behind.
func TestSELinuxLabelsRoundTrip(t *testing.T) {
	testutil.RequireRoot(t)
	src := testutil.LoopFS(t, "ext4", 64)
	labelTree(t, src)
	ctx := context.Background()
	svc := newCopyVolume(t, src)

	img := filepath.Join(t.TempDir(), "img")
	if err := backupVolume(t, svc, img); err != nil {
		t.Fatalf("backup of labelled files with seclabel disabled (the default): %v", err)
	}
	dst := testutil.LoopFS(t, "ext4", 64)
	restoreImage(t, img, dst, nil)
	for rel := range labelled {
		want, got := allXattrs(t, filepath.Join(src, rel)), allXattrs(t, filepath.Join(dst, rel))
		if len(want) == 0 || len(got) != len(want) {
			t.Errorf("%s: xattrs %q, want %q", rel, got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: xattr %s = %q, want %q", rel, k, got[k], v)
			}
		}
	}
	compareTrees(t, snapshotTree(t, src, "lost+found", ".snapshot", "restore_symboltable"), snapshotTree(t, dst, "lost+found", ".snapshot", "restore_symboltable"))

	on := true
	_, err := svc.ModifyNFS(ctx, "vs1", storage.NFSChange{V42SecLabel: &on})
	must(t, err)
	err = backupVolume(t, svc, img)
	if Message(err) != MsgSecurityLabels {
		t.Fatalf("backup with -v4.2-seclabel enabled: %v, want %q", err, MsgSecurityLabels)
	}
	if snaps, err := svc.ListSnapshots(ctx, "vs1", "vol1"); err != nil || len(snaps) != 0 {
		t.Fatalf("snapshots left by the refused backup: %v %v", snaps, err)
	}
}
