package aggregation

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/sheaf-zk/sheaf/gnark/buildinfo"
	"github.com/sheaf-zk/sheaf/gnark/procproto"
)

// Usage of the `sheaf-gnark aggregate` command family.
const Usage = `usage: sheaf-gnark aggregate <subcommand> [flags]

subcommands (all take --batch N --npub P [--plonk K] [--cache DIR]; DIR defaults to
$SHEAF_CACHE/recursion; K of the N slots verify gnark PLONK proofs, the others Groth16):
  compile          compile only; prints JSON: nb_constraints, circuit_hash, keys_cached (no setup)
  setup            compile + INSECURE dev Groth16 setup (cached by circuit hash); prints JSON
  prove            --in batch.json --out proof.json: prove one batch
  verify           --in proof.json: check an outer proof against its leaf list natively
  export-solidity  --out Verifier.sol: gnark Solidity verifier of the outer circuit
  serve            the prover process: keys loaded once, then JSON lines on stdin/stdout
                   (the process protocol shared with "sheaf-gnark serve": docs/sidecar.md)

batch.json: {"leaves":[{"scheme":"groth16","vk":"0x<canonical vk>","proof":"0x<256 bytes>",
             "public_inputs":["0x<32 bytes>", ...]}, ...,
            {"scheme":"plonk","vk":"0x<gnark PLONK vk>","proof":"0x<gnark PLONK proof>",
             "public_inputs":[...]}]}    (Groth16 leaves first: the order is the tree order)
`

// LeafJSON is the wire form of a Leaf.
type LeafJSON struct {
	Scheme       string   `json:"scheme,omitempty"`
	VK           string   `json:"vk"`
	Proof        string   `json:"proof"`
	PublicInputs []string `json:"public_inputs"`
	// CanonicalVK (plonk, optional): the caller's canonical vk bytes; must equal the one derived
	// from VK, so caller and circuit agree on the vk_hash before minutes of proving.
	CanonicalVK string `json:"canonical_vk,omitempty"`
}

// BatchJSON is the input of `prove` and of a serve "prove" request.
type BatchJSON struct {
	Leaves []LeafJSON `json:"leaves"`
}

// ToLeaves decodes the wire form; errors name the offending field.
func (b *BatchJSON) ToLeaves() ([]Leaf, error) {
	out := make([]Leaf, len(b.Leaves))
	for i, lj := range b.Leaves {
		switch lj.Scheme {
		case "", SchemeGroth16:
		case SchemePlonk:
			out[i].Scheme = SchemePlonk
		default:
			return nil, leafErr(i, "scheme", "groth16 (BN254, no commitments) and plonk (gnark BN254, recursion transcript) are aggregated, got %q", lj.Scheme)
		}
		var err error
		if out[i].VK, err = DecodeHex(lj.VK); err != nil {
			return nil, leafErr(i, "vk", "bad hex: %v", err)
		}
		if out[i].Proof, err = DecodeHex(lj.Proof); err != nil {
			return nil, leafErr(i, "proof", "bad hex: %v", err)
		}
		if lj.CanonicalVK != "" {
			if out[i].Scheme != SchemePlonk {
				return nil, leafErr(i, "canonical_vk", "only plonk leaves carry canonical_vk")
			}
			want, err := DecodeHex(lj.CanonicalVK)
			if err != nil {
				return nil, leafErr(i, "canonical_vk", "bad hex: %v", err)
			}
			got, _, err := PlonkCanonicalVK(out[i].VK)
			if err != nil {
				return nil, leafErr(i, "vk", "gnark PLONK vk: %v", err)
			}
			if !bytes.Equal(got, want) {
				return nil, leafErr(i, "canonical_vk", "differs from the canonical form of vk")
			}
		}
		for k, p := range lj.PublicInputs {
			b, err := DecodeHex(p)
			if err != nil {
				return nil, leafErr(i, fmt.Sprintf("public_inputs[%d]", k), "bad hex: %v", err)
			}
			out[i].Pubs = append(out[i].Pubs, b)
		}
	}
	return out, nil
}

type common struct {
	fs    *flag.FlagSet
	shape Shape
	cache string
}

func newCommon(name string) *common {
	c := &common{fs: flag.NewFlagSet("aggregate "+name, flag.ContinueOnError)}
	c.fs.IntVar(&c.shape.Batch, "batch", 0, "batch size N (slots)")
	c.fs.IntVar(&c.shape.NPub, "npub", 1, "public inputs per inner proof")
	c.fs.IntVar(&c.shape.Plonk, "plonk", 0, "how many of the batch slots are gnark PLONK slots (recursion transcript)")
	c.fs.StringVar(&c.cache, "cache", "", "key cache root (default $SHEAF_CACHE/recursion)")
	return c
}

func (c *common) parse(args []string) error {
	if err := c.fs.Parse(args); err != nil {
		return err
	}
	if c.fs.NArg() != 0 {
		return fmt.Errorf("unexpected arguments %v", c.fs.Args())
	}
	if c.cache == "" {
		c.cache = CacheRoot()
	}
	if err := c.shape.validate(); err != nil {
		return &Error{Code: CodeBadShape, Field: "--batch/--npub/--plonk", Message: err.Error()}
	}
	return nil
}

func writeJSON(path string, v any) error {
	var w io.Writer = os.Stdout
	if path != "" && path != "-" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(v)
}

func readJSON(path string, v any) error {
	var r io.Reader = os.Stdin
	if path != "" && path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	d := json.NewDecoder(r)
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// Run is the entry point of `sheaf-gnark aggregate <subcommand> ...` (args after "aggregate").
func Run(args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(os.Stderr, Usage)
		if len(args) == 0 {
			return errors.New("missing subcommand")
		}
		return nil
	}
	sub, args := args[0], args[1:]
	c := newCommon(sub)
	var in, out string
	switch sub {
	case "prove", "verify":
		c.fs.StringVar(&in, "in", "-", "input JSON path (- for stdin)")
		c.fs.StringVar(&out, "out", "-", "output JSON path (- for stdout)")
	case "export-solidity":
		c.fs.StringVar(&out, "out", "-", "output .sol path (- for stdout)")
	case "setup", "serve", "compile":
	default:
		return fmt.Errorf("unknown aggregate subcommand %q\n%s", sub, Usage)
	}
	if err := c.parse(args); err != nil {
		return err
	}
	switch sub {
	case "compile":
		t0 := time.Now()
		ccs, err := Compile(c.shape)
		if err != nil {
			return err
		}
		ms := time.Since(t0).Milliseconds()
		hash, err := hashCCS(ccs)
		if err != nil {
			return err
		}
		dir := filepath.Join(c.cache, hash[:32])
		_, statErr := os.Stat(filepath.Join(dir, "vk.bin"))
		return writeJSON("-", map[string]any{"shape": c.shape, "nb_constraints": ccs.GetNbConstraints(),
			"circuit_hash": hash, "compile_ms": ms, "dir": dir, "keys_cached": statErr == nil})
	case "setup":
		k, err := Setup(c.shape, c.cache, os.Stderr)
		if err != nil {
			return err
		}
		return writeJSON("-", map[string]any{
			"shape": k.Shape, "circuit_hash": k.CircuitHash, "dir": k.Dir, "nb_constraints": k.CCS.GetNbConstraints(),
			"created": k.Created, "compile_ms": k.CompileTime.Milliseconds(), "setup_ms": k.SetupTime.Milliseconds(),
			"insecure": true, "setup": insecureNote,
		})
	case "prove":
		var b BatchJSON
		if err := readJSON(in, &b); err != nil {
			return &Error{Code: CodeBadBatch, Field: "input", Message: err.Error()}
		}
		leaves, err := b.ToLeaves()
		if err != nil {
			return err
		}
		if _, _, err := Assign(c.shape, leaves); err != nil { // fail before the slow setup
			return err
		}
		k, err := Setup(c.shape, c.cache, os.Stderr)
		if err != nil {
			return err
		}
		r, err := Prove(k, leaves)
		if err != nil {
			return err
		}
		return writeJSON(out, r)
	case "verify":
		var r Result
		if err := readJSON(in, &r); err != nil {
			return &Error{Code: CodeBadBatch, Field: "input", Message: err.Error()}
		}
		k, err := Setup(c.shape, c.cache, os.Stderr)
		if err != nil {
			return err
		}
		if err := verifyResultJSON(k, &r); err != nil {
			return err
		}
		return writeJSON(out, map[string]any{"ok": true, "count": len(r.Leaves)})
	case "export-solidity":
		k, err := Setup(c.shape, c.cache, os.Stderr)
		if err != nil {
			return err
		}
		var w io.Writer = os.Stdout
		if out != "-" {
			f, err := os.Create(out)
			if err != nil {
				return err
			}
			defer f.Close()
			w = f
		}
		return k.ExportSolidity(w)
	case "serve":
		k, err := Setup(c.shape, c.cache, os.Stderr)
		if err != nil {
			return err
		}
		return Serve(k, os.Stdin, os.Stdout)
	}
	return nil
}

func verifyResultJSON(k *Keys, r *Result) error {
	leaves := make([][]byte, len(r.Leaves))
	for i, h := range r.Leaves {
		b, err := DecodeHex(h)
		if err != nil || len(b) != 32 {
			return &Error{Code: CodeBadBatch, Field: fmt.Sprintf("leaves[%d]", i), Message: "must be 32 bytes hex"}
		}
		leaves[i] = b
	}
	proof, err := DecodeHex(r.Proof)
	if err != nil {
		return &Error{Code: CodeBadBatch, Field: "proof", Message: "bad hex: " + err.Error()}
	}
	return VerifyResult(k, leaves, proof)
}

// ServeMaxLine bounds one prover request line (a batch of gnark PLONK leaves carries their vks).
const ServeMaxLine = 256 << 20

type proveReq struct {
	procproto.Envelope
	Leaves []json.RawMessage `json:"leaves"`
}

type verifyReq struct {
	procproto.Envelope
	Leaves []string `json:"leaves"` // 0x statement hashes
	Proof  string   `json:"proof"`
}

// Server is the prover process, `sheaf-gnark aggregate serve`: ops "info", "prove" (leaves),
// "verify" (leaves = statement hashes, proof) on the shared loop, one request at a time (a
// proof already uses every core), so answers come in request order. The ready line carries
// the circuit (info) once the keys are loaded.
func Server(k *Keys) *procproto.Server {
	info := map[string]any{"shape": k.Shape, "circuit_hash": k.CircuitHash, "nb_constraints": k.CCS.GetNbConstraints(),
		"public_inputs": "[root >> 128, root mod 2^128, count]", "insecure_setup": true, "dir": k.Dir,
		"keys_created": k.Created, "compile_ms": k.CompileTime.Milliseconds(), "setup_ms": k.SetupTime.Milliseconds()}
	return &procproto.Server{
		Process: "prover",
		Info:    info,
		MaxLine: ServeMaxLine,
		Workers: 1,
		Ops: map[string]procproto.Handler{
			"version": func(*procproto.Request) (any, error) { return buildinfo.Get(), nil },
			"info":    func(*procproto.Request) (any, error) { return info, nil },
			"prove":   func(r *procproto.Request) (any, error) { return serveProve(k, r) },
			"verify":  func(r *procproto.Request) (any, error) { return serveVerify(k, r) },
		},
	}
}

// Serve answers prover requests from in until EOF (see Server).
func Serve(k *Keys, in io.Reader, out io.Writer) error { return Server(k).Serve(in, out) }

func serveProve(k *Keys, r *procproto.Request) (any, error) {
	var req proveReq
	if err := r.Decode(&req); err != nil {
		return nil, err
	}
	if req.Leaves == nil {
		return nil, &Error{Code: procproto.CodeMalformed, Field: "leaves", Message: "missing leaves list"}
	}
	b := BatchJSON{Leaves: make([]LeafJSON, len(req.Leaves))}
	for i, raw := range req.Leaves {
		// leaf objects are read leniently, as in `aggregate prove --in batch.json`
		if err := json.Unmarshal(raw, &b.Leaves[i]); err != nil {
			return nil, &Error{Code: procproto.CodeMalformed, Field: fmt.Sprintf("leaves[%d]", i), Message: err.Error()}
		}
	}
	leaves, err := b.ToLeaves()
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	res, err := Prove(k, leaves)
	if err != nil {
		return nil, err
	}
	res.ProveMS = time.Since(t0).Milliseconds()
	return res, nil
}

func serveVerify(k *Keys, r *procproto.Request) (any, error) {
	var req verifyReq
	if err := r.Decode(&req); err != nil {
		return nil, err
	}
	if err := verifyResultJSON(k, &Result{Leaves: req.Leaves, Proof: req.Proof}); err != nil {
		return nil, err
	}
	return map[string]any{"valid": true}, nil
}
