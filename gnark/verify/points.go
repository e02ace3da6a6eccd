package verify

import (
	"encoding/binary"
	"math/big"

	bn "github.com/consensys/gnark-crypto/ecc/bn254"
	"github.com/consensys/gnark-crypto/ecc/bn254/fp"
	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
)

// gnark point-encoding flags (top two bits of the first byte).
const (
	flagMask         byte = 0b11 << 6
	flagUncompressed byte = 0b00 << 6
	flagSmallest     byte = 0b10 << 6
	flagLargest      byte = 0b11 << 6
	flagInfinity     byte = 0b01 << 6
)

var (
	bCurve = fp.NewElement(3)
)

// Infinity policy for a decoded point.
type infPolicy int

const (
	noInfinity infPolicy = iota
	allowInfinity
)

// reader is a strict cursor over a byte string that names fields in errors.
type reader struct {
	b   []byte
	off int
	raw bool // gnark point encoding of the container: uncompressed (raw) or compressed
}

func (r *reader) take(n int, field string) ([]byte, error) {
	if n < 0 || len(r.b)-r.off < n {
		return nil, errf(CodeInvalidLength, field, "truncated: need %d bytes at offset %d, have %d", n, r.off, len(r.b)-r.off)
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s, nil
}

func (r *reader) u32(field string) (uint32, error) {
	s, err := r.take(4, field)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(s), nil
}

func (r *reader) u64(field string) (uint64, error) {
	s, err := r.take(8, field)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(s), nil
}

func (r *reader) done(field string) error {
	if r.off != len(r.b) {
		return errf(CodeInvalidLength, field, "%d trailing bytes after offset %d", len(r.b)-r.off, r.off)
	}
	return nil
}

func (r *reader) remaining() int { return len(r.b) - r.off }

// fpCanonical reads a 32-byte BE base-field element that must be < p.
func fpCanonical(b []byte, field string) (fp.Element, error) {
	var e fp.Element
	if err := e.SetBytesCanonical(b); err != nil {
		return e, errf(CodeNonCanonicalScalar, field, "coordinate is not a canonical base-field element (>= p)")
	}
	return e, nil
}

// FrCanonical parses a 32-byte BE scalar that must be < r.
func FrCanonical(b []byte, field string) (fr.Element, error) {
	var e fr.Element
	if len(b) != fr.Bytes {
		return e, errf(CodeInvalidLength, field, "scalar must be 32 bytes, got %d", len(b))
	}
	if err := e.SetBytesCanonical(b); err != nil {
		return e, errf(CodeNonCanonicalScalar, field, "scalar is not canonical (>= r)")
	}
	return e, nil
}

// FrFromBig parses a non-negative integer that must be < r.
func FrFromBig(v *big.Int, field string) (fr.Element, error) {
	var e fr.Element
	if v.Sign() < 0 || v.Cmp(fr.Modulus()) >= 0 {
		return e, errf(CodeNonCanonicalScalar, field, "scalar is not canonical (must be 0 <= x < r)")
	}
	e.SetBigInt(v)
	return e, nil
}

func isZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

func checkG1(p *bn.G1Affine, inf infPolicy, field string) error {
	if p.IsInfinity() {
		if inf == noInfinity {
			return errf(CodePointAtInfinity, field, "point at infinity is not allowed here")
		}
		return nil
	}
	if !p.IsOnCurve() {
		return errf(CodeInvalidPoint, field, "G1 point is not on the curve")
	}
	if !p.IsInSubGroup() {
		return errf(CodeNotInSubgroup, field, "G1 point is not in the prime-order subgroup")
	}
	return nil
}

func checkG2(p *bn.G2Affine, inf infPolicy, field string) error {
	if p.IsInfinity() {
		if inf == noInfinity {
			return errf(CodePointAtInfinity, field, "point at infinity is not allowed here")
		}
		return nil
	}
	if !p.IsOnCurve() {
		return errf(CodeInvalidPoint, field, "G2 point is not on the twist curve")
	}
	if !p.IsInSubGroup() {
		return errf(CodeNotInSubgroup, field, "G2 point is on the twist but not in the prime-order subgroup")
	}
	return nil
}

// g1 reads a gnark-encoded G1 point (raw 64 bytes or compressed 32 bytes per r.raw).
func (r *reader) g1(field string, inf infPolicy) (bn.G1Affine, error) {
	var p bn.G1Affine
	n := bn.SizeOfG1AffineCompressed
	if r.raw {
		n = bn.SizeOfG1AffineUncompressed
	}
	b, err := r.take(n, field)
	if err != nil {
		return p, err
	}
	flag := b[0] & flagMask
	if r.raw {
		if flag != flagUncompressed {
			return p, errf(CodeInvalidPoint, field, "compressed-point flag inside an uncompressed encoding")
		}
		if p.X, err = fpCanonical(b[:32], field); err != nil {
			return p, err
		}
		if p.Y, err = fpCanonical(b[32:], field); err != nil {
			return p, err
		}
		return p, checkG1(&p, inf, field)
	}
	var x [32]byte
	copy(x[:], b)
	x[0] &^= flagMask
	switch flag {
	case flagUncompressed:
		return p, errf(CodeInvalidPoint, field, "uncompressed-point flag inside a compressed encoding")
	case flagInfinity:
		if !isZero(x[:]) {
			return p, errf(CodeInvalidPoint, field, "infinity flag with non-zero coordinate bytes")
		}
		return p, checkG1(&p, inf, field)
	}
	if p.X, err = fpCanonical(x[:], field); err != nil {
		return p, err
	}
	var y2, y fp.Element
	y2.Square(&p.X).Mul(&y2, &p.X).Add(&y2, &bCurve)
	if y.Sqrt(&y2) == nil {
		return p, errf(CodeInvalidPoint, field, "compressed G1 x-coordinate has no point on the curve")
	}
	if y.LexicographicallyLargest() != (flag == flagLargest) {
		y.Neg(&y)
	}
	p.Y = y
	if p.IsInfinity() {
		return p, errf(CodeInvalidPoint, field, "compressed encoding of (0,0)")
	}
	return p, checkG1(&p, inf, field)
}

// g2 reads a gnark-encoded G2 point (raw 128 bytes or compressed 64 bytes), X.A1|X.A0|Y.A1|Y.A0.
func (r *reader) g2(field string, inf infPolicy) (bn.G2Affine, error) {
	var p bn.G2Affine
	n := bn.SizeOfG2AffineCompressed
	if r.raw {
		n = bn.SizeOfG2AffineUncompressed
	}
	b, err := r.take(n, field)
	if err != nil {
		return p, err
	}
	flag := b[0] & flagMask
	if r.raw {
		if flag != flagUncompressed {
			return p, errf(CodeInvalidPoint, field, "compressed-point flag inside an uncompressed encoding")
		}
		return g2FromEVM(b, field, inf)
	}
	var x1 [32]byte
	copy(x1[:], b[:32])
	x1[0] &^= flagMask
	switch flag {
	case flagUncompressed:
		return p, errf(CodeInvalidPoint, field, "uncompressed-point flag inside a compressed encoding")
	case flagInfinity:
		if !isZero(x1[:]) || !isZero(b[32:64]) {
			return p, errf(CodeInvalidPoint, field, "infinity flag with non-zero coordinate bytes")
		}
		return p, checkG2(&p, inf, field)
	}
	if p.X.A1, err = fpCanonical(x1[:], field); err != nil {
		return p, err
	}
	if p.X.A0, err = fpCanonical(b[32:64], field); err != nil {
		return p, err
	}
	var y2, y bn.E2
	y2.Square(&p.X).Mul(&y2, &p.X).Add(&y2, &bTwist)
	if y2.Legendre() == -1 {
		return p, errf(CodeInvalidPoint, field, "compressed G2 x-coordinate has no point on the twist")
	}
	y.Sqrt(&y2)
	if y.LexicographicallyLargest() != (flag == flagLargest) {
		y.Neg(&y)
	}
	p.Y = y
	return p, checkG2(&p, inf, field)
}

var bTwist bn.E2

func init() {
	// b' = 3 / (9 + u), the BN254 twist coefficient
	var xi bn.E2
	xi.A0.SetUint64(9)
	xi.A1.SetUint64(1)
	bTwist.A0.SetUint64(3)
	xi.Inverse(&xi)
	bTwist.Mul(&bTwist, &xi)
}

// G1FromEVM decodes 64 bytes x|y (BE); all-zero is the point at infinity (EIP-196).
func G1FromEVM(b []byte, field string, inf infPolicy) (bn.G1Affine, error) {
	var p bn.G1Affine
	var err error
	if len(b) != 64 {
		return p, errf(CodeInvalidLength, field, "G1 point must be 64 bytes, got %d", len(b))
	}
	if p.X, err = fpCanonical(b[:32], field); err != nil {
		return p, err
	}
	if p.Y, err = fpCanonical(b[32:], field); err != nil {
		return p, err
	}
	return p, checkG1(&p, inf, field)
}

// g2FromEVM decodes 128 bytes X.c1|X.c0|Y.c1|Y.c0 (EIP-197); all-zero is infinity.
func g2FromEVM(b []byte, field string, inf infPolicy) (bn.G2Affine, error) {
	var p bn.G2Affine
	var err error
	if len(b) != 128 {
		return p, errf(CodeInvalidLength, field, "G2 point must be 128 bytes, got %d", len(b))
	}
	if p.X.A1, err = fpCanonical(b[0:32], field); err != nil {
		return p, err
	}
	if p.X.A0, err = fpCanonical(b[32:64], field); err != nil {
		return p, err
	}
	if p.Y.A1, err = fpCanonical(b[64:96], field); err != nil {
		return p, err
	}
	if p.Y.A0, err = fpCanonical(b[96:128], field); err != nil {
		return p, err
	}
	return p, checkG2(&p, inf, field)
}

// G1ToEVM encodes x|y big-endian (64 bytes; infinity = zeros).
func G1ToEVM(p *bn.G1Affine) []byte {
	out := make([]byte, 64)
	x, y := p.X.Bytes(), p.Y.Bytes()
	copy(out, x[:])
	copy(out[32:], y[:])
	return out
}

// G2ToEVM encodes X.c1|X.c0|Y.c1|Y.c0 big-endian (128 bytes; infinity = zeros).
func G2ToEVM(p *bn.G2Affine) []byte {
	out := make([]byte, 0, 128)
	for _, e := range []*fp.Element{&p.X.A1, &p.X.A0, &p.Y.A1, &p.Y.A0} {
		b := e.Bytes()
		out = append(out, b[:]...)
	}
	return out
}

// FrToBytes is the 32-byte BE encoding of a scalar.
func FrToBytes(e *fr.Element) []byte {
	b := e.Bytes()
	return b[:]
}
