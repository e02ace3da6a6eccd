package main

import (
	"encoding/json"
	"flag"
	"os"

	"github.com/sheaf-zk/sheaf/gnark/benchverify"
	"github.com/sheaf-zk/sheaf/gnark/fixtures"
)

func runBenchVerify(args []string) error {
	fs := flag.NewFlagSet("bench-verify", flag.ContinueOnError)
	proofs := fs.Int("proofs", 64, "distinct Groth16 proofs (gnark PLONK uses half)")
	npub := fs.Int("n-public", 2, "public inputs of the benchmark circuit")
	fx := fs.String("fixtures", "tests/fixtures/gnark", "fixture dir (snarkjs PLONK vectors); empty to skip")
	cache := fs.String("cache", fixtures.CacheDir(), "key cache directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *fx != "" {
		if _, err := os.Stat(*fx); err != nil {
			*fx = ""
		}
	}
	res, err := benchverify.Run(benchverify.Options{CacheDir: *cache, FixturesDir: *fx, Proofs: *proofs, NPublic: *npub})
	if err != nil {
		return err
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}
