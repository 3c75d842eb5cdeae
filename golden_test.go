//go:build linux

package main_test

// The README's example outputs of the simulator come from here, so they
// cannot drift from what it shows.

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.txt, and the README's blocks of them, from what the commands show now")

// Each file of testdata/golden starts with its command ("$ go run .
// -simulate …") and then holds what a terminal shows when it runs, which the
// test compares with the ids and the port that differ from run to run
// masked. `go test -run Golden -update .` rewrites them.
func TestGoldenOutputs(t *testing.T) {
	files, err := filepath.Glob("testdata/golden/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			want := string(b)
			command, _, _ := strings.Cut(want, "\n")
			args, ok := strings.CutPrefix(command, "$ go run . ")
			if !ok {
				t.Fatalf("%s does not start with its command: %q", file, command)
			}
			got := command + "\n" + strings.Trim(screen(onTerminal(t, nil, nil, strings.Fields(args)...)), "\n") + "\n"
			if *update {
				if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if masked(got) != masked(want) {
				t.Errorf("%s no longer shows %s (go test -run Golden -update . rewrites it), at %s\ngot:\n%s",
					command, file, firstDifference(masked(got), masked(want)), got)
			}
		})
	}
}

// Every block of the README that starts with a simulator command is the
// golden file of that command, byte for byte, and every golden file has its
// block. With -update, the blocks are rewritten from the files.
func TestReadmeShowsTheGoldenOutputs(t *testing.T) {
	files, _ := filepath.Glob("testdata/golden/*.txt")
	golden := map[string]string{} // by command
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		command, _, _ := strings.Cut(string(b), "\n")
		golden[command] = string(b)
	}
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	var rewritten strings.Builder
	last, shown := 0, map[string]bool{}
	for _, block := range fencedBlocks(readme) {
		content := readme[block[0]:block[1]]
		command, _, _ := strings.Cut(content, "\n")
		if !strings.HasPrefix(command, "$ go run . -simulate") {
			continue
		}
		want, ok := golden[command]
		switch {
		case !ok:
			t.Errorf("the README shows %q, which has no golden file in testdata/golden", command)
			continue
		case content != want && !*update:
			t.Errorf("the README's block of %q is not testdata/golden's (go test -run Golden -update . rewrites it), at %s",
				command, firstDifference(content, want))
		}
		shown[command] = true
		rewritten.WriteString(readme[last:block[0]] + want)
		last = block[1]
	}
	for command := range golden {
		if !shown[command] {
			t.Errorf("the README does not show %q", command)
		}
	}
	rewritten.WriteString(readme[last:])
	if *update && rewritten.String() != readme {
		if err := os.WriteFile("README.md", []byte(rewritten.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// fencedBlocks returns where the content of each ``` block of a Markdown
// text starts and ends (its last newline included).
func fencedBlocks(text string) [][2]int {
	var blocks [][2]int
	start := -1
	for at := 0; at < len(text); {
		line, next := text[at:], len(text)
		if i := strings.IndexByte(line, '\n'); i >= 0 {
			line, next = line[:i], at+i+1
		}
		if strings.HasPrefix(line, "```") {
			if start < 0 {
				start = next
			} else {
				blocks = append(blocks, [2]int{start, at})
				start = -1
			}
		}
		at = next
	}
	return blocks
}

// What differs from one run to the next: run ids (of a direct or queue
// run), FC request ids, SAG RequestIds, the simulated cloud's port.
var volatile = []*regexp.Regexp{
	regexp.MustCompile(`\brun-[0-9a-f]{20}\b`),
	regexp.MustCompile(`\bsim-[0-9a-f]{16}\b`),
	regexp.MustCompile(`\b[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}\b`),
	regexp.MustCompile(`\b127\.0\.0\.1:[0-9]+\b`),
}

func masked(s string) string {
	for _, re := range volatile {
		s = re.ReplaceAllString(s, "<"+re.String()+">")
	}
	return s
}

// firstDifference says where two texts first differ, line by line.
func firstDifference(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d:\n got  %q\n want %q", i+1, gl, wl)
		}
	}
	return "no line"
}
