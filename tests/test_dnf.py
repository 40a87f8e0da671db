"""The Max-k-DNF instance (Foster et al. App. H.2): construction, realisability and Lemma H.2."""

import itertools
import math

import pytest
import torch

from oraclerl.diagnostics import coverage_coefficient
from oraclerl.errors import ConfigError
from oraclerl.problems.dnf import clause_mass, dnf_value, lemma_h2_upper, max_k_dnf


def _val_loop(z, variables, signs):
    return sum(all(int(s) * int(z[int(j)]) > 0 for j, s in zip(v, sg)) for v, sg in zip(variables, signs))


def test_construction_and_brute_force_maximiser():
    inst = max_k_dnf(num_vars=6, num_clauses=15, k=2, beta=0.25, seed=3)
    v, s = inst.meta["variables"], inst.meta["signs"]
    assert v.shape == (15, 2) and all(len(set(row.tolist())) == 2 for row in v)
    best = max(_val_loop(z, v, s) for z in itertools.product((-1, 1), repeat=6))
    assert inst.meta["val"] == best == _val_loop(inst.theta_star, v, s)
    assert int(dnf_value(inst.theta_star, v, s)) == best
    phi = inst.base.phi[0]
    assert torch.all(phi[0] == 0) and torch.allclose(
        phi[1:].norm(dim=-1), torch.full((15,), 1 / math.sqrt(2), dtype=phi.dtype)
    )
    ref = inst.base.log_ref[0].exp()
    assert float(ref[0]) == pytest.approx(1 - math.exp(-4.0)) and torch.allclose(
        ref[1:], torch.full((15,), math.exp(-4.0) / 15, dtype=ref.dtype)
    )
    r = inst.reward.table[0]
    for i in range(15):                                         # r⋆(i) = 1 iff θ⋆ satisfies clause i
        sat = _val_loop(inst.theta_star, v[i:i + 1], s[i:i + 1]) == 1
        assert (float(r[i + 1]) == pytest.approx(1.0)) == sat and float(r[i + 1]) <= 1.0
    # realisable: π⋆_β = π_{θ⋆} (rewards are linear); Θ is the unit box
    torch.testing.assert_close(inst.optimal_log_policy(), inst.base.log_policy(inst.theta_star))
    assert inst.theta_set == "linf" and inst.theta_star.abs().max() <= inst.B
    assert coverage_coefficient(inst) <= math.exp(2 * inst.r_max / inst.beta)


def test_lemma_h2():
    """Σ_i π_{θ⋆}(i) ≥ val/(2m); every θ in the box has Σ_i π_θ(i) ≤ 2(val(sgn θ)/m + e^{−1/(βk)})."""
    for seed in range(3):
        inst = max_k_dnf(num_vars=8, num_clauses=30, k=3, beta=0.2, seed=seed)
        m = 30
        assert float(clause_mass(inst.base.log_policy(inst.theta_star))) >= inst.meta["val"] / (2 * m)
        thetas = (
            torch.rand(500, 8, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 - 1
        )
        thetas[:100] = torch.sign(thetas[:100])                 # vertices of the box too
        masses = torch.stack([clause_mass(inst.base.log_policy(t))[0] for t in thetas])
        assert torch.all(masses <= lemma_h2_upper(thetas, inst) + 1e-12)


def test_bad_input():
    with pytest.raises(ConfigError, match="beta"):
        max_k_dnf(beta=2.0)
    with pytest.raises(ConfigError, match="k"):
        max_k_dnf(num_vars=4, k=5)
    with pytest.raises(ConfigError, match="num_vars"):
        max_k_dnf(num_vars=30)


def test_dnf_proper_same_seed_bit_identical_and_seeds_differ():
    """dnf-proper is bit-reproducible (issue 16 §4: the FITSA warm start used lstsq's non-deterministic
    driver)."""
    import json

    from oraclerl.runtime.run.registry import get_experiment
    from oraclerl.runtime.run.runner import run_one

    exp = get_experiment("dnf-proper")
    cfg = exp.make_config("toy", {"T_prompt": "16", "T_exp": "16", "exp_batch": "4"})   # several θ refits
    a, _ = run_one(exp, cfg, 3)
    b, _ = run_one(exp, cfg, 3)
    c, _ = run_one(exp, cfg, 4)
    strip = lambda r: {k: v for k, v in r.items() if k != "elapsed_s"}  # noqa: E731
    assert json.dumps(strip(a), sort_keys=True) == json.dumps(strip(b), sort_keys=True)
    assert json.dumps(strip(a), sort_keys=True) != json.dumps(strip(c), sort_keys=True)
