// Package benchverify measures verification throughput: gnark's native verifiers (one proof
// at a time) against Sheaf's random-linear-combination batch verifiers.
package benchverify

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark/backend"
	"github.com/consensys/gnark/backend/groth16"
	groth16bn254 "github.com/consensys/gnark/backend/groth16/bn254"
	"github.com/consensys/gnark/backend/plonk"
	plonkbn254 "github.com/consensys/gnark/backend/plonk/bn254"
	"github.com/consensys/gnark/backend/solidity"
	"github.com/consensys/gnark/backend/witness"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/frontend/cs/r1cs"
	"github.com/consensys/gnark/frontend/cs/scs"

	"github.com/sheaf-zk/sheaf/gnark/circuits"
	"github.com/sheaf-zk/sheaf/gnark/fixtures"
	"github.com/sheaf-zk/sheaf/gnark/verify"
)

// Options configures a run.
type Options struct {
	CacheDir    string
	FixturesDir string // for the snarkjs PLONK vectors
	Proofs      int    // distinct proofs per scheme
	NPublic     int
	BatchSizes  []int
}

// Rate is one throughput figure.
type Rate struct {
	Name        string  `json:"name"`
	BatchSize   int     `json:"batch_size"`
	Proofs      int     `json:"proofs"`
	Seconds     float64 `json:"seconds"`
	ProofsPerS  float64 `json:"proofs_per_s"`
	SpeedupVsGn float64 `json:"speedup_vs_native,omitempty"`
}

// Section groups the rates of one scheme.
type Section struct {
	Scheme  string `json:"scheme"`
	Circuit string `json:"circuit"`
	NPublic int    `json:"n_public"`
	Rates   []Rate `json:"rates"`
	Note    string `json:"note,omitempty"`
}

// Result is printed as JSON by `sheaf-gnark bench-verify`.
type Result struct {
	GOMAXPROCS int       `json:"gomaxprocs"`
	NumCPU     int       `json:"num_cpu"`
	Sections   []Section `json:"sections"`
}

// measure runs f (which verifies n proofs) until at least minDur elapsed.
func measure(name string, batch, n int, f func() error) (Rate, error) {
	const minDur = 400 * time.Millisecond
	done := 0
	start := time.Now()
	for time.Since(start) < minDur {
		if err := f(); err != nil {
			return Rate{}, fmt.Errorf("%s: %w", name, err)
		}
		done += n
	}
	s := time.Since(start).Seconds()
	return Rate{Name: name, BatchSize: batch, Proofs: done, Seconds: s, ProofsPerS: float64(done) / s}, nil
}

// Run measures Groth16 (gnark vs sheaf single vs sheaf batch), gnark PLONK and snarkjs PLONK.
func Run(opt Options) (*Result, error) {
	if opt.Proofs <= 0 {
		opt.Proofs = 64
	}
	if opt.NPublic <= 0 {
		opt.NPublic = 2
	}
	if len(opt.BatchSizes) == 0 {
		opt.BatchSizes = []int{1, 4, 16, 32, 64}
	}
	res := &Result{GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU()}
	g, err := benchGroth16(opt)
	if err != nil {
		return nil, err
	}
	res.Sections = append(res.Sections, *g)
	p, err := benchGnarkPlonk(opt)
	if err != nil {
		return nil, err
	}
	res.Sections = append(res.Sections, *p)
	if opt.FixturesDir != "" {
		s, err := benchSnarkjsPlonk(opt)
		if err != nil {
			return nil, err
		}
		res.Sections = append(res.Sections, *s)
	}
	return res, nil
}

func publicOf(w witness.Witness) ([]fr.Element, error) {
	pub, err := w.Public()
	if err != nil {
		return nil, err
	}
	v, ok := pub.Vector().(fr.Vector)
	if !ok {
		return nil, fmt.Errorf("unexpected witness vector %T", pub.Vector())
	}
	return v, nil
}

func benchGroth16(opt Options) (*Section, error) {
	field := ecc.BN254.ScalarField()
	ccs, err := frontend.Compile(field, r1cs.NewBuilder, circuits.NewMulChain(opt.NPublic))
	if err != nil {
		return nil, err
	}
	pk, vk, _, err := fixtures.Groth16Keys(opt.CacheDir, ccs)
	if err != nil {
		return nil, err
	}
	var vkb []byte
	{
		var buf bytesBuffer
		if _, err := vk.WriteTo(&buf); err != nil {
			return nil, err
		}
		vkb = buf.b
	}
	svk, err := verify.ParseGnarkGroth16VK(vkb)
	if err != nil {
		return nil, err
	}
	type one struct {
		proof  groth16.Proof
		pubW   witness.Witness
		item   *verify.Groth16Item
		public []fr.Element
	}
	proofs := make([]one, opt.Proofs)
	for i := range proofs {
		w, err := frontend.NewWitness(circuits.MulChainAssignment(opt.NPublic, uint64(100+i)), field)
		if err != nil {
			return nil, err
		}
		pf, err := groth16.Prove(ccs, pk, w, solidity.WithProverTargetSolidityVerifier(backend.GROTH16))
		if err != nil {
			return nil, err
		}
		pw, _ := w.Public()
		pub, err := publicOf(w)
		if err != nil {
			return nil, err
		}
		sp, err := verify.ParseCanonicalGroth16Proof(pf.(*groth16bn254.Proof).MarshalSolidity(), svk)
		if err != nil {
			return nil, err
		}
		proofs[i] = one{proof: pf, pubW: pw, public: pub, item: &verify.Groth16Item{VK: svk, Proof: sp, Public: pub}}
	}
	sec := &Section{Scheme: "groth16", Circuit: fmt.Sprintf("MulChain(%d)", opt.NPublic), NPublic: opt.NPublic}
	native, err := measure("gnark groth16.Verify (one proof at a time)", 1, len(proofs), func() error {
		for _, p := range proofs {
			if err := groth16.Verify(p.proof, vk, p.pubW); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sec.Rates = append(sec.Rates, native)
	for _, bs := range opt.BatchSizes {
		if bs > len(proofs) {
			continue
		}
		r, err := measure("sheaf VerifyGroth16Batch (RLC, one final exponentiation)", bs, len(proofs)/bs*bs, func() error {
			for off := 0; off+bs <= len(proofs); off += bs {
				items := make([]*verify.Groth16Item, bs)
				for k := range items {
					items[k] = proofs[off+k].item
				}
				if err := verify.VerifyGroth16Batch(items, nil); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		r.SpeedupVsGn = r.ProofsPerS / native.ProofsPerS
		sec.Rates = append(sec.Rates, r)
	}
	return sec, nil
}

func benchGnarkPlonk(opt Options) (*Section, error) {
	field := ecc.BN254.ScalarField()
	ccs, err := frontend.Compile(field, scs.NewBuilder, circuits.NewMulChain(opt.NPublic))
	if err != nil {
		return nil, err
	}
	pk, vk, _, err := fixtures.PlonkKeys(opt.CacheDir, ccs)
	if err != nil {
		return nil, err
	}
	n := opt.Proofs / 2
	if n < 4 {
		n = 4
	}
	type one struct {
		proof plonk.Proof
		pub   witness.Witness
		pubv  []fr.Element
	}
	proofs := make([]one, n)
	for i := range proofs {
		w, err := frontend.NewWitness(circuits.MulChainAssignment(opt.NPublic, uint64(200+i)), field)
		if err != nil {
			return nil, err
		}
		pf, err := plonk.Prove(ccs, pk, w, solidity.WithProverTargetSolidityVerifier(backend.PLONK))
		if err != nil {
			return nil, err
		}
		pw, _ := w.Public()
		pv, err := publicOf(w)
		if err != nil {
			return nil, err
		}
		proofs[i] = one{pf, pw, pv}
	}
	sec := &Section{Scheme: "plonk-gnark", Circuit: fmt.Sprintf("MulChain(%d)", opt.NPublic), NPublic: opt.NPublic}
	native, err := measure("gnark plonk.Verify (one proof at a time)", 1, n, func() error {
		for _, p := range proofs {
			if err := plonk.Verify(p.proof, vk, p.pub, solidity.WithVerifierTargetSolidityVerifier(backend.PLONK)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sec.Rates = append(sec.Rates, native)
	gvk := vk.(*plonkbn254.VerifyingKey)
	for _, bs := range opt.BatchSizes {
		if bs > len(proofs) {
			continue
		}
		r, err := measure("sheaf VerifyGnarkPlonkBatch (gnark reduction, one KZG batch check)", bs, len(proofs)/bs*bs, func() error {
			for off := 0; off+bs <= len(proofs); off += bs {
				ps := make([]*plonkbn254.Proof, bs)
				pubs := make([][]fr.Element, bs)
				for k := range ps {
					ps[k] = proofs[off+k].proof.(*plonkbn254.Proof)
					pubs[k] = proofs[off+k].pubv
				}
				if err := verify.VerifyGnarkPlonkBatch(gvk, ps, pubs); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		r.SpeedupVsGn = r.ProofsPerS / native.ProofsPerS
		sec.Rates = append(sec.Rates, r)
	}
	return sec, nil
}

func benchSnarkjsPlonk(opt Options) (*Section, error) {
	dir := filepath.Join(opt.FixturesDir, "snarkjs_plonk")
	read := func(f string) (json.RawMessage, error) { return os.ReadFile(filepath.Join(dir, f)) }
	vkj, err := read("plonk_vk.json")
	if err != nil {
		return nil, err
	}
	pj, err := read("plonk_proof.json")
	if err != nil {
		return nil, err
	}
	pubj, err := read("public.json")
	if err != nil {
		return nil, err
	}
	vk, err := verify.ParseSnarkjsPlonkVK(vkj)
	if err != nil {
		return nil, err
	}
	p, err := verify.ParseSnarkjsPlonkProof(pj)
	if err != nil {
		return nil, err
	}
	pub, err := verify.JSONPublic(pubj, "public")
	if err != nil {
		return nil, err
	}
	sec := &Section{Scheme: "plonk-snarkjs", Circuit: "snarkjs_plonk/circuit.circom", NPublic: int(vk.NPublic),
		Note: "one committed snarkjs proof repeated; batch coefficients are fresh per proof so the work per proof is the same as for distinct proofs"}
	single, err := measure("sheaf VerifySnarkjsPlonk (one proof at a time)", 1, 1, func() error {
		return verify.VerifySnarkjsPlonk(vk, p, pub)
	})
	if err != nil {
		return nil, err
	}
	sec.Rates = append(sec.Rates, single)
	for _, bs := range opt.BatchSizes {
		if bs == 1 {
			continue
		}
		ps := make([]*verify.SnarkjsPlonkProof, bs)
		pubs := make([][]fr.Element, bs)
		for i := range ps {
			ps[i], pubs[i] = p, pub
		}
		r, err := measure("sheaf VerifySnarkjsPlonkBatch (RLC of the final KZG checks)", bs, bs, func() error {
			return verify.VerifySnarkjsPlonkBatch(vk, ps, pubs)
		})
		if err != nil {
			return nil, err
		}
		r.SpeedupVsGn = r.ProofsPerS / single.ProofsPerS
		sec.Rates = append(sec.Rates, r)
	}
	return sec, nil
}

type bytesBuffer struct{ b []byte }

func (w *bytesBuffer) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }
