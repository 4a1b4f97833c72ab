package syncevent

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The schema is an interface: this line must keep decoding, and a written
// event must keep these keys.
const v1Line = `{"v":1,"seq":3,"type":"partial","start":"2026-11-23T01:59:46.5Z","end":"2026-11-23T01:59:46.512Z",` +
	`"services":1,"ops":2,"failed":1,"messages":3,"sinceChangeNs":15000000,"applied":{"add-rs":1},` +
	`"phases":[{"name":"compute","tookNs":1000},{"name":"apply/ipvs","tookNs":9000000}],` +
	`"planned":["add-rs -a -t 10.96.0.10:80 -r 10.244.1.2:8080 -m -w 1","add-address 10.96.0.11/32"],` +
	`"errors":["bind 10.96.0.11/32 to kube-ipvs0: file exists"]}`

func TestDecodeVersion1(t *testing.T) {
	e, err := Decode([]byte(v1Line))
	if err != nil {
		t.Fatal(err)
	}
	if e.Seq != 3 || e.Type != Partial || e.Ops != 2 || e.Failed != 1 || e.Messages != 3 || e.Services != 1 {
		t.Errorf("counts: %+v", e)
	}
	if e.Took() != 12*time.Millisecond || e.SinceChange != 15*time.Millisecond || e.Phase("apply/ipvs") != 9*time.Millisecond {
		t.Errorf("durations: took %s, sinceChange %s, apply/ipvs %s", e.Took(), e.SinceChange, e.Phase("apply/ipvs"))
	}
	if e.Applied["add-rs"] != 1 || len(e.Planned) != 2 || !e.Incomplete() {
		t.Errorf("applied %v, planned %q, incomplete %v", e.Applied, e.Planned, e.Incomplete())
	}
	if _, err := Decode([]byte(`{"v":2,"seq":1}`)); err == nil {
		t.Error("a version 2 line decoded without error")
	}
}

func TestWriterAppendsNumberedLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "syncs.jsonl")
	if err := os.WriteFile(path, []byte("{\"v\":1,\"seq\":1,\"type\":\"full\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := Create(path)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 23, 1, 59, 46, 0, time.UTC)
	for _, typ := range []string{Full, Partial} {
		if err := w.Write(Event{Type: typ, Start: start, End: start.Add(time.Second), Ops: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	for sc := bufio.NewScanner(f); sc.Scan(); {
		lines = append(lines, sc.Text())
	}
	if len(lines) != 3 {
		t.Fatalf("%d lines, want the old one and two new:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	want := `{"v":1,"seq":2,"type":"partial","start":"2026-11-23T01:59:46Z","end":"2026-11-23T01:59:47Z","services":0,"ops":1,"failed":0,"messages":0}`
	if lines[2] != want {
		t.Errorf("second event:\n got %s\nwant %s", lines[2], want)
	}
	for i, l := range lines[1:] {
		e, err := Decode([]byte(l))
		if err != nil || e.Seq != i+1 {
			t.Errorf("line %d: seq %d, %v", i+2, e.Seq, err)
		}
	}
}
