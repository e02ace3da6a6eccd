package aggregation

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// snarkjs fixtures (real snarkjs 0.7 proofs; tests/fixtures/make_fixtures.py regenerates them).
func snarkjsLeaf(t *testing.T, dir, idx string) Leaf {
	t.Helper()
	base := filepath.Join("..", "..", "tests", "fixtures", "snarkjs", dir)
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(base, name))
		if err != nil {
			t.Fatalf("snarkjs fixture: %v", err)
		}
		return b
	}
	l, err := LeafFromSnarkjs(read("verification_key.json"), read("proof"+idx+".json"), read("public"+idx+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestSnarkjsLeaves(t *testing.T) {
	mul := snarkjsLeaf(t, "mul1_groth16", "0")
	sq := snarkjsLeaf(t, "sq1_groth16", "0")
	// Assign runs the native Groth16 check on the converted points: the conversion is right
	if _, _, err := Assign(Shape{Batch: 2, NPub: 1}, []Leaf{mul, sq}); err != nil {
		t.Fatalf("converted snarkjs proofs rejected: %v", err)
	}
	bad := clone(mul)
	bad.Pubs[0][31] ^= 1
	var e *Error
	if _, _, err := Assign(Shape{Batch: 1, NPub: 1}, []Leaf{bad}); !errors.As(err, &e) || e.Field != "leaves[0].proof" {
		t.Fatalf("tampered snarkjs public input: want leaves[0].proof error, got %v", err)
	}
	if _, err := LeafFromSnarkjs([]byte(`{"protocol":"plonk","curve":"bn128"}`), []byte(`{}`), []byte(`[]`)); err == nil {
		t.Fatal("plonk vk accepted")
	}
}

// A batch mixing a snarkjs proof and a gnark proof satisfies the outer circuit.
func TestSnarkjsInCircuit(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles a 5M-constraint circuit")
	}
	testLeaves(t)
	mul := snarkjsLeaf(t, "mul1_groth16", "1")
	c, _, err := Assign(shape2, []Leaf{mul, leafCube})
	if err != nil {
		t.Fatal(err)
	}
	if err := solves(t, c); err != nil {
		t.Fatalf("snarkjs + gnark batch rejected: %v", err)
	}
}

// Serve protocol framing and error codes (no proving key needed: every request here fails or
// answers before proving).
func TestServeProtocol(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the compiled circuit")
	}
	testLeaves(t)
	k := &Keys{Shape: shape2, CCS: ccs2.get(t), CircuitHash: "test"}
	forged := clone(leafSq)
	forged.Pubs[0][31] ^= 1
	lj := func(l Leaf) LeafJSON {
		out := LeafJSON{Scheme: "groth16", VK: hexs(l.VK), Proof: hexs(l.Proof)}
		for _, p := range l.Pubs {
			out.PublicInputs = append(out.PublicInputs, hexs(p))
		}
		return out
	}
	proveBad, _ := json.Marshal(map[string]any{"id": 4, "op": "prove", "leaves": []LeafJSON{lj(leafCube), lj(forged)}})
	wrongScheme := lj(leafCube)
	wrongScheme.Scheme = "halo2"
	proveScheme, _ := json.Marshal(map[string]any{"id": 5, "op": "prove", "leaves": []LeafJSON{wrongScheme}})
	// a PLONK leaf is a valid scheme, but this Groth16-only circuit has no PLONK slot
	plonkLeaf := lj(leafCube)
	plonkLeaf.Scheme = SchemePlonk
	provePlonk, _ := json.Marshal(map[string]any{"id": 7, "op": "prove", "leaves": []LeafJSON{plonkLeaf}})
	in := strings.Join([]string{
		`{"id": 1, "op": "info"}`,
		`not json`,
		`{"id": 3, "op": "fold"}`,
		string(proveBad),
		string(proveScheme),
		`{"id": 6, "op": "verify", "leaves": ["0x12"], "proof": "0x00"}`,
		string(provePlonk),
		"",
	}, "\n")
	var out bytes.Buffer
	if err := Serve(k, strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 8 {
		t.Fatalf("want ready + 7 responses, got %d lines:\n%s", len(lines), out.String())
	}
	var rs []Response
	for _, l := range lines {
		var r Response
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	if rs[0].ID != "ready" || !rs[0].OK || !rs[1].OK {
		t.Fatalf("ready/info: %+v %+v", rs[0], rs[1])
	}
	want := []struct{ code, field string }{
		{"bad_request", "line"}, {"bad_request", "op"}, {CodeBadLeaf, "leaves[1].proof"},
		{CodeBadLeaf, "leaves[0].scheme"}, {CodeBadBatch, "leaves[0]"}, {CodeBadBatch, "leaves"},
	}
	for i, w := range want {
		r := rs[i+2]
		if r.OK || r.Error == nil || r.Error.Code != w.code || r.Error.Field != w.field {
			t.Fatalf("response %d: want %s on %s, got %s", i+2, w.code, w.field, lines[i+2])
		}
	}
	if rs[4].ID.(float64) != 4 {
		t.Fatalf("response id not echoed: %v", rs[4].ID)
	}
}
