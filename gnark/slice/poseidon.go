package slice

import (
	"math/big"
	"sync"

	"github.com/consensys/gnark-crypto/ecc/bn254/fr"
	"github.com/consensys/gnark/frontend"
)

// Poseidon as ezkl 23 uses it for "hashed" visibility, so gnark slices can expose the same
// commitment as an ezkl slice over the same quantized tensor (chaining across backends):
// halo2_gadgets Poseidon over BN254 Fr, width 2, rate 1, x^5, 8 full + 56 partial rounds, round
// constants and Cauchy MDS from the Grain LFSR as halo2_gadgets generates them; one sponge over
// all elements with the capacity initialised to 2^64 (what ezkl 23.0.5's hashes match; see
// provers/poseidon_ezkl.py and docs/prover.md). Pinned by a test vector taken from ezkl.
const (
	posT  = 2
	posRF = 8
	posRP = 56
	posNB = 254
)

var (
	posOnce sync.Once
	posRC   [][posT]fr.Element
	posMDS  [posT][posT]fr.Element
)

type grain struct{ s []byte }

func newGrain() *grain {
	var bits []byte
	put := func(v uint64, n int) {
		for i := n - 1; i >= 0; i-- {
			bits = append(bits, byte((v>>uint(i))&1))
		}
	}
	put(1, 2) // prime field
	put(0, 4) // x^alpha S-box
	put(posNB, 12)
	put(posT, 12)
	put(posRF, 10)
	put(posRP, 10)
	put((1<<30)-1, 30)
	g := &grain{s: bits}
	for i := 0; i < 160; i++ {
		g.step()
	}
	return g
}

func (g *grain) step() byte {
	s := g.s
	b := s[62] ^ s[51] ^ s[38] ^ s[23] ^ s[13] ^ s[0]
	g.s = append(s[1:], b)
	return b
}

func (g *grain) bit() byte {
	for {
		first, second := g.step(), g.step()
		if first == 1 {
			return second
		}
	}
}

func (g *grain) value() *big.Int {
	v := new(big.Int)
	for i := 0; i < posNB; i++ {
		v.Lsh(v, 1)
		if g.bit() == 1 {
			v.SetBit(v, 0, 1)
		}
	}
	return v
}

func posInit() {
	p := fr.Modulus()
	g := newGrain()
	posRC = make([][posT]fr.Element, posRF+posRP)
	for r := range posRC {
		for i := 0; i < posT; i++ {
			for {
				v := g.value()
				if v.Cmp(p) < 0 { // rejection sampling
					posRC[r][i].SetBigInt(v)
					break
				}
			}
		}
	}
	var vals [2 * posT]fr.Element
	for {
		for i := range vals {
			vals[i].SetBigInt(new(big.Int).Mod(g.value(), p))
		}
		unique := true
		for i := range vals {
			for j := i + 1; j < len(vals); j++ {
				if vals[i].Equal(&vals[j]) {
					unique = false
				}
			}
		}
		if unique {
			break
		}
	}
	for i := 0; i < posT; i++ {
		for j := 0; j < posT; j++ {
			var s fr.Element
			s.Add(&vals[i], &vals[posT+j])
			posMDS[i][j].Inverse(&s)
		}
	}
}

func sbox(x *fr.Element) {
	var x2, x4 fr.Element
	x2.Square(x)
	x4.Square(&x2)
	x.Mul(&x4, x)
}

func posPermute(s *[posT]fr.Element) {
	posOnce.Do(posInit)
	mix := func() {
		var out [posT]fr.Element
		for i := 0; i < posT; i++ {
			for j := 0; j < posT; j++ {
				var t fr.Element
				t.Mul(&posMDS[i][j], &s[j])
				out[i].Add(&out[i], &t)
			}
		}
		*s = out
	}
	for r := 0; r < posRF+posRP; r++ {
		full := r < posRF/2 || r >= posRF/2+posRP
		for i := 0; i < posT; i++ {
			s[i].Add(&s[i], &posRC[r][i])
		}
		if full {
			for i := 0; i < posT; i++ {
				sbox(&s[i])
			}
		} else {
			sbox(&s[0])
		}
		mix()
	}
}

func posCapacity() fr.Element {
	var c fr.Element
	c.SetBigInt(new(big.Int).Lsh(big.NewInt(1), 64))
	return c
}

// PoseidonEzkl is ezkl's hashed-visibility commitment of a tensor of (signed) integers.
func PoseidonEzkl(values []int64) fr.Element {
	s := [posT]fr.Element{{}, posCapacity()}
	for _, v := range values {
		var e fr.Element
		e.SetInt64(v)
		s[0].Add(&s[0], &e)
		posPermute(&s)
	}
	return s[0]
}

func posSboxVar(api frontend.API, x frontend.Variable) frontend.Variable {
	x2 := api.Mul(x, x)
	x4 := api.Mul(x2, x2)
	return api.Mul(x4, x)
}

// poseidonEzklVar is PoseidonEzkl in-circuit.
func poseidonEzklVar(api frontend.API, values []frontend.Variable) frontend.Variable {
	posOnce.Do(posInit)
	c := posCapacity()
	s := [posT]frontend.Variable{0, c}
	for _, v := range values {
		s[0] = api.Add(s[0], v)
		for r := 0; r < posRF+posRP; r++ {
			full := r < posRF/2 || r >= posRF/2+posRP
			for i := 0; i < posT; i++ {
				s[i] = api.Add(s[i], posRC[r][i])
			}
			if full {
				for i := 0; i < posT; i++ {
					s[i] = posSboxVar(api, s[i])
				}
			} else {
				s[0] = posSboxVar(api, s[0])
			}
			var out [posT]frontend.Variable
			for i := 0; i < posT; i++ {
				out[i] = api.Add(api.Mul(posMDS[i][0], s[0]), api.Mul(posMDS[i][1], s[1]))
			}
			s = out
		}
	}
	return s[0]
}
