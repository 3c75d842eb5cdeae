// Command fczip writes the Function Compute code package: a zip with each
// given file at its root, marked executable. scripts/build.sh runs it, so the
// package can be built on a machine that has Go and nothing else (no zip).
//
//	go run ./scripts/fczip OUT.zip FILE...
//
// Entries carry Unix mode 0755 whatever the file system says (a zip made on
// Windows loses the exec bit, and FC then cannot start the handler) and a
// fixed time, so the same binary always gives the same zip and FC's code
// checksum only changes when the code does.
package main

import (
	"archive/zip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// modTime is the time of every entry: the earliest a zip can hold.
var modTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: fczip OUT.zip FILE...")
		os.Exit(2)
	}
	if err := write(os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "fczip:", err)
		os.Exit(1)
	}
}

// write creates out with each file at the root of the zip. It writes to a
// temporary file first, so a failed run never leaves a half-written package.
func write(out string, files []string) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(out), ".fczip-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	zw := zip.NewWriter(tmp)
	for _, f := range files {
		if err := add(zw, f); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}

func add(zw *zip.Writer, name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", name)
	}
	h := &zip.FileHeader{Name: filepath.Base(name), Method: zip.Deflate, Modified: modTime}
	h.SetMode(0o755) // also marks the entry as made on Unix, so unzip honours the mode
	w, err := zw.CreateHeader(h)
	if err != nil {
		return err
	}
	_, err = io.Copy(w, f)
	return err
}
