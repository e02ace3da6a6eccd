package tree

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/sheaf-zk/sheaf/gnark/aggregation"
	"github.com/sheaf-zk/sheaf/gnark/procproto"
)

// TestRealTree (opt-in, minutes and GBs):
//
//	SHEAF_TREE_PROVE=1 go test ./tree/ -run TestRealTree -v -timeout 90m
//
// A real tree through the proving units: plan K=2, F=2, one merge level; dev setup of the leaf
// and merge circuits (cached in $SHEAF_CACHE/tree), a full leaf job (2 proofs), a partial leaf
// job (1 proof), and the top merge job over both (Solidity hash-to-field): the top node must be
// Merkle.root of the 3 statement hashes, as a flat batch. Prints "REALTREE {...}" with setup /
// prove times and the process's peak RSS after each step.
func TestRealTree(t *testing.T) {
	if os.Getenv("SHEAF_TREE_PROVE") == "" {
		t.Skip("set SHEAF_TREE_PROVE=1")
	}
	f := getFixture(t)
	p := Plan{Leaf: LeafShape{K: 2, NPub: 1}, FanIn: 2, Levels: 1}
	res := map[string]any{"plan": p}
	keys, err := SetupLevels(p, CacheRoot(), os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		res[map[int]string{0: "leaf", 1: "merge"}[k.Level]+"_keys"] = map[string]any{"r1cs": k.NbConstraints,
			"circuit_hash": k.CircuitHash, "compile_s": k.Compile.Seconds(), "setup_or_load_s": k.Setup.Seconds(), "created": k.Created}
	}
	res["peak_rss_mib_after_setup"] = peakRSS()
	wire := func(ls ...aggregation.Leaf) []aggregation.LeafJSON {
		var out []aggregation.LeafJSON
		for _, l := range ls {
			lj := aggregation.LeafJSON{VK: "0x" + hex.EncodeToString(l.VK), Proof: "0x" + hex.EncodeToString(l.Proof)}
			for _, x := range l.Pubs {
				lj.PublicInputs = append(lj.PublicInputs, "0x"+hex.EncodeToString(x))
			}
			out = append(out, lj)
		}
		return out
	}
	srv := Server(p, keys)
	var outs []Output
	for i, job := range []LeafJob{{Leaves: wire(f.leaves[0], f.leaves[1])}, {Leaves: wire(f.leaves[2])}} {
		t0 := time.Now()
		o, err := srv.Ops["leaf"](requestOf(t, "leaf", job))
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, *o.(*Output))
		res[map[int]string{0: "leaf_full", 1: "leaf_partial"}[i]] = map[string]any{"prove_s": time.Since(t0).Seconds(), "peak_rss_mib": peakRSS()}
	}
	t0 := time.Now()
	o, err := srv.Ops["merge"](requestOf(t, "merge", MergeJob{Level: 1, Children: outs, Top: true}))
	if err != nil {
		t.Fatal(err)
	}
	top := o.(*Output)
	res["merge_top"] = map[string]any{"prove_s": time.Since(t0).Seconds(), "peak_rss_mib": peakRSS()}
	want := aggregation.MerkleRoot(hashes(f.leaves[0], f.leaves[1], f.leaves[2]))
	if top.Node.Root != "0x"+hex.EncodeToString(want) || top.Node.Count != 3 || len(top.Proof) != 2+2*384 {
		t.Fatalf("top node %+v is not the flat batch's (root 0x%x, 3)", top.Node, want)
	}
	b, _ := json.Marshal(res)
	t.Logf("REALTREE %s", b)
}

func requestOf(t *testing.T, op string, job any) *procproto.Request {
	t.Helper()
	m := map[string]any{}
	b, _ := json.Marshal(job)
	_ = json.Unmarshal(b, &m)
	m["id"], m["op"] = 1, op
	line, _ := json.Marshal(m)
	return &procproto.Request{Line: line}
}
