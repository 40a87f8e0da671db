"""Seed fan-out: the same (seed, name) gives the same stream; names and seeds give independent streams."""

import torch

from oraclerl.runtime import SeedTree, derive_seed


def test_named_streams_are_reproducible_and_distinct():
    a, b = SeedTree(7), SeedTree(7)
    assert torch.equal(torch.rand(5, generator=a.torch("oracle")), torch.rand(5, generator=b.torch("oracle")))
    assert not torch.equal(
        torch.rand(5, generator=a.torch("oracle")), torch.rand(5, generator=a.torch("reward"))
    )
    assert not torch.equal(
        torch.rand(5, generator=SeedTree(7).torch("x")), torch.rand(5, generator=SeedTree(8).torch("x"))
    )
    assert (a.numpy("x").random(3) == b.numpy("x").random(3)).all()


def test_children_are_paths_and_seeds_fit_in_63_bits():
    t = SeedTree(3)
    assert t.child("a").int("b") == derive_seed(3, "a", "b") == SeedTree(3, "a").int("b")
    assert t.child("a").int("b") != t.child("b").int("a")
    seeds = {derive_seed(s, "n") for s in range(1000)}
    assert len(seeds) == 1000 and all(0 <= s < 2**63 for s in seeds)
