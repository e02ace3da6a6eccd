package circuits

import "math/big"

// u is a tiny helper so assignments can be computed exactly (values overflow uint64).
type u struct{ v *big.Int }

func newU(x uint64) *u { return &u{new(big.Int).SetUint64(x)} }

func (a *u) mul(x uint64) { a.v.Mul(a.v, new(big.Int).SetUint64(x)) }

func (a *u) plus(x uint64) *big.Int { return new(big.Int).Add(a.v, new(big.Int).SetUint64(x)) }
