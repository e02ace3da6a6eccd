package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/sheaf-zk/sheaf/gnark/fixtures"
)

func runFixtures(args []string) error {
	fs := flag.NewFlagSet("fixtures", flag.ContinueOnError)
	out := fs.String("out", "", "output directory (e.g. tests/fixtures/gnark)")
	cache := fs.String("cache", fixtures.CacheDir(), "key cache directory")
	only := fs.String("only", "", "comma-separated fixture names to regenerate (the others are kept)")
	many := fs.Int("many", 0, "instead: N distinct proofs of MulChain(--n-public), one vk, in OUT/<i>/ (benchmarks)")
	scheme := fs.String("scheme", "groth16", "--many: groth16 | plonk")
	npub := fs.Int("n-public", 1, "--many: public inputs")
	seed := fs.Uint64("seed", 1000, "--many: secret of the first proof (the i-th uses seed+i)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return fmt.Errorf("--out is required")
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	if *many > 0 {
		if err := fixtures.WriteMany(*out, *cache, *scheme, *npub, *many, *seed); err != nil {
			return err
		}
		fmt.Printf("wrote %d %s proofs of MulChain(%d) to %s\n", *many, *scheme, *npub, *out)
		return nil
	}
	var names []string
	if *only != "" {
		names = strings.Split(*only, ",")
	}
	m, err := fixtures.Generate(*out, *cache, os.Stderr, names...)
	if err != nil {
		return err
	}
	fmt.Printf("wrote %d fixtures to %s\n", len(m.Fixtures), *out)
	return nil
}
