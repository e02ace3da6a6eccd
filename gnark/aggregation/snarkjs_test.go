package aggregation

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"

	"github.com/sheaf-zk/sheaf/gnark/procproto"
	"github.com/sheaf-zk/sheaf/gnark/sidecar"
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

// The prover process on the shared loop: framing, envelope and error codes. No outer circuit is
// compiled (a tiny constraint system stands in for it): every request here fails or answers
// before proving.
func TestServeProtocol(t *testing.T) {
	testLeaves(t)
	tiny, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, &tinyCircuit{})
	if err != nil {
		t.Fatal(err)
	}
	k := &Keys{Shape: shape2, CCS: tiny, CircuitHash: "test"}
	forged := clone(leafSq)
	forged.Pubs[0][31] ^= 1
	lj := func(l Leaf) LeafJSON {
		out := LeafJSON{Scheme: "groth16", VK: hexs(l.VK), Proof: hexs(l.Proof)}
		for _, p := range l.Pubs {
			out.PublicInputs = append(out.PublicInputs, hexs(p))
		}
		return out
	}
	prove := func(id int, ls ...LeafJSON) string {
		b, _ := json.Marshal(map[string]any{"id": id, "op": "prove", "leaves": ls})
		return string(b)
	}
	wrongScheme := lj(leafCube)
	wrongScheme.Scheme = "halo2"
	// a PLONK leaf is a valid scheme, but this Groth16-only circuit has no PLONK slot
	plonkLeaf := lj(leafCube)
	plonkLeaf.Scheme = SchemePlonk
	in := strings.Join([]string{
		`{"id": 1, "op": "info"}`,
		`not json`,
		`{"id": 3, "op": "fold"}`,
		prove(4, lj(leafCube), lj(forged)),
		prove(5, wrongScheme),
		`{"id": 6, "op": "verify", "leaves": ["0x12"], "proof": "0x00"}`,
		prove(7, plonkLeaf),
		`{"id": 8, "op": "prove"}`,
		`{"id": 9, "op": "prove", "leaves": [], "extra": 1}`,
		`{"id": 10, "op": "prove", "leaves": [7]}`,
		`{"id": 11, "op": "ping"}`,
		"",
	}, "\n")
	var out bytes.Buffer
	if err := Serve(k, strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 12 {
		t.Fatalf("want ready + 11 responses, got %d lines:\n%s", len(lines), out.String())
	}
	type envelope struct {
		ID     any              `json:"id"`
		OK     bool             `json:"ok"`
		Event  string           `json:"event"`
		Result map[string]any   `json:"result"`
		Error  *procproto.Error `json:"error"`
	}
	var rs []envelope
	for _, l := range lines {
		var r envelope
		d := json.NewDecoder(strings.NewReader(l))
		d.DisallowUnknownFields()
		if err := d.Decode(&r); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		rs = append(rs, r)
	}
	if rs[0].ID != nil || rs[0].Event != "ready" || !rs[0].OK || rs[0].Result["process"] != "prover" ||
		rs[0].Result["protocol"] != float64(procproto.Version) || rs[0].Result["circuit_hash"] != "test" || rs[0].Result["workers"] != float64(1) {
		t.Fatalf("ready: %s", lines[0])
	}
	if !rs[1].OK || rs[1].Result["circuit_hash"] != "test" || !rs[11].OK || rs[11].Result["pong"] != true {
		t.Fatalf("info/ping: %s %s", lines[1], lines[11])
	}
	want := []struct{ code, field string }{
		{procproto.CodeMalformed, ""}, {procproto.CodeMalformed, "op"}, {CodeBadLeaf, "leaves[1].proof"},
		{CodeBadLeaf, "leaves[0].scheme"}, {CodeBadBatch, "leaves[0]"}, {CodeBadBatch, "leaves"},
		{procproto.CodeMalformed, "leaves"}, {procproto.CodeMalformed, "extra"}, {procproto.CodeMalformed, "leaves[0]"},
	}
	for i, w := range want {
		r := rs[i+2]
		if r.OK || r.Error == nil || r.Error.Code != w.code || r.Error.Field != w.field {
			t.Fatalf("response %d: want %s on %q, got %s", i+2, w.code, w.field, lines[i+2])
		}
	}
	// one worker: answers in request order, ids echoed
	for i, r := range rs[2:] {
		if want := float64(i + 2); i > 0 && r.ID != want {
			t.Fatalf("response %d has id %v", i+2, r.ID)
		}
	}
}

// Both serving commands speak one protocol: the same ready-line fields and the same answers to
// requests that do not depend on the op table.
func TestServeProtocolSameAsVerifier(t *testing.T) {
	tiny, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, &tinyCircuit{})
	if err != nil {
		t.Fatal(err)
	}
	in := `{"id":1,"op":"ping"}` + "\n" + `{"id":"v","op":"version"}` + "\n" + `not json` + "\n" +
		`{"op":"ping"}` + "\n" + `{"id":2.5,"op":"ping"}` + "\n"
	var prover, verifier bytes.Buffer
	if err := Serve(&Keys{Shape: shape2, CCS: tiny}, strings.NewReader(in), &prover); err != nil {
		t.Fatal(err)
	}
	if err := sidecar.Serve(strings.NewReader(in), &verifier, sidecar.Options{Workers: 1}); err != nil {
		t.Fatal(err)
	}
	p := strings.Split(strings.TrimSpace(prover.String()), "\n")
	v := strings.Split(strings.TrimSpace(verifier.String()), "\n")
	if len(p) != 6 || len(v) != 6 {
		t.Fatalf("want ready + 5 answers each:\n%s\n%s", prover.String(), verifier.String())
	}
	for i := 1; i < 6; i++ {
		if p[i] != v[i] {
			t.Fatalf("answer %d differs:\nprover   %s\nverifier %s", i, p[i], v[i])
		}
	}
	var pr, vr struct {
		ID     any            `json:"id"`
		OK     bool           `json:"ok"`
		Event  string         `json:"event"`
		Result map[string]any `json:"result"`
	}
	_ = json.Unmarshal([]byte(p[0]), &pr)
	_ = json.Unmarshal([]byte(v[0]), &vr)
	for _, key := range []string{"protocol", "max_line", "workers", "ops", "process"} {
		if pr.Result[key] == nil || vr.Result[key] == nil {
			t.Fatalf("ready lines lack %q:\n%s\n%s", key, p[0], v[0])
		}
	}
	if pr.ID != nil || vr.ID != nil || pr.Event != "ready" || vr.Event != "ready" || !pr.OK || !vr.OK ||
		pr.Result["protocol"] != vr.Result["protocol"] || pr.Result["process"] == vr.Result["process"] {
		t.Fatalf("ready lines:\n%s\n%s", p[0], v[0])
	}
}
