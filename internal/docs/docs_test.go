package docs

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapestry-ndmp/tapestry/internal/testutil"
)

// repo is the repository's top directory, seen from this package.
const repo = "../.."

// runGuard bounds one document's run: a hang guard, not a deadline (the
// CLI page's script alone takes about a minute on a loaded machine).
const runGuard = 15 * time.Minute

// block is one fenced block of a document.
type block struct {
	lang string
	line int
	text string
}

// documents lists README.md and docs/*.md, README first.
func documents(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join(repo, "docs", "*.md"))
	if err != nil || len(docs) == 0 {
		t.Fatalf("no documents in %s/docs: %v", repo, err)
	}
	return append([]string{filepath.Join(repo, "README.md")}, docs...)
}

// blocks returns the fenced blocks of the document at path; a fence without
// a language is an error.
func blocks(path string) ([]block, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var res []block
	var cur *block
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		switch {
		case cur == nil && strings.HasPrefix(l, "```"):
			lang := strings.TrimSpace(strings.TrimPrefix(l, "```"))
			if lang == "" {
				return nil, fmt.Errorf("%s:%d: fenced block without a language: write ```sh for commands the docs test runs, ```console or ```text for the others", rel(path), n)
			}
			cur = &block{lang: lang, line: n}
		case cur != nil && strings.HasPrefix(l, "```"):
			res = append(res, *cur)
			cur = nil
		case cur != nil:
			cur.text += l + "\n"
		}
	}
	if cur != nil {
		return nil, fmt.Errorf("%s:%d: fenced block not closed", rel(path), cur.line)
	}
	return res, sc.Err()
}

func rel(path string) string {
	r, err := filepath.Rel(repo, path)
	if err != nil {
		return path
	}
	return r
}

// script joins the sh blocks of the document at path, each preceded by a
// comment naming where it comes from.
func script(t *testing.T, path string) string {
	t.Helper()
	bs, err := blocks(path)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, bl := range bs {
		if bl.lang == "sh" {
			fmt.Fprintf(&b, "# %s:%d\n%s", rel(path), bl.line, bl.text)
		}
	}
	return b.String()
}

// TestDocsFencesNameALanguage checks that every fenced block of README.md
// and docs/*.md says whether it is run (```sh) or not (issue 17 item 5).
func TestDocsFencesNameALanguage(t *testing.T) {
	for _, d := range documents(t) {
		if _, err := blocks(d); err != nil {
			t.Error(err)
		}
	}
}

// TestBlocksRefusesBareFence checks that the parser finds a bare fence, the
// check above depends on it.
func TestBlocksRefusesBareFence(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.md")
	if err := os.WriteFile(p, []byte("text\n\n```sh\nls\n```\n\n```\nrm -rf x\n```\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := blocks(p)
	if err == nil || !strings.Contains(err.Error(), ":7: fenced block without a language") {
		t.Fatalf("blocks = %v, want an error at line 7", err)
	}
}

// TestDocsCommandBlocks runs the sh blocks of README.md on a fresh data
// directory, then those of every other document after the README's (issue
// 17 item 5: the README's quick start failed on a clean host because
// /srv/data did not exist).
func TestDocsCommandBlocks(t *testing.T) {
	env := newSandbox(t)
	readme := script(t, filepath.Join(repo, "README.md"))
	if !strings.Contains(readme, "tapestryd") {
		t.Fatalf("README.md has no sh block that starts tapestryd:\n%s", readme)
	}
	t.Run("README.md", func(t *testing.T) { env.run(t, readme) })
	for _, d := range documents(t)[1:] {
		s := script(t, d)
		if s == "" {
			continue
		}
		t.Run(rel(d), func(t *testing.T) { env.run(t, readme+s) })
	}
}

// TestDocsCLIPageIsCurrent reruns scripts/gen-cli-doc.sh and requires the
// page it writes to be docs/cli.md: every command shown there ran and
// printed what the page shows.
func TestDocsCLIPageIsCurrent(t *testing.T) {
	env := newSandbox(t)
	testutil.RequireTool(t, "perl")
	testutil.RequireTool(t, "flock")
	out := filepath.Join(t.TempDir(), "cli.md")
	ctx, cancel := context.WithTimeout(context.Background(), runGuard)
	defer cancel()
	script, err := filepath.Abs(filepath.Join(repo, "scripts", "gen-cli-doc.sh"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := env.command(ctx, t.TempDir(), "bash", script)
	cmd.Env = append(cmd.Env, "BIN="+env.bin, "CLI_DOC="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gen-cli-doc.sh: %v\n%s", err, b)
	}
	want, err := os.ReadFile(filepath.Join(repo, "docs", "cli.md"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		diff, _ := exec.Command("diff", "-u", filepath.Join(repo, "docs", "cli.md"), out).CombinedOutput()
		t.Fatalf("docs/cli.md is not what scripts/gen-cli-doc.sh writes now; run it and commit the page:\n%s", diff)
	}
}
