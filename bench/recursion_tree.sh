#!/usr/bin/env bash
# Compile-only measurements of the recursion tree's circuits (gnark/tree, docs/recursion.md):
# one circuit per process so each peak RSS is that circuit's. ~7 min and up to ~9.5 GB on 2 cores.
#   bash bench/recursion_tree.sh [shapes...]   (default: leaf:1 leaf:2 leaf:4 merge:2 merge:4 merge:8 bw6merge:8)
# Writes bench/results/recursion_tree_compile.json (a list of {circuit, r1cs, compile_s, compile_peak_rss_mib}).
set -euo pipefail
cd "$(dirname "$0")/../gnark"
shapes=("$@")
[ ${#shapes[@]} -eq 0 ] && shapes=(leaf:1 leaf:2 leaf:4 merge:2 merge:4 merge:8 bw6merge:8)
out=../bench/results/recursion_tree_compile.json
{
  echo "["
  sep=""
  for s in "${shapes[@]}"; do
    line=$(SHEAF_TREE_MEASURE="$s" go test ./tree/ -run TestMeasure -v -count=1 -timeout 60m | sed -n 's/.*MEASURE //p')
    [ -n "$line" ] || { echo "no measurement for $s" >&2; exit 1; }
    echo "$sep  $line"
    sep=","
  done
  echo "]"
} > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out"
