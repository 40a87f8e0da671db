"""Oracle discipline: exact ledger counts, enforced budgets, reveal rules, reward noise laws."""

import math

import pytest
import torch

from oraclerl.errors import BudgetExceeded, ConfigError, RevealError
from oraclerl.oracles import (
    AutoregressiveSampler,
    Budget,
    Ledger,
    PreferenceOracle,
    PromptSource,
    RewardNoise,
    RewardOracle,
    StrongSampler,
    WeakSampler,
)
from oraclerl.oracles.ledger import ProvenanceError
from oraclerl.problems import linear_softmax


@pytest.fixture
def inst():
    return linear_softmax(d=3, num_prompts=4, num_responses=8, beta=0.5, target_coverage=3.0, seed=0)


def test_ledger_counts_are_exact(inst, gen):
    ora = inst.oracles()
    p = ora.prompts.draw(3, gen)
    s = ora.weak.sample(p, 5, gen)
    ora.strong.sample(p, inst.theta_star, 2, gen)
    ora.reward.outcome(p, s.responses, gen)
    ora.reward.outcome(p, s.responses[:, :1], gen)
    assert ora.ledger.snapshot() == {"t_comp": 3 * 5 + 3 * 2, "t_comp_token": 0, "t_data": 15 + 3,
                                     "prompts": 3, "t_feature": 0, "t_reset": 0, "t_grant": 0}


def test_budget_stops_before_work(inst, gen):
    ora = inst.oracles(Budget(t_comp=10, t_data=4))
    ora.weak.sample(torch.tensor([0, 1]), 5, gen)
    with pytest.raises(BudgetExceeded, match="t_comp") as info:
        ora.weak.sample(torch.tensor([0]), 1, gen)
    assert info.value.budget == "t_comp" and info.value.limit == 10
    assert ora.ledger.t_comp == 10  # the refused query was not counted
    with pytest.raises(BudgetExceeded, match="t_data"):
        ora.reward.outcome(torch.tensor([0]), torch.zeros(1, 5, dtype=torch.long), gen)
    assert ora.ledger.t_data == 0
    with pytest.raises(ConfigError, match="budget.t_data"):
        Budget(t_data=-1)


def test_reveal_rules(inst, gen):
    s = WeakSampler(inst.base).sample(torch.tensor([0]), 2, gen)
    assert s.features.shape == (1, 2, 3)
    with pytest.raises(RevealError, match="log-probabilities"):
        _ = s.log_probs
    s = WeakSampler(inst.base, reveal=()).sample(torch.tensor([0]), 2, gen)
    with pytest.raises(RevealError, match="features"):
        _ = s.features
    s = WeakSampler(inst.base, reveal={"features", "log_probs"}).sample(torch.tensor([0]), 2, gen)
    torch.testing.assert_close(s.log_probs, inst.base.ref_log_prob(torch.tensor([0]), s.responses))
    with pytest.raises(ConfigError, match="reveal"):
        WeakSampler(inst.base, reveal={"weights"})


def test_bad_queries(inst, gen):
    weak = WeakSampler(inst.base)
    with pytest.raises(ConfigError, match="prompts"):
        weak.sample(torch.tensor([7]), 1, gen)
    with pytest.raises(ConfigError, match="n"):
        weak.sample(torch.tensor([0]), 0, gen)
    with pytest.raises(ConfigError, match="theta"):
        StrongSampler(inst.base).sample(torch.tensor([0]), torch.zeros(5), 1, gen)
    with pytest.raises(ConfigError, match="weights"):
        PromptSource(torch.tensor([-1.0, 2.0]))


def test_reward_noise_is_unbiased(inst, gen):
    prompts = torch.zeros(1, dtype=torch.long)
    resp = torch.zeros(1, 40000, dtype=torch.long)
    mean = inst.reward.mean(prompts, resp[:, :1]).item()
    g = RewardOracle(inst.reward, noise=RewardNoise("gaussian", 0.5), grant_all=True).outcome(
        prompts, resp, gen
    )
    assert abs(g.mean().item() - mean) < 5 * 0.5 / math.sqrt(40000)
    b = RewardOracle(inst.reward, noise=RewardNoise("bernoulli"), grant_all=True).outcome(prompts, resp, gen)
    assert set(b.unique().tolist()) <= {0.0, inst.r_max}
    sd = inst.r_max * math.sqrt(0.25 / 40000)
    assert abs(b.mean().item() - mean) < 5 * sd
    with pytest.raises(ConfigError, match="noise.kind"):
        RewardNoise("laplace")


def test_preference_oracle_is_bradley_terry(inst, gen):
    ledger = Ledger()
    pref = PreferenceOracle(inst.reward, ledger, grant_all=True)
    prompts = torch.zeros(1, dtype=torch.long)
    a, b = torch.zeros(1, 30000, dtype=torch.long), torch.ones(1, 30000, dtype=torch.long)
    wins = pref.compare(prompts, a, b, gen).mean().item()
    r = inst.reward.table[0]
    want = 1 / (1 + math.exp(-(r[0] - r[1]).item()))
    assert abs(wins - want) < 5 * math.sqrt(0.25 / 30000)
    assert ledger.t_data == 30000


def test_prompt_source_law(gen):
    src = PromptSource(torch.tensor([0.2, 0.8]))
    x = src.draw(20000, gen)
    assert abs(x.float().mean().item() - 0.8) < 0.02
    assert src.ledger.prompts == 20000


class _TinyAutoregressive:
    """Uniform next-token model over A = 3, H = 2 with one-hot step features (for protocol tests)."""

    horizon, num_actions, num_prompts, feature_dim, beta, default_reveal = 2, 3, 1, 3, 1.0, None
    device = torch.device("cpu")

    def sample_next(self, prompts, prefixes, n, gen, theta):
        return torch.randint(0, 3, (prompts.numel(), n), generator=gen)

    def step_features(self, prompts, prefixes, tokens):
        return torch.nn.functional.one_hot(tokens, 3).double()

    def next_log_prob(self, prompts, prefixes, tokens, theta):
        return torch.full(tokens.shape, -math.log(3), dtype=torch.float64)


def test_autoregressive_oracle_counts_and_anchor_rules(gen):
    model = _TinyAutoregressive()
    auto = AutoregressiveSampler(model)
    s = auto.next_token(
        torch.zeros(4, dtype=torch.long), torch.zeros(4, 1, dtype=torch.long), 3, generator=gen
    )
    assert s.responses.shape == (4, 3) and s.features.shape == (4, 3, 3)
    assert auto.ledger.t_comp_token == 12
    with pytest.raises(RevealError, match="anchor"):
        auto.anchor_features(
            torch.zeros(1, dtype=torch.long), torch.zeros(1, 0, dtype=torch.long), torch.zeros(1)
        )
    with pytest.raises(RevealError, match="weak"):
        auto.next_token(
            torch.zeros(1, dtype=torch.long), torch.zeros(1, 0, dtype=torch.long), theta=torch.zeros(3)
        )
    with pytest.raises(ConfigError, match="prefixes"):
        auto.next_token(torch.zeros(1, dtype=torch.long), torch.zeros(1, 2, dtype=torch.long))
    auto = AutoregressiveSampler(model, allow_anchor_features=True)
    f = auto.anchor_features(
        torch.zeros(2, dtype=torch.long), torch.zeros(2, 0, dtype=torch.long), torch.tensor([1, 2])
    )
    assert f.shape == (2, 1, 3) and auto.ledger.t_feature == 2


class _CountingProcess:
    """A process reward that records how often it is evaluated (0 per prefix)."""

    r_max = None

    def __init__(self):
        self.calls = 0

    def mean(self, prompts, responses):
        return torch.zeros(responses.shape[:2], dtype=torch.float64)

    def process_mean(self, prompts, responses):
        self.calls += 1
        return torch.zeros(responses.shape, dtype=torch.float64)


def test_process_rewards_check_the_budget_before_any_grant_or_work():
    """A process query over budget raises before it grants its pairs or evaluates the reward (it used to
    grant, evaluate, then raise, with t_grant already charged)."""
    reward = _CountingProcess()
    led = Ledger(Budget(t_data=5))
    oracle = RewardOracle(reward, led, grant_all=True)
    with pytest.raises(BudgetExceeded, match="t_data"):
        oracle.process(torch.tensor([0, 1]), torch.zeros(2, 1, 3, dtype=torch.long))      # 6 prefixes > 5
    assert led.snapshot()["t_grant"] == 0 and led.t_data == 0 and reward.calls == 0
    assert oracle.process(torch.tensor([0]), torch.zeros(1, 1, 5, dtype=torch.long)).shape == (1, 1, 5)
    assert led.t_data == 5 and reward.calls == 1


def test_malformed_responses_get_one_config_error_line():
    reward = _CountingProcess()
    oracle, pref = RewardOracle(reward), PreferenceOracle(reward)
    with pytest.raises(ConfigError, match=r"^responses: must be \[B, n, \.\.\.\], got \(2,\)$"):
        oracle.outcome(torch.tensor([0, 1]), torch.zeros(2, dtype=torch.long))
    with pytest.raises(
        ConfigError, match=r"^responses: must be \[B, n, \.\.\.\] with B = 2 prompts, got \(3, 1\)$"
    ):
        pref.compare(
            torch.tensor([0, 1]), torch.zeros(3, 1, dtype=torch.long), torch.zeros(3, 1, dtype=torch.long)
        )


def test_preference_provenance_error_names_the_grant_that_exists(inst, gen):
    ora = inst.oracles()
    pref = PreferenceOracle(_CountingProcess(), ora.ledger)
    y = torch.zeros(1, 1, dtype=torch.long)
    with pytest.raises(ProvenanceError, match=r"RewardOracle\.grant\(prompts, responses\)"):
        pref.compare(torch.tensor([0]), y, y, gen)
    ora.reward.grant(torch.tensor([0]), y)                # the remedy the message names works
    assert pref.compare(torch.tensor([0]), y, y, gen).shape == (1, 1)
