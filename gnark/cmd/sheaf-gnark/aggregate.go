package main

import "github.com/sheaf-zk/sheaf/gnark/aggregation"

// runAggregate is `sheaf-gnark aggregate <setup|prove|verify|export-solidity|serve> ...`
// (recursive aggregation, gnark/aggregation; docs/recursion.md). Wire it in main.go's switch:
//
//	case "aggregate":
//		err = runAggregate(args)
func runAggregate(args []string) error { return aggregation.Run(args) }
