package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sheaf-zk/sheaf/gnark/buildinfo"
)

// buildBinary builds the real sheaf-gnark binary: the init-time log noise only exists in a
// non-test binary (gnark's logger is a no-op under `go test`), so an in-process test of main
// would not see it.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sheaf-gnark")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("go build: %v", err)
	}
	return bin
}

func run(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

// stdout must carry only the command's output: no gnark log lines before main runs.
func TestStdoutIsOnlyCommandOutput(t *testing.T) {
	bin := buildBinary(t)

	out, errOut, code := run(t, bin, "version")
	if code != 0 || errOut != "" {
		t.Fatalf("version: exit %d, stderr %q", code, errOut)
	}
	// The test binary links the same module versions as the built binary.
	want, err := json.Marshal(buildinfo.Get())
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want)+"\n" {
		t.Fatalf("version stdout:\n got %q\nwant %q", out, string(want)+"\n")
	}
	var info buildinfo.Info
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatal(err)
	}
	if info.Sheaf != buildinfo.Version || !strings.HasPrefix(info.Gnark, "v0.") || !strings.HasPrefix(info.GnarkCrypto, "v0.") {
		t.Fatalf("version fields: %+v", info)
	}

	if out, _, _ := run(t, bin, "help"); out != usage {
		t.Fatalf("help stdout is not exactly the usage text: %q", out)
	}
	// No command: usage goes to stderr, stdout stays empty (nothing is printed at init).
	if out, _, code := run(t, bin); out != "" || code != 2 {
		t.Fatalf("no command: exit %d, stdout %q", code, out)
	}
}

// The noise source: the root package github.com/consensys/gnark/std calls std.RegisterHints()
// from its init, re-registering every hint its sub-packages already registered in their own
// inits; each duplicate is a Debug log line written by gnark's default logger (zerolog console
// writer on os.Stdout), before main can call logger.Disable(). Nothing may link that package.
func TestGnarkStdRootNotLinked(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p == "github.com/consensys/gnark/std" {
			t.Fatal("sheaf-gnark links github.com/consensys/gnark/std: its init logs ~90 " +
				"'function registered multiple times' lines to stdout; import the needed std " +
				"sub-packages instead (they register their own hints)")
		}
	}
}
