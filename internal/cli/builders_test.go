package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestNamedPositionalThenRequired checks the parameter handling the action
// commands share: positional arguments fill the parameters not given as
// flags, in order, and every one of them must end up with a value.
func TestNamedPositionalThenRequired(t *testing.T) {
	for _, tc := range []struct {
		args             []string
		svm, vol         string
		wantErr          string
		wantSVM, wantVol string
	}{
		{args: []string{"vs1", "vol1"}, wantSVM: "vs1", wantVol: "vol1"},
		{args: []string{"--volume", "vol1", "vs1"}, wantSVM: "vs1", wantVol: "vol1"},
		{args: []string{"vs1"}, wantErr: "missing required parameter -volume"},
		{args: []string{}, wantErr: "missing required parameter -vserver"},
		{args: []string{"vs1", "vol1", "extra"}, wantErr: `unexpected argument "extra"`},
	} {
		var svm, vol string
		c := &cobra.Command{
			Use: "x", SilenceErrors: true, SilenceUsage: true,
			RunE: func(cmd *cobra.Command, args []string) error {
				return named(cmd, args, pos("vserver", &svm), pos("volume", &vol))
			},
		}
		c.Flags().StringVar(&svm, "vserver", "", "")
		c.Flags().StringVar(&vol, "volume", "", "")
		c.SetArgs(tc.args)
		err := c.Execute()
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("%v: err %v, want %q", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil || svm != tc.wantSVM || vol != tc.wantVol {
			t.Errorf("%v: %q %q %v, want %q %q", tc.args, svm, vol, err, tc.wantSVM, tc.wantVol)
		}
	}
}

// TestShowCmdArgsAndFlags checks that showCmd refuses positional arguments
// in cobra.NoArgs' words when it takes none, caps them otherwise, and
// registers each filter with its help text plus -fields and -instance.
func TestShowCmdArgsAndFlags(t *testing.T) {
	a := &app{}
	none := showCmd(a, showSpec[struct{}]{use: "show", filters: []filter{{"vserver", "svm.name", "only this SVM"}}})
	one := showCmd(a, showSpec[struct{}]{use: "show", filters: []filter{{"vserver", "name", "only this SVM"}}, positional: 1})
	if err := none.Args(none, []string{"x"}); err == nil || !strings.Contains(err.Error(), `unknown command "x"`) {
		t.Errorf("no positional: %v, want cobra.NoArgs' unknown command error", err)
	}
	if err := one.Args(one, []string{"x"}); err != nil {
		t.Errorf("one positional refused: %v", err)
	}
	if err := one.Args(one, []string{"x", "y"}); err == nil || err.Error() != "accepts at most 1 arg(s), received 2" {
		t.Errorf("two positionals: %v", err)
	}
	for _, f := range []string{"vserver", "fields", "instance"} {
		if none.Flags().Lookup(f) == nil {
			t.Errorf("flag -%s missing", f)
		}
	}
	if u := none.Flags().Lookup("vserver").Usage; u != "only this SVM" {
		t.Errorf("usage %q", u)
	}
	var out bytes.Buffer
	none.SetOut(&out)
	if err := none.Help(); err != nil || !strings.Contains(out.String(), "only this SVM") {
		t.Errorf("help %q %v", out.String(), err)
	}
}
