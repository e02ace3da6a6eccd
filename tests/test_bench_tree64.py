"""bench/recursion_tree_64.py's pure parts: the tree's job counts (the R1CS-per-leaf figure it prints
is computed from them) and the split of the batch into vk groups (full leaf jobs)."""

from __future__ import annotations

import pytest

from bench import recursion_tree_64 as b
from sheaf.recursion_tree import TreePlan


def test_jobs_per_level_of_the_shallowest_tree() -> None:
    assert b.PLAN == TreePlan(k=4, npub=1, fanin=4, levels=2)
    assert b._jobs_per_level(64) == [16, 4, 1]  # 16 leaf jobs, 4 merges, the top
    assert b._jobs_per_level(4) == [1]  # one leaf job is the top
    assert b._jobs_per_level(5) == [2, 1]
    assert b._jobs_per_level(17) == [5, 2, 1]


@pytest.mark.parametrize("n", [4, 5, 16, 17, 63, 64])
def test_vk_groups_fill_leaf_jobs(n: int) -> None:
    groups = b.vk_groups(n, 4)
    assert sum(groups) == n and all(x >= 0 for x in groups)
    assert [x % 4 for x in groups[:2]] == [0, 0] or n < 4  # only the last group may be partial
    if n == 64:
        assert groups == (28, 20, 16)
