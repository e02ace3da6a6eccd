package tree

import (
	"fmt"
	"math/big"

	bn254 "github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark/backend/groth16"
	groth16bn254 "github.com/consensys/gnark/backend/groth16/bn254"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/algebra/algopts"
	"github.com/consensys/gnark/std/algebra/emulated/sw_bn254"
	"github.com/consensys/gnark/std/algebra/emulated/sw_emulated"
	"github.com/consensys/gnark/std/commitments/pedersen"
	"github.com/consensys/gnark/std/math/cmp"
	"github.com/consensys/gnark/std/math/emulated"
	"github.com/consensys/gnark/std/math/emulated/emparams"
	"github.com/consensys/gnark/std/math/uints"
	"github.com/consensys/gnark/std/recursion"
	stdgroth16 "github.com/consensys/gnark/std/recursion/groth16"
	"github.com/sheaf-zk/sheaf/gnark/aggregation"
)

type (
	proofT = stdgroth16.Proof[sw_bn254.G1Affine, sw_bn254.G2Affine]
	vkT    = stdgroth16.VerifyingKey[sw_bn254.G1Affine, sw_bn254.G2Affine, sw_bn254.GTEl]
)

// MergeCircuit verifies F child proofs under ONE fixed child vk (a leaf circuit's or the
// previous merge level's) and outputs their parent node:
//
//	Present = m in [1, F]: children 0..m-1 are in the tree, m..F-1 are verified copies outside it
//	count_i == ChildCap for every present child but the last (only the last node may be partial)
//	root   = Merkle.sol's fold of root_0..root_{m-1} (pairs hashed, odd last promoted)
//	count  = sum of the present counts
//
// which is Merkle.root of the children's concatenated leaves (docs/recursion.md: the tree
// composes along full power-of-two blocks). All F Groth16 equations and all F commitment PoKs
// are checked in ONE (F+5)-pair PairingCheck with independent 128-bit Fiat-Shamir weights
// (r_0 = 1, r_1.. for the equations, s_i for the PoKs); the child vk is a constant
// (precomputed G2 lines, fixed-base IC MSM).
type MergeCircuit struct {
	Children []proofT
	Pubs     [][NbPublic]frontend.Variable // [root_hi, root_lo, count] of each child, natively
	Present  frontend.Variable
	RootHi   frontend.Variable `gnark:",public"`
	RootLo   frontend.Variable `gnark:",public"`
	Count    frontend.Variable `gnark:",public"`

	vk       vkT
	alpha    bn254.G1Affine
	beta     bn254.G2Affine
	childCap int
}

// NewMergeCircuit fixes the child vk (a tree proof's vk: 3 public inputs, exactly one BSB22
// commitment over no public input), the fan-in F (a power of two >= 2) and the child capacity
// (leaves under one full child: K at the first merge level, times F per level).
func NewMergeCircuit(childVK groth16.VerifyingKey, fanIn, childCap int) (*MergeCircuit, error) {
	vk, ok := childVK.(*groth16bn254.VerifyingKey)
	if !ok {
		return nil, fmt.Errorf("child vk: expected a BN254 Groth16 vk, got %T", childVK)
	}
	if fanIn < 2 || fanIn > 64 || fanIn&(fanIn-1) != 0 {
		return nil, fmt.Errorf("fan-in must be a power of two in [2, 64], got %d", fanIn)
	}
	if childCap < 1 || childCap&(childCap-1) != 0 {
		return nil, fmt.Errorf("child capacity %d is not a power of two", childCap)
	}
	if len(vk.PublicAndCommitmentCommitted) != 1 || len(vk.PublicAndCommitmentCommitted[0]) != 0 || len(vk.G1.K) != NbPublic+2 {
		return nil, fmt.Errorf("child vk: want %d public inputs and one commitment over no public input, got %d K points, %d commitments",
			NbPublic, len(vk.G1.K), len(vk.PublicAndCommitmentCommitted))
	}
	fixed, err := stdgroth16.ValueOfVerifyingKeyFixed[sw_bn254.G1Affine, sw_bn254.G2Affine, sw_bn254.GTEl](childVK)
	if err != nil {
		return nil, err
	}
	c := &MergeCircuit{vk: fixed, alpha: vk.G1.Alpha, beta: vk.G2.Beta, childCap: childCap,
		Children: make([]proofT, fanIn), Pubs: make([][NbPublic]frontend.Variable, fanIn)}
	for i := range c.Children {
		c.Children[i].Commitments = make([]pedersen.Commitment[sw_bn254.G1Affine], 1)
	}
	return c, nil
}

// FanIn is F.
func (c *MergeCircuit) FanIn() int { return len(c.Children) }

// Child is one child proof with the node it proves.
type Child struct {
	Proof groth16.Proof
	Node  Node
}

// Assign builds a witness over 1..F children (in tree order) and returns the parent node.
// Missing children are copies of the last one (verified, outside the tree).
func (c *MergeCircuit) Assign(children []Child) (*MergeCircuit, Node, error) {
	f := len(c.Children)
	if len(children) == 0 || len(children) > f {
		return nil, Node{}, &aggregation.Error{Code: aggregation.CodeBadBatch, Field: "children",
			Message: fmt.Sprintf("need 1..%d children, got %d", f, len(children))}
	}
	nodes := make([]Node, len(children))
	for i := range children {
		nodes[i] = children[i].Node
		if i+1 < len(children) && nodes[i].Count != uint64(c.childCap) {
			return nil, Node{}, &aggregation.Error{Code: aggregation.CodeBadBatch, Field: fmt.Sprintf("children[%d]", i),
				Message: fmt.Sprintf("only the last child may be partial: count %d, full is %d", nodes[i].Count, c.childCap)}
		}
	}
	// Only exported (witness) fields: the fixed vk lives in the circuit definition.
	a := &MergeCircuit{Children: make([]proofT, f), Pubs: make([][NbPublic]frontend.Variable, f), Present: len(children)}
	for i := 0; i < f; i++ {
		ch := children[min(i, len(children)-1)]
		p, err := stdgroth16.ValueOfProof[sw_bn254.G1Affine, sw_bn254.G2Affine](ch.Proof)
		if err != nil {
			return nil, Node{}, &aggregation.Error{Code: aggregation.CodeBadBatch, Field: fmt.Sprintf("children[%d].proof", i), Message: err.Error()}
		}
		a.Children[i] = p
		pub := ch.Node.Public()
		a.Pubs[i] = [NbPublic]frontend.Variable{pub[0], pub[1], pub[2]}
	}
	parent := FoldNodes(nodes)
	pub := parent.Public()
	a.RootHi, a.RootLo, a.Count = pub[0], pub[1], pub[2]
	return a, parent, nil
}

func (c *MergeCircuit) Define(api frontend.API) error {
	f := len(c.Children)
	bapi, err := uints.NewBytes(api)
	if err != nil {
		return err
	}
	fr, err := emulated.NewField[emparams.BN254Fr](api)
	if err != nil {
		return err
	}
	countBits := 1
	for 1<<countBits <= c.childCap {
		countBits++
	}
	// Present in [1, F]; child i is in the tree iff i < Present.
	api.AssertIsDifferent(c.Present, 0)
	api.AssertIsLessOrEqual(c.Present, f)
	cmpr := cmp.NewBoundedComparator(api, big.NewInt(int64(2*f+2)), false)

	pubs := make([][]*frEl, f)
	roots := make([][]uints.U8, f)
	var count frontend.Variable = 0
	for i, p := range c.Pubs {
		hi := api.ToBinary(p[0], 128)
		lo := api.ToBinary(p[1], 128)
		cnt := api.ToBinary(p[2], countBits)
		pubs[i] = []*frEl{fr.FromBits(hi...), fr.FromBits(lo...), fr.FromBits(cnt...)}
		roots[i] = append(beBytes(api, bapi, hi), beBytes(api, bapi, lo)...)
		in := cmpr.IsLess(i, c.Present)
		count = api.Add(count, api.Mul(in, p[2]))
		if i+1 < f { // a present child followed by a present one must be full
			api.AssertIsEqual(api.Mul(cmpr.IsLess(i+1, c.Present), api.Sub(p[2], c.childCap)), 0)
		}
	}
	api.AssertIsEqual(c.Count, count)
	root := foldRoots(api, bapi, roots, c.Present)
	api.AssertIsEqual(c.RootHi, aggregation.PackBE(api, bapi, root[:16]))
	api.AssertIsEqual(c.RootLo, aggregation.PackBE(api, bapi, root[16:]))
	return c.assertBatched(api, fr, pubs)
}

// assertBatched: with K_i = IC0 + sum_j x_ij IC_j + h_i IC_4 + D_i (h_i the commitment's
// hash-to-field), weights r_0 = 1, r_i, s_i,
//
//	prod_i e(r_i A_i, B_i) e(-(sum r_i) alpha, beta) e(sum r_i K_i, -gamma) e(sum r_i C_i, -delta)
//	  e(sum s_i D_i, -G/sigma) e(sum s_i P_i, G) == 1
func (c *MergeCircuit) assertBatched(api frontend.API, fr *emulated.Field[emparams.BN254Fr], pubs [][]*frEl) error {
	f := len(c.Children)
	curve, err := sw_emulated.New[emparams.BN254Fp, emparams.BN254Fr](api, sw_emulated.GetBN254Params())
	if err != nil {
		return err
	}
	pairing, err := sw_bn254.NewPairing(api)
	if err != nil {
		return err
	}
	var limbs []frontend.Variable
	addG1 := func(p *sw_bn254.G1Affine) { limbs = append(limbs, p.X.Limbs...); limbs = append(limbs, p.Y.Limbs...) }
	for i := range c.Children {
		p := &c.Children[i]
		addG1(&p.Ar)
		addG1(&p.Krs)
		addG1(&p.Commitments[0].G1El)
		addG1(&p.CommitmentPok.G1El)
		for _, e := range []*fpEl{&p.Bs.P.X.A0, &p.Bs.P.X.A1, &p.Bs.P.Y.A0, &p.Bs.P.Y.A1} {
			limbs = append(limbs, e.Limbs...)
		}
		for _, x := range pubs[i] {
			limbs = append(limbs, x.Limbs...)
		}
		pairing.AssertIsOnG1(&p.Ar)
		pairing.AssertIsOnG1(&p.Krs)
		pairing.AssertIsOnG1(&p.Commitments[0].G1El)
		pairing.AssertIsOnG1(&p.CommitmentPok.G1El)
	}
	w, err := challenges(api, fr, packLimbs(api, limbs), 2*f-1)
	if err != nil {
		return err
	}
	r, s := w[:f-1], w[f-1:] // r_1..r_{F-1}; s_0..s_{F-1}
	short := algopts.WithNbScalarBits(128)
	complete := algopts.WithCompleteArithmetic()

	// Commitment hash-to-field, as std/recursion/groth16 with the native prover options.
	hs := make([]*frEl, f)
	for i := range c.Children {
		h, err := recursion.NewHash(api, emparams.BN254Fr{}.Modulus(), true)
		if err != nil {
			return err
		}
		h.Write(curve.MarshalG1(c.Children[i].Commitments[0].G1El)...)
		hs[i] = fr.FromBits(api.ToBinary(h.Sum())...)
	}
	rSum := fr.One()
	sc := make([]*frEl, NbPublic+2)
	for j := 0; j < NbPublic; j++ {
		sc[j+1] = pubs[0][j]
	}
	sc[NbPublic+1] = hs[0]
	for i := 1; i < f; i++ {
		rSum = fr.Add(rSum, r[i-1])
		for j := 0; j < NbPublic; j++ {
			sc[j+1] = fr.Add(sc[j+1], fr.Mul(r[i-1], pubs[i][j]))
		}
		sc[NbPublic+1] = fr.Add(sc[NbPublic+1], fr.Mul(r[i-1], hs[i]))
	}
	sc[0] = rSum
	ic := make([]*sw_bn254.G1Affine, len(c.vk.G1.K))
	for j := range ic {
		ic[j] = &c.vk.G1.K[j]
	}
	kSum, err := curve.MultiScalarMul(ic, sc, complete)
	if err != nil {
		return err
	}
	g1s := []*sw_bn254.G1Affine{&c.Children[0].Ar}
	g2s := []*sw_bn254.G2Affine{&c.Children[0].Bs}
	as, cs, ds := make([]*sw_bn254.G1Affine, f-1), make([]*sw_bn254.G1Affine, f-1), make([]*sw_bn254.G1Affine, f-1)
	for i := 1; i < f; i++ {
		ch := &c.Children[i]
		as[i-1], cs[i-1], ds[i-1] = &ch.Ar, &ch.Krs, &ch.Commitments[0].G1El
		g1s = append(g1s, curve.ScalarMul(&ch.Ar, r[i-1], short, complete))
		g2s = append(g2s, &ch.Bs)
	}
	cm, err := curve.MultiScalarMul(cs, r, short, complete)
	if err != nil {
		return err
	}
	cSum := curve.AddUnified(&c.Children[0].Krs, cm)
	dm, err := curve.MultiScalarMul(ds, r, short, complete)
	if err != nil {
		return err
	}
	kSum = curve.AddUnified(kSum, curve.AddUnified(&c.Children[0].Commitments[0].G1El, dm))
	alpha := sw_bn254.NewG1Affine(c.alpha)
	negAlpha := curve.Neg(curve.ScalarMul(&alpha, rSum, complete))
	allD, allP := make([]*sw_bn254.G1Affine, f), make([]*sw_bn254.G1Affine, f)
	for i := range c.Children {
		allD[i], allP[i] = &c.Children[i].Commitments[0].G1El, &c.Children[i].CommitmentPok.G1El
	}
	dSum, err := curve.MultiScalarMul(allD, s, short, complete)
	if err != nil {
		return err
	}
	pSum, err := curve.MultiScalarMul(allP, s, short, complete)
	if err != nil {
		return err
	}
	beta := sw_bn254.NewG2AffineFixed(c.beta)
	ck := c.vk.CommitmentKeys[0]
	g1s = append(g1s, kSum, cSum, negAlpha, dSum, pSum)
	g2s = append(g2s, &c.vk.G2.GammaNeg, &c.vk.G2.DeltaNeg, &beta, &ck.GSigmaNeg, &ck.G)
	return pairing.PairingCheck(g1s, g2s)
}
