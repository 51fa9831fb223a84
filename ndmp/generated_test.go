package ndmp

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// TestGeneratedCodeUpToDate regenerates zmessages.go from ndmp.x and
// compares: the XDR file is the single source of truth of the messages.
func TestGeneratedCodeUpToDate(t *testing.T) {
	goTool := testutil.RequireTool(t, "go")
	out := filepath.Join(t.TempDir(), "zmessages.go")
	cmd := exec.Command(goTool, "run", "./internal/xdrgen", "-in", "ndmp.x", "-out", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("xdrgen: %v\n%s", err, b)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("zmessages.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("zmessages.go is stale: run go generate in package ndmp")
	}
}
