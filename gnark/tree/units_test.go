package tree

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consensys/gnark/backend/groth16"
	groth16bn254 "github.com/consensys/gnark/backend/groth16/bn254"
	"github.com/sheaf-zk/sheaf/gnark/aggregation"
	"github.com/sheaf-zk/sheaf/gnark/procproto"
)

func childOutput(t *testing.T, ch Child, circuitHash string) Output {
	t.Helper()
	var buf bytes.Buffer
	if _, err := ch.Proof.(*groth16bn254.Proof).WriteRawTo(&buf); err != nil {
		t.Fatal(err)
	}
	return Output{Level: 0, CircuitHash: circuitHash, Node: nodeJSON(ch.Node), Proof: "0x" + hex.EncodeToString(buf.Bytes())}
}

func code(err error) string {
	var e *procproto.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Keys are pinned by circuit hash: a cache entry recording another circuit is refused on load,
// and a merge job refuses children made by another circuit or whose proof does not verify for
// the node they claim, before any proving (cheap: the stand-in child circuit's keys).
func TestUnitsPinning(t *testing.T) {
	f := getFixture(t)
	dir := t.TempDir()
	k, err := setupCircuit(0, &childCircuit{}, dir, nil, loadOrSetup)
	if err != nil || !k.Created {
		t.Fatalf("setup: %v", err)
	}
	again, err := setupCircuit(0, &childCircuit{}, dir, nil, loadOrSetup)
	if err != nil || again.Created || again.CircuitHash != k.CircuitHash {
		t.Fatalf("cached keys not reused: %v", err)
	}
	m := filepath.Join(k.Dir, "meta.json")
	b, _ := os.ReadFile(m)
	if err := os.WriteFile(m, []byte(strings.Replace(string(b), k.CircuitHash, strings.Repeat("0", 64), 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := setupCircuit(0, &childCircuit{}, dir, nil, loadOrSetup); code(err) != CodeKeyMismatch {
		t.Fatalf("tampered meta: want %s, got %v", CodeKeyMismatch, err)
	}
	if _, err := setupCircuit(0, &childCircuit{}, dir, nil, vkOnly); code(err) != CodeKeyMismatch {
		t.Fatalf("tampered meta, vk only: want %s, got %v", CodeKeyMismatch, err)
	}
	// A worker or an export never sets up: missing keys are KEYS_MISSING, nothing is created.
	empty := t.TempDir()
	for _, m := range []loadMode{loadOnly, vkOnly} {
		if _, err := setupCircuit(0, &childCircuit{}, empty, nil, m); code(err) != CodeKeysMissing {
			t.Fatalf("mode %d without keys: want %s, got %v", m, CodeKeysMissing, err)
		}
	}
	if ents, _ := os.ReadDir(empty); len(ents) != 0 {
		t.Fatalf("a worker created %d cache entries", len(ents))
	}
	if err := os.WriteFile(m, b, 0o644); err != nil {
		t.Fatal(err)
	}
	vkOnlyKeys, err := setupCircuit(0, &childCircuit{}, dir, nil, vkOnly)
	if err != nil || vkOnlyKeys.PK != nil || vkOnlyKeys.CCS != nil || vkOnlyKeys.NbConstraints != k.NbConstraints {
		t.Fatalf("vk-only load: %v", err)
	}
	var v1, v2 bytes.Buffer
	_, _ = k.VK.WriteRawTo(&v1)
	_, _ = vkOnlyKeys.VK.WriteRawTo(&v2)
	if !bytes.Equal(v1.Bytes(), v2.Bytes()) {
		t.Fatal("vk-only load returned another vk")
	}
	// A level-1 worker's view of level 0 (vk only) takes no leaf job; level 1 is not loaded here.
	srv := Server(Plan{Leaf: LeafShape{K: 2, NPub: 1}, FanIn: 2, Levels: 1}, []*Keys{vkOnlyKeys})
	if _, err := srv.Ops["leaf"](requestOf(t, "leaf", LeafJob{})); code(err) != CodeWrongLevel {
		t.Fatalf("leaf job on a worker without level-0 keys: want %s, got %v", CodeWrongLevel, err)
	}
	if _, err := srv.Ops["merge"](requestOf(t, "merge", MergeJob{Level: 1})); code(err) != CodeWrongLevel {
		t.Fatalf("merge job on a worker without level-1 keys: want %s, got %v", CodeWrongLevel, err)
	}
	if _, err := srv.Ops["merge"](requestOf(t, "merge", MergeJob{Level: 2})); code(err) != aggregation.CodeBadShape {
		t.Fatalf("merge level above the plan: want %s, got %v", aggregation.CodeBadShape, err)
	}

	// The fixture's children are proofs under f.childVK: stand in for level-0 keys with it.
	child := &Keys{Level: 0, VK: f.childVK, CircuitHash: strings.Repeat("ab", 32)}
	mc, err := NewMergeCircuit(f.childVK, 4, 4)
	if err != nil {
		t.Fatal(err)
	}
	good := childOutput(t, f.kids[0], child.CircuitHash)
	wrongCircuit := childOutput(t, f.kids[1], strings.Repeat("cd", 32))
	if _, err := RunMerge(nil, child, mc, &MergeJob{Level: 1, Children: []Output{good, wrongCircuit}}); code(err) != CodeWrongCircuit {
		t.Fatalf("child of another circuit: want %s, got %v", CodeWrongCircuit, err)
	}
	top := good
	top.Top = true
	if _, err := RunMerge(nil, child, mc, &MergeJob{Level: 1, Children: []Output{top}}); code(err) != CodeWrongCircuit {
		t.Fatalf("top proof as a child: want %s, got %v", CodeWrongCircuit, err)
	}
	forged := childOutput(t, f.kids[1], child.CircuitHash)
	forged.Node.Count = 3
	if _, err := RunMerge(nil, child, mc, &MergeJob{Level: 1, Children: []Output{good, forged}}); code(err) != CodeBadChild {
		t.Fatalf("child node its proof does not prove: want %s, got %v", CodeBadChild, err)
	}
	foreign := childOutput(t, f.foreign, child.CircuitHash)
	if _, err := RunMerge(nil, child, mc, &MergeJob{Level: 1, Children: []Output{foreign}}); code(err) != CodeBadChild {
		t.Fatalf("child under another vk: want %s, got %v", CodeBadChild, err)
	}
	partial := childOutput(t, f.kids[3], child.CircuitHash)
	if _, err := RunMerge(nil, child, mc, &MergeJob{Level: 1, Children: []Output{partial, good}}); code(err) != aggregation.CodeBadBatch {
		t.Fatalf("partial child first: want %s, got %v", aggregation.CodeBadBatch, err)
	}

	// Jobs are plain JSON both ways.
	raw, _ := json.Marshal(MergeJob{Envelope: procproto.Envelope{ID: json.RawMessage(`1`), Op: "merge"}, Level: 1, Children: []Output{good}})
	var back MergeJob
	if err := (&procproto.Request{Line: raw}).Decode(&back); err != nil || back.Children[0].Proof != good.Proof {
		t.Fatalf("merge job round trip: %v", err)
	}
	_ = groth16.Proof(nil)
}

// measured reports the job's own peak: the high-water mark is reset after the heap is returned,
// so a job allocating ~256 MiB shows up with a peak above its base, whatever the process did before.
func TestMeasuredJobPeak(t *testing.T) {
	if _, err := os.Stat("/proc/self/clear_refs"); err != nil {
		t.Skip("no /proc/self/clear_refs")
	}
	junk := make([]byte, 512<<20)
	for i := range junk {
		junk[i] = 1
	}
	junk = nil
	var sink []byte
	o, err := measured(func() (*Output, error) {
		sink = make([]byte, 256<<20)
		for i := 0; i < len(sink); i += 4096 {
			sink[i] = 1
		}
		return &Output{}, nil
	})
	if err != nil || o.BaseRSSMiB <= 0 || o.PeakRSSMiB < o.BaseRSSMiB+200 || o.PeakRSSMiB > o.BaseRSSMiB+400 {
		t.Fatalf("job peak: base %d MiB, peak %d MiB (want base + ~256; the 512 MiB before the job must not count)", o.BaseRSSMiB, o.PeakRSSMiB)
	}
	_ = sink
}

// A per-level setup names a level of the plan; the levels below are loaded vk-only (their keys
// must exist, as for a worker: TestUnitsPinning's vkOnly cases).
func TestSetupLevelBounds(t *testing.T) {
	p := Plan{Leaf: LeafShape{K: 2, NPub: 1}, FanIn: 2, Levels: 1}
	for _, l := range []int{-1, 2} {
		if _, err := SetupLevel(p, t.TempDir(), l, nil); code(err) != aggregation.CodeBadShape {
			t.Fatalf("level %d: want %s, got %v", l, aggregation.CodeBadShape, err)
		}
	}
}
