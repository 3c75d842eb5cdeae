package simulation

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ModuleRoot is the directory of the module's go.mod, found from the
// working directory.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	gomod := strings.TrimSpace(string(out))
	if err != nil || gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("no go.mod above the working directory (%v)", err)
	}
	return filepath.Dir(gomod), nil
}

// FCBuild is how scripts/build.sh builds the binary FC runs.
type FCBuild struct {
	Env  []string // GOOS, GOARCH and CGO_ENABLED as the script sets them
	Args []string // go build's arguments: flags and packages, -o left out
}

// recordingGo stands in for the go command: it writes the environment and
// arguments of `go build` to $FCBUILD_RECORD, NUL-separated, and fails, so
// the script stops there and builds nothing.
const recordingGo = `#!/bin/sh
if [ "$1" = build ]; then
	printf 'GOOS=%s\0GOARCH=%s\0CGO_ENABLED=%s\0' "$GOOS" "$GOARCH" "$CGO_ENABLED" >"$FCBUILD_RECORD"
	printf '%s\0' "$@" >>"$FCBUILD_RECORD"
	exit 3
fi
echo "recording go: unexpected go $1 before go build" >&2
exit 4
`

// ReadFCBuild runs scripts/build.sh with a go command that only records its
// `go build`: the flags come from the script itself, so what is checked or
// built from them is what the script builds, whatever it is changed to.
func ReadFCBuild(root string) (FCBuild, error) {
	dir, err := os.MkdirTemp("", "fcbuild")
	if err != nil {
		return FCBuild{}, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "go"), []byte(recordingGo), 0o755); err != nil {
		return FCBuild{}, err
	}
	record := filepath.Join(dir, "record")
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "build.sh"))
	cmd.Env = append(os.Environ(), "PATH="+dir+string(filepath.ListSeparator)+os.Getenv("PATH"), "FCBUILD_RECORD="+record)
	out, _ := cmd.CombinedOutput() // fails by design, at go build
	b, err := os.ReadFile(record)
	if err != nil {
		return FCBuild{}, fmt.Errorf("scripts/build.sh ran no go build: %s", out)
	}
	fields := strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
	if len(fields) < 4 || fields[3] != "build" {
		return FCBuild{}, fmt.Errorf("scripts/build.sh: unexpected record %q", fields)
	}
	fc := FCBuild{Env: fields[:3]}
	for i := 4; i < len(fields); i++ {
		switch a := fields[i]; {
		case a == "-o":
			i++ // and its value
		case strings.HasPrefix(a, "-o="):
		default:
			fc.Args = append(fc.Args, a)
		}
	}
	return fc, nil
}

// Deps lists the packages the FC build links (go list -deps with its
// environment and flags).
func (b FCBuild) Deps(root string) ([]string, error) {
	cmd := exec.Command("go", append([]string{"list", "-deps"}, b.Args...)...)
	cmd.Dir, cmd.Env = root, append(os.Environ(), b.Env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list -deps %s: %v\n%s", strings.Join(b.Args, " "), err, stderr.String())
	}
	return strings.Fields(string(out)), nil
}

// Compile builds the function as the FC build does (its flags, CGO as it
// sets it) but for this machine, so it can run here under the FC runtime
// emulator.
func (b FCBuild) Compile(root, out string) error {
	var env []string
	for _, kv := range b.Env {
		if strings.HasPrefix(kv, "CGO_ENABLED=") {
			env = append(env, kv)
		}
	}
	return goBuild(root, out, env, b.Args)
}

// Build builds the main package in root as `go run .` does, to out.
func Build(root, out string) error { return goBuild(root, out, nil, []string{"."}) }

func goBuild(root, out string, env, args []string) error {
	cmd := exec.Command("go", append([]string{"build", "-o", out}, args...)...)
	cmd.Dir, cmd.Env = root, append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	return nil
}
