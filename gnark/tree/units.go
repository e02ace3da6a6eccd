package tree

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	"github.com/sheaf-zk/sheaf/gnark/aggregation"
	"github.com/sheaf-zk/sheaf/gnark/procproto"
)

// Proving units: every job (leaf, merge, top) is a self-contained JSON request whose answer is a
// JSON Output; a job is a pure function of its input and the keys (same input, same node: a
// killed job is simply re-run), and the keys are pinned by circuit hash.

// Stable error codes of the tree jobs (besides aggregation's BAD_LEAF/BAD_BATCH/BAD_SHAPE).
const (
	CodeWrongCircuit = "WRONG_CIRCUIT" // a child proof made by another circuit than this level's child circuit
	CodeBadChild     = "BAD_CHILD"     // a child proof that does not verify for its node
	CodeKeyMismatch  = "KEY_MISMATCH"  // cached keys whose recorded circuit hash is not the compiled one's
)

// Plan fixes a tree: leaf shape, merge fan-in and number of merge levels. Level 0 is the leaf
// circuit; level L >= 1 merges F level-(L-1) proofs (child capacity K*F^(L-1)).
type Plan struct {
	Leaf   LeafShape `json:"leaf"`
	FanIn  int       `json:"fan_in"`
	Levels int       `json:"levels"`
}

// Capacity is the number of user proofs under one top proof.
func (p Plan) Capacity() int {
	c := p.Leaf.K
	for l := 0; l < p.Levels; l++ {
		c *= p.FanIn
	}
	return c
}

// Keys are one level's compiled circuit and Groth16 keys.
type Keys struct {
	Level       int
	CCS         constraint.ConstraintSystem
	PK          groth16.ProvingKey
	VK          groth16.VerifyingKey
	CircuitHash string
	Dir         string
	Created     bool
	Compile     time.Duration
	Setup       time.Duration
}

const insecureNote = "INSECURE dev setup: toxic waste known to this machine's RAM during setup; production needs a phase-2 MPC ceremony per tree circuit (leaf and each merge level)"

// CacheRoot is $SHEAF_CACHE/tree (default ~/.cache/sheaf/tree).
func CacheRoot() string { return filepath.Join(filepath.Dir(aggregation.CacheRoot()), "tree") }

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

// SetupLevels compiles and loads (or, INSECURELY, generates) the keys of every level of the
// plan in order; merge level L embeds level L-1's vk, so each level's circuit hash pins the
// whole chain below it.
func SetupLevels(p Plan, cacheRoot string, log io.Writer) ([]*Keys, error) {
	if log == nil {
		log = io.Discard
	}
	if p.Levels < 0 || p.Levels > 8 {
		return nil, &aggregation.Error{Code: aggregation.CodeBadShape, Field: "levels", Message: "levels must be in [0, 8]"}
	}
	var out []*Keys
	for l := 0; l <= p.Levels; l++ {
		var c frontend.Circuit
		var err error
		if l == 0 {
			c, err = NewLeafCircuit(p.Leaf)
		} else {
			cp := p.Leaf.K
			for j := 1; j < l; j++ {
				cp *= p.FanIn
			}
			c, err = NewMergeCircuit(out[l-1].VK, p.FanIn, cp)
		}
		if err != nil {
			return nil, &aggregation.Error{Code: aggregation.CodeBadShape, Field: "plan", Message: err.Error()}
		}
		k, err := setupCircuit(l, c, cacheRoot, log)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

func setupCircuit(level int, c frontend.Circuit, cacheRoot string, log io.Writer) (*Keys, error) {
	if log == nil {
		log = io.Discard
	}
	t0 := time.Now()
	ccs, err := frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, c)
	if err != nil {
		return nil, err
	}
	hash, err := hashCCS(ccs)
	if err != nil {
		return nil, err
	}
	k := &Keys{Level: level, CCS: ccs, CircuitHash: hash, Dir: filepath.Join(cacheRoot, hash[:32]), Compile: time.Since(t0)}
	fmt.Fprintf(log, "tree: level %d r1cs=%d compiled in %s, keys in %s\n", level, ccs.GetNbConstraints(), k.Compile.Round(time.Millisecond), k.Dir)
	t1 := time.Now()
	if err := k.load(); err == nil {
		k.Setup = time.Since(t1)
		return k, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	fmt.Fprintf(log, "tree: level %d: %s\n", level, insecureNote)
	if k.PK, k.VK, err = groth16.Setup(ccs); err != nil {
		return nil, err
	}
	k.Created = true
	if err := k.store(); err != nil {
		return nil, err
	}
	k.Setup = time.Since(t1)
	return k, nil
}

type meta struct {
	Level         int    `json:"level"`
	CircuitHash   string `json:"circuit_hash"`
	NbConstraints int    `json:"nb_constraints"`
	Setup         string `json:"setup"`
}

// load reads cached keys and checks the recorded circuit hash is the compiled circuit's.
func (k *Keys) load() error {
	mb, err := os.ReadFile(filepath.Join(k.Dir, "meta.json"))
	if err != nil {
		return err
	}
	var m meta
	if err := json.Unmarshal(mb, &m); err != nil || m.CircuitHash != k.CircuitHash {
		return &aggregation.Error{Code: CodeKeyMismatch, Field: "keys", Message: fmt.Sprintf(
			"%s records circuit %q, the compiled circuit is %s", k.Dir, m.CircuitHash, k.CircuitHash)}
	}
	fpk, err := os.Open(filepath.Join(k.Dir, "pk.dump"))
	if err != nil {
		return err
	}
	defer fpk.Close()
	pk := new(groth16bn254.ProvingKey)
	if err := pk.ReadDump(bufio.NewReaderSize(fpk, 1<<20)); err != nil {
		return fmt.Errorf("pk: %w", err)
	}
	vb, err := os.ReadFile(filepath.Join(k.Dir, "vk.bin"))
	if err != nil {
		return err
	}
	vk := new(groth16bn254.VerifyingKey)
	if _, err := vk.ReadFrom(bytes.NewReader(vb)); err != nil {
		return fmt.Errorf("vk: %w", err)
	}
	k.PK, k.VK = pk, vk
	return nil
}

func (k *Keys) store() error {
	root := filepath.Dir(k.Dir)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(root, filepath.Base(k.Dir)+".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	m, _ := json.MarshalIndent(meta{Level: k.Level, CircuitHash: k.CircuitHash, NbConstraints: k.CCS.GetNbConstraints(), Setup: insecureNote}, "", "  ")
	var vk, pk bytes.Buffer
	if _, err := k.VK.WriteRawTo(&vk); err != nil {
		return err
	}
	if err := k.PK.(*groth16bn254.ProvingKey).WriteDump(&pk); err != nil {
		return err
	}
	for name, b := range map[string][]byte{"meta.json": m, "vk.bin": vk.Bytes(), "pk.dump": pk.Bytes()} {
		if err := os.WriteFile(filepath.Join(tmp, name), b, 0o644); err != nil {
			return err
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, k.Dir); err != nil {
		if k.load() == nil { // a concurrent setup won: adopt its keys
			k.Created = false
			return nil
		}
		return err
	}
	return nil
}

// NodeJSON is a node on the wire.
type NodeJSON struct {
	Root  string `json:"root"` // 0x 32 bytes
	Count uint64 `json:"count"`
}

// Output is a job's answer: the node its proof proves, the proof and the circuit that made it.
type Output struct {
	Level        int      `json:"level"`
	CircuitHash  string   `json:"circuit_hash"`
	Node         NodeJSON `json:"node"`
	Proof        string   `json:"proof"`                   // child: gnark raw Groth16 proof (0x); top: Solidity calldata
	Top          bool     `json:"top"`                     // made for the Solidity verifier (not a child)
	PublicInputs []string `json:"public_inputs,omitempty"` // top only: [root >> 128, root mod 2^128, count]
	ProveMS      int64    `json:"prove_ms"`
}

// LeafJob is a level-0 job: 1..K Groth16 proofs of one vk.
type LeafJob struct {
	procproto.Envelope
	Leaves []aggregation.LeafJSON `json:"leaves"`
	Top    bool                   `json:"top,omitempty"`
}

// MergeJob is a level-L job over 1..F children (outputs of level L-1, in tree order).
type MergeJob struct {
	procproto.Envelope
	Level    int      `json:"level"`
	Children []Output `json:"children"`
	Top      bool     `json:"top,omitempty"`
}

func nodeJSON(n Node) NodeJSON {
	return NodeJSON{Root: "0x" + hex.EncodeToString(n.Root[:]), Count: n.Count}
}

func (nj NodeJSON) node(field string) (Node, error) {
	b, err := aggregation.DecodeHex(nj.Root)
	if err != nil || len(b) != 32 {
		return Node{}, procproto.Errorf(procproto.CodeMalformed, field+".root", "must be 32 bytes hex")
	}
	var n Node
	copy(n.Root[:], b)
	n.Count = nj.Count
	return n, nil
}

// RunLeaf proves a leaf job with level 0's keys.
func RunLeaf(k *Keys, shape LeafShape, job *LeafJob) (*Output, error) {
	b := aggregation.BatchJSON{Leaves: job.Leaves}
	leaves, err := b.ToLeaves()
	if err != nil {
		return nil, err
	}
	a, node, err := AssignLeaf(shape, leaves)
	if err != nil {
		return nil, err
	}
	return prove(k, a, node, job.Top)
}

// RunMerge proves a merge job with level L's keys; child must be level L-1's keys (its circuit
// hash pins which proofs are children; each child proof is checked natively first).
func RunMerge(k, child *Keys, c *MergeCircuit, job *MergeJob) (*Output, error) {
	kids := make([]Child, len(job.Children))
	for i, o := range job.Children {
		f := fmt.Sprintf("children[%d]", i)
		if o.CircuitHash != child.CircuitHash || o.Top {
			return nil, procproto.Errorf(CodeWrongCircuit, f, "made by circuit %s (top=%v), this level takes child proofs of %s", o.CircuitHash, o.Top, child.CircuitHash)
		}
		n, err := o.Node.node(f + ".node")
		if err != nil {
			return nil, err
		}
		pb, err := aggregation.DecodeHex(o.Proof)
		if err != nil {
			return nil, procproto.Errorf(procproto.CodeMalformed, f+".proof", "bad hex")
		}
		p := new(groth16bn254.Proof)
		if _, err := p.ReadFrom(bytes.NewReader(pb)); err != nil {
			return nil, procproto.Errorf(CodeBadChild, f+".proof", "%v", err)
		}
		pub := n.Public()
		w, err := frontend.NewWitness(&childPublic{RootHi: pub[0], RootLo: pub[1], Count: pub[2]}, ecc.BN254.ScalarField(), frontend.PublicOnly())
		if err != nil {
			return nil, err
		}
		if err := groth16.Verify(p, child.VK, w, ChildVerifierOption()); err != nil {
			return nil, procproto.Errorf(CodeBadChild, f+".proof", "does not verify for its node: %v", err)
		}
		kids[i] = Child{Proof: p, Node: n}
	}
	a, node, err := c.Assign(kids)
	if err != nil {
		return nil, err
	}
	return prove(k, a, node, job.Top)
}

// childPublic is the public part of every tree circuit, for native verification.
type childPublic struct {
	RootHi, RootLo, Count frontend.Variable `gnark:",public"`
}

func (c *childPublic) Define(frontend.API) error { return nil }

func prove(k *Keys, a frontend.Circuit, node Node, top bool) (*Output, error) {
	t0 := time.Now()
	w, err := frontend.NewWitness(a, ecc.BN254.ScalarField())
	if err != nil {
		return nil, err
	}
	po, vo := ChildProverOption(), ChildVerifierOption()
	if top {
		po, vo = solidity.WithProverTargetSolidityVerifier(backend.GROTH16), solidity.WithVerifierTargetSolidityVerifier(backend.GROTH16)
	}
	proof, err := groth16.Prove(k.CCS, k.PK, w, po)
	if err != nil {
		return nil, procproto.Errorf(procproto.CodeInternal, "prove", "%v", err)
	}
	pw, _ := w.Public()
	if err := groth16.Verify(proof, k.VK, pw, vo); err != nil {
		return nil, procproto.Errorf(procproto.CodeInternal, "verify", "proof does not verify: %v", err)
	}
	out := &Output{Level: k.Level, CircuitHash: k.CircuitHash, Node: nodeJSON(node), Top: top, ProveMS: time.Since(t0).Milliseconds()}
	bp := proof.(*groth16bn254.Proof)
	if top {
		out.Proof = "0x" + hex.EncodeToString(bp.MarshalSolidity())
		for _, x := range node.Public() {
			b := make([]byte, 32)
			x.FillBytes(b)
			out.PublicInputs = append(out.PublicInputs, "0x"+hex.EncodeToString(b))
		}
	} else {
		var buf bytes.Buffer
		if _, err := bp.WriteRawTo(&buf); err != nil {
			return nil, err
		}
		out.Proof = "0x" + hex.EncodeToString(buf.Bytes())
	}
	return out, nil
}

// Server is `sheaf-gnark tree serve`: ops "info", "leaf" (LeafJob), "merge" (MergeJob) over the
// one process protocol, one job at a time (a proof already uses every core).
func Server(p Plan, keys []*Keys) *procproto.Server {
	var levels []map[string]any
	for _, k := range keys {
		levels = append(levels, map[string]any{"level": k.Level, "circuit_hash": k.CircuitHash, "nb_constraints": k.CCS.GetNbConstraints(), "dir": k.Dir})
	}
	info := map[string]any{"plan": p, "capacity": p.Capacity(), "levels": levels, "insecure_setup": true,
		"public_inputs": "[root >> 128, root mod 2^128, count]"}
	merges := make([]*MergeCircuit, len(keys))
	for l := 1; l < len(keys); l++ {
		cp := p.Leaf.K
		for j := 1; j < l; j++ {
			cp *= p.FanIn
		}
		merges[l], _ = NewMergeCircuit(keys[l-1].VK, p.FanIn, cp) // validated by SetupLevels
	}
	return &procproto.Server{
		Process: "tree-prover", Info: info, MaxLine: aggregation.ServeMaxLine, Workers: 1,
		Ops: map[string]procproto.Handler{
			"info": func(*procproto.Request) (any, error) { return info, nil },
			"leaf": func(r *procproto.Request) (any, error) {
				var job LeafJob
				if err := r.Decode(&job); err != nil {
					return nil, err
				}
				return RunLeaf(keys[0], p.Leaf, &job)
			},
			"merge": func(r *procproto.Request) (any, error) {
				var job MergeJob
				if err := r.Decode(&job); err != nil {
					return nil, err
				}
				if job.Level < 1 || job.Level >= len(keys) {
					return nil, procproto.Errorf(aggregation.CodeBadShape, "level", "merge levels are 1..%d", len(keys)-1)
				}
				return RunMerge(keys[job.Level], keys[job.Level-1], merges[job.Level], &job)
			},
		},
	}
}
