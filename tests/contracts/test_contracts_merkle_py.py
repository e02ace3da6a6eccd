"""aggregator/merkle.py against the shared vectors, Substrate's own test vectors and itself."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from aggregator import merkle
from aggregator.merkle import MerkleError, all_paths, merkle_path, merkle_root, verify_path

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "merkle.json"


def test_vectors_file_is_what_the_generator_makes() -> None:
    # the forge test reads the same file: both implementations are held to identical bytes
    assert json.loads(VECTORS.read_text()) == json.loads(json.dumps(merkle.vectors()))


def test_vectors_roots_and_every_path() -> None:
    cases = json.loads(VECTORS.read_text())["cases"]
    assert [c["leaf_count"] for c in cases] == list(range(1, 34))
    for c in cases:
        leaves = [bytes.fromhex(x[2:]) for x in c["leaves"]]
        root = bytes.fromhex(c["root"][2:])
        assert merkle_root(leaves) == root
        for i, path in enumerate(c["paths"]):
            p = [bytes.fromhex(x[2:]) for x in path]
            assert merkle_path(leaves, i).path == tuple(p)
            assert verify_path(root, leaves[i], p, len(leaves), i)


def _substrate_root(leaves: list[bytes]) -> str:
    # the same row construction over arbitrary-length leaves (Substrate hashes leaf bytes first)
    row = [merkle.keccak256(x) for x in leaves]
    while len(row) > 1:
        row = merkle._next_row(row)
    return row[0].hex()


def test_matches_substrate_binary_merkle_tree_v15_vectors() -> None:
    # from paritytech substrate utils/binary-merkle-tree/src/lib.rs tests (Keccak256, positional)
    assert _substrate_root([bytes.fromhex("E04CC55ebEE1cBCE552f250e85c57B70B2E2625b")]) == (
        "aeb47a269393297f4b0a3c9c9cfd00c7a4195255274cf39d83dabc2fcc9ff3d7"
    )
    assert _substrate_root(
        [
            bytes.fromhex("E04CC55ebEE1cBCE552f250e85c57B70B2E2625b"),
            bytes.fromhex("25451A4de12dcCc2D166922fA938E900fCc4ED24"),
        ]
    ) == ("697ea2a8fe5b03468548a7a413424a6292ab44a82a6f5cc594c3fa7dda7ce402")
    assert (
        _substrate_root([b"a", b"b", b"c"])
        == "aff1208e69c9e8be9b584b07ebac4e48a1ee9d15ce3afe20b77a4d29e4175aa3"
    )
    assert _substrate_root([b"a", b"b", b"a", b"b"]) == (
        "dc8e73fe6903148ff5079baecc043983625c23b39f31537e322cd0deee09fa9c"
    )
    assert _substrate_root([bytes([c]) for c in b"abcdefghij"]) == (
        "fb3b3be94be9e983ba5e094c9c51a7d96a4fa2e5d8e891df00ca89ba05bb1239"
    )


def test_rejections_fuzzed() -> None:
    rnd = random.Random(7)
    for n in [*range(1, 40), 64, 65, 127, 128, 129]:
        leaves = [rnd.randbytes(32) for _ in range(n)]
        proofs = all_paths(leaves)
        for p in proofs:
            assert verify_path(p.root, p.leaf, p.path, n, p.index)
            assert not verify_path(p.root, rnd.randbytes(32), p.path, n, p.index)
            assert not verify_path(p.root, p.leaf, p.path, n, n)  # index out of range
            assert not verify_path(p.root, p.leaf, (*p.path, b"\0" * 32), n, p.index)  # extra entry
            if p.path:
                assert not verify_path(p.root, p.leaf, p.path[:-1], n, p.index)
                bad = list(p.path)
                bad[0] = bytes([bad[0][0] ^ 1]) + bad[0][1:]
                assert not verify_path(p.root, p.leaf, bad, n, p.index)
            for j in range(min(n, 40)):
                if j != p.index:
                    assert not verify_path(p.root, p.leaf, p.path, n, j)


def test_bad_input_errors_name_the_field() -> None:
    with pytest.raises(MerkleError) as e:
        merkle_root([])
    assert e.value.code == "MERKLE_EMPTY"
    with pytest.raises(MerkleError) as e:
        merkle_root([b"\0" * 32, b"\0" * 31])
    assert e.value.code == "MERKLE_LEAF_SIZE" and "leaves[1]" in str(e.value)
    with pytest.raises(MerkleError) as e:
        merkle_path([b"\0" * 32], 1)
    assert e.value.code == "MERKLE_INDEX"
