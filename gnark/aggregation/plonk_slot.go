package aggregation

// PLONK slots: gnark BN254 PLONK proofs made with the recursion-friendly transcript
// (std/recursion/plonk.GetNativeProverOptions: MiMC Fiat-Shamir, KZG folding and hash-to-field),
// no BSB22 commitments, verified in-circuit with gnark's std/recursion/plonk verifier.
//
// The vk enters as BYTES in Sheaf's canonical gnark PLONK encoding (gnark/verify.GnarkPlonkVK
// .Canonical, the bytes the normalizer hashes into vk_hash), so the statement the circuit commits
// to is derived from the vk it actually verified against. Every field of the in-circuit
// verifying key comes from those bytes, including the KZG part (the SRS is NOT fixed by the outer
// circuit: leaves made over different SRSs share one batch); SizeInv, which the canonical form
// omits, is computed in-circuit.

import (
	"fmt"

	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/algebra/emulated/fields_bn254"
	"github.com/consensys/gnark/std/algebra/emulated/sw_bn254"
	"github.com/consensys/gnark/std/algebra/emulated/sw_emulated"
	"github.com/consensys/gnark/std/commitments/kzg"
	"github.com/consensys/gnark/std/math/emulated"
	"github.com/consensys/gnark/std/math/emulated/emparams"
	"github.com/consensys/gnark/std/math/uints"
	recplonk "github.com/consensys/gnark/std/recursion/plonk"
)

// Canonical gnark PLONK vk without BSB22 commitments (gnark/verify/plonk_gnark.go):
// 0x01 | u64 Size | u64 NbPublic | Generator | CosetShift | S1 S2 S3 Ql Qr Qm Qo Qk (G1, 64 each) |
// u32 n_qcp (0) | u32 n_idx (0) | kzg G1 (64) | kzg G2[0] (128) | kzg G2[1] (128)
const (
	plonkOffSize     = 1
	plonkOffNbPublic = 9
	plonkOffGen      = 17
	plonkOffShift    = 49
	plonkOffPoints   = 81 // S1 S2 S3 Ql Qr Qm Qo Qk
	plonkOffCounts   = plonkOffPoints + 8*64
	plonkOffKzg      = plonkOffCounts + 8
	// PlonkVKLen is the canonical vk length of a commitment-free gnark PLONK key.
	PlonkVKLen = plonkOffKzg + 64 + 2*128

	schemePlonk = 2
	// gnark's PLONK producer tag, the first canonical byte (verify.PlonkProducerGnark).
	plonkProducerGnark = 0x01
	// in-circuit domain-size bound: 2^27 gates, as the native parser (verify.maxPlonkSize)
	plonkMaxLogSize = 27
)

type (
	plonkProof = recplonk.Proof[sw_bn254.ScalarField, sw_bn254.G1Affine, sw_bn254.G2Affine]
	plonkVK    = recplonk.VerifyingKey[sw_bn254.ScalarField, sw_bn254.G1Affine, sw_bn254.G2Affine]
)

// PlonkLeafWitness is one PLONK slot: vk and public inputs as byte witnesses (range-checked
// in-circuit), the proof as emulated witnesses (not hashed: a statement, not a proof).
type PlonkLeafWitness struct {
	VK    []frontend.Variable
	Pubs  []frontend.Variable
	Proof plonkProof
}

func newPlonkLeafWitness(nPub int) PlonkLeafWitness {
	return PlonkLeafWitness{
		VK:   make([]frontend.Variable, PlonkVKLen),
		Pubs: make([]frontend.Variable, nPub*scalarLen),
		Proof: plonkProof{BatchedProof: kzg.BatchOpeningProof[sw_bn254.ScalarField, sw_bn254.G1Affine]{
			ClaimedValues: make([]emulated.Element[sw_bn254.ScalarField], 6),
		}},
	}
}

// plonkEnv holds the gadgets shared by all PLONK slots of one circuit.
type plonkEnv struct {
	api      frontend.API
	bapi     *uints.Bytes
	fp       *emulated.Field[emparams.BN254Fp]
	fr       *emulated.Field[emparams.BN254Fr]
	pairing  *sw_bn254.Pairing
	verifier *recplonk.Verifier[sw_bn254.ScalarField, sw_bn254.G1Affine, sw_bn254.G2Affine, sw_bn254.GTEl]
}

// verifyPlonkSlot verifies slot l and returns its Sheaf statement hash (32 bytes).
func (e *plonkEnv) verifyPlonkSlot(i int, l *PlonkLeafWitness, bind bool) ([]uints.U8, error) {
	api, bapi := e.api, e.bapi
	nPub := len(l.Pubs) / scalarLen
	if len(l.Pubs)%scalarLen != 0 || nPub == 0 || len(l.VK) != PlonkVKLen {
		return nil, fmt.Errorf("plonk leaf %d: inconsistent witness sizes (vk %d bytes, pubs %d bytes)", i, len(l.VK), len(l.Pubs))
	}
	vkB, pubB := byteWitnesses(bapi, l.VK), byteWitnesses(bapi, l.Pubs)
	// The fixed header bytes pin the compiled shape: producer tag, NbPublic = nPub, no BSB22
	// commitments (n_qcp = n_idx = 0).
	// (a slice, not a map: constraint order must not depend on map iteration, or the circuit hash
	// and with it the cached keys would change from one compile to the next)
	type fixedByte struct {
		off  int
		want byte
	}
	fixed := []fixedByte{{0, plonkProducerGnark}}
	for k := 0; k < 8; k++ {
		fixed = append(fixed, fixedByte{plonkOffNbPublic + k, byte(uint64(nPub) >> (56 - 8*k))})
	}
	for k := 0; k < 8; k++ {
		fixed = append(fixed, fixedByte{plonkOffCounts + k, 0})
	}
	for _, f := range fixed {
		api.AssertIsEqual(bapi.ValueUnchecked(vkB[f.off]), f.want)
	}

	// Size: a power of two in [2, 2^27] (the native parser's bound; fixedExpN assumes a power
	// of two). Its bits also give the emulated Size for SizeInv.
	size := packBE(api, bapi, vkB[plonkOffSize:plonkOffSize+8])
	sizeBits := api.ToBinary(size, 64)
	api.AssertIsEqual(sizeBits[0], 0)
	var ones frontend.Variable = 0
	for k := 1; k < 64; k++ {
		if k > plonkMaxLogSize {
			api.AssertIsEqual(sizeBits[k], 0)
		} else {
			ones = api.Add(ones, sizeBits[k])
		}
	}
	api.AssertIsEqual(ones, 1)
	sizeEl := e.fr.FromBits(sizeBits...)
	sizeInv := e.fr.Div(e.fr.One(), sizeEl) // (Inverse's hint needs a full-limb input; FromBits gives one 64-bit limb)
	gen := decodeEl(api, bapi, e.fr, vkB[plonkOffGen:plonkOffGen+32])
	shift := decodeEl(api, bapi, e.fr, vkB[plonkOffShift:plonkOffShift+32])
	// Generator of order exactly Size: gen^(Size/2) == -1 (as the native parser checks).
	half := e.fr.One()
	acc := gen
	for k := 1; k <= plonkMaxLogSize; k++ {
		half = e.fr.Select(sizeBits[k], acc, half)
		acc = e.fr.Mul(acc, acc)
	}
	e.fr.AssertIsEqual(half, e.fr.Neg(e.fr.One()))

	g1 := func(off int) sw_bn254.G1Affine {
		return sw_emulated.AffinePoint[emparams.BN254Fp]{
			X: *decodeEl(api, bapi, e.fp, vkB[off:off+32]),
			Y: *decodeEl(api, bapi, e.fp, vkB[off+32:off+64]),
		}
	}
	g2 := func(off int) sw_bn254.G2Affine {
		var q sw_bn254.G2Affine
		// canonical G2: x.c1 | x.c0 | y.c1 | y.c0
		q.P.X = fields_bn254.E2{A1: *decodeEl(api, bapi, e.fp, vkB[off:off+32]), A0: *decodeEl(api, bapi, e.fp, vkB[off+32:off+64])}
		q.P.Y = fields_bn254.E2{A1: *decodeEl(api, bapi, e.fp, vkB[off+64:off+96]), A0: *decodeEl(api, bapi, e.fp, vkB[off+96:off+128])}
		return q
	}
	cm := func(k int) kzg.Commitment[sw_bn254.G1Affine] {
		return kzg.Commitment[sw_bn254.G1Affine]{G1El: g1(plonkOffPoints + 64*k)}
	}
	var vk plonkVK
	vk.NbPublicVariables = uint64(nPub)
	vk.CosetShift = *shift
	vk.Kzg.G1 = g1(plonkOffKzg)
	vk.Kzg.G2[0] = g2(plonkOffKzg + 64)
	vk.Kzg.G2[1] = g2(plonkOffKzg + 64 + 128)
	vk.Size = size
	vk.SizeInv = *sizeInv
	vk.Generator = *gen
	vk.S = [3]kzg.Commitment[sw_bn254.G1Affine]{cm(0), cm(1), cm(2)}
	vk.Ql, vk.Qr, vk.Qm, vk.Qo, vk.Qk = cm(3), cm(4), cm(5), cm(6), cm(7)
	// vk points enter MSMs, the transcript and the pairing: all must be on the curve (G1 has
	// cofactor 1) or (0,0), the infinity of the complete formulas (a selector commitment of a
	// circuit that never uses it); the KZG G2 points are subgroup-checked by PairingCheck.
	for _, p := range []*sw_bn254.G1Affine{&vk.S[0].G1El, &vk.S[1].G1El, &vk.S[2].G1El, &vk.Ql.G1El, &vk.Qr.G1El,
		&vk.Qm.G1El, &vk.Qo.G1El, &vk.Qk.G1El, &vk.Kzg.G1} {
		e.pairing.AssertIsOnG1(p)
	}
	// and so must the prover's points
	pf := &l.Proof
	for _, p := range []*sw_bn254.G1Affine{&pf.LRO[0].G1El, &pf.LRO[1].G1El, &pf.LRO[2].G1El, &pf.Z.G1El,
		&pf.H[0].G1El, &pf.H[1].G1El, &pf.H[2].G1El, &pf.BatchedProof.Quotient, &pf.ZShiftedOpening.Quotient} {
		e.pairing.AssertIsOnG1(p)
	}

	pubs := make([]emulated.Element[sw_bn254.ScalarField], nPub)
	for j := range pubs {
		pubs[j] = *decodeEl(api, bapi, e.fr, pubB[32*j:32*j+32])
	}
	if err := e.verifier.AssertProof(vk, l.Proof, recplonk.Witness[sw_bn254.ScalarField]{Public: pubs},
		recplonk.WithCompleteArithmetic()); err != nil {
		return nil, fmt.Errorf("plonk leaf %d: %w", i, err)
	}
	if !bind {
		return nil, nil
	}
	return statementHashScheme(api, schemePlonk, vkB, pubB), nil
}
