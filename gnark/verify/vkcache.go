package verify

import (
	"crypto/sha256"
	"sync"

	plonkbn254 "github.com/consensys/gnark/backend/plonk/bn254"
)

// vkCacheSize bounds each cache: provers reuse a handful of keys, and a flood of distinct keys
// only evicts (it cannot grow memory).
const vkCacheSize = 256

// vkCache memoizes successfully validated verifying keys by the SHA-256 of their exact input bytes.
// Validating a PLONK vk (subgroup checks, gnark's decoding with KZG line precomputation) costs more
// than verifying one proof; the sidecar sees the same key for every proof of a circuit. Only
// successes are cached, and cached values are never mutated by their users.
type vkCache[V any] struct {
	mu    sync.Mutex
	items map[[32]byte]V
	order [][32]byte // insertion order, oldest first (FIFO eviction is enough for this use)
}

func newVKCache[V any]() *vkCache[V] {
	return &vkCache[V]{items: make(map[[32]byte]V)}
}

func (c *vkCache[V]) get(raw []byte, parse func([]byte) (V, error)) (V, error) {
	key := sha256.Sum256(raw)
	c.mu.Lock()
	v, ok := c.items[key]
	c.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := parse(raw)
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[key]; !ok {
		if len(c.order) >= vkCacheSize {
			delete(c.items, c.order[0])
			c.order = c.order[1:]
		}
		c.items[key] = v
		c.order = append(c.order, key)
	}
	return v, nil
}

func (c *vkCache[V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}

// gnarkPlonkKey is a validated gnark PLONK vk together with gnark's own decoded verifier key.
type gnarkPlonkKey struct {
	vk        *GnarkPlonkVK
	gvk       *plonkbn254.VerifyingKey
	canonical []byte
}

type snarkjsPlonkKey struct {
	vk        *SnarkjsPlonkVK
	canonical []byte
}

var (
	gnarkPlonkKeys   = newVKCache[*gnarkPlonkKey]()
	snarkjsPlonkKeys = newVKCache[*snarkjsPlonkKey]()
)
