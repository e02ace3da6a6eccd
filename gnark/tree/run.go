package tree

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
)

// Usage of `sheaf-gnark tree`.
const Usage = `usage: sheaf-gnark tree <setup|serve> --k K --npub P --fanin F --levels D [--cache DIR]
  setup   compile every level (leaf, merges), load or INSECURELY generate its keys; JSON summary
  serve   the tree prover process: ops info, leaf, merge (one process protocol, docs/recursion.md)
`

// Run is `sheaf-gnark tree ...`.
func Run(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, Usage)
		return errors.New("missing subcommand")
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("tree "+sub, flag.ContinueOnError)
	var p Plan
	fs.IntVar(&p.Leaf.K, "k", 2, "proofs of one vk per leaf job (power of two)")
	fs.IntVar(&p.Leaf.NPub, "npub", 1, "public inputs of each user proof")
	fs.IntVar(&p.FanIn, "fanin", 4, "children per merge (power of two)")
	fs.IntVar(&p.Levels, "levels", 1, "merge levels above the leaves")
	cache := fs.String("cache", CacheRoot(), "key cache directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	keys, err := SetupLevels(p, *cache, os.Stderr)
	if err != nil {
		return err
	}
	switch sub {
	case "setup":
		var levels []map[string]any
		for _, k := range keys {
			levels = append(levels, map[string]any{"level": k.Level, "circuit_hash": k.CircuitHash, "nb_constraints": k.CCS.GetNbConstraints(),
				"created": k.Created, "compile_ms": k.Compile.Milliseconds(), "setup_ms": k.Setup.Milliseconds(), "dir": k.Dir})
		}
		return json.NewEncoder(os.Stdout).Encode(map[string]any{"plan": p, "capacity": p.Capacity(), "levels": levels, "insecure": true, "setup": insecureNote})
	case "serve":
		return Server(p, keys).Serve(os.Stdin, os.Stdout)
	}
	return fmt.Errorf("unknown tree subcommand %q\n%s", sub, Usage)
}
