package selftest

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	var log bytes.Buffer
	if err := Run(&log); err != nil {
		t.Fatalf("selftest failed: %v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "tampered public input: rejected") {
		t.Fatalf("selftest did not report the tamper check:\n%s", log.String())
	}
}
