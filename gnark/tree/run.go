package tree

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/consensys/gnark/backend/solidity"
)

// Usage of `sheaf-gnark tree`.
const Usage = `usage: sheaf-gnark tree <setup|serve|export-solidity> --k K --npub P --fanin F --levels D [--cache DIR]
  setup            compile every level (leaf, merges), load or INSECURELY generate its keys; JSON summary
                   --level L: only level L's keys, one process per level (lower levels' keys must exist)
  serve            the tree prover process: ops info, leaf, merge (one process protocol, docs/recursion.md)
                   --level L: a worker for level L's jobs only (keys must exist; lower levels keep their vk only)
  export-solidity  --out-dir DIR: gnark's Solidity verifier of every level's vk, DIR/Verifier_l<L>.sol
                   (level L's verifier takes a top proof of level L; keys must exist); JSON summary
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
	level := fs.Int("level", -1, "serve: prove only this level's jobs; setup: set up only this level (-1: every level)")
	outDir := fs.String("out-dir", "", "export-solidity: directory for Verifier_l<L>.sol")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch sub {
	case "setup":
		var keys []*Keys
		var err error
		if *level >= 0 {
			keys, err = SetupLevel(p, *cache, *level, os.Stderr)
		} else {
			keys, err = SetupLevels(p, *cache, os.Stderr)
		}
		if err != nil {
			return err
		}
		var levels []map[string]any
		for _, k := range keys {
			levels = append(levels, map[string]any{"level": k.Level, "circuit_hash": k.CircuitHash, "nb_constraints": k.NbConstraints,
				"created": k.Created, "compile_ms": k.Compile.Milliseconds(), "setup_ms": k.Setup.Milliseconds(), "dir": k.Dir})
		}
		return json.NewEncoder(os.Stdout).Encode(map[string]any{"plan": p, "capacity": p.Capacity(), "levels": levels, "insecure": true, "setup": insecureNote})
	case "serve":
		var keys []*Keys
		var err error
		if *level >= 0 {
			keys, err = WorkerLevels(p, *cache, *level, os.Stderr)
		} else {
			keys, err = SetupLevels(p, *cache, os.Stderr)
		}
		if err != nil {
			return err
		}
		return Server(p, keys).Serve(os.Stdin, os.Stdout)
	case "export-solidity":
		if *outDir == "" {
			return errors.New("export-solidity needs --out-dir")
		}
		keys, err := VerifyingLevels(p, *cache, os.Stderr)
		if err != nil {
			return err
		}
		levels, err := exportLevels(keys, *outDir)
		if err != nil {
			return err
		}
		return json.NewEncoder(os.Stdout).Encode(map[string]any{"plan": p, "capacity": p.Capacity(), "levels": levels, "insecure": true, "setup": insecureNote})
	}
	return fmt.Errorf("unknown tree subcommand %q\n%s", sub, Usage)
}

// exportLevels writes each level's Solidity verifier: verifyProof(bytes proof, uint256[3] input)
// for a top proof of that level (Solidity hash-to-field), reverting on failure.
func exportLevels(keys []*Keys, dir string) ([]map[string]any, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var levels []map[string]any
	for _, k := range keys {
		path := filepath.Join(dir, fmt.Sprintf("Verifier_l%d.sol", k.Level))
		f, err := os.Create(path)
		if err != nil {
			return nil, err
		}
		err = k.VK.ExportSolidity(f, solidity.WithPragmaVersion("^0.8.20"))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("level %d: %w", k.Level, err)
		}
		levels = append(levels, map[string]any{"level": k.Level, "circuit_hash": k.CircuitHash, "nb_constraints": k.NbConstraints,
			"dir": k.Dir, "verifier": path})
	}
	return levels, nil
}
