package web_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tapestry-ndmp/tapestry/internal/daemon"
	"github.com/tapestry-ndmp/tapestry/internal/dma"
	"github.com/tapestry-ndmp/tapestry/internal/testutil"
	"github.com/tapestry-ndmp/tapestry/ndmp"
)

// update makes the browser tests write their screenshots into docs/
// (go test ./internal/web -run TestWebView -update); so does the
// environment variable TAPESTRY_UPDATE_SCREENSHOTS=1.
var update = flag.Bool("update", false, "write the web view's screenshots into docs/")

// chromiumPath finds the headless browser the tests drive: Debian's
// chromium (apt-get install chromium).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testutil.Require(t, false, "needs tool chromium (apt-get install chromium)")
	return ""
}

// newBrowser starts a headless Chromium for the test and returns a tab's
// context, bounded by the hang guard only. The web view's certificate is
// the node's self-signed one, which the browser is told to accept (the Go
// tests check it properly: httpClient).
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.NoSandbox,
		chromedp.IgnoreCertErrors,
		chromedp.WindowSize(1400, 900),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelA)
	ctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(cancelB)
	ctx, cancelT := context.WithTimeout(ctx, 2*testutil.HangGuard)
	t.Cleanup(cancelT)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// Issue 17 item 1: the browser the web view's tests drive starts and
// renders a page.
func TestBrowserStarts(t *testing.T) {
	ctx := newBrowser(t)
	if err := chromedp.Do(ctx, chromedp.Navigate("data:text/html,<title>ok</title>")); err != nil {
		t.Fatal(err)
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	if title != "ok" {
		t.Fatalf("title %q, want ok", title)
	}
}

// waitJS waits, without a time limit of its own (the test's context is
// the hang guard), until a JavaScript expression is true in the page.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	// A poll does not survive a navigation (a form's answer, a redirect):
	// it is started again in the new page.
	var err error
	for range 100 {
		_, err = chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(pollTimeout), chromedp.WithPollingInterval(50*time.Millisecond)))
		if err == nil || ctx.Err() != nil || errors.Is(err, chromedp.ErrPollingTimeout) {
			break
		}
		// Wait for the new page's document before polling again.
		_ = chromedp.Do(ctx, chromedp.WaitReady(chromedp.CSS("body")))
	}
	if err != nil {
		page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerHTML : ""`))
		t.Fatalf("waiting for %s (%s): %v\npage:\n%s", what, expr, err, page)
	}
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// screenshot writes docs/<name>.png when asked to (-update or
// TAPESTRY_UPDATE_SCREENSHOTS=1).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if !*update && os.Getenv("TAPESTRY_UPDATE_SCREENSHOTS") != "1" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join("..", "..", "docs", name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", path)
}

// logIn logs in through the login form and waits for the sessions page.
func logIn(t *testing.T, ctx context.Context, n *node, user, password string) {
	t.Helper()
	do(t, ctx, "log in",
		chromedp.Navigate(n.url+"/login"),
		chromedp.WaitVisible(chromedp.ID("login")),
		chromedp.SendKeys(chromedp.ID("user"), user),
		chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("login-button")),
	)
	waitJS(t, ctx, "the sessions page", `document.getElementById("session-rows") !== null`)
}

// recSize is the record size of the hand-driven backup.
const recSize = 10240

// windowedBackup starts a backup of /vs1/vol1 to drive nrst0l whose mover
// stops at the end of a window of records, and returns the session and a
// function that moves the window's end to records and waits for the next
// pause: a backup whose progress the test steps deterministically.
func windowedBackup(t *testing.T, n *node, records uint64) (*ndmp.Client, func(records uint64)) {
	t.Helper()
	ctx := context.Background()
	c := n.ndmpLogin()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("tape open", c.TapeOpen(ctx, "nrst0l", ndmp.TapeRDWRMode))
	must("record size", c.MoverSetRecordSize(ctx, recSize))
	must("window", c.MoverSetWindow(ctx, 0, records*recSize))
	_, err := c.MoverListen(ctx, ndmp.MoverModeRead, ndmp.AddrLocal)
	must("mover listen", err)
	must("data connect", c.DataConnect(ctx, ndmp.Addr{AddrType: ndmp.AddrLocal}))
	must("start backup", c.DataStartBackup(ctx, "dump", []ndmp.Pval{{Name: "FILESYSTEM", Value: "/vs1/vol1"}}))
	paused := func() {
		t.Helper()
		select {
		case p := <-c.MoverPaused():
			if p.Reason != ndmp.MoverPauseEOW {
				t.Fatalf("mover paused for %v, want end of window", p.Reason)
			}
		case <-time.After(testutil.HangGuard):
			t.Fatal("the mover did not pause at the end of its window")
		}
	}
	paused()
	end := records
	step := func(records uint64) {
		t.Helper()
		must("window", c.MoverSetWindow(ctx, end*recSize, (records-end)*recSize))
		end = records
		must("continue", c.MoverContinue(ctx))
		paused()
	}
	return c, step
}

// Issue 17 item 1 (acceptance): in a real headless Chromium against a real
// tapestryd, an administrator logs in, watches a backup's progress move on
// the sessions page without reloading it (the backup is held at mover
// windows, so each step is a known point), kills it, sees it and a
// complete backup in the history with their outcomes, takes a drive
// offline and back online, sees snapshots and locks, and filters the event
// log. A read-only user sees no buttons, and a forged form is refused.
// With -update the pages' screenshots are written into docs/.
func TestWebView(t *testing.T) {
	testutil.RequireRoot(t)
	n := startNode(t, daemon.Config{})
	n.ok("vserver", "create", "-vserver", "vs1")
	n.volume("vol1", 2500, 4096)
	n.ok("volume", "snapshot", "create", "-vserver", "vs1", "-volume", "vol1", "-snapshot", "before-upgrade")
	n.ok("security", "login", "create", "-user-or-group-name", "viewer", "-role", "readonly", "-password", "Viewer123")
	ctx := newBrowser(t)
	logIn(t, ctx, n, "admin", adminPassword)

	// Progress: the first window is 64 records; the page shows the
	// backup's bytes, then more after the window grows to 700 records,
	// without a reload, and an ETA once the engine has reported its first
	// 1000 files. (The data service counts a write to its connection
	// when it returns; it writes 256 KiB at a time.)
	_, step := windowedBackup(t, n, 64)
	waitJS(t, ctx, "the backup's row", `(() => { const r = document.querySelector("#session-rows tr[data-session] td.op");
		return r !== null && r.textContent === "backup" && +r.parentElement.querySelector("td.bytes").dataset.bytes > 0; })()`)
	id := eval[string](t, ctx, `document.querySelector("#session-rows tr[data-session]").dataset.session`)
	first := eval[float64](t, ctx, `+document.querySelector("#session-rows td.bytes").dataset.bytes`)
	phase := eval[string](t, ctx, `document.querySelector("#session-rows td.phase").textContent`)
	if strings.TrimSpace(phase) == "" {
		t.Errorf("no phase shown for the backup")
	}
	do(t, ctx, "mark the page", chromedp.Evaluate[chromedp.Void](`window.notReloaded = true`))
	step(700)
	waitJS(t, ctx, "the backup's progress to move", fmt.Sprintf(`window.notReloaded === true &&
		+document.querySelector("#session-%s td.bytes").dataset.bytes > %d &&
		document.querySelector("#session-%s td.eta").textContent !== "—"`, id, int64(first), id))
	if second := eval[float64](t, ctx, `+document.querySelector("#session-rows td.bytes").dataset.bytes`); second <= first {
		t.Fatalf("bytes shown went from %v to %v", first, second)
	}
	screenshot(t, ctx, "web-sessions")

	// Tapes while the drive is in use: it holds a cartridge and the
	// session uses it.
	do(t, ctx, "tapes page", chromedp.Navigate(n.url+"/tapes"))
	waitJS(t, ctx, "st0 in use by the session", fmt.Sprintf(`(() => { const r = document.getElementById("device-st0");
		return r !== null && r.innerText.includes("ndmp-%s"); })()`, id))
	screenshot(t, ctx, "web-tapes")

	// Kill the backup from the sessions page.
	do(t, ctx, "sessions page", chromedp.Navigate(n.url+"/sessions"))
	waitJS(t, ctx, "the kill button", fmt.Sprintf(`document.getElementById("kill-%s") !== null`, id))
	do(t, ctx, "kill", chromedp.Click(chromedp.ID("kill-"+id)))
	waitJS(t, ctx, "the kill to be confirmed", fmt.Sprintf(`(() => { const f = document.getElementById("flash");
		return f !== null && f.textContent === "Session %s killed." && document.getElementById("session-%s") === null; })()`, id, id))

	// A complete backup on another drive, then the history.
	job := n.backupJob("nrst1l")
	if _, err := dma.Backup(context.Background(), job); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "history page", chromedp.Navigate(n.url+"/history"))
	waitJS(t, ctx, "both backups in the history", `(() => {
		const rows = [...document.querySelectorAll("#history tr[data-kind=backup][data-path='/vs1/vol1']")];
		return rows.length === 2 && rows[0].dataset.outcome === "success" && rows[1].dataset.outcome !== "success" && rows[1].dataset.outcome !== "running"; })()`)
	screenshot(t, ctx, "web-history")

	// Take a drive offline and bring it back.
	do(t, ctx, "tapes page", chromedp.Navigate(n.url+"/tapes"))
	waitJS(t, ctx, "st2 online", `(() => { const r = document.getElementById("device-st2"); return r !== null && r.dataset.status === "normal"; })()`)
	do(t, ctx, "take st2 offline", chromedp.Click(chromedp.ID("offline-st2")))
	waitJS(t, ctx, "st2 offline", `(() => { const r = document.getElementById("device-st2"); return r !== null && r.dataset.status === "offline"; })()`)
	if out := n.ok("storage", "tape", "show", "-device-id", "st2"); !strings.Contains(out, "offline") {
		t.Fatalf("the CLI does not see st2 offline:\n%s", out)
	}
	do(t, ctx, "bring st2 online", chromedp.Click(chromedp.ID("online-st2")))
	waitJS(t, ctx, "st2 online again", `(() => { const r = document.getElementById("device-st2"); return r !== null && r.dataset.status === "normal"; })()`)

	// Snapshots and locks.
	do(t, ctx, "snapshots page", chromedp.Navigate(n.url+"/snapshots"))
	waitJS(t, ctx, "the snapshot", `document.getElementById("snapshots").innerText.includes("before-upgrade")`)
	screenshot(t, ctx, "web-snapshots")

	// The event log, filtered to the End lines of dumps.
	do(t, ctx, "events page", chromedp.Navigate(n.url+"/events?type=dmp&event=End"))
	waitJS(t, ctx, "only dump End lines", `(() => { const rows = [...document.querySelectorAll("#events tr[data-event]")];
		return rows.length === 1 && rows.every(r => r.dataset.event === "End" && r.cells[0].textContent === "dmp"); })()`)
	do(t, ctx, "events page", chromedp.Navigate(n.url+"/events"))
	waitJS(t, ctx, "all lines", `document.querySelectorAll("#events tr[data-event=Start]").length === 2`)
	screenshot(t, ctx, "web-events")
	do(t, ctx, "log out", chromedp.Click(chromedp.CSS(".logout button")))
	waitJS(t, ctx, "the login page", `document.getElementById("login") !== null`)

	readOnly(t, ctx, n)
}

// readOnly checks that a user of the readonly role sees the pages without
// the buttons that change something, and that a form it forges is refused
// by the API.
func readOnly(t *testing.T, ctx context.Context, n *node) {
	t.Helper()
	logIn(t, ctx, n, "viewer", "Viewer123")
	_, step := windowedBackup(t, n, 4)
	_ = step
	waitJS(t, ctx, "the session without a kill button", `(() => { const r = document.querySelector("#session-rows tr[data-session]");
		return r !== null && r.querySelector("button") === null; })()`)
	do(t, ctx, "tapes page", chromedp.Navigate(n.url+"/tapes"))
	waitJS(t, ctx, "devices without buttons", `document.getElementById("device-st3") !== null && document.querySelectorAll("#devices button").length === 0`)
	// A forged form with the viewer's own token.
	do(t, ctx, "forged offline", chromedp.Evaluate[chromedp.Void](`(() => {
		const f = document.createElement("form"); f.method = "post"; f.action = "/tapes/st3/offline";
		const i = document.createElement("input"); i.name = "csrf"; i.value = document.querySelector("meta[name=csrf]").content;
		f.appendChild(i); document.body.appendChild(f); f.submit(); })()`))
	waitJS(t, ctx, "the refusal", `(() => { const f = document.getElementById("flash");
		return f !== null && f.textContent.startsWith("Error: ") && f.textContent.includes("not authorized"); })()`)
	if st := eval[string](t, ctx, `document.getElementById("device-st3").dataset.status`); st != "normal" {
		t.Fatalf("st3 is %s after the read-only user's forged form", st)
	}
}

// pollTimeout bounds one wait for the page: the hang guard, shorter than
// the browser's context so that a failure can still show the page.
var pollTimeout = testutil.HangGuard
