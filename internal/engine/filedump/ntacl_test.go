package filedump

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/tapestry-ndmp/tapestry/format/dump"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// testSID builds the binary SID S-1-<auth>-<subs...> by hand.
func testSID(auth byte, subs ...uint32) []byte {
	b := []byte{1, byte(len(subs)), 0, 0, 0, 0, 0, auth}
	for _, s := range subs {
		b = binary.LittleEndian.AppendUint32(b, s)
	}
	return b
}

// testACE builds one ACE by hand.
func testACE(typ, flags byte, mask uint32, sid []byte) []byte {
	b := []byte{typ, flags}
	b = binary.LittleEndian.AppendUint16(b, uint16(8+len(sid)))
	b = binary.LittleEndian.AppendUint32(b, mask)
	return append(b, sid...)
}

// testSD builds a self-relative security descriptor the way Windows lays it
// out (DACL first, then owner and group); sacl, when set, is added too.
func testSD(control uint16, owner, group []byte, aces [][]byte, sacl []byte) []byte {
	le := binary.LittleEndian
	sd := make([]byte, 20)
	sd[0] = 1
	le.PutUint16(sd[2:], control)
	if aces != nil {
		le.PutUint32(sd[16:], uint32(len(sd)))
		size := 8
		for _, a := range aces {
			size += len(a)
		}
		sd = append(sd, 2, 0)
		sd = le.AppendUint16(sd, uint16(size))
		sd = le.AppendUint16(sd, uint16(len(aces)))
		sd = append(sd, 0, 0)
		for _, a := range aces {
			sd = append(sd, a...)
		}
	}
	if sacl != nil {
		le.PutUint32(sd[12:], uint32(len(sd)))
		sd = append(sd, sacl...)
	}
	if owner != nil {
		le.PutUint32(sd[4:], uint32(len(sd)))
		sd = append(sd, owner...)
	}
	if group != nil {
		le.PutUint32(sd[8:], uint32(len(sd)))
		sd = append(sd, group...)
	}
	return sd
}

// testNTACLv4 wraps sd in xattr_NTACL version 4 as Samba writes it: a
// SHA-256 hash type, a description whose NUL leaves the offset unaligned,
// a time and a system ACL hash.
func testNTACLv4(sd []byte, fill byte) []byte {
	b := []byte{4, 0, 4, 0, 0, 0, 2, 0} // version, level, referent
	b = append(b, 4, 0, 2, 0)           // sd referent
	b = append(b, 1, 0)                 // hash type SHA-256
	b = append(b, bytes.Repeat([]byte{fill}, 64)...)
	b = append(b, "acl_xattr_v4\x00"...) // ends at 91
	b = append(b, 0)                     // pad to 92
	b = binary.LittleEndian.AppendUint64(b, 0x01d9_0000_1234_5678)
	b = append(b, bytes.Repeat([]byte{fill ^ 0xff}, 64)...)
	return append(b, sd...) // 164: aligned
}

// testNTACLv3 wraps sd in xattr_NTACL version 3.
func testNTACLv3(sd []byte) []byte {
	b := []byte{3, 0, 3, 0, 0, 0, 2, 0, 4, 0, 2, 0, 1, 0}
	b = append(b, bytes.Repeat([]byte{0x5a}, 64)...) // ends at 78
	b = append(b, 0, 0)                              // pad to 80
	return append(b, sd...)
}

var (
	sidUser  = testSID(5, 21, 1004336348, 1177238915, 682003330, 1000)
	sidGroup = testSID(22, 2, 1000)
	sidWorld = testSID(1, 0)
)

func sampleSD() []byte {
	return testSD(0x8404, sidUser, sidGroup, [][]byte{
		testACE(0, 0x03, 0x001f01ff, sidUser),
		testACE(1, 0x00, 0x00000002, sidGroup),
		testACE(0, 0x13, 0x001200a9, sidWorld),
	}, nil)
}

var sampleACL = &dump.NTACL{
	Control: 0x8404,
	Owner:   "S-1-5-21-1004336348-1177238915-682003330-1000",
	Group:   "S-1-22-2-1000",
	ACEs: []dump.ACE{
		{Type: 0, Flags: 3, Mask: 0x001f01ff, SID: "S-1-5-21-1004336348-1177238915-682003330-1000"},
		{Type: 1, Flags: 0, Mask: 2, SID: "S-1-22-2-1000"},
		{Type: 0, Flags: 0x13, Mask: 0x001200a9, SID: "S-1-1-0"},
	},
}

// TestDecodeSambaNTACL (D4): version 4, 3, 2 and 1 blobs built by the NDR
// layout decode to owner, group and DACL; an encoded value decodes back to
// the same ACL, as version 4 with hash type 0.
func TestDecodeSambaNTACL(t *testing.T) {
	sd := sampleSD()
	v2 := append([]byte{2, 0, 2, 0, 0, 0, 2, 0, 4, 0, 2, 0}, bytes.Repeat([]byte{7}, 16)...)
	for name, blob := range map[string][]byte{
		"v4": testNTACLv4(sd, 0xab),
		"v3": testNTACLv3(sd),
		"v2": append(v2, sd...),
		"v1": append([]byte{1, 0, 1, 0, 0, 0, 2, 0}, sd...),
	} {
		got, err := decodeSambaNTACL(blob)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !reflect.DeepEqual(got, sampleACL) {
			t.Errorf("%s: decoded %+v, want %+v", name, got, sampleACL)
		}
	}
	enc, err := encodeSambaNTACL(sampleACL)
	must(t, err)
	if binary.LittleEndian.Uint16(enc) != 4 || binary.LittleEndian.Uint16(enc[12:]) != 0 {
		t.Errorf("encoded version %d hash type %d, want 4 and 0", binary.LittleEndian.Uint16(enc), binary.LittleEndian.Uint16(enc[12:]))
	}
	back, err := decodeSambaNTACL(enc)
	must(t, err)
	if !reflect.DeepEqual(back, sampleACL) {
		t.Errorf("round trip: %+v", back)
	}
	// An empty DACL (deny everyone) is not a missing one.
	for _, acl := range []*dump.NTACL{
		{Control: 0x8004, Owner: "S-1-5-18"},
		{Control: 0x8000, Group: "S-1-5-32-544"},
		{Control: 0x8000},
	} {
		enc, err := encodeSambaNTACL(acl)
		must(t, err)
		back, err := decodeSambaNTACL(enc)
		if err != nil || back.Control != acl.Control || back.Owner != acl.Owner || back.Group != acl.Group || len(back.ACEs) != 0 {
			t.Errorf("%+v came back as %+v, %v", acl, back, err)
		}
	}
	// A large authority is written in hexadecimal and read back.
	big := &dump.NTACL{Control: 0x8004, ACEs: []dump.ACE{{SID: "S-1-0xFFFFFFFFFFFF-7"}}}
	enc, err = encodeSambaNTACL(big)
	must(t, err)
	if back, err := decodeSambaNTACL(enc); err != nil || back.ACEs[0].SID != big.ACEs[0].SID {
		t.Errorf("large authority: %+v, %v", back, err)
	}
}

// TestDecodeSambaNTACLMaxACEs (D4): 1,024 ACEs decode; 1,025 are refused
// (the raw xattr is kept then).
func TestDecodeSambaNTACLMaxACEs(t *testing.T) {
	for _, n := range []int{dump.MaxACEs, dump.MaxACEs + 1} {
		aces := make([][]byte, n)
		for i := range aces {
			aces[i] = testACE(byte(i%2), 0, 0x1f01ff, testSID(5, 21, 1, 2, 3, uint32(1000+i)))
		}
		acl, err := decodeSambaNTACL(testNTACLv4(testSD(0x8004, sidUser, sidGroup, aces, nil), 1))
		if n <= dump.MaxACEs {
			if err != nil || len(acl.ACEs) != n || acl.ACEs[n-1].SID != "S-1-5-21-1-2-3-"+strconv.Itoa(1000+n-1) {
				t.Fatalf("%d ACEs: %v", n, err)
			}
			enc, err := encodeSambaNTACL(acl)
			must(t, err)
			back, err := decodeSambaNTACL(enc)
			if err != nil || !reflect.DeepEqual(back, acl) {
				t.Errorf("%d ACEs do not round-trip: %v", n, err)
			}
		} else if err == nil {
			t.Errorf("%d ACEs accepted", n)
		}
	}
}

// TestDecodeSambaNTACLRefused: what the dump record cannot hold, or what is
// damaged, is refused (and so kept as the raw xattr), never a panic.
func TestDecodeSambaNTACLRefused(t *testing.T) {
	good := testNTACLv4(sampleSD(), 0xab)
	sacl := []byte{2, 0, 8, 0, 0, 0, 0, 0}
	cases := map[string][]byte{
		"SACL":        testNTACLv4(testSD(0x8414, sidUser, sidGroup, [][]byte{testACE(0, 0, 1, sidWorld)}, sacl), 1),
		"NULL DACL":   testNTACLv4(testSD(0x8004, sidUser, sidGroup, nil, nil), 1),
		"object ACE":  testNTACLv4(testSD(0x8004, sidUser, sidGroup, [][]byte{testACE(5, 0, 1, sidWorld)}, nil), 1),
		"version 5":   append([]byte{5, 0, 5, 0}, good[4:]...),
		"level":       append([]byte{4, 0, 3, 0}, good[4:]...),
		"no referent": append([]byte{4, 0, 4, 0, 0, 0, 0, 0}, good[8:]...),
		"no sd":       append(append(append([]byte{}, good[:8]...), 0, 0, 0, 0), good[12:]...),
		"old engine":  ntaclBlob(3),
	}
	for i := 0; i < len(good); i++ {
		cases["cut "+strconv.Itoa(i)] = good[:i]
	}
	for name, b := range cases {
		if acl, err := decodeSambaNTACL(b); err == nil {
			t.Errorf("%s: decoded %+v", name, acl)
		}
	}
}

// FuzzDecodeSambaNTACL: any value decodes or is refused without a panic;
// what decodes encodes and decodes again to the same ACL.
func FuzzDecodeSambaNTACL(f *testing.F) {
	f.Add(testNTACLv4(sampleSD(), 0xab))
	f.Add(testNTACLv3(sampleSD()))
	f.Add(append([]byte{1, 0, 1, 0, 0, 0, 2, 0}, sampleSD()...))
	f.Add(ntaclBlob(2))
	f.Add([]byte{4, 0, 4, 0, 0, 0, 2, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		acl, err := decodeSambaNTACL(b)
		if err != nil {
			return
		}
		enc, err := encodeSambaNTACL(acl)
		if err != nil {
			// Only a DACL too large for its 16-bit size may fail.
			if !strings.Contains(err.Error(), "DACL of") {
				t.Fatalf("encode of a decoded ACL: %v", err)
			}
			return
		}
		back, err := decodeSambaNTACL(enc)
		if err != nil {
			t.Fatalf("decode of the encoded ACL: %v", err)
		}
		acl.Control |= seSelfRel
		if !reflect.DeepEqual(back, acl) {
			t.Fatalf("round trip: %+v, want %+v", back, acl)
		}
	})
}

// TestNTACLBackupRestore (D3, D4, D8): a file's and a directory's Samba NT
// ACLs travel decoded in the ACL section (phase V), not as xattrs, and are
// restored as security.NTACL values that decode to the same ACLs; a value
// that cannot be decoded travels and comes back byte for byte;
// EXTRACT_ACL=N restores none.
func TestNTACLBackupRestore(t *testing.T) {
	src := testutil.LoopFS(t, "ext4", 64)
	doc, share, odd := filepath.Join(src, "doc.txt"), filepath.Join(src, "share"), filepath.Join(src, "odd")
	writeFile(t, doc, []byte("document"), 0o644)
	writeFile(t, odd, []byte("odd"), 0o644)
	must(t, os.Mkdir(share, 0o755))
	docACL := testNTACLv4(sampleSD(), 0xab)
	shareACL := testNTACLv3(testSD(0x9404, sidUser, sidGroup, [][]byte{testACE(0, 0x0b, 0x001f01ff, sidWorld)}, nil))
	oddACL := testNTACLv4(testSD(0x8414, sidUser, sidGroup, [][]byte{testACE(0, 0, 1, sidWorld)}, []byte{2, 0, 8, 0, 0, 0, 0, 0}), 0xcd)
	must(t, unix.Setxattr(doc, xattrNTACL, docACL, 0))
	must(t, unix.Setxattr(share, xattrNTACL, shareACL, 0))
	must(t, unix.Setxattr(odd, xattrNTACL, oddACL, 0))

	img := filepath.Join(t.TempDir(), "img")
	res := backupDir(t, src, img, nil, nil)
	raw, err := os.ReadFile(img)
	must(t, err)
	if bytes.Contains(raw, bytes.Repeat([]byte{0xab}, 64)) {
		t.Error("the decodable NT ACL is on the image as a raw xattr")
	}
	if !bytes.Contains(raw, oddACL) {
		t.Error("the NT ACL that cannot be decoded is not on the image as it was")
	}
	// The ACL section starts at ACL_START and holds the two decoded ACLs.
	r := dump.NewReader(bytes.NewReader(raw))
	inACLs, records := false, 0
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		must(t, err)
		if h.Kind != dump.KindExtension {
			continue
		}
		switch h.Ext {
		case dump.ExtACLSection:
			inACLs = true
			if strconv.FormatInt(h.Offset, 10) != res.Env["ACL_START"] {
				t.Errorf("ACL section at %d, ACL_START %s", h.Offset, res.Env["ACL_START"])
			}
		case dump.ExtNTACL:
			if !inACLs {
				t.Errorf("NT ACL of inode %d outside the ACL section", h.Ino)
			}
			b, err := r.Extension(maxNTACLPayload)
			must(t, err)
			var acl dump.NTACL
			must(t, acl.UnmarshalBinary(b))
			if acl.Owner != sampleACL.Owner || len(acl.ACEs) == 0 {
				t.Errorf("ACL record of inode %d: %+v", h.Ino, acl)
			}
			records++
		}
	}
	if records != 2 {
		t.Errorf("%d NT ACL records, want 2", records)
	}

	dst := testutil.LoopFS(t, "ext4", 64)
	restoreImage(t, img, dst, nil)
	for rel, want := range map[string][]byte{"doc.txt": docACL, "share": shareACL} {
		got, err := getXattr(filepath.Join(dst, rel), xattrNTACL)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		a, err1 := decodeSambaNTACL(want)
		b, err2 := decodeSambaNTACL(got)
		if err1 != nil || err2 != nil || !reflect.DeepEqual(a, b) {
			t.Errorf("%s: restored ACL %+v (%v), want %+v", rel, b, err2, a)
		}
	}
	if got, err := getXattr(filepath.Join(dst, "odd"), xattrNTACL); err != nil || !bytes.Equal(got, oddACL) {
		t.Errorf("odd: raw NT ACL not restored byte for byte: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "doc.txt")); err != nil || string(b) != "document" {
		t.Errorf("doc.txt: %q, %v", b, err)
	}

	dst2 := testutil.LoopFS(t, "ext4", 64)
	restoreImage(t, img, dst2, Env{"EXTRACT_ACL": "N"})
	for _, rel := range []string{"doc.txt", "share", "odd"} {
		if _, err := getXattr(filepath.Join(dst2, rel), xattrNTACL); err == nil {
			t.Errorf("EXTRACT_ACL=N restored the NT ACL of %s", rel)
		}
	}
}
