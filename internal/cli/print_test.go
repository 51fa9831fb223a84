package cli

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func sampleTable(n int) Table {
	t := Table{
		Columns: []Column{{"vserver", "Vserver", "Vserver Name"}, {"volume", "Volume", "Volume Name"}, {"state", "State", "Volume State"}, {"comment", "Comment", "Comment"}},
		Keys:    []string{"vserver", "volume"},
		Default: []string{"vserver", "volume", "state"},
	}
	names := []string{"vol1", "volume_two", "v3"}
	var raw []map[string]string
	for i := range n {
		r := map[string]string{"vserver": "vs1", "volume": names[i%3], "state": "online"}
		t.Rows = append(t.Rows, r)
		raw = append(raw, r)
	}
	t.Raw = raw
	return t
}

func printed(t *testing.T, tb Table, o ShowOptions) string {
	t.Helper()
	var b bytes.Buffer
	if err := tb.Print(&b, o); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestPrintTable(t *testing.T) {
	got := printed(t, sampleTable(2), ShowOptions{})
	want := "Vserver Volume     State\n" +
		"------- ---------- ------\n" +
		"vs1     vol1       online\n" +
		"vs1     volume_two online\n" +
		"2 entries were displayed.\n"
	if got != want {
		t.Fatalf("table:\n%s\nwant:\n%s", got, want)
	}
	// One record: no trailer, as ONTAP prints it.
	if got := printed(t, sampleTable(1), ShowOptions{}); strings.Contains(got, "displayed") || strings.Count(got, "\n") != 3 {
		t.Fatalf("one row:\n%s", got)
	}
	if got := printed(t, sampleTable(0), ShowOptions{}); got != "There are no entries matching your query.\n" {
		t.Fatalf("no rows: %q", got)
	}
}

func TestPrintFields(t *testing.T) {
	got := printed(t, sampleTable(3), ShowOptions{Fields: []string{"comment", "state", "volume", "comment"}})
	want := "vserver volume     comment state\n" +
		"------- ---------- ------- ------\n" +
		"vs1     vol1       -       online\n" +
		"vs1     volume_two -       online\n" +
		"vs1     v3         -       online\n" +
		"3 entries were displayed.\n"
	if got != want {
		t.Fatalf("-fields:\n%s\nwant:\n%s", got, want)
	}
	var b bytes.Buffer
	if err := sampleTable(1).Print(&b, ShowOptions{Fields: []string{"size"}}); err == nil || !strings.Contains(err.Error(), "valid fields are: vserver, volume, state, comment") {
		t.Fatalf("unknown field: %v", err)
	}
}

func TestPrintInstance(t *testing.T) {
	got := printed(t, sampleTable(2), ShowOptions{Instance: true})
	want := "Vserver Name: vs1\n" +
		" Volume Name: vol1\n" +
		"Volume State: online\n" +
		"     Comment: -\n" +
		"\n" +
		"Vserver Name: vs1\n" +
		" Volume Name: volume_two\n" +
		"Volume State: online\n" +
		"     Comment: -\n" +
		"2 entries were displayed.\n"
	if got != want {
		t.Fatalf("-instance:\n%s\nwant:\n%s", got, want)
	}
}

func TestPrintJSON(t *testing.T) {
	got := printed(t, sampleTable(2), ShowOptions{JSON: true, Fields: []string{"nosuch"}})
	var back []map[string]string
	if err := json.Unmarshal([]byte(got), &back); err != nil || len(back) != 2 || back[1]["volume"] != "volume_two" {
		t.Fatalf("--json: %q %v", got, err)
	}
	if got := printed(t, Table{Raw: []int{}}, ShowOptions{JSON: true}); got != "[]\n" {
		t.Fatalf("empty --json: %q", got)
	}
}

func TestNormalizeArgs(t *testing.T) {
	cases := []struct{ in, want []string }{
		{[]string{"volume", "show", "-vserver", "vs1", "-fields", "a,b"}, []string{"volume", "show", "--vserver", "vs1", "--fields", "a,b"}},
		{[]string{"-privilege", "advanced", "-h"}, []string{"--privilege", "advanced", "-h"}},
		{[]string{"--json", "-option-name=x.y"}, []string{"--json", "--option-name=x.y"}},
		{[]string{"vserver", "create", "vs1", "-", "-1", "--", "-comment"}, []string{"vserver", "create", "vs1", "-", "-1", "--", "-comment"}},
	}
	for _, c := range cases {
		if got := NormalizeArgs(c.in); !slices.Equal(got, c.want) {
			t.Errorf("NormalizeArgs(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestCheckNetmask(t *testing.T) {
	for _, ok := range []string{"255.255.255.0", "255.0.0.0", "255.255.255.255", "24", "64"} {
		if err := checkNetmask(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"255.0.255.0", "0.255.255.255", "129", "-1", "mask", "::1"} {
		if err := checkNetmask(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// FuzzNormalizeArgs: the rewrite never changes the number of arguments,
// only ever adds one dash, and leaves everything after "--" alone.
func FuzzNormalizeArgs(f *testing.F) {
	f.Add("volume\x00show\x00-vserver\x00vs1")
	f.Add("-a\x00--\x00-vserver")
	f.Add("-\x00-9\x00-x=1\x00---y")
	f.Fuzz(func(t *testing.T, joined string) {
		in := strings.Split(joined, "\x00")
		out := NormalizeArgs(in)
		if len(out) != len(in) {
			t.Fatalf("length %d -> %d", len(in), len(out))
		}
		sep := false
		for i := range in {
			if sep && out[i] != in[i] {
				t.Fatalf("changed %q after --", in[i])
			}
			if in[i] == "--" {
				sep = true
			}
			if out[i] != in[i] && out[i] != "-"+in[i] {
				t.Fatalf("%q -> %q", in[i], out[i])
			}
		}
	})
}

// FuzzFields sends arbitrary -fields lists through the
// table printer: an error or a table, never a panic.
func FuzzFields(f *testing.F) {
	f.Add("vserver,volume")
	f.Add(",,state,")
	f.Add("nosuch")
	f.Fuzz(func(t *testing.T, fields string) {
		var b bytes.Buffer
		err := sampleTable(2).Print(&b, ShowOptions{Fields: strings.Split(fields, ",")})
		if err == nil && !strings.Contains(b.String(), "2 entries were displayed.") {
			t.Fatalf("output without trailer:\n%s", b.String())
		}
	})
}
