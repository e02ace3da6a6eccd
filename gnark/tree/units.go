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
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
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
	CodeKeysMissing  = "KEYS_MISSING"  // a worker or export found no keys for a level (it never runs a setup)
	CodeWrongLevel   = "WRONG_LEVEL"   // a job for a level this worker does not prove
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
	// NbConstraints survives a vk-only load, which drops CCS.
	NbConstraints int
	Dir           string
	Created       bool
	Compile       time.Duration
	Setup         time.Duration
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
	return loadLevels(p, cacheRoot, log, p.Levels, func(int) loadMode { return loadOrSetup })
}

// SetupLevel loads or INSECURELY generates the keys of ONE level: levels below keep only their vk
// (which must be on disk: set them up first), so a process holds one level's constraint system and
// proving key at a time (a 64-leaf K=4/F=4 plan's three setups would not fit one 24 GiB process).
// It is also how a production ceremony proceeds: level by level, each embedding the vk below.
func SetupLevel(p Plan, cacheRoot string, only int, log io.Writer) ([]*Keys, error) {
	return oneLevel(p, cacheRoot, only, loadOrSetup, log)
}

// WorkerLevels is the key set of a worker that proves ONE level's jobs: levels 0..only-1 are
// compiled for their circuit hash and keep only their vk (what a merge embeds and checks its
// children against), level `only` keeps its constraint system and proving key; levels above are
// not loaded. Keys must be on disk (KEYS_MISSING otherwise): a worker never runs a setup.
func WorkerLevels(p Plan, cacheRoot string, only int, log io.Writer) ([]*Keys, error) {
	return oneLevel(p, cacheRoot, only, loadOnly, log)
}

// oneLevel loads level `only` in `mode` and the levels below vk-only.
func oneLevel(p Plan, cacheRoot string, only int, mode loadMode, log io.Writer) ([]*Keys, error) {
	if only < 0 || only > p.Levels {
		return nil, &aggregation.Error{Code: aggregation.CodeBadShape, Field: "level", Message: fmt.Sprintf("level must be in [0, %d]", p.Levels)}
	}
	return loadLevels(p, cacheRoot, log, only, func(l int) loadMode {
		if l == only {
			return mode
		}
		return vkOnly
	})
}

// VerifyingLevels compiles every level and loads only the vks (for exporting the verifiers).
func VerifyingLevels(p Plan, cacheRoot string, log io.Writer) ([]*Keys, error) {
	return loadLevels(p, cacheRoot, log, p.Levels, func(int) loadMode { return vkOnly })
}

type loadMode int

const (
	loadOrSetup loadMode = iota // pk + vk, INSECURE dev setup when absent
	loadOnly                    // pk + vk, KEYS_MISSING when absent
	vkOnly                      // vk only (the compiled circuit is dropped after hashing)
)

func loadLevels(p Plan, cacheRoot string, log io.Writer, upTo int, mode func(int) loadMode) ([]*Keys, error) {
	if log == nil {
		log = io.Discard
	}
	if p.Levels < 0 || p.Levels > 8 {
		return nil, &aggregation.Error{Code: aggregation.CodeBadShape, Field: "levels", Message: "levels must be in [0, 8]"}
	}
	var out []*Keys
	for l := 0; l <= upTo; l++ {
		var c frontend.Circuit
		var err error
		if l == 0 {
			c, err = NewLeafCircuit(p.Leaf)
		} else {
			c, err = NewMergeCircuit(out[l-1].VK, p.FanIn, p.childCap(l))
		}
		if err != nil {
			return nil, &aggregation.Error{Code: aggregation.CodeBadShape, Field: "plan", Message: err.Error()}
		}
		k, err := setupCircuit(l, c, cacheRoot, log, mode(l))
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

// childCap is the leaf capacity of one child of a level-l merge (K * F^(l-1)).
func (p Plan) childCap(l int) int {
	cp := p.Leaf.K
	for j := 1; j < l; j++ {
		cp *= p.FanIn
	}
	return cp
}

func setupCircuit(level int, c frontend.Circuit, cacheRoot string, log io.Writer, mode loadMode) (*Keys, error) {
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
	k := &Keys{Level: level, CCS: ccs, NbConstraints: ccs.GetNbConstraints(), CircuitHash: hash, Dir: filepath.Join(cacheRoot, hash[:32]), Compile: time.Since(t0)}
	fmt.Fprintf(log, "tree: level %d r1cs=%d compiled in %s, keys in %s\n", level, k.NbConstraints, k.Compile.Round(time.Millisecond), k.Dir)
	t1 := time.Now()
	if mode == vkOnly {
		k.CCS = nil // let the GC take it: a vk-only level never proves
		if err := k.loadVK(); err != nil {
			return nil, keysMissing(k, err)
		}
		k.Setup = time.Since(t1)
		return k, nil
	}
	if mode == loadOrSetup {
		unlock, err := aggregation.LockEntry(k.Dir, log) // one setup per level across processes
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	if err := k.load(); err == nil {
		k.Setup = time.Since(t1)
		return k, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	} else if mode == loadOnly {
		return nil, keysMissing(k, err)
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

func keysMissing(k *Keys, err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return &aggregation.Error{Code: CodeKeysMissing, Field: "keys", Message: fmt.Sprintf(
			"level %d (circuit %s): no keys in %s; run `sheaf-gnark tree setup` with the same plan first", k.Level, k.CircuitHash, k.Dir)}
	}
	return err
}

type meta struct {
	Level         int    `json:"level"`
	CircuitHash   string `json:"circuit_hash"`
	NbConstraints int    `json:"nb_constraints"`
	Setup         string `json:"setup"`
}

// loadVK reads a cached vk and checks the recorded circuit hash is the compiled circuit's.
func (k *Keys) loadVK() error {
	mb, err := os.ReadFile(filepath.Join(k.Dir, "meta.json"))
	if err != nil {
		return err
	}
	var m meta
	if err := json.Unmarshal(mb, &m); err != nil || m.CircuitHash != k.CircuitHash {
		return &aggregation.Error{Code: CodeKeyMismatch, Field: "keys", Message: fmt.Sprintf(
			"%s records circuit %q, the compiled circuit is %s", k.Dir, m.CircuitHash, k.CircuitHash)}
	}
	vb, err := os.ReadFile(filepath.Join(k.Dir, "vk.bin"))
	if err != nil {
		return err
	}
	vk := new(groth16bn254.VerifyingKey)
	if _, err := vk.ReadFrom(bytes.NewReader(vb)); err != nil {
		return fmt.Errorf("vk: %w", err)
	}
	k.VK = vk
	return nil
}

// load reads cached keys (vk first: it carries the circuit-hash check).
func (k *Keys) load() error {
	if err := k.loadVK(); err != nil {
		return err
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
	k.PK = pk
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
	m, _ := json.MarshalIndent(meta{Level: k.Level, CircuitHash: k.CircuitHash, NbConstraints: k.NbConstraints, Setup: insecureNote}, "", "  ")
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
	// The worker's resident set before the job (its keys) and its peak during the job, MiB; 0
	// where /proc is unavailable. Measurement only: a merge ignores them on its children.
	BaseRSSMiB int64 `json:"base_rss_mib,omitempty"`
	PeakRSSMiB int64 `json:"peak_rss_mib,omitempty"`
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
		levels = append(levels, map[string]any{"level": k.Level, "circuit_hash": k.CircuitHash, "nb_constraints": k.NbConstraints,
			"dir": k.Dir, "proves": k.PK != nil})
	}
	info := map[string]any{"plan": p, "capacity": p.Capacity(), "levels": levels, "insecure_setup": true,
		"public_inputs": "[root >> 128, root mod 2^128, count]"}
	merges := make([]*MergeCircuit, len(keys))
	for l := 1; l < len(keys); l++ {
		merges[l], _ = NewMergeCircuit(keys[l-1].VK, p.FanIn, p.childCap(l)) // validated by loadLevels
	}
	proves := func(l int) error {
		if l < 0 || l >= len(keys) || keys[l].PK == nil {
			return procproto.Errorf(CodeWrongLevel, "level", "this worker does not prove level %d (levels with keys: %v)", l, provingLevels(keys))
		}
		return nil
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
				if err := proves(0); err != nil {
					return nil, err
				}
				return measured(func() (*Output, error) { return RunLeaf(keys[0], p.Leaf, &job) })
			},
			"merge": func(r *procproto.Request) (any, error) {
				var job MergeJob
				if err := r.Decode(&job); err != nil {
					return nil, err
				}
				if job.Level < 1 || job.Level > p.Levels {
					return nil, procproto.Errorf(aggregation.CodeBadShape, "level", "merge levels are 1..%d", p.Levels)
				}
				if err := proves(job.Level); err != nil {
					return nil, err
				}
				return measured(func() (*Output, error) { return RunMerge(keys[job.Level], keys[job.Level-1], merges[job.Level], &job) })
			},
		},
	}
}

func provingLevels(keys []*Keys) []int {
	var out []int
	for _, k := range keys {
		if k.PK != nil {
			out = append(out, k.Level)
		}
	}
	return out
}

// measured runs one job and records the worker's RSS before it and its peak during it: the
// heap is returned to the OS first, then the kernel's high-water mark is reset
// (/proc/self/clear_refs "5", Linux >= 4.0), so the peak is this job's (with the keys resident),
// not the compile or key load before it.
func measured(job func() (*Output, error)) (*Output, error) {
	runtime.GC()
	debug.FreeOSMemory()
	base := procStatusMiB("VmRSS:")
	if f, err := os.OpenFile("/proc/self/clear_refs", os.O_WRONLY, 0); err == nil {
		_, _ = f.WriteString("5")
		f.Close()
	}
	out, err := job()
	if out != nil {
		out.BaseRSSMiB, out.PeakRSSMiB = base, procStatusMiB("VmHWM:")
	}
	return out, err
}

func procStatusMiB(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == field {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb / 1024
		}
	}
	return 0
}
