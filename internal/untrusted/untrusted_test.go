package untrusted

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestReadFileRefusesWhatIsNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(dir, "zero.yaml")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "dir.yaml")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{fifo: "a FIFO", zero: "a character device", sub: "a directory"} {
		_, err := ReadFile(name, 1<<20)
		if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want ErrNotRegular naming %s", filepath.Base(name), err, want)
		}
	}
}

func TestReadFileBoundsTheSize(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(p, make([]byte, 1001), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadFile(p, 1000); !errors.Is(err, ErrTooLarge) {
		t.Errorf("1001 bytes with a limit of 1000: %v", err)
	}
	if b, err := ReadFile(p, 1001); err != nil || len(b) != 1001 {
		t.Errorf("1001 bytes with a limit of 1001: %d bytes, %v", len(b), err)
	}
}

// laughs returns a YAML document of n levels of ten aliases each, whose
// leaf is a scalar of size bytes.
func laughs(levels, size int) string {
	var b strings.Builder
	b.WriteString("a0: &a0 \"" + strings.Repeat("x", size) + "\"\n")
	for i := 1; i <= levels; i++ {
		b.WriteString("a" + strconv.Itoa(i) + ": &a" + strconv.Itoa(i) + " [")
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + strconv.Itoa(i-1))
		}
		b.WriteString("]\n")
	}
	return b.String()
}

func TestYAMLAliasesAreBoundedByTheirExpandedSize(t *testing.T) {
	// nine levels of ten aliases: a billion leaves from a few hundred bytes
	if _, err := YAMLToJSON([]byte(laughs(9, 1)), 64<<20); !errors.Is(err, ErrTooLarge) {
		t.Errorf("billion laughs: %v", err)
	}
	// few nodes, long scalars: 100 KB repeated 1,000 times is 100 MB
	if _, err := YAMLToJSON([]byte(laughs(3, 100_000)), 64<<20); !errors.Is(err, ErrTooLarge) {
		t.Errorf("long scalars repeated by aliases: %v", err)
	}
	// ordinary use of anchors passes and converts as before
	js, err := YAMLToJSON([]byte("base: &b {port: 80}\nports: [*b, *b]\n"), 64<<20)
	if err != nil || string(js) != `{"base":{"port":80},"ports":[{"port":80},{"port":80}]}` {
		t.Errorf("small aliases: %s %v", js, err)
	}
}
