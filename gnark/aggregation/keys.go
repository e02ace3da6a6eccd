package aggregation

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend"
	"github.com/consensys/gnark/backend/groth16"
	groth16bn254 "github.com/consensys/gnark/backend/groth16/bn254"
	"github.com/consensys/gnark/backend/solidity"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
)

// Keys are the compiled outer circuit and its Groth16 keys for one Shape.
type Keys struct {
	Shape       Shape
	CCS         constraint.ConstraintSystem
	PK          groth16.ProvingKey
	VK          groth16.VerifyingKey
	CircuitHash string // sha256 of the serialized constraint system (hex)
	Dir         string // cache directory holding pk/vk/Verifier.sol
	Created     bool   // keys were generated now (not loaded from cache)
	CompileTime time.Duration
	SetupTime   time.Duration // generation or load time
}

// Meta is written next to the keys.
type Meta struct {
	Shape         Shape  `json:"shape"`
	CircuitHash   string `json:"circuit_hash"`
	NbConstraints int    `json:"nb_constraints"`
	Setup         string `json:"setup"`
	PublicInputs  string `json:"public_inputs"`
}

const insecureNote = "INSECURE dev setup: toxic waste known to this machine's RAM during setup; production needs an MPC ceremony (phase 2 over the outer circuit)"

// CacheRoot is $SHEAF_CACHE/recursion (default ~/.cache/sheaf/recursion).
func CacheRoot() string {
	root := os.Getenv("SHEAF_CACHE")
	if root == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = os.TempDir()
		}
		root = filepath.Join(home, ".cache", "sheaf")
	}
	return filepath.Join(root, "recursion")
}

// Compile compiles the outer circuit of a shape to R1CS.
func Compile(s Shape) (constraint.ConstraintSystem, error) {
	if err := s.validate(); err != nil {
		return nil, &Error{Code: CodeBadShape, Field: "shape", Message: err.Error()}
	}
	return frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, NewCircuit(s))
}

func hashCCS(ccs constraint.ConstraintSystem) (string, error) {
	h := sha256.New()
	w := bufio.NewWriterSize(h, 1<<20)
	if _, err := ccs.WriteTo(w); err != nil {
		return "", err
	}
	if err := w.Flush(); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Setup compiles the circuit and loads its keys from cacheRoot/<circuit hash>/, generating them
// with an INSECURE dev setup if absent. log receives progress lines (may be nil).
func Setup(s Shape, cacheRoot string, log io.Writer) (*Keys, error) {
	if log == nil {
		log = io.Discard
	}
	t0 := time.Now()
	ccs, err := Compile(s)
	if err != nil {
		return nil, err
	}
	hash, err := hashCCS(ccs)
	if err != nil {
		return nil, fmt.Errorf("hash circuit: %w", err)
	}
	k := &Keys{Shape: s, CCS: ccs, CircuitHash: hash, Dir: filepath.Join(cacheRoot, hash[:32]), CompileTime: time.Since(t0)}
	fmt.Fprintf(log, "aggregate: batch=%d npub=%d plonk=%d r1cs=%d compiled in %s, keys in %s\n", s.Batch, s.NPub, s.Plonk, ccs.GetNbConstraints(), k.CompileTime.Round(time.Millisecond), k.Dir)
	t1 := time.Now()
	unlock, err := LockEntry(k.Dir, log) // one setup per circuit across processes (keylock.go)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := k.load(); err == nil {
		k.SetupTime = time.Since(t1)
		return k, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("load cached keys from %s: %w", k.Dir, err)
	}
	fmt.Fprintf(log, "aggregate: running %s\n", insecureNote)
	pk, vk, err := groth16.Setup(ccs)
	if err != nil {
		return nil, fmt.Errorf("groth16 setup: %w", err)
	}
	k.PK, k.VK, k.Created = pk, vk, true
	if err := k.store(); err != nil {
		return nil, fmt.Errorf("store keys in %s: %w", k.Dir, err)
	}
	k.SetupTime = time.Since(t1)
	return k, nil
}

func (k *Keys) load() error {
	fpk, err := os.Open(filepath.Join(k.Dir, "pk.dump"))
	if err != nil {
		return err
	}
	defer fpk.Close()
	fvk, err := os.Open(filepath.Join(k.Dir, "vk.bin"))
	if err != nil {
		return err
	}
	defer fvk.Close()
	pk := new(groth16bn254.ProvingKey)
	if err := pk.ReadDump(bufio.NewReaderSize(fpk, 1<<20)); err != nil {
		return fmt.Errorf("pk: %w", err)
	}
	vk := new(groth16bn254.VerifyingKey)
	if _, err := vk.ReadFrom(bufio.NewReader(fvk)); err != nil {
		return fmt.Errorf("vk: %w", err)
	}
	k.PK, k.VK = pk, vk
	return nil
}

func writeFile(path string, write func(w io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := write(bw); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// store writes the entry into a private temporary directory and renames it into place, so a cache
// entry is always the complete output of ONE setup: concurrent setups of the same circuit (two
// processes on a cold cache) cannot mix one setup's pk with another's vk. The loser of the rename
// adopts the winner's keys, so every process proves against the cached verifier.
func (k *Keys) store() error {
	root := filepath.Dir(k.Dir)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(root, filepath.Base(k.Dir)+".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // no-op once renamed
	meta := Meta{Shape: k.Shape, CircuitHash: k.CircuitHash, NbConstraints: k.CCS.GetNbConstraints(), Setup: insecureNote,
		PublicInputs: "[root >> 128, root mod 2^128, count], root = Merkle.sol keccak root of the count statement hashes"}
	files := []struct {
		name  string
		write func(w io.Writer) error
	}{
		{"meta.json", func(w io.Writer) error {
			e := json.NewEncoder(w)
			e.SetIndent("", "  ")
			return e.Encode(meta)
		}},
		{"vk.bin", func(w io.Writer) error { _, err := k.VK.WriteRawTo(w); return err }},
		{"Verifier.sol", k.ExportSolidity},
		{"pk.dump", func(w io.Writer) error { return k.PK.(*groth16bn254.ProvingKey).WriteDump(w) }},
	}
	for _, f := range files {
		if err := writeFile(filepath.Join(tmp, f.name), f.write); err != nil {
			return err
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		if err := os.Rename(tmp, k.Dir); err == nil {
			return nil
		} else if attempt > 0 {
			return err
		}
		// k.Dir exists: a complete entry from a concurrent setup (adopt it), or an incomplete one
		// left by an older layout or a crash (replace it).
		other := &Keys{Dir: k.Dir}
		if other.load() == nil {
			k.PK, k.VK, k.Created = other.PK, other.VK, false
			return nil
		}
		if err := os.RemoveAll(k.Dir); err != nil {
			return err
		}
	}
}

// ExportSolidity writes gnark's Solidity verifier of the outer circuit:
// verifyProof(bytes proof, uint256[3] input), reverting on failure.
func (k *Keys) ExportSolidity(w io.Writer) error {
	return k.VK.ExportSolidity(w, solidity.WithPragmaVersion("^0.8.20"))
}

// Result is one outer proof, in the forms the contracts and the aggregator use.
type Result struct {
	Shape        Shape    `json:"shape"`
	CircuitHash  string   `json:"circuit_hash"`
	Count        int      `json:"count"`
	Leaves       []string `json:"leaves"`        // 0x statement hashes, in order
	Root         string   `json:"root"`          // 0x Merkle.sol root of the leaves
	PublicInputs []string `json:"public_inputs"` // 3 x 0x 32-byte BE words
	Proof        string   `json:"proof"`         // 0x calldata `bytes proof` for verifyProof
	ProveMS      int64    `json:"prove_ms"`
}

func word(x *big.Int) string {
	b := make([]byte, 32)
	x.FillBytes(b)
	return "0x" + hex.EncodeToString(b)
}

// Prove validates the leaves, proves the outer circuit and checks the proof natively (with the
// Solidity verifier's hash-to-field) before returning it.
func Prove(k *Keys, leaves []Leaf) (*Result, error) {
	c, hashes, err := Assign(k.Shape, leaves)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	w, err := frontend.NewWitness(c, ecc.BN254.ScalarField())
	if err != nil {
		return nil, &Error{Code: CodeInternal, Field: "witness", Message: err.Error()}
	}
	proof, err := groth16.Prove(k.CCS, k.PK, w, solidity.WithProverTargetSolidityVerifier(backend.GROTH16))
	if err != nil {
		return nil, &Error{Code: CodeInternal, Field: "prove", Message: err.Error()}
	}
	pub, err := w.Public()
	if err != nil {
		return nil, &Error{Code: CodeInternal, Field: "witness", Message: err.Error()}
	}
	if err := groth16.Verify(proof, k.VK, pub, solidity.WithVerifierTargetSolidityVerifier(backend.GROTH16)); err != nil {
		return nil, &Error{Code: CodeInternal, Field: "verify", Message: "outer proof does not verify: " + err.Error()}
	}
	pubs := PublicInputs(hashes)
	r := &Result{Shape: k.Shape, CircuitHash: k.CircuitHash, Count: len(hashes), ProveMS: time.Since(t0).Milliseconds()}
	for _, h := range hashes {
		r.Leaves = append(r.Leaves, "0x"+hex.EncodeToString(h))
	}
	r.Root = "0x" + hex.EncodeToString(MerkleRoot(hashes))
	for _, p := range pubs {
		r.PublicInputs = append(r.PublicInputs, word(p))
	}
	r.Proof = "0x" + hex.EncodeToString(proof.(*groth16bn254.Proof).MarshalSolidity())
	return r, nil
}

// VerifyResult checks an outer proof (Solidity calldata form) against the leaf list natively.
func VerifyResult(k *Keys, leaves [][]byte, proofBytes []byte) error {
	if len(leaves) == 0 || len(leaves) > k.Shape.Batch {
		return &Error{Code: CodeBadBatch, Field: "leaves", Message: fmt.Sprintf("need 1..%d leaves, got %d", k.Shape.Batch, len(leaves))}
	}
	proof, err := proofFromSolidity(proofBytes)
	if err != nil {
		return &Error{Code: CodeBadBatch, Field: "proof", Message: err.Error()}
	}
	pubs := PublicInputs(leaves)
	a := &Circuit{RootHi: pubs[0], RootLo: pubs[1], Count: pubs[2]}
	w, err := frontend.NewWitness(a, ecc.BN254.ScalarField(), frontend.PublicOnly())
	if err != nil {
		return &Error{Code: CodeInternal, Field: "witness", Message: err.Error()}
	}
	if err := groth16.Verify(proof, k.VK, w, solidity.WithVerifierTargetSolidityVerifier(backend.GROTH16)); err != nil {
		return &Error{Code: CodeBadBatch, Field: "proof", Message: "does not verify for these leaves: " + err.Error()}
	}
	return nil
}

// proofFromSolidity inverts MarshalSolidity: A | B | C | commitments (64 each) | PoK (64).
func proofFromSolidity(b []byte) (*groth16bn254.Proof, error) {
	if len(b) < proofLen || (len(b) > proofLen && (len(b)-proofLen)%64 != 0) || len(b) == proofLen+64 {
		return nil, fmt.Errorf("bad outer proof length %d", len(b))
	}
	nCom := 0
	if len(b) > proofLen {
		nCom = (len(b)-proofLen)/64 - 1
	}
	raw := make([]byte, 0, len(b)+4)
	raw = append(raw, b[:proofLen]...)
	raw = append(raw, byte(nCom>>24), byte(nCom>>16), byte(nCom>>8), byte(nCom))
	if nCom > 0 {
		raw = append(raw, b[proofLen:]...)
	} else {
		raw = append(raw, make([]byte, 64)...) // zero PoK (infinity) as WriteRawTo emits
	}
	p := new(groth16bn254.Proof)
	if _, err := p.ReadFrom(bytesReader(raw)); err != nil {
		return nil, err
	}
	return p, nil
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
