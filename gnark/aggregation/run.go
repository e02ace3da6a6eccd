package aggregation

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
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
  serve            JSON lines on stdin/stdout, keys loaded once (protocol: docs/recursion.md)

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
		return &Error{Code: CodeBadShape, Field: "--batch/--npub/--plonk", Msg: err.Error()}
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
			return &Error{Code: CodeBadBatch, Field: "input", Msg: err.Error()}
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
			return &Error{Code: CodeBadBatch, Field: "input", Msg: err.Error()}
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
			return &Error{Code: CodeBadBatch, Field: fmt.Sprintf("leaves[%d]", i), Msg: "must be 32 bytes hex"}
		}
		leaves[i] = b
	}
	proof, err := DecodeHex(r.Proof)
	if err != nil {
		return &Error{Code: CodeBadBatch, Field: "proof", Msg: "bad hex: " + err.Error()}
	}
	return VerifyResult(k, leaves, proof)
}

// Request is one serve line. Ops: "info", "prove" (leaves), "verify" (leaves = statement hashes
// as 0x hex, proof).
type Request struct {
	ID     any             `json:"id"`
	Op     string          `json:"op"`
	Leaves json.RawMessage `json:"leaves,omitempty"`
	Proof  string          `json:"proof,omitempty"`
}

// Response is one serve output line.
type Response struct {
	ID     any            `json:"id"`
	OK     bool           `json:"ok"`
	Result any            `json:"result,omitempty"`
	Error  *ResponseError `json:"error,omitempty"`
}

// ResponseError carries a stable code and the offending field.
type ResponseError struct {
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func toRespErr(err error) *ResponseError {
	var e *Error
	if errors.As(err, &e) {
		return &ResponseError{Code: e.Code, Field: e.Field, Message: e.Msg}
	}
	return &ResponseError{Code: CodeInternal, Message: err.Error()}
}

// Serve answers JSON-lines requests sequentially (one proof at a time: a proof already uses
// every core) until EOF. A "ready" line with the circuit info is written first.
func Serve(k *Keys, in io.Reader, out io.Writer) error {
	enc := json.NewEncoder(out)
	info := map[string]any{"shape": k.Shape, "circuit_hash": k.CircuitHash, "nb_constraints": k.CCS.GetNbConstraints(),
		"public_inputs": "[root >> 128, root mod 2^128, count]", "insecure_setup": true, "dir": k.Dir,
		"keys_created": k.Created, "compile_ms": k.CompileTime.Milliseconds(), "setup_ms": k.SetupTime.Milliseconds()}
	if err := enc.Encode(Response{ID: "ready", OK: true, Result: info}); err != nil {
		return err
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 256<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var req Request
		resp := Response{}
		if err := json.Unmarshal([]byte(line), &req); err != nil {
			resp.Error = &ResponseError{Code: "bad_request", Field: "line", Message: err.Error()}
		} else {
			resp.ID = req.ID
			resp.Result, resp.Error = handle(k, &req, info)
			resp.OK = resp.Error == nil
		}
		if err := enc.Encode(resp); err != nil {
			return err
		}
	}
	return sc.Err()
}

func handle(k *Keys, req *Request, info map[string]any) (any, *ResponseError) {
	switch req.Op {
	case "info":
		return info, nil
	case "prove":
		var ls []LeafJSON
		if err := json.Unmarshal(req.Leaves, &ls); err != nil {
			return nil, &ResponseError{Code: "bad_request", Field: "leaves", Message: err.Error()}
		}
		b := BatchJSON{Leaves: ls}
		leaves, err := b.ToLeaves()
		if err != nil {
			return nil, toRespErr(err)
		}
		t0 := time.Now()
		r, err := Prove(k, leaves)
		if err != nil {
			return nil, toRespErr(err)
		}
		r.ProveMS = time.Since(t0).Milliseconds()
		return r, nil
	case "verify":
		var hs []string
		if err := json.Unmarshal(req.Leaves, &hs); err != nil {
			return nil, &ResponseError{Code: "bad_request", Field: "leaves", Message: "want a list of 0x statement hashes: " + err.Error()}
		}
		if err := verifyResultJSON(k, &Result{Leaves: hs, Proof: req.Proof}); err != nil {
			return nil, toRespErr(err)
		}
		return map[string]any{"valid": true}, nil
	default:
		return nil, &ResponseError{Code: "bad_request", Field: "op", Message: fmt.Sprintf("unknown op %q (info, prove, verify)", req.Op)}
	}
}
