package cli

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// TestCLIDoesNotLinkNDMPServer (issue 12 item 7): the admin API's wire
// types are the admin package's own, so neither this package nor the
// tapestry command links the NDMP server (internal/server or a package
// below it).
func TestCLIDoesNotLinkNDMPServer(t *testing.T) {
	goTool := testutil.RequireTool(t, "go")
	out, err := exec.Command(goTool, "list", "-deps", ".", "../../cmd/tapestry").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed %d packages:\n%s", len(deps), out)
	}
	const server = "github.com/tapestry-ndmp/tapestry/internal/server"
	for _, p := range deps {
		if p == server || strings.HasPrefix(p, server+"/") {
			t.Errorf("the CLI links %s", p)
		}
	}
}
