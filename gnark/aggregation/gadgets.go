package aggregation

import (
	bn254 "github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark/frontend"
	"github.com/consensys/gnark/std/math/emulated"
	"github.com/consensys/gnark/std/math/uints"
)

// Exported in-circuit gadgets and native helpers shared with gnark/tree (the recursion tree's
// leaf and merge circuits), so both packages hash statements and build Merkle roots with the
// same constraints as this package's circuit.

// VKHeaderLen is the canonical Groth16 vk's length before the IC points.
const VKHeaderLen = vkHeaderLen

// SchemeByteGroth16 is Groth16's scheme byte in the Sheaf statement.
const SchemeByteGroth16 = schemeGroth16

// ByteWitnesses range-checks byte witnesses (each in [0, 255]).
func ByteWitnesses(bapi *uints.Bytes, vs []frontend.Variable) []uints.U8 {
	return byteWitnesses(bapi, vs)
}

// DecodeEl decodes 32 range-checked big-endian bytes into an emulated element, asserting the
// encoding is canonical.
func DecodeEl[T emulated.FieldParams](api frontend.API, bapi *uints.Bytes, f *emulated.Field[T], b []uints.U8) *emulated.Element[T] {
	return decodeEl(api, bapi, f, b)
}

// PackBE packs big-endian bytes into one native value (the caller keeps it below the modulus).
func PackBE(api frontend.API, bapi *uints.Bytes, b []uints.U8) frontend.Variable {
	return packBE(api, bapi, b)
}

// Keccak is in-circuit legacy keccak-256 over the concatenated parts.
func Keccak(api frontend.API, parts ...[]uints.U8) []uints.U8 { return keccak(api, parts...) }

// MerkleRootCircuit is Merkle.root over the first count of the n 32-byte leaves (count in
// [1, n], checked by the caller), leaves hashed first.
func MerkleRootCircuit(api frontend.API, bapi *uints.Bytes, leaves []uints.U8, count frontend.Variable, n int) []uints.U8 {
	return merkleRoot(api, bapi, leaves, count, n)
}

// StatementTag and VKTag are the Sheaf statement hash's domain tags.
var (
	StatementTag = statementTag
	VKTag        = vkTag
)

// EnvelopeVersion is the Sheaf statement envelope version byte.
const EnvelopeVersion = envelopeVersion

// Groth16Points are a Groth16 leaf's decoded and natively checked points.
type Groth16Points struct {
	A, C bn254.G1Affine
	B    bn254.G2Affine
}

// ParseGroth16 validates leaf i like Assign does (canonical encodings, points in their groups,
// scalars < r, the proof verifies natively) and returns its proof points.
func ParseGroth16(i int, l *Leaf) (Groth16Points, error) {
	p, err := l.parse(i)
	if err != nil {
		return Groth16Points{}, err
	}
	return Groth16Points{A: p.a, C: p.c, B: p.b}, nil
}
