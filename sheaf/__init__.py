"""Sheaf's shared base, below every layer (normalizers, aggregator, deploy, provers, bench).

Only small, dependency-free building blocks live here: the one list of schemes and producers
(`sheaf.schemes`), the one error base type and its status mapping (`sheaf.errors`), the one place
binary, cache and SRS paths are resolved (`sheaf.paths`), keccak256 (`sheaf.hashing`) and the
bounded LRU used by every cache (`sheaf.lru`). The generated protobuf code lives beneath it in
`sheaf.v1` (made from proto/ at setup, never committed).
"""
