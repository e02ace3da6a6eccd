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
	k, err := setupCircuit(0, &childCircuit{}, dir, nil)
	if err != nil || !k.Created {
		t.Fatalf("setup: %v", err)
	}
	again, err := setupCircuit(0, &childCircuit{}, dir, nil)
	if err != nil || again.Created || again.CircuitHash != k.CircuitHash {
		t.Fatalf("cached keys not reused: %v", err)
	}
	m := filepath.Join(k.Dir, "meta.json")
	b, _ := os.ReadFile(m)
	if err := os.WriteFile(m, []byte(strings.Replace(string(b), k.CircuitHash, strings.Repeat("0", 64), 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := setupCircuit(0, &childCircuit{}, dir, nil); code(err) != CodeKeyMismatch {
		t.Fatalf("tampered meta: want %s, got %v", CodeKeyMismatch, err)
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
