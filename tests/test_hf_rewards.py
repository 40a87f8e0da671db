"""TRL-signature rewards, synthetic LM tasks and their exact verifiers on a tiny CausalLM."""

import pytest
import torch

pytest.importorskip("transformers")

from oraclerl.errors import ConfigError  # noqa: E402
from oraclerl.models.hf.rewards import TRLProcessReward, TRLReward, trl_reward  # noqa: E402
from oraclerl.models.hf.tiny import tiny_causal_lm  # noqa: E402
from oraclerl.oracles import Ledger, RewardOracle, WeakSampler  # noqa: E402
from oraclerl.problems.lm_tasks import (  # noqa: E402
    arithmetic_task,
    string_transform_task,
    teacher_sequence_task,
)

pytestmark = pytest.mark.hf


def _task_lm(task, L, seed=0):
    return tiny_causal_lm(task.alphabet, task.prompts, seed=seed, max_new_tokens=L)


def test_trl_reward_function_used_unchanged(gen):
    task = arithmetic_task(num_prompts=6, seed=1)
    lm = _task_lm(task, 3)
    seen = {}

    def count_sevens(prompts, completions, completion_ids, answer, **kwargs):  # a TRL-style function
        seen["n"] = len(completions)
        seen["ids_ok"] = all(lm.tokenizer.decode(i, skip_special_tokens=True) == c
                             for i, c in zip(completion_ids, completions))
        seen["answer_ok"] = all(task.targets[task.prompts.index(p)] == a for p, a in zip(prompts, answer))
        return [float(c.count("7")) for c in completions]

    reward = TRLReward(lm, count_sevens, dataset_columns={"answer": task.targets})
    oracle = RewardOracle(reward, Ledger(), grant_all=True)
    prompts = torch.tensor([0, 3, 5])
    y = WeakSampler(lm, oracle.ledger).sample(prompts, 4, gen).responses  # drawn on the oracle's ledger
    r = oracle.outcome(prompts, y)
    assert r.shape == (3, 4) and oracle.ledger.t_data == 12
    texts = lm.decode(y)
    assert r.tolist() == [[float(t.count("7")) for t in row] for row in texts]
    assert seen == {"n": 12, "ids_ok": True, "answer_ok": True}


def test_none_means_not_applicable(gen):
    task = string_transform_task("reverse", num_prompts=4, length=3, seed=0)
    lm = _task_lm(task, 4)

    def only_first_prompt(prompts, completions, **kw):
        return [1.0 if p == task.prompts[0] else None for p in prompts]

    def length(prompts, completions, **kw):
        return [float(len(c)) for c in completions]

    prompts = torch.tensor([0, 1])
    y = lm.sample(prompts, 3, gen)
    lens = torch.tensor([[len(t) for t in row] for row in lm.decode(y)], dtype=torch.float64)
    r = TRLReward(lm, [only_first_prompt, length], weights=[2.0, 0.5]).mean(prompts, y)
    assert torch.allclose(r[0], 2.0 + 0.5 * lens[0]) and torch.allclose(r[1], 0.5 * lens[1])
    # no function applies: TRL's nansum gives 0, or an error on request
    none = TRLReward(lm, only_first_prompt).mean(prompts, y)
    assert (none[1] == 0).all() and (none[0] == 1).all()
    with pytest.raises(ConfigError, match="no reward function applies"):
        TRLReward(lm, only_first_prompt, none_value="error").mean(prompts, y)


@pytest.mark.parametrize("bad, match", [
    (lambda prompts, completions, **kw: [1.0] * (len(completions) - 1), "returned 5 values for 6"),
    (lambda prompts, completions, **kw: [float("nan")] * len(completions), "NaN"),
    (lambda prompts, completions, **kw: ["x"] * len(completions), "must be a number or None"),
    (lambda prompts, completions, **kw: 3.0, "must return a list"),
])
def test_bad_reward_functions_get_clear_errors(bad, match, gen):
    task = arithmetic_task(num_prompts=3, seed=0)
    lm = _task_lm(task, 3)
    ledger = Ledger()
    y = WeakSampler(lm, ledger).sample(torch.tensor([0, 1]), 3, gen).responses
    with pytest.raises(ConfigError, match=match):
        RewardOracle(TRLReward(lm, bad), ledger, grant_all=True).outcome(torch.tensor([0, 1]), y)
    with pytest.raises(ConfigError, match="weights"):
        TRLReward(lm, [bad], weights=[1.0, 2.0])
    with pytest.raises(ConfigError, match="dataset_columns.answer"):
        TRLReward(lm, bad, dataset_columns={"answer": [1]})


def _planted(lm, task, prompts, y, gen):
    """Overwrite some sampled responses with the exact target (and target prefixes) so verifiers see hits."""
    tgt = task.target_tokens(lm)
    y = y.clone()
    # <unk> decodes to nothing (skip_special_tokens, as TRL): the string verifier cannot see it, the token one
    # can
    y[y == lm.tokenizer.unk_token_id] = lm.tokenizer.convert_tokens_to_ids(task.alphabet[0])
    y[:, 0] = tgt[prompts]
    y[:, 1, :2] = tgt[prompts][:, :2]  # correct prefix, then whatever was sampled
    return lm._canonical(y)


@pytest.mark.parametrize(
    "make, L",
    [
        (lambda: arithmetic_task(num_prompts=8, seed=2), 4),
        (lambda: string_transform_task("upper", num_prompts=8, length=3, seed=1), 5),
        (lambda: teacher_sequence_task(num_contexts=8, length=4, vocab=4, seed=0), 4),
    ],
)
def test_string_and_token_verifiers_agree(make, L, gen):
    task = make()
    lm = _task_lm(task, L)
    prompts = torch.arange(8)
    y = _planted(lm, task, prompts, lm.sample(prompts, 6, gen), gen)
    tok = task.token_reward(lm)
    string = trl_reward(lm, task.outcome_fn(), process_func=task.process_fn())
    assert isinstance(string, TRLProcessReward)
    out_tok, out_str = tok.mean(prompts, y), string.mean(prompts, y)
    assert torch.equal(out_tok, out_str) and (out_tok[:, 0] == 1).all()
    proc_tok = tok.process_mean(prompts, y)
    assert torch.equal(proc_tok, string.process_mean(prompts, y))
    # process rewards are monotone prefix indicators and the last one is the outcome
    assert (proc_tok[..., 1:] <= proc_tok[..., :-1]).all() and torch.equal(proc_tok[..., -1], out_tok)
    oracle = RewardOracle(tok, Ledger(), grant_all=True)
    oracle.grant(prompts, y)  # planted responses were not drawn by a sampler
    oracle.process(prompts, y)
    assert oracle.ledger.t_data == 8 * 6 * L
    pm1 = task.token_reward(lm, values=(-1.0, 1.0)).process_mean(prompts, y)
    assert torch.equal(pm1, 2 * proc_tok - 1)


def test_tasks_are_exact_and_validated():
    t = arithmetic_task(num_prompts=20, ops="+-*", seed=0)
    for p, a in zip(t.prompts, t.targets):
        assert str(eval(p[:-1])) == a
    s = string_transform_task("sort", num_prompts=5, length=4, seed=0)
    assert all(tg == "".join(sorted(p[:-1])) for p, tg in zip(s.prompts, s.targets))
    ts = teacher_sequence_task(num_contexts=12, length=6, vocab=5, rare_fraction=0.25, rare_mass=0.03, seed=4)
    assert int(ts.meta["rare"].sum()) == 3
    assert torch.isclose(ts.weights[ts.meta["rare"]].sum(), torch.tensor(0.03, dtype=torch.float64))
    assert torch.isclose(ts.weights.sum(), torch.tensor(1.0, dtype=torch.float64))
    # the teacher is the greedy decode of the bigram-plus-context rule, recomputed step by step
    W1, W2 = ts.meta["teacher_task"].W1_star, ts.meta["teacher_task"].W2_star
    for c, target in enumerate(ts.targets):
        y = [int(W1[:, c].argmax())]
        for _ in range(5):
            y.append(int((W1[:, c] + W2[:, y[-1]]).argmax()))
        assert target == "".join("abcde"[j] for j in y)
    for kw, field in [({"ops": "/"}, "ops"), ({"max_operand": 0}, "max_operand")]:
        with pytest.raises(ConfigError, match=field):
            arithmetic_task(**kw)
    with pytest.raises(ConfigError, match="kind"):
        string_transform_task("shuffle")
    with pytest.raises(ConfigError, match="rare_mass"):
        teacher_sequence_task(rare_mass=1.5)
    lm = _task_lm(ts, 5)
    with pytest.raises(ConfigError, match="max_new_tokens"):
        ts.target_tokens(lm)
    with pytest.raises(ConfigError, match="not part of task"):
        ts.outcome_fn()(["zz"], ["a"])
