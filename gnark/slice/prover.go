package slice

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend"
	"github.com/consensys/gnark/backend/groth16"
	"github.com/consensys/gnark/backend/plonk"
	"github.com/consensys/gnark/backend/solidity"
	"github.com/consensys/gnark/backend/witness"
	"github.com/consensys/gnark/constraint"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	"github.com/consensys/gnark/frontend/cs/scs"
	recplonk "github.com/consensys/gnark/std/recursion/plonk"
	"github.com/consensys/gnark/test/unsafekzg"
)

// Backend names as used by the Python side.
const (
	Groth16 = "groth16"
	Plonk   = "plonk"
)

// Targets for PLONK: the exported Solidity verifier (SHA-256 transcript) or in-circuit
// recursion (MiMC transcript, plonk.GetNativeProverOptions); the two are not interchangeable.
const (
	TargetSolidity  = "solidity"
	TargetRecursion = "recursion"
)

// Result is what `slice prove` prints (JSON) and writes to <out>/result.json.
type Result struct {
	Name          string   `json:"name"`
	Backend       string   `json:"backend"`
	Target        string   `json:"target"`
	Commitment    string   `json:"commitment"`
	CircuitHash   string   `json:"circuit_hash"`
	Constraints   int      `json:"constraints"`
	PublicInputs  []string `json:"public_inputs"` // 0x-hex, 32-byte big-endian: [in_commit, out_commit]
	Output        []int64  `json:"output"`
	ProofPath     string   `json:"proof"`
	VKPath        string   `json:"vk"`
	PublicPath    string   `json:"public_witness"`
	KeysCached    bool     `json:"keys_cached"`
	SetupSeconds  float64  `json:"setup_seconds"`
	ProveSeconds  float64  `json:"prove_seconds"`
	VerifySeconds float64  `json:"verify_seconds"`
}

func compile(spec *Spec, bk string) (constraint.ConstraintSystem, error) {
	c := NewCircuit(spec)
	switch bk {
	case Groth16:
		return frontend.Compile(ecc.BN254.ScalarField(), r1cs.NewBuilder, c)
	case Plonk:
		return frontend.Compile(ecc.BN254.ScalarField(), scs.NewBuilder, c)
	}
	return nil, fmt.Errorf("SLICE_BACKEND: backend %q is not groth16 or plonk", bk)
}

func circuitHash(ccs constraint.ConstraintSystem, bk string) (string, error) {
	h := sha256.New()
	h.Write([]byte("sheaf/gnark-slice/" + bk + "\x00"))
	if _, err := ccs.WriteTo(h); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

type keyPair interface {
	io.WriterTo
	io.ReaderFrom
}

func writeFileAtomic(path string, w io.WriterTo) error {
	tmp := fmt.Sprintf("%s.tmp%d", path, os.Getpid())
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := w.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func readFile(path string, r io.ReaderFrom) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = r.ReadFrom(f)
	return err
}

// loadOrSetup returns cached keys for ccs or runs the INSECURE dev setup (fresh toxic waste
// for Groth16, unsafekzg SRS for PLONK) and caches them.
func loadOrSetup(ccs constraint.ConstraintSystem, bk, dir string) (pk, vk keyPair, cached bool, err error) {
	pkPath, vkPath := filepath.Join(dir, "pk.bin"), filepath.Join(dir, "vk.bin")
	if bk == Groth16 {
		pk, vk = groth16.NewProvingKey(ecc.BN254), groth16.NewVerifyingKey(ecc.BN254)
	} else {
		pk, vk = plonk.NewProvingKey(ecc.BN254), plonk.NewVerifyingKey(ecc.BN254)
	}
	if readFile(pkPath, pk) == nil && readFile(vkPath, vk) == nil {
		return pk, vk, true, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, false, err
	}
	if bk == Groth16 {
		gpk, gvk, err := groth16.Setup(ccs)
		if err != nil {
			return nil, nil, false, err
		}
		pk, vk = gpk, gvk
	} else {
		canon, lagrange, err := unsafekzg.NewSRS(ccs)
		if err != nil {
			return nil, nil, false, err
		}
		ppk, pvk, err := plonk.Setup(ccs, canon, lagrange)
		if err != nil {
			return nil, nil, false, err
		}
		pk, vk = ppk, pvk
	}
	if err := writeFileAtomic(pkPath, pk); err != nil {
		return nil, nil, false, err
	}
	if err := writeFileAtomic(vkPath, vk); err != nil {
		return nil, nil, false, err
	}
	return pk, vk, false, nil
}

func proverOpts(bk, target string) ([]backend.ProverOption, []backend.VerifierOption, error) {
	switch {
	case bk == Groth16:
		id := backend.GROTH16
		return []backend.ProverOption{solidity.WithProverTargetSolidityVerifier(id)},
			[]backend.VerifierOption{solidity.WithVerifierTargetSolidityVerifier(id)}, nil
	case target == TargetSolidity:
		id := backend.PLONK
		return []backend.ProverOption{solidity.WithProverTargetSolidityVerifier(id)},
			[]backend.VerifierOption{solidity.WithVerifierTargetSolidityVerifier(id)}, nil
	case target == TargetRecursion:
		f := ecc.BN254.ScalarField()
		return []backend.ProverOption{recplonk.GetNativeProverOptions(f, f)},
			[]backend.VerifierOption{recplonk.GetNativeVerifierOptions(f, f)}, nil
	}
	return nil, nil, fmt.Errorf("SLICE_TARGET: target %q is not %s or %s", target, TargetSolidity, TargetRecursion)
}

// Prove compiles the slice, loads or creates keys under cacheDir/<circuit hash>-<backend>,
// proves, verifies the fresh proof, and writes proof.bin, vk.bin, public.bin and result.json
// (gnark binary formats: WriteRawTo for proof and vk, MarshalBinary for the public witness).
func Prove(spec *Spec, bk, target, cacheDir, outDir string) (*Result, error) {
	if bk == Groth16 {
		target = TargetSolidity // commitment-free Groth16 proofs serve both
	}
	popts, vopts, err := proverOpts(bk, target)
	if err != nil {
		return nil, err
	}
	output, err := spec.Evaluate()
	if err != nil {
		return nil, err
	}
	claimed := output
	if spec.ClaimedOutput != nil {
		claimed = spec.ClaimedOutput
	}
	ccs, err := compile(spec, bk)
	if err != nil {
		return nil, fmt.Errorf("SLICE_COMPILE: %w", err)
	}
	ch, err := circuitHash(ccs, bk)
	if err != nil {
		return nil, err
	}
	commitment := spec.Commitment
	if commitment == "" {
		commitment = CommitMiMC
	}
	res := &Result{Name: spec.Name, Backend: bk, Target: target, Commitment: commitment, CircuitHash: ch,
		Constraints: ccs.GetNbConstraints(), Output: claimed}
	t0 := time.Now()
	pk, vk, cached, err := loadOrSetup(ccs, bk, filepath.Join(cacheDir, ch[:32]+"-"+bk))
	if err != nil {
		return nil, fmt.Errorf("SLICE_SETUP: %w", err)
	}
	res.KeysCached, res.SetupSeconds = cached, time.Since(t0).Seconds()

	full, err := frontend.NewWitness(Assignment(spec, claimed), ecc.BN254.ScalarField())
	if err != nil {
		return nil, err
	}
	pub, err := full.Public()
	if err != nil {
		return nil, err
	}
	t0 = time.Now()
	var proof io.WriterTo
	if bk == Groth16 {
		p, err := groth16.Prove(ccs, pk.(groth16.ProvingKey), full, popts...)
		if err != nil {
			return nil, fmt.Errorf("SLICE_UNSATISFIED: %w", err)
		}
		proof = p
		res.ProveSeconds = time.Since(t0).Seconds()
		t0 = time.Now()
		if err := groth16.Verify(p, vk.(groth16.VerifyingKey), pub, vopts...); err != nil {
			return nil, fmt.Errorf("SLICE_SELF_VERIFY: %w", err)
		}
	} else {
		p, err := plonk.Prove(ccs, pk.(plonk.ProvingKey), full, popts...)
		if err != nil {
			return nil, fmt.Errorf("SLICE_UNSATISFIED: %w", err)
		}
		proof = p
		res.ProveSeconds = time.Since(t0).Seconds()
		t0 = time.Now()
		if err := plonk.Verify(p, vk.(plonk.VerifyingKey), pub, vopts...); err != nil {
			return nil, fmt.Errorf("SLICE_SELF_VERIFY: %w", err)
		}
	}
	res.VerifySeconds = time.Since(t0).Seconds()

	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, err
	}
	res.ProofPath = filepath.Join(outDir, "proof.bin")
	res.VKPath = filepath.Join(outDir, "vk.bin")
	res.PublicPath = filepath.Join(outDir, "public.bin")
	if err := writeRaw(res.ProofPath, proof); err != nil {
		return nil, err
	}
	if err := writeRaw(res.VKPath, vk); err != nil {
		return nil, err
	}
	pubBytes, err := pub.MarshalBinary()
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(res.PublicPath, pubBytes, 0o644); err != nil {
		return nil, err
	}
	res.PublicInputs, err = publicHex(pub)
	if err != nil {
		return nil, err
	}
	js, _ := json.MarshalIndent(res, "", "  ")
	return res, os.WriteFile(filepath.Join(outDir, "result.json"), js, 0o644)
}

type rawWriter interface {
	WriteRawTo(io.Writer) (int64, error)
}

func writeRaw(path string, v any) error {
	var buf bytes.Buffer
	if rw, ok := v.(rawWriter); ok {
		if _, err := rw.WriteRawTo(&buf); err != nil {
			return err
		}
	} else if _, err := v.(io.WriterTo).WriteTo(&buf); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

func publicHex(pub witness.Witness) ([]string, error) {
	b, err := pub.MarshalBinary()
	if err != nil {
		return nil, err
	}
	// uint32 nbPublic | uint32 nbSecret | uint32 len | 32-byte BE elements
	if len(b) < 12 || (len(b)-12)%32 != 0 {
		return nil, errors.New("unexpected public witness encoding")
	}
	var out []string
	for i := 12; i < len(b); i += 32 {
		out = append(out, "0x"+hex.EncodeToString(b[i:i+32]))
	}
	return out, nil
}

// Verify checks proof.bin against vk.bin and public.bin as written by Prove.
func Verify(bk, target, proofPath, vkPath, publicPath string) error {
	if bk == Groth16 {
		target = TargetSolidity
	}
	_, vopts, err := proverOpts(bk, target)
	if err != nil {
		return err
	}
	pubBytes, err := os.ReadFile(publicPath)
	if err != nil {
		return err
	}
	pub, err := witness.New(ecc.BN254.ScalarField())
	if err != nil {
		return err
	}
	if err := pub.UnmarshalBinary(pubBytes); err != nil {
		return fmt.Errorf("SLICE_PUBLIC_INVALID: %w", err)
	}
	switch bk {
	case Groth16:
		proof, vk := groth16.NewProof(ecc.BN254), groth16.NewVerifyingKey(ecc.BN254)
		if err := readFile(proofPath, proof); err != nil {
			return fmt.Errorf("SLICE_PROOF_INVALID: %w", err)
		}
		if err := readFile(vkPath, vk); err != nil {
			return fmt.Errorf("SLICE_VK_INVALID: %w", err)
		}
		if err := groth16.Verify(proof, vk, pub, vopts...); err != nil {
			return fmt.Errorf("SLICE_REJECTED: %w", err)
		}
	case Plonk:
		proof, vk := plonk.NewProof(ecc.BN254), plonk.NewVerifyingKey(ecc.BN254)
		if err := readFile(proofPath, proof); err != nil {
			return fmt.Errorf("SLICE_PROOF_INVALID: %w", err)
		}
		if err := readFile(vkPath, vk); err != nil {
			return fmt.Errorf("SLICE_VK_INVALID: %w", err)
		}
		if err := plonk.Verify(proof, vk, pub, vopts...); err != nil {
			return fmt.Errorf("SLICE_REJECTED: %w", err)
		}
	default:
		return fmt.Errorf("SLICE_BACKEND: backend %q is not groth16 or plonk", bk)
	}
	return nil
}

const usage = `usage:
  sheaf-gnark slice prove  --spec SPEC.json --backend groth16|plonk [--target solidity|recursion]
                           --out DIR [--cache DIR]     (prints result JSON)
  sheaf-gnark slice verify --backend groth16|plonk [--target solidity|recursion]
                           --proof P --vk V --public W (exit 0 = valid)
  sheaf-gnark slice commit --spec SPEC.json            (prints input/output commitments)`

// Run is the `sheaf-gnark slice` entry point; args exclude "slice" itself.
func Run(args []string) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	fs := flag.NewFlagSet("slice "+args[0], flag.ContinueOnError)
	specPath := fs.String("spec", "", "slice spec JSON")
	bk := fs.String("backend", Groth16, "groth16 | plonk")
	target := fs.String("target", TargetSolidity, "PLONK transcript target: solidity | recursion")
	out := fs.String("out", "", "output directory")
	cache := fs.String("cache", defaultCache(), "key cache directory")
	proofPath := fs.String("proof", "", "proof.bin")
	vkPath := fs.String("vk", "", "vk.bin")
	pubPath := fs.String("public", "", "public.bin")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	switch args[0] {
	case "prove":
		if *specPath == "" || *out == "" {
			return errors.New("SLICE_USAGE: prove needs --spec and --out")
		}
		spec, err := LoadSpec(*specPath)
		if err != nil {
			return err
		}
		res, err := Prove(spec, *bk, *target, *cache, *out)
		if err != nil {
			return err
		}
		return enc.Encode(res)
	case "verify":
		if *proofPath == "" || *vkPath == "" || *pubPath == "" {
			return errors.New("SLICE_USAGE: verify needs --proof, --vk and --public")
		}
		if err := Verify(*bk, *target, *proofPath, *vkPath, *pubPath); err != nil {
			return err
		}
		return enc.Encode(map[string]bool{"valid": true})
	case "commit":
		spec, err := LoadSpec(*specPath)
		if err != nil {
			return err
		}
		y, err := spec.Evaluate()
		if err != nil {
			return err
		}
		in, outc := spec.Commit(spec.Input), spec.Commit(y)
		return enc.Encode(map[string]any{
			"in_commit": "0x" + hex.EncodeToString(in.Marshal()), "out_commit": "0x" + hex.EncodeToString(outc.Marshal()),
			"output": y})
	}
	return fmt.Errorf("SLICE_USAGE: unknown subcommand %q\n%s", args[0], usage)
}

func defaultCache() string {
	base := os.Getenv("SHEAF_CACHE")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".cache", "sheaf")
	}
	return filepath.Join(base, "gnark-slice")
}
