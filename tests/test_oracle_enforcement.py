"""The oracle layer enforces the framework's access rules itself (issue 16 §5).

* A reward oracle scores only (prompt, response) pairs that a sampler on the *same ledger* drew, or pairs the
  caller granted (counted in ``t_grant``); anything else raises ``ProvenanceError`` before any work or count.
* The local-simulator autoregressive oracle (MTSS's MDP oracle, Def. I.3) continues only from visited
  prefixes,
  and resets are made and counted by the oracle (``reset``), not by the algorithm.
* The model behind an oracle is not an attribute an algorithm can reach.
* Every algorithm runs against *strict* oracles that expose only the documented interface (anything else
  raises)
  and a read-only view of the ledger (an algorithm charging a counter itself raises).
"""

import collections
import itertools
import sys

import pytest
import torch

from oraclerl.explore import (
    MTSS,
    XPO,
    BestOfNPolicy,
    MTSSConfig,
    OnlineDPO,
    OnlineDPOConfig,
    ReferencePolicy,
    SpannerSampling,
    SpannerSamplingConfig,
    XPOConfig,
    exact_partition,
)
from oraclerl.inference import sample_based as sb
from oraclerl.models.linear_ar import ContextBigramFeatures, LinearARModel
from oraclerl.oracles import Ledger, PreferenceOracle, PromptSource, RewardOracle, WeakSampler
from oraclerl.oracles.ledger import ProvenanceError
from oraclerl.posttrain.policy_gradient import PGConfig, PGOracles, PolicyGradient, pg_oracles
from oraclerl.problems import linear_softmax
from oraclerl.problems.teacher import TeacherContexts, TeacherReward, teacher_task
from oraclerl.problems.token_mdp import random_token_mdp


class StrictAccess(AssertionError):
    """An algorithm touched something outside an oracle's documented interface."""


class ReadOnlyLedger:
    """What an algorithm may do with a ledger: read it."""

    _READ = {"snapshot", "remaining", "budget", "t_comp", "t_comp_token", "t_data", "prompts", "t_feature",
             "t_reset", "t_grant", "__getitem__"}

    def __init__(self, ledger):
        object.__setattr__(self, "_real", ledger)

    def __getitem__(self, k):
        return self._real[k]

    def __getattr__(self, name):
        if name in self._READ:
            return getattr(self._real, name)
        raise StrictAccess(f"algorithm code touched ledger.{name}")


class Strict:
    """A proxy exposing only ``allowed`` attributes of an oracle; its ledger is read-only (one view per
    ledger)."""

    _views: dict = {}

    def __init__(self, oracle, allowed):
        object.__setattr__(self, "_o", oracle)
        object.__setattr__(self, "_allowed", frozenset(allowed) | {"ledger"})

    def __getattr__(self, name):
        if name not in self._allowed:
            raise StrictAccess(f"algorithm code touched {type(self._o).__name__}.{name}")
        if name == "ledger":
            led = self._o.ledger
            return Strict._views.setdefault(id(led), ReadOnlyLedger(led))
        return getattr(self._o, name)

    def __call__(self, *a, **k):
        if "__call__" not in self._allowed:
            raise StrictAccess(f"algorithm code called {type(self._o).__name__}")
        return self._o(*a, **k)


INFO = {"feature_dim", "beta", "num_prompts", "device", "reveal"}
WEAK = INFO | {"sample"}
STRONG = INFO | {"sample"}
AUTO = INFO | {"next_token", "anchor_features", "reset", "horizon", "num_actions", "strong"}
REWARD = {"outcome", "__call__", "process", "r_max", "has_process"}
PROMPTS = {"draw", "num_prompts"}


def _strict_sequence_oracles(inst):
    o = inst.oracles()
    return (
        o,
        Strict(o.weak, WEAK),
        Strict(o.strong, STRONG),
        Strict(o.reward, REWARD),
        Strict(o.prompts, PROMPTS),
    )


@pytest.fixture
def inst():
    return linear_softmax(d=3, num_prompts=3, num_responses=6, beta=0.5, target_coverage=3.0, seed=0)


def test_every_sequence_algorithm_runs_against_strict_oracles(inst):
    gen = torch.Generator().manual_seed(0)
    o, weak, strong, reward, prompts = _strict_sequence_oracles(inst)
    out = SpannerSampling(SpannerSamplingConfig(B=inst.B, nu=0.5, T_prompt=8, T_span=8, T_exp=16, exp_batch=4,
                                                M_rej=4.0, delta_rej=0.2)).run(weak, reward, prompts, gen)
    out.policy.sample(torch.arange(3), 2, gen)
    out.policy.sample_prompts(4, gen)
    OnlineDPO(OnlineDPOConfig(T=16, B=inst.B, batch=4)).run(strong, reward, prompts, gen)
    XPO(XPOConfig(T=16, B=inst.B, batch=4)).run(
        strong, weak, reward, prompts, exact_partition(inst.base), gen
    )
    BestOfNPolicy(4, weak, reward).sample(torch.arange(3), 2, gen)
    ReferencePolicy(weak).sample(torch.arange(3), 2, gen)
    x = torch.arange(3)
    sb.BestOfN(sb.BestOfNConfig(n=4, num_samples=2)).run(weak, reward, x, gen)
    sb.SoftBestOfN(sb.SoftBestOfNConfig(n=4, num_samples=2)).run(weak, reward, x, gen)
    sb.RejectionSampling(sb.RejectionSamplingConfig(beta=1.0, num_samples=2)).run(weak, reward, x, gen)
    sb.BestOfPoisson(sb.BestOfPoissonConfig(mu=3.0, num_samples=2)).run(weak, reward, x, gen)
    assert o.ledger.t_grant == 0 and o.ledger.t_data > 0


def test_mtss_runs_against_strict_oracles_and_its_resets_are_counted_by_the_oracle():
    inst = random_token_mdp(num_actions=3, horizon=3, d=3, num_prompts=2, seed=3)
    o = inst.oracles()
    cfg = MTSSConfig(T=3, B=inst.B, N_reg=2, N_span=2, N_bar_span=1)
    res = MTSS(cfg).run(Strict(o.auto, AUTO), Strict(o.step_reward, REWARD), Strict(o.prompts, PROMPTS),
                        torch.Generator().manual_seed(0))
    res.policy.sample(
        Strict(o.auto, AUTO), torch.zeros(4, dtype=torch.long), torch.Generator().manual_seed(1)
    )
    assert o.ledger.t_grant == 0
    # the oracle's own count brackets Alg. 5/6's restarts: iteration t has 2(t−1) core pairs per layer (half
    # of them anchor pairs); UncertainStateAction restarts N_span roll-ins at each core pair of layers 0..H−2,
    # and FitValue 2·N_reg roll-outs at each non-anchor core pair (between 0 and t−1 of them per layer)
    H, T = 3, cfg.T
    span = sum((H - 1) * 2 * (t - 1) * cfg.N_span for t in range(1, T + 1))
    fit_max = sum(H * 2 * cfg.N_reg * (t - 1) for t in range(1, T + 1))
    assert span < o.ledger.t_reset <= span + fit_max


def test_reward_oracle_scores_only_what_was_drawn_on_its_ledger(inst):
    gen = torch.Generator().manual_seed(1)
    o = inst.oracles()
    s = o.weak.sample(torch.tensor([0, 1]), 3, gen)
    o.reward.outcome(s.prompts, s.responses, gen)                            # drawn: fine
    o.reward.outcome(s.prompts, s.responses[:, :1], gen)                     # a subset: fine
    before = o.ledger.snapshot()
    unseen = torch.tensor([[y for y in range(6) if y not in s.responses[0].tolist()][:1]])
    with pytest.raises(ProvenanceError, match="not drawn"):
        o.reward.outcome(torch.tensor([0]), unseen, gen)
    with pytest.raises(ProvenanceError):                                     # right response, wrong prompt
        o.reward.outcome(torch.tensor([2]), s.responses[:1], gen)
    assert o.ledger.snapshot() == before                                     # refused before any count
    other = Ledger()                                                         # drawn on another ledger
    s2 = WeakSampler(inst.base, other).sample(torch.tensor([0]), 6, gen)
    fresh = [y for y in s2.responses[0].tolist() if y not in s.responses[0].tolist()]
    if fresh:
        with pytest.raises(ProvenanceError):
            o.reward.outcome(torch.tensor([0]), torch.tensor([fresh[:1]]), gen)
    # an explicit grant is counted once per new pair, then the pair can be scored
    assert o.reward.grant(torch.tensor([0]), unseen) == 1
    assert o.reward.grant(torch.tensor([0]), unseen) == 0
    o.reward.outcome(torch.tensor([0]), unseen, gen)
    assert o.ledger.t_grant == 1
    pref = PreferenceOracle(inst.reward, o.ledger)
    with pytest.raises(ProvenanceError):
        pref.compare(
            torch.tensor([1]), s.responses[1:, :1], torch.tensor([[5 if 5 not in s.responses[1] else 4]]), gen
        )
    # evaluation code may grant everything (counted); an oracle on a private ledger does so by default
    ev = RewardOracle(inst.reward, Ledger(), grant_all=True)
    ev.outcome(torch.tensor([0]), torch.tensor([[0, 1, 1]]), gen)
    assert ev.ledger.t_grant == 2 and ev.ledger.t_data == 3
    assert RewardOracle(inst.reward).grant_all


def test_token_sequences_register_whole_responses_and_visited_states_only():
    """A weakly drawn sequence is scored whole (outcome and process); its prefixes queried alone are
    refused unless granted (Provenance stores one key per response, not L); states the autoregressive
    oracle returned are accepted. Registering prefixes again (the old design, L keys per response) makes
    the refusals pass through."""
    inst = random_token_mdp(num_actions=3, horizon=3, d=3, num_prompts=2, seed=1)
    o = inst.oracles()
    y = o.weak.sample(torch.tensor([0]), 2, torch.Generator().manual_seed(0)).responses
    assert len(o.ledger.provenance) <= 2                                    # one key per drawn response
    o.step_reward.outcome(torch.tensor([0]), y)                             # the whole sequence: drawn
    # scores its prefixes, checked whole
    o.reward.process(torch.tensor([0]), y)
    before = o.ledger.snapshot()
    for h in (1, 2):
        with pytest.raises(ProvenanceError, match="not drawn"):
            o.step_reward.outcome(torch.tensor([0]), y[..., :h])
        with pytest.raises(ProvenanceError, match="not drawn"):
            o.reward.process(torch.tensor([0]), y[..., :h])
    assert o.ledger.snapshot() == before                                     # refused before any count
    assert o.step_reward.grant(torch.tensor([0]), y[:, :1, :1]) == 1         # explicit and counted
    o.step_reward.outcome(torch.tensor([0]), y[:, :1, :1])
    # the autoregressive oracle's states x∘a_1, x∘a_1∘a_2 are drawn as such: accepted, without a grant
    gen = torch.Generator().manual_seed(1)
    a1 = o.auto.next_token(torch.tensor([1]), torch.zeros(1, 0, dtype=torch.long), generator=gen).responses[
        :, 0
    ]
    a2 = o.auto.next_token(torch.tensor([1]), a1[:, None], generator=gen).responses[:, 0]
    state = torch.stack([a1, a2], 1)[:, None, :]
    o.step_reward.outcome(torch.tensor([1]), a1[:, None, None])
    o.step_reward.outcome(torch.tensor([1]), state)
    assert o.ledger.t_grant == 1
    bad = state.clone()
    bad[0, 0, 1] = (bad[0, 0, 1] + 1) % 3                                    # a sibling state never visited
    with pytest.raises(ProvenanceError):
        o.step_reward.outcome(torch.tensor([1]), bad)


def test_local_simulator_continues_only_from_visited_prefixes_and_counts_resets():
    inst = random_token_mdp(num_actions=3, horizon=3, d=3, num_prompts=2, seed=1)
    o = inst.oracles()
    assert o.auto.local_simulator
    gen = torch.Generator().manual_seed(0)
    a = o.auto.next_token(
        torch.tensor([0, 1]), torch.zeros(2, 0, dtype=torch.long), 1, generator=gen
    ).responses
    o.auto.next_token(torch.tensor([0, 1]), a, 1, generator=gen)                   # visited states: fine
    unvisited = (a[:1] + 1) % 3                                                    # prompt 0 drew only a[0]
    with pytest.raises(ProvenanceError, match="never visited"):
        o.auto.next_token(torch.tensor([0]), unvisited, 1, generator=gen)
    with pytest.raises(ProvenanceError, match="never visited"):
        o.auto.reset(torch.tensor([0]), unvisited)
    with pytest.raises(ProvenanceError):                                           # (x, 𝔞) reached by neither
        o.auto.anchor_features(torch.tensor([0]), torch.cat([unvisited, unvisited], 1), torch.tensor([0]))
    before = o.ledger.t_reset
    o.auto.reset(torch.tensor([0, 0, 1]), torch.cat([a[:1], a[:1], a[1:]]))
    assert o.ledger.t_reset == before + 3
    o.auto.anchor_features(torch.tensor([0]), a[:1], torch.tensor([0]))  # x∘𝔞 is visited now
    o.auto.next_token(
        torch.tensor([0]), torch.cat([a[:1], torch.zeros(1, 1, dtype=torch.long)], 1), 1, generator=gen
    )
    # the plain autoregressive oracle of Def. 5.1 (an LM fed any prefix) keeps accepting any prefix
    free = inst.oracles(allow_anchor_features=False).auto
    assert not free.local_simulator
    free.next_token(torch.tensor([0]), torch.tensor([[2, 2]]), 1, generator=gen)


def test_the_model_is_not_reachable_from_an_oracle(inst):
    o = inst.oracles()
    for oracle in (o.weak, o.strong, o.reward):
        assert (
            not hasattr(oracle, "_model") and not hasattr(oracle, "model") and not hasattr(oracle, "_reward")
        )
        public = {k: v for k, v in vars(oracle).items() if not k.startswith("_")}
        assert not any(v is inst.base or v is inst.reward for v in public.values())
# --- policy-gradient post-training (Mousavi-Hosseini & Erdogdu) against strict oracles ----------------------

CONTEXTS = {"lookup"}  # TeacherContexts to the learner: x of the drawn ids; no .task (the teacher), no y*


def _strict_pg_oracles(model, ctx, rew, base=None) -> PGOracles:
    """The caller's side (issue 16 §5): PG's sampling oracles built on the real reward oracle's ledger, then
    handed to PG behind strict views exposing only the sampling interface."""
    o = pg_oracles(model, ctx, rew, base=base)
    return PGOracles(
        Strict(o.sampler, WEAK),
        Strict(o.prompts, PROMPTS),
        None if o.base_sequences is None else Strict(o.base_sequences, WEAK),
        None if o.base_tokens is None else Strict(o.base_tokens, AUTO),
    )


class OracleWritesOnlyLedger(ReadOnlyLedger):
    """A read-only ledger view through which only *oracle code* (``oraclerl.oracles.*``) may count or register
    provenance: a sampler that an algorithm builds on ``reward.ledger`` counts through it, the algorithm's own
    code (``oraclerl.posttrain.*`` or a test's learner) still raises :class:`StrictAccess`."""

    _WRITE = {"charge", "check", "provenance"}

    def __getattr__(self, name):
        if name in self._READ:
            return getattr(self._real, name)
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if name in self._WRITE and caller.startswith("oraclerl.oracles."):
            return getattr(self._real, name)
        raise StrictAccess(f"{caller} touched ledger.{name}")


class OracleCountedStrict(Strict):
    """:class:`Strict` with the ledger view :class:`OracleWritesOnlyLedger` (not :class:`ReadOnlyLedger`)."""

    def __getattr__(self, name):
        if name == "ledger":
            return OracleWritesOnlyLedger(self._o.ledger)
        return super().__getattr__(name)


def _audit_charges(ledger: Ledger) -> list[tuple[str, str, str, int]]:
    """Record (module, function, counter, n) of every ``ledger.charge`` call, whoever makes it."""
    calls, real = [], ledger.charge

    def charge(counter, n):
        f = sys._getframe(1)
        calls.append((f.f_globals.get("__name__", ""), f.f_code.co_name, counter, int(n)))
        real(counter, n)

    ledger.charge = charge
    return calls


def _teacher_setup(kind: str):
    """d = 3, k = 2, N = 3 teacher task (8 responses per context); its contexts and reward oracle, one
    ledger."""
    task = teacher_task(3, 2, 3, num_mix=2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    led = Ledger()
    calls = _audit_charges(led)
    ctx = TeacherContexts(task, led)
    rew = RewardOracle(TeacherReward(ctx, kind, "signed"), led)
    return led, calls, ctx, rew, LinearARModel(ContextBigramFeatures(3, 2), 3, dtype=torch.float64)


ALL_SEQS = torch.tensor(list(itertools.product(range(2), repeat=3)))  # the k^N = 8 responses


@pytest.mark.parametrize("kind", ["outcome", "process"])
def test_policy_gradient_runs_against_strict_oracles_and_every_count_is_charged_by_an_oracle(kind):
    """ORM and PRM, on-policy, 3 steps of B = 4 contexts × n = 2 responses: PG draws the contexts only
    through the prompt oracle (``PromptSource`` over the TeacherContexts) and reads their x through
    ``lookup``, and the reward oracle only through its interface (no ``grant``: on-policy responses are
    drawn on the ledger); every count is charged by oracle code, exactly B·n per step of T_comp and B·n
    (ORM) or B·n·N (PRM, one per prefix) of T_data; afterwards the reward oracle still refuses responses
    never drawn."""
    led, calls, ctx, rew, model = _teacher_setup(kind)
    T, B, n, N = 3, 4, 2, 3
    cfg = PGConfig(
        steps=T, batch_size=B, group_size=n, reward=kind, advantage="none", optimizer="sgd", lr=1.0
    )
    strict_reward = Strict(rew, REWARD)
    res = PolicyGradient(cfg).run(model, Strict(ctx, CONTEXTS), strict_reward,
                                  _strict_pg_oracles(model, ctx, rew), torch.Generator().manual_seed(0))
    assert len(res.mean_reward) == T and bool((model.w != 0).any())
    want = {"prompts": T * B, "t_comp": T * B * n, "t_data": T * B * n * (1 if kind == "outcome" else N)}
    assert led.snapshot() == {**dict.fromkeys(led.snapshot(), 0), **want} == res.ledger
    by_caller = collections.Counter()
    for mod, fn, counter, k in calls:
        by_caller[mod, fn, counter] += k
    assert dict(by_caller) == {
        ("oraclerl.oracles.samplers", "draw", "prompts"): T * B,
        ("oraclerl.oracles.samplers", "sample", "t_comp"): T * B * n,
        ("oraclerl.oracles.rewards", kind, "t_data"): want["t_data"],
    }
    # the last step's prompts (ids are a running counter): only the n drawn responses are known, the rest
    # refused
    ids = torch.arange((T - 1) * B, T * B)
    known = led.provenance.contains(ids, ALL_SEQS[None].expand(B, 8, 3))
    assert known.sum(1).le(n).all() and known.any(1).all()
    before = led.snapshot()
    for b in range(B):
        drawn, never = ALL_SEQS[known[b]], ALL_SEQS[~known[b]]
        with pytest.raises(ProvenanceError, match="not drawn"):
            strict_reward.outcome(ids[b : b + 1], never[None, :1])
        if kind == "process":
            with pytest.raises(ProvenanceError, match="not drawn"):
                strict_reward.process(ids[b : b + 1], never[None, :1])
            with pytest.raises(ProvenanceError, match="not drawn"):  # a drawn response's prefix, alone
                strict_reward.outcome(ids[b : b + 1], drawn[None, :1, :2])
    assert led.snapshot() == before  # refused before any count
    strict_reward.outcome(ids[:1], ALL_SEQS[known[0]][None, :1])  # a drawn one is scored, counted
    assert led.t_data == before["t_data"] + 1 and led.t_grant == 0


@pytest.mark.parametrize("kind", ["outcome", "process"])
@pytest.mark.parametrize("mix", [0.0, 1.0])
def test_best_of_m_exploration_counts_every_candidate_through_the_oracles(kind, mix):
    """Algorithms 1-2 (``behaviour="best_of_m"``, m = 3) against strict oracles: each candidate costs one
    reward query. mix = 1: every candidate is drawn from q₀ through a sampling oracle (ORM: one T_comp, PRM:
    one T_comp_token each) and so needs no grant; mix = 0: q₀ is never queried and the uniform candidates (the
    learner's own draws) are granted, at most one T_grant each, counted by the oracle."""
    led, calls, ctx, rew, model = _teacher_setup(kind)
    T, B, N = 3, 4, 3
    cfg = PGConfig(
        steps=T,
        batch_size=B,
        reward=kind,
        reward_form="signed",
        advantage="none",
        behaviour="best_of_m",
        m=3,
        explore_mix=mix,
        optimizer="sgd",
        lr=1.0,
    )
    PolicyGradient(cfg).run(model, Strict(ctx, CONTEXTS), Strict(rew, REWARD | {"grant"}),
                            _strict_pg_oracles(model, ctx, rew, base=model.copy()),
                            torch.Generator().manual_seed(0))
    on_policy = T * B * (1 if kind == "outcome" else N)
    explored = led.t_data - on_policy  # one reward query per candidate
    q0 = led.t_comp - T * B if kind == "outcome" else led.t_comp_token  # candidates drawn from q₀
    assert explored > 0 and led.prompts == T * B
    if mix == 1.0:
        assert q0 == explored and led.t_grant == 0
    else:
        assert q0 == 0 and 0 < led.t_grant <= explored
    assert {(mod, fn) for mod, fn, _, _ in calls} <= {
        ("oraclerl.oracles.samplers", "draw"),
        ("oraclerl.oracles.samplers", "sample"),
        ("oraclerl.oracles.samplers", "next_token"),
        ("oraclerl.oracles.rewards", "outcome"),
        ("oraclerl.oracles.rewards", "process"),
        ("oraclerl.oracles.rewards", "_grant"),
    }


def test_a_learner_that_counts_for_itself_is_caught():
    """Negative control of the two tests above: learner code charging a counter (as
    ``posttrain.reference.reference_policy_gradient`` did with ``reward.ledger.charge("t_comp", B)`` before
    issue 16 §5) or registering provenance itself raises, through the same ledger view."""
    led, calls, ctx, rew, model = _teacher_setup("outcome")
    view = OracleCountedStrict(rew, REWARD).ledger
    with pytest.raises(StrictAccess, match=r"ledger\.charge"):
        view.charge("t_comp", 4)
    with pytest.raises(StrictAccess, match=r"ledger\.provenance"):
        view.provenance.add(torch.tensor([0]), ALL_SEQS[None, :1])
    with pytest.raises(StrictAccess, match=r"\.task"):
        _ = OracleCountedStrict(ctx, CONTEXTS).task
    assert view.t_comp == 0 and calls == []


@pytest.mark.parametrize("behaviour", ["on_policy", "best_of_m"])
@pytest.mark.parametrize("kind", ["outcome", "process"])
def test_policy_gradient_against_a_read_only_ledger(kind, behaviour):
    """PG with the plain read-only ledger view of the sequence algorithms (issue 16 §5): the caller builds
    the sampling oracles (``pg_oracles``) and PG only draws through them, so it never needs write access to a
    ledger and never holds q₀. ORM and PRM, on-policy and best-of-m (mix ½: q₀ draws and granted uniform
    candidates, both counted by oracle code); the counts are exactly what the oracles charged."""
    led, calls, ctx, rew, model = _teacher_setup(kind)
    T, B, N = 2, 3, 3
    cfg = PGConfig(steps=T, batch_size=B, reward=kind, advantage="none", behaviour=behaviour, m=3,
                   optimizer="sgd", lr=1.0)
    base = model.copy() if behaviour == "best_of_m" else None
    res = PolicyGradient(cfg).run(model, Strict(ctx, CONTEXTS),
                                  Strict(rew, REWARD | ({"grant"} if base is not None else set())),
                                  _strict_pg_oracles(model, ctx, rew, base=base),
                                  torch.Generator().manual_seed(0))
    assert len(res.mean_reward) == T and bool((model.w != 0).any()) and res.ledger == led.snapshot()
    on_policy = T * B * (1 if kind == "outcome" else N)
    assert led.prompts == T * B and led.t_comp >= T * B and led.t_data >= on_policy
    if base is None:
        assert led.t_comp == T * B and led.t_data == on_policy and led.t_grant == led.t_comp_token == 0
    else:
        assert led.t_data > on_policy  # explored candidates, one reward query each
    # every count was charged by oracle code, none by posttrain code
    assert {mod for mod, _, _, _ in calls} <= {"oraclerl.oracles.samplers", "oraclerl.oracles.rewards"}
    assert sum(k for _, _, c, k in calls if c == "t_comp") == led.t_comp


@pytest.mark.parametrize("kind", ["outcome", "process"])
def test_reference_policy_gradient_grants_its_own_draws_through_the_oracle(kind):
    """The authors'-style reference samples from its own weights (not through a sampler): against strict
    oracles and the read-only ledger view it counts nothing itself; the reward oracle counts its draws in
    T_grant (one per new pair) and its queries in T_data; T_comp stays 0."""
    from oraclerl.posttrain.reference import reference_policy_gradient

    led, calls, ctx, rew, model = _teacher_setup(kind)
    T, B, N = 2, 3, 3
    res = reference_policy_gradient(
        model,
        Strict(ctx, CONTEXTS),
        Strict(rew, REWARD | {"grant"}),
        Strict(PromptSource(ctx, led), PROMPTS),
        PGConfig(steps=T, batch_size=B, reward=kind, advantage="none", optimizer="sgd", lr=1.0),
        torch.Generator().manual_seed(0),
    )
    assert len(res.mean_reward) == T and bool((model.w != 0).any()) and res.ledger == led.snapshot()
    want = {"prompts": T * B, "t_data": T * B * (1 if kind == "outcome" else N)}
    assert {k: led.snapshot()[k] for k in ("prompts", "t_data", "t_comp")} == {**want, "t_comp": 0}
    assert 0 < led.t_grant <= T * B
    assert {(mod, fn) for mod, fn, _, _ in calls} == {
        ("oraclerl.oracles.samplers", "draw"),
        ("oraclerl.oracles.rewards", "_grant"),
        ("oraclerl.oracles.rewards", kind),
    }
