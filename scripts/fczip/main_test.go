package main

import (
	"archive/zip"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteKeepsExecBitAndIsReproducible(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "main")
	content := []byte("\x7fELF not really")
	// 0644 on purpose: the entry must be executable whatever the file says.
	if err := os.WriteFile(bin, content, 0o644); err != nil {
		t.Fatal(err)
	}
	a, b := filepath.Join(dir, "a.zip"), filepath.Join(dir, "b.zip")
	for _, out := range []string{a, b} {
		if err := write(out, []string{bin}); err != nil {
			t.Fatalf("write %s: %v", out, err)
		}
	}

	zr, err := zip.OpenReader(a)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	if len(zr.File) != 1 {
		t.Fatalf("zip has %d entries, want 1", len(zr.File))
	}
	e := zr.File[0]
	if e.Name != "main" {
		t.Errorf("entry name %q, want main at the root", e.Name)
	}
	if mode := e.Mode(); mode.Perm() != 0o755 || !mode.IsRegular() {
		t.Errorf("entry mode %v, want -rwxr-xr-x", mode)
	}
	rc, err := e.Open()
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, content) {
		t.Errorf("entry content %q (err %v), want %q", got, err, content)
	}

	za, _ := os.ReadFile(a)
	zb, _ := os.ReadFile(b)
	if !bytes.Equal(za, zb) {
		t.Error("two zips of the same file differ; FC would see a new code checksum on every build")
	}
}

func TestWriteLeavesNothingOnError(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.zip")
	if err := write(out, []string{filepath.Join(dir, "missing")}); err == nil {
		t.Fatal("write of a missing file succeeded")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("left %d files behind after a failed write: %v", len(entries), entries)
	}
}
