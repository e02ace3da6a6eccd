package tree

import (
	"fmt"

	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/algebra/algopts"
	"github.com/consensys/gnark/std/algebra/emulated/fields_bn254"
	"github.com/consensys/gnark/std/algebra/emulated/sw_bn254"
	"github.com/consensys/gnark/std/algebra/emulated/sw_emulated"
	"github.com/consensys/gnark/std/math/emulated"
	"github.com/consensys/gnark/std/math/emulated/emparams"
	"github.com/consensys/gnark/std/math/uints"
	"github.com/sheaf-zk/sheaf/gnark/aggregation"
	xsha3 "golang.org/x/crypto/sha3"
)

// LeafShape fixes one compiled leaf circuit: K proof slots of one vk with NPub public inputs.
type LeafShape struct {
	K    int `json:"k"`
	NPub int `json:"npub"`
}

func (s LeafShape) validate() error {
	if s.K < 1 || s.K > 64 || s.K&(s.K-1) != 0 {
		return fmt.Errorf("k must be a power of two in [1, 64], got %d", s.K)
	}
	if s.NPub < 1 || s.NPub > 32 {
		return fmt.Errorf("npub must be in [1, 32], got %d", s.NPub)
	}
	return nil
}

// LeafSlot is one inner proof of the leaf's vk: its public inputs as bytes (hashed) and its points.
type LeafSlot struct {
	Pubs []frontend.Variable
	Ar   sw_bn254.G1Affine
	Krs  sw_bn254.G1Affine
	Bs   sw_bn254.G2Affine
}

// LeafCircuit verifies K Groth16 proofs (no Pedersen commitment: gnark or snarkjs) of ONE vk and
// outputs the Merkle root of the first Count statement hashes. The vk is a byte witness in
// Sheaf's canonical encoding, decoded and hashed ONCE; the K Groth16 equations are checked as
//
//	prod_i e(r_i A_i, B_i) * e(-(sum r_i) alpha, beta) * e(-sum_i r_i K_i, gamma) * e(-sum r_i C_i, delta) == 1
//
// with r_0 = 1 and r_1.. independent 128-bit Fiat-Shamir challenges over the vk, every proof and
// every public input (sum_i r_i K_i = (sum r_i) IC_0 + sum_j (sum_i r_i x_ij) IC_j: one MSM over
// the vk's IC points). Slots Count..K-1 hold verified copies of a real slot, outside the tree.
// One circuit per (K, NPub), whatever the user vk: its own vk is what the merge level fixes.
type LeafCircuit struct {
	RootHi frontend.Variable `gnark:",public"`
	RootLo frontend.Variable `gnark:",public"`
	Count  frontend.Variable `gnark:",public"`
	VK     []frontend.Variable
	Slots  []LeafSlot
}

// NewLeafCircuit is the placeholder of a shape, for compiling.
func NewLeafCircuit(s LeafShape) (*LeafCircuit, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	c := &LeafCircuit{VK: make([]frontend.Variable, aggregation.VKLen(s.NPub)), Slots: make([]LeafSlot, s.K)}
	for i := range c.Slots {
		c.Slots[i].Pubs = make([]frontend.Variable, 32*s.NPub)
	}
	return c, nil
}

func (c *LeafCircuit) Define(api frontend.API) error {
	k := len(c.Slots)
	if k == 0 {
		return fmt.Errorf("no slots")
	}
	nPub := len(c.Slots[0].Pubs) / 32
	if len(c.VK) != aggregation.VKLen(nPub) {
		return fmt.Errorf("vk witness is %d bytes, want %d", len(c.VK), aggregation.VKLen(nPub))
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

	// The vk, once: bytes -> points, n_ic pinned to the shape (it is hashed).
	vkB := aggregation.ByteWitnesses(bapi, c.VK)
	hl := aggregation.VKHeaderLen
	nic := uint32(nPub + 1)
	for j, want := range []byte{byte(nic >> 24), byte(nic >> 16), byte(nic >> 8), byte(nic)} {
		api.AssertIsEqual(bapi.ValueUnchecked(vkB[hl-4+j]), want)
	}
	coord := func(off int) *fpEl { return aggregation.DecodeEl(api, bapi, fp, vkB[off:off+32]) }
	g1 := func(off int) *sw_bn254.G1Affine {
		p := &sw_bn254.G1Affine{X: *coord(off), Y: *coord(off + 32)}
		pairing.AssertIsOnG1(p)
		return p
	}
	g2 := func(off int) *sw_bn254.G2Affine {
		var q sw_bn254.G2Affine // canonical G2: x.c1 | x.c0 | y.c1 | y.c0
		q.P.X = fields_bn254.E2{A1: *coord(off), A0: *coord(off + 32)}
		q.P.Y = fields_bn254.E2{A1: *coord(off + 64), A0: *coord(off + 96)}
		return &q
	}
	alpha, beta, gamma, delta := g1(0), g2(64), g2(64+128), g2(64+256)
	ic := make([]*sw_bn254.G1Affine, nPub+1)
	for j := range ic {
		ic[j] = g1(hl + 64*j)
	}

	// Slots: public inputs as bytes (hashed) and scalars (verified) from the same wires.
	transcript := packBytes(api, bapi, vkB)
	pubB := make([][]uints.U8, k)
	xs := make([][]*frEl, k)
	var limbs []frontend.Variable
	for i := range c.Slots {
		s := &c.Slots[i]
		if len(s.Pubs) != 32*nPub {
			return fmt.Errorf("slot %d: %d public input bytes, want %d", i, len(s.Pubs), 32*nPub)
		}
		pubB[i] = aggregation.ByteWitnesses(bapi, s.Pubs)
		transcript = append(transcript, packBytes(api, bapi, pubB[i])...)
		xs[i] = make([]*frEl, nPub)
		for j := range xs[i] {
			xs[i][j] = aggregation.DecodeEl(api, bapi, fr, pubB[i][32*j:32*j+32])
		}
		pairing.AssertIsOnG1(&s.Ar)
		pairing.AssertIsOnG1(&s.Krs)
		for _, e := range []*fpEl{&s.Ar.X, &s.Ar.Y, &s.Krs.X, &s.Krs.Y, &s.Bs.P.X.A0, &s.Bs.P.X.A1, &s.Bs.P.Y.A0, &s.Bs.P.Y.A1} {
			limbs = append(limbs, e.Limbs...)
		}
	}
	// Statement hashes (normalizers/statement.py) with ONE vk hash, then Merkle.root of Count
	// (before the pairing, so a wrong root or count fails fast in tests).
	vkHash := aggregation.Keccak(api, uints.NewU8Array(aggregation.VKTag), []uints.U8{uints.NewU8(aggregation.SchemeByteGroth16)}, vkB)
	hashes := make([]uints.U8, 0, 32*k)
	for i := range c.Slots {
		ph := aggregation.Keccak(api, pubB[i])
		hashes = append(hashes, aggregation.Keccak(api, uints.NewU8Array(aggregation.StatementTag),
			[]uints.U8{uints.NewU8(aggregation.EnvelopeVersion), uints.NewU8(aggregation.SchemeByteGroth16)}, vkHash, ph)...)
	}
	api.AssertIsDifferent(c.Count, 0)
	api.AssertIsLessOrEqual(c.Count, k)
	root := aggregation.MerkleRootCircuit(api, bapi, hashes, c.Count, k)
	api.AssertIsEqual(c.RootHi, aggregation.PackBE(api, bapi, root[:16]))
	api.AssertIsEqual(c.RootLo, aggregation.PackBE(api, bapi, root[16:]))
	transcript = append(transcript, packLimbs(api, limbs)...)
	r, err := challenges(api, fr, transcript, k-1)
	if err != nil {
		return err
	}
	short := algopts.WithNbScalarBits(128)
	complete := algopts.WithCompleteArithmetic()

	// RLC: sum r_i (over all slots, r_0 = 1) and the per-IC scalars.
	rSum := fr.One()
	icSc := make([]*frEl, nPub+1)
	for j := 0; j < nPub; j++ {
		icSc[j+1] = xs[0][j]
	}
	for i := 1; i < k; i++ {
		rSum = fr.Add(rSum, r[i-1])
		for j := 0; j < nPub; j++ {
			icSc[j+1] = fr.Add(icSc[j+1], fr.Mul(r[i-1], xs[i][j]))
		}
	}
	icSc[0] = rSum
	kAgg, err := curve.MultiScalarMul(ic, icSc, complete)
	if err != nil {
		return err
	}
	g1s := []*sw_bn254.G1Affine{&c.Slots[0].Ar}
	g2s := []*sw_bn254.G2Affine{&c.Slots[0].Bs}
	cAgg := &c.Slots[0].Krs
	if k > 1 {
		as := make([]*sw_bn254.G1Affine, k-1)
		cs := make([]*sw_bn254.G1Affine, k-1)
		for i := 1; i < k; i++ {
			as[i-1], cs[i-1] = &c.Slots[i].Ar, &c.Slots[i].Krs
		}
		for i := 1; i < k; i++ {
			g1s = append(g1s, curve.ScalarMul(as[i-1], r[i-1], short, complete))
			g2s = append(g2s, &c.Slots[i].Bs)
		}
		cm, err := curve.MultiScalarMul(cs, r, short, complete)
		if err != nil {
			return err
		}
		cAgg = curve.AddUnified(cAgg, cm)
	}
	aAgg := curve.ScalarMul(alpha, rSum, complete)
	g1s = append(g1s, curve.Neg(aAgg), curve.Neg(kAgg), curve.Neg(cAgg))
	g2s = append(g2s, beta, gamma, delta)
	// PairingCheck asserts every G2 argument is in G2 (B_i and the vk's beta/gamma/delta).
	if err := pairing.PairingCheck(g1s, g2s); err != nil {
		return err
	}

	return nil
}

// AssignLeaf validates 1..K Groth16 leaves of ONE vk (same canonical vk bytes, NPub public
// inputs each), and returns the full witness and the node (root, count) it proves. Missing slots
// are copies of the last leaf (verified, outside the tree).
func AssignLeaf(s LeafShape, leaves []aggregation.Leaf) (*LeafCircuit, Node, error) {
	if err := s.validate(); err != nil {
		return nil, Node{}, &aggregation.Error{Code: aggregation.CodeBadShape, Field: "shape", Message: err.Error()}
	}
	if len(leaves) == 0 || len(leaves) > s.K {
		return nil, Node{}, &aggregation.Error{Code: aggregation.CodeBadBatch, Field: "leaves",
			Message: fmt.Sprintf("need 1..%d leaves, got %d", s.K, len(leaves))}
	}
	c, _ := NewLeafCircuit(s)
	hashes := make([][]byte, len(leaves))
	for i := range leaves {
		l := &leaves[i]
		if l.IsPlonk() {
			return nil, Node{}, &aggregation.Error{Code: aggregation.CodeBadBatch, Field: fmt.Sprintf("leaves[%d]", i), Message: "a leaf circuit takes Groth16 proofs only"}
		}
		if string(l.VK) != string(leaves[0].VK) {
			return nil, Node{}, &aggregation.Error{Code: aggregation.CodeBadBatch, Field: fmt.Sprintf("leaves[%d].vk", i), Message: "every proof of a leaf job must have the same vk"}
		}
		if len(l.Pubs) != s.NPub {
			return nil, Node{}, &aggregation.Error{Code: aggregation.CodeBadBatch, Field: fmt.Sprintf("leaves[%d].public_inputs", i),
				Message: fmt.Sprintf("this circuit takes exactly %d public inputs, got %d", s.NPub, len(l.Pubs))}
		}
		if _, err := aggregation.ParseGroth16(i, l); err != nil {
			return nil, Node{}, err
		}
		hashes[i] = l.StatementHash()
	}
	for j, b := range leaves[0].VK {
		c.VK[j] = b
	}
	for i := range c.Slots {
		l := &leaves[min(i, len(leaves)-1)]
		p, _ := aggregation.ParseGroth16(i, l)
		assignSlot(&c.Slots[i], l, p)
	}
	var n Node
	copy(n.Root[:], aggregation.MerkleRoot(hashes))
	n.Count = uint64(len(leaves))
	pub := n.Public()
	c.RootHi, c.RootLo, c.Count = pub[0], pub[1], pub[2]
	return c, n, nil
}

func assignSlot(w *LeafSlot, l *aggregation.Leaf, p aggregation.Groth16Points) {
	k := 0
	for _, pb := range l.Pubs {
		for _, b := range pb {
			w.Pubs[k] = b
			k++
		}
	}
	w.Ar = sw_bn254.NewG1Affine(p.A)
	w.Krs = sw_bn254.NewG1Affine(p.C)
	w.Bs = sw_bn254.NewG2Affine(p.B)
}

func keccak256(parts ...[]byte) []byte {
	h := xsha3.NewLegacyKeccak256()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}
