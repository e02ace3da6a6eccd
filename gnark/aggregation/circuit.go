// Package aggregation is Sheaf's recursive aggregation: one outer BN254 Groth16 proof that
// verifies a batch of inner BN254 Groth16 proofs (gnark or snarkjs, no Pedersen commitment)
// in-circuit and commits to the ordered list of their Sheaf statement hashes.
//
// Binding (docs/recursion.md has the measurements behind the choice): every inner vk and its
// public inputs enter the circuit as BYTES in Sheaf's canonical encoding. The circuit decodes
// the curve points and scalars from exactly those bytes (asserting canonical encodings), verifies
// the proof against them, and recomputes the Sheaf statement hash with in-circuit keccak:
//
//	vk_hash   = keccak("sheaf/vk" || 0x01 || canonical_vk)
//	pubs_hash = keccak(pub_0 || ... || pub_{n-1})
//	leaf      = keccak("sheaf/statement" || 0x01 || 0x01 || vk_hash || pubs_hash)
//
// The outer public inputs are [root >> 128, root mod 2^128, count], where root is the registry's
// keccak Merkle root (contracts/src/Merkle.sol: Substrate binary_merkle_tree, leaves hashed first,
// odd last node promoted) over leaf_0..leaf_{count-1}; this is exactly what
// contracts/src/Groth16AggregationAdapter.sol feeds gnark's exported verifier. Slots count..N-1
// are padding: the prover fills them with copies of a real leaf (still fully verified) and they
// are outside the tree.
package aggregation

import (
	"fmt"
	"math/big"

	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/algebra/emulated/fields_bn254"
	"github.com/consensys/gnark/std/algebra/emulated/sw_bn254"
	"github.com/consensys/gnark/std/algebra/emulated/sw_emulated"
	"github.com/consensys/gnark/std/hash/sha3"
	"github.com/consensys/gnark/std/math/cmp"
	"github.com/consensys/gnark/std/math/emulated"
	"github.com/consensys/gnark/std/math/emulated/emparams"
	"github.com/consensys/gnark/std/math/uints"
	recplonk "github.com/consensys/gnark/std/recursion/plonk"
)

const (
	// canonical Groth16 vk: alpha1(64) | beta2(128) | gamma2(128) | delta2(128) | u32 n_ic | IC[i](64)
	vkHeaderLen = 64 + 3*128 + 4
	proofLen    = 256
	scalarLen   = 32

	// Scheme byte of Groth16 in the Sheaf statement (normalizers/statement.py).
	schemeGroth16   = 1
	envelopeVersion = 1
)

var (
	vkTag        = []byte("sheaf/vk")
	statementTag = []byte("sheaf/statement")
)

// VKLen is the length of a canonical Groth16 vk with nPub public inputs.
func VKLen(nPub int) int { return vkHeaderLen + 64*(nPub+1) }

// Shape fixes what one compiled aggregation circuit accepts: Batch slots, each proof with
// exactly NPub public inputs; the last Plonk of them are gnark PLONK slots (recursion transcript,
// see plonk_slot.go), the others Groth16 slots. Plonk = 0 is the Groth16-only circuit (its
// compiled form, hence its circuit hash and cached keys, is unchanged by the PLONK support).
type Shape struct {
	Batch int `json:"batch"`
	NPub  int `json:"npub"`
	Plonk int `json:"plonk,omitempty"`
}

// Groth16Slots is the number of Groth16 slots.
func (s Shape) Groth16Slots() int { return s.Batch - s.Plonk }

func (s Shape) validate() error {
	if s.Batch < 1 || s.Batch > 64 {
		return fmt.Errorf("batch must be in [1, 64], got %d", s.Batch)
	}
	if s.NPub < 1 || s.NPub > 32 {
		return fmt.Errorf("npub must be in [1, 32], got %d", s.NPub)
	}
	if s.Plonk < 0 || s.Plonk > s.Batch {
		return fmt.Errorf("plonk slots must be in [0, batch=%d], got %d", s.Batch, s.Plonk)
	}
	return nil
}

// LeafWitness is one inner proof slot. VK and Pubs are byte witnesses (each a value in [0,255],
// range-checked in-circuit); the proof points need no byte form because they are not hashed.
type LeafWitness struct {
	VK   []frontend.Variable
	Pubs []frontend.Variable
	Ar   sw_bn254.G1Affine
	Krs  sw_bn254.G1Affine
	Bs   sw_bn254.G2Affine
}

// Circuit is the outer aggregation circuit.
type Circuit struct {
	RootHi frontend.Variable `gnark:",public"`
	RootLo frontend.Variable `gnark:",public"`
	Count  frontend.Variable `gnark:",public"`
	Leaves []LeafWitness     // Groth16 slots
	// PLONK slots and, when both kinds exist, CountG = the number of real Groth16 leaves (a
	// one-element slice so that Plonk = 0 compiles to exactly the Groth16-only circuit).
	PlonkLeaves []PlonkLeafWitness
	CountG      []frontend.Variable

	// noBinding drops the keccak statement binding (measurement only: NOT sound, the vk would
	// be an unconstrained witness). Never set outside measurements.
	noBinding bool
}

// NewCircuit returns the placeholder circuit of a shape, for compiling.
func NewCircuit(s Shape) *Circuit {
	c := &Circuit{Leaves: make([]LeafWitness, s.Groth16Slots())}
	for i := range c.Leaves {
		c.Leaves[i].VK = make([]frontend.Variable, VKLen(s.NPub))
		c.Leaves[i].Pubs = make([]frontend.Variable, s.NPub*scalarLen)
	}
	if s.Plonk > 0 {
		c.PlonkLeaves = make([]PlonkLeafWitness, s.Plonk)
		for i := range c.PlonkLeaves {
			c.PlonkLeaves[i] = newPlonkLeafWitness(s.NPub)
		}
		if len(c.Leaves) > 0 {
			c.CountG = make([]frontend.Variable, 1)
		}
	}
	return c
}

type (
	fpEl = emulated.Element[emparams.BN254Fp]
	frEl = emulated.Element[emparams.BN254Fr]
)

func (c *Circuit) Define(api frontend.API) error {
	n := len(c.Leaves) + len(c.PlonkLeaves)
	if n == 0 {
		return fmt.Errorf("empty batch")
	}
	bapi, err := uints.NewBytes(api)
	if err != nil {
		return err
	}
	fp, err := emulated.NewField[emparams.BN254Fp](api)
	if err != nil {
		return err
	}
	fr, err := emulated.NewField[emparams.BN254Fr](api)
	if err != nil {
		return err
	}
	curve, err := sw_emulated.New[emparams.BN254Fp, emparams.BN254Fr](api, sw_emulated.GetBN254Params())
	if err != nil {
		return err
	}
	pairing, err := sw_bn254.NewPairing(api)
	if err != nil {
		return err
	}

	leafHashes := make([]uints.U8, 0, 32*n)
	for i := range c.Leaves {
		l := &c.Leaves[i]
		nPub := len(l.Pubs) / scalarLen
		if len(l.Pubs)%scalarLen != 0 || nPub == 0 || len(l.VK) != VKLen(nPub) {
			return fmt.Errorf("leaf %d: inconsistent witness sizes (vk %d bytes, pubs %d bytes)", i, len(l.VK), len(l.Pubs))
		}
		vkB, pubB := byteWitnesses(bapi, l.VK), byteWitnesses(bapi, l.Pubs)
		// n_ic is part of the hashed bytes: pin it to the compiled shape
		nic := uint32(nPub + 1)
		for j, want := range []byte{byte(nic >> 24), byte(nic >> 16), byte(nic >> 8), byte(nic)} {
			api.AssertIsEqual(bapi.ValueUnchecked(vkB[vkHeaderLen-4+j]), want)
		}

		coord := func(off int) *fpEl { return decodeEl(api, bapi, fp, vkB[off:off+32]) }
		g1 := func(off int) *sw_emulated.AffinePoint[emparams.BN254Fp] {
			return &sw_emulated.AffinePoint[emparams.BN254Fp]{X: *coord(off), Y: *coord(off + 32)}
		}
		g2 := func(off int) *sw_bn254.G2Affine {
			var q sw_bn254.G2Affine
			// canonical G2: x.c1 | x.c0 | y.c1 | y.c0
			q.P.X = fields_bn254.E2{A1: *coord(off), A0: *coord(off + 32)}
			q.P.Y = fields_bn254.E2{A1: *coord(off + 64), A0: *coord(off + 96)}
			return &q
		}
		alpha := g1(0)
		beta := g2(64)
		gamma := g2(64 + 128)
		delta := g2(64 + 256)
		ic := make([]*sw_emulated.AffinePoint[emparams.BN254Fp], nPub+1)
		for j := range ic {
			ic[j] = g1(vkHeaderLen + 64*j)
		}
		scalars := make([]*frEl, nPub)
		for j := range scalars {
			scalars[j] = decodeEl(api, bapi, fr, pubB[32*j:32*j+32])
		}

		// Groth16: e(A,B) = e(alpha,beta) e(K,gamma) e(C,delta), K = IC0 + sum x_j IC_j.
		// alpha/beta are used directly (not a precomputed e(alpha,beta) witness) so that the
		// pairing really uses the hashed vk.
		kSum, err := curve.MultiScalarMul(ic[1:], scalars)
		if err != nil {
			return err
		}
		kSum = curve.AddUnified(kSum, ic[0])
		pairing.AssertIsOnG1(&l.Ar)
		pairing.AssertIsOnG1(&l.Krs)
		// PairingCheck checks its G2 arguments are in G2 (Bs from the prover, beta/gamma/delta
		// from the vk); G1 has cofactor 1 on BN254 so on-curve suffices for A and C.
		if err := pairing.PairingCheck(
			[]*sw_bn254.G1Affine{&l.Ar, curve.Neg(alpha), curve.Neg(kSum), curve.Neg(&l.Krs)},
			[]*sw_bn254.G2Affine{&l.Bs, beta, gamma, delta},
		); err != nil {
			return fmt.Errorf("leaf %d: %w", i, err)
		}
		if c.noBinding {
			continue
		}
		leafHashes = append(leafHashes, statementHashScheme(api, schemeGroth16, vkB, pubB)...)
	}
	if len(c.PlonkLeaves) > 0 {
		verifier, err := recplonk.NewVerifier[sw_bn254.ScalarField, sw_bn254.G1Affine, sw_bn254.G2Affine, sw_bn254.GTEl](api)
		if err != nil {
			return err
		}
		env := &plonkEnv{api: api, bapi: bapi, fp: fp, fr: fr, pairing: pairing, verifier: verifier}
		plonkHashes := make([]uints.U8, 0, 32*len(c.PlonkLeaves))
		for i := range c.PlonkLeaves {
			h, err := env.verifyPlonkSlot(i, &c.PlonkLeaves[i], !c.noBinding)
			if err != nil {
				return err
			}
			plonkHashes = append(plonkHashes, h...)
		}
		if c.noBinding {
			return nil
		}
		leafHashes = c.interleave(api, bapi, leafHashes, plonkHashes)
	}
	if c.noBinding {
		return nil
	}

	// 1 <= count <= n
	api.AssertIsDifferent(c.Count, 0)
	api.AssertIsLessOrEqual(c.Count, n)
	root := merkleRoot(api, bapi, leafHashes, c.Count, n)
	api.AssertIsEqual(c.RootHi, packBE(api, bapi, root[:16]))
	api.AssertIsEqual(c.RootLo, packBE(api, bapi, root[16:]))
	return nil
}

// interleave returns the tree's leaf list when both kinds of slot exist: the first CountG
// Groth16 leaves, then the PLONK leaves, so real leaves are contiguous whatever the mix and the
// padding slots of both kinds are outside the first Count positions. CountG is a free witness in
// [0, #Groth16 slots] with Count - CountG in [0, #PLONK slots]: it only chooses which verified
// leaves enter, never lets an unverified one in.
func (c *Circuit) interleave(api frontend.API, bapi *uints.Bytes, g16, pl []uints.U8) []uints.U8 {
	nG, nP := len(g16)/32, len(pl)/32
	if nG == 0 {
		return pl
	}
	g := c.CountG[0]
	api.AssertIsLessOrEqual(g, nG)
	api.AssertIsLessOrEqual(g, c.Count)
	api.AssertIsLessOrEqual(api.Sub(c.Count, g), nP)
	cmpr := cmp.NewBoundedComparator(api, big.NewInt(int64(2*(nG+nP)+2)), false)
	out := make([]uints.U8, 0, len(g16)+len(pl))
	for j := 0; j < nG+nP; j++ {
		// PLONK candidate: pl[j - g] when 0 <= j-g < nP (else pl[0]: a position >= Count)
		cand := pl[0:32]
		for i := 1; i < nP; i++ {
			hit := api.IsZero(api.Sub(j-i, g))
			next := make([]uints.U8, 32)
			for b := range next {
				next[b] = bapi.Select(hit, pl[32*i+b], cand[b])
			}
			cand = next
		}
		if j < nG {
			isG := cmpr.IsLess(j, g)
			next := make([]uints.U8, 32)
			for b := range next {
				next[b] = bapi.Select(isG, g16[32*j+b], cand[b])
			}
			cand = next
		}
		out = append(out, cand...)
	}
	return out
}

// merkleRoot is Merkle.root over the first count of the n 32-byte leaves (count in [1, n],
// checked by the caller). Every node of the n-leaf tree is computed; node j of level k exists in
// the count-leaf tree iff j*2^k < count, and a node whose right child does not exist is its left
// child promoted unhashed, which also carries the count-leaf root up to the fixed top level.
func merkleRoot(api frontend.API, bapi *uints.Bytes, leaves []uints.U8, count frontend.Variable, n int) []uints.U8 {
	cmpr := cmp.NewBoundedComparator(api, big.NewInt(int64(2*n+2)), false)
	level := make([][]uints.U8, n)
	for j := range level {
		level[j] = keccak(api, leaves[32*j:32*j+32])
	}
	for k := 1; len(level) > 1; k++ {
		next := make([][]uints.U8, (len(level)+1)/2)
		for j := range next {
			left := level[2*j]
			if 2*j+1 >= len(level) {
				next[j] = left // statically absent right child
				continue
			}
			h := keccak(api, left, level[2*j+1])
			rightExists := cmpr.IsLess((2*j+1)<<(k-1), count)
			node := make([]uints.U8, 32)
			for b := range node {
				node[b] = bapi.Select(rightExists, h[b], left[b])
			}
			next[j] = node
		}
		level = next
	}
	return level[0]
}

// decodeEl turns 32 big-endian bytes (already range-checked U8s) into an emulated element and
// asserts the encoding is canonical (< modulus), so one vk or scalar has exactly one byte form.
func decodeEl[T emulated.FieldParams](api frontend.API, bapi *uints.Bytes, f *emulated.Field[T], b []uints.U8) *emulated.Element[T] {
	var p T
	if p.NbLimbs() != 4 || p.BitsPerLimb() != 64 {
		panic("aggregation: expected 4x64-bit limbs")
	}
	limbs := make([]frontend.Variable, 4)
	for k := 0; k < 4; k++ {
		// limb k (little-endian limb order) = bytes [32-8(k+1), 32-8k) big-endian
		limbs[k] = packBE(api, bapi, b[32-8*(k+1):32-8*k])
	}
	e := f.UnsafeFromLimbs(limbs) // sound: each limb is a combination of 8 range-checked bytes
	f.AssertIsInRange(e)
	return e
}

// byteWitnesses range-checks byte witnesses (each must be in [0, 255]).
func byteWitnesses(bapi *uints.Bytes, vs []frontend.Variable) []uints.U8 {
	out := make([]uints.U8, len(vs))
	for j := range vs {
		out[j] = bapi.ValueOf(vs[j])
	}
	return out
}

func packBE(api frontend.API, bapi *uints.Bytes, b []uints.U8) frontend.Variable {
	var acc frontend.Variable = 0
	for _, x := range b {
		acc = api.Add(api.Mul(acc, 256), bapi.ValueUnchecked(x))
	}
	return acc
}

func keccak(api frontend.API, parts ...[]uints.U8) []uints.U8 {
	h, err := sha3.NewLegacyKeccak256(api)
	if err != nil {
		panic(err)
	}
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum()
}

// statementHashScheme is normalizers/statement.py's statement_hash, in-circuit, over a
// canonical vk of the given scheme.
func statementHashScheme(api frontend.API, scheme uint8, vk, pubs []uints.U8) []uints.U8 {
	vkHash := keccak(api, uints.NewU8Array(vkTag), []uints.U8{uints.NewU8(scheme)}, vk)
	pubsHash := keccak(api, pubs)
	return keccak(api, uints.NewU8Array(statementTag),
		[]uints.U8{uints.NewU8(envelopeVersion), uints.NewU8(scheme)}, vkHash, pubsHash)
}
