package main

import "github.com/sheaf-zk/sheaf/gnark/tree"

// runTree is `sheaf-gnark tree <setup|serve|export-solidity> ...` (recursion tree proving units, gnark/tree).
func runTree(args []string) error { return tree.Run(args) }
