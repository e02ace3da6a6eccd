// Package tree is Sheaf's recursion tree: a LEAF circuit that verifies K Groth16 proofs of ONE
// user verifying key (the vk a byte witness, hashed once; all K proofs checked under one
// random-linear-combination multi-pairing) and commits to their Sheaf statement hashes' Merkle
// root, and a wide MERGE circuit that verifies F child proofs under one FIXED child vk (one RLC
// multi-pairing, precomputed lines, fixed-base MSM) and composes their roots. Both expose
// [root_hi, root_lo, count] (Groth16AggregationAdapter.publicInputs) and carry exactly one BSB22
// commitment over no public input, so every proof of the tree is a valid child of the next
// level and the top one goes to the registry's recursive route unchanged.
// Design, measurements and the choice behind it: docs/recursion.md.
package tree

import (
	"math/big"

	"github.com/consensys/gnark-crypto/ecc"
	"github.com/consensys/gnark/backend"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/hash/mimc"
	"github.com/consensys/gnark/std/math/cmp"
	"github.com/consensys/gnark/std/math/emulated"
	"github.com/consensys/gnark/std/math/emulated/emparams"
	"github.com/consensys/gnark/std/math/uints"
	stdgroth16 "github.com/consensys/gnark/std/recursion/groth16"
	"github.com/sheaf-zk/sheaf/gnark/aggregation"
)

type (
	frEl = emulated.Element[emparams.BN254Fr]
	fpEl = emulated.Element[emparams.BN254Fp]
)

// NbPublic is every tree proof's public-input count: root_hi, root_lo, count.
const NbPublic = 3

// ChildProverOption is the prover option of every proof that is a child in the tree (leaf
// proofs and non-top merge proofs): the commitment's hash-to-field is the recursion-friendly
// one the merge circuit recomputes. Only the top proof is made for the Solidity verifier.
func ChildProverOption() backend.ProverOption {
	return stdgroth16.GetNativeProverOptions(ecc.BN254.ScalarField(), ecc.BN254.ScalarField())
}

// ChildVerifierOption verifies a child proof natively.
func ChildVerifierOption() backend.VerifierOption {
	return stdgroth16.GetNativeVerifierOptions(ecc.BN254.ScalarField(), ecc.BN254.ScalarField())
}

// challenges returns n independent 128-bit Fiat-Shamir scalars: c_j = low128(MiMC(seed, j)),
// seed = MiMC(every value the prover chose, packed). Independent short scalars keep every
// RLC scalar multiplication half length (soundness error ~ n * 2^-128).
func challenges(api frontend.API, fr *emulated.Field[emparams.BN254Fr], transcript []frontend.Variable, n int) ([]*frEl, error) {
	h, err := mimc.NewMiMC(api)
	if err != nil {
		return nil, err
	}
	h.Write(transcript...)
	seed := h.Sum()
	out := make([]*frEl, n)
	for j := range out {
		h.Reset()
		h.Write(seed, j+1)
		out[j] = fr.FromBits(api.ToBinary(h.Sum(), 254)[:128]...)
	}
	return out, nil
}

// packLimbs packs 64-bit limbs three per native element (192 bits < the BN254 scalar field).
func packLimbs(api frontend.API, limbs []frontend.Variable) []frontend.Variable {
	var out []frontend.Variable
	for k := 0; k < len(limbs); k += 3 {
		var acc frontend.Variable = 0
		for j := min(k+3, len(limbs)) - 1; j >= k; j-- {
			acc = api.Add(api.Mul(acc, new(big.Int).Lsh(big.NewInt(1), 64)), limbs[j])
		}
		out = append(out, acc)
	}
	return out
}

// packBytes packs range-checked bytes 31 per native element.
func packBytes(api frontend.API, bapi *uints.Bytes, b []uints.U8) []frontend.Variable {
	var out []frontend.Variable
	for k := 0; k < len(b); k += 31 {
		out = append(out, aggregation.PackBE(api, bapi, b[k:min(k+31, len(b))]))
	}
	return out
}

// beBytes turns little-endian bits (a multiple of 8) into big-endian range-checked bytes.
func beBytes(api frontend.API, bapi *uints.Bytes, bits []frontend.Variable) []uints.U8 {
	n := len(bits) / 8
	out := make([]uints.U8, n)
	for k := 0; k < n; k++ {
		lsb := 8 * (n - 1 - k)
		out[k] = bapi.ValueOf(api.FromBinary(bits[lsb : lsb+8]...))
	}
	return out
}

// foldRoots is Merkle.sol's tree ABOVE full power-of-two blocks: nodes are the F child roots
// (already roots, not hashed again), the first m of them present; node j of level k hashes its
// two children iff its right child exists ((2j+1)*2^(k-1) < m), else promotes the left one.
func foldRoots(api frontend.API, bapi *uints.Bytes, roots [][]uints.U8, m frontend.Variable) []uints.U8 {
	n := len(roots)
	cmpr := cmp.NewBoundedComparator(api, big.NewInt(int64(2*n+2)), false)
	level := roots
	for k := 1; len(level) > 1; k++ {
		next := make([][]uints.U8, (len(level)+1)/2)
		for j := range next {
			left := level[2*j]
			if 2*j+1 >= len(level) {
				next[j] = left
				continue
			}
			h := aggregation.Keccak(api, left, level[2*j+1])
			right := cmpr.IsLess((2*j+1)<<(k-1), m)
			node := make([]uints.U8, 32)
			for b := range node {
				node[b] = bapi.Select(right, h[b], left[b])
			}
			next[j] = node
		}
		level = next
	}
	return level[0]
}

// Node is a tree proof's public statement: a Merkle root over Count leaves.
type Node struct {
	Root  [32]byte
	Count uint64
}

// Public is [root_hi, root_lo, count].
func (n Node) Public() [NbPublic]*big.Int {
	return [NbPublic]*big.Int{new(big.Int).SetBytes(n.Root[:16]), new(big.Int).SetBytes(n.Root[16:]),
		new(big.Int).SetUint64(n.Count)}
}

// FoldNodes is foldRoots natively: the parent of consecutive nodes (every one but the last
// full), i.e. Merkle.root of their concatenated leaves.
func FoldNodes(nodes []Node) Node {
	level := make([][]byte, len(nodes))
	var count uint64
	for i := range nodes {
		level[i] = nodes[i].Root[:]
		count += nodes[i].Count
	}
	for len(level) > 1 {
		next := make([][]byte, 0, (len(level)+1)/2)
		for i := 0; i < len(level); i += 2 {
			if i+1 < len(level) {
				next = append(next, keccak256(level[i], level[i+1]))
			} else {
				next = append(next, level[i])
			}
		}
		level = next
	}
	var out Node
	copy(out.Root[:], level[0])
	out.Count = count
	return out
}
