package main

import "github.com/sheaf-zk/sheaf/gnark/slice"

// runSlice dispatches `sheaf-gnark slice prove|verify|commit` (gnark/slice, owned by the
// slice-prover engineer). main.go wires it with: case "slice": err = runSlice(args)
func runSlice(args []string) error { return slice.Run(args) }
