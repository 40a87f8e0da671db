"""Few-shot tasks for pretrained LMs (problems.lm_tasks.few_shot_task): splits, answer extraction, and the
process verifier checked against its definition by brute force."""

import itertools

import pytest
import torch

from oraclerl.errors import ConfigError
from oraclerl.problems.lm_tasks import LMTask, few_shot_task


@pytest.mark.parametrize(
    "kind, size, size_b", [("add", 2, None), ("sub", 2, 1), ("mul", 1, 1), ("reverse", 3, None)]
)
def test_few_shot_task_splits_and_answers(kind, size, size_b):
    t = few_shot_task(kind, num_train=10, num_test=5, shots=3, size=size, size_b=size_b, seed=3)
    tr, te = t.meta["train_ids"], t.meta["test_ids"]
    assert tr == list(range(10)) and te == list(range(10, 15)) and t.num_prompts == 15
    assert (
        torch.allclose(t.weights[tr], torch.full((10,), 0.1, dtype=torch.float64))
        and (t.weights[te] == 0).all()
    )
    header = t.meta["header"]
    assert header.count("\n") == 3 and all(p.startswith(header) for p in t.prompts)
    problems = [p[len(header):] for p in t.prompts]
    shots = header.splitlines()
    # all distinct
    assert len(set(problems)) == 15 and not any(s.startswith(q) for s in shots for q in problems)
    for p, y in zip(problems, t.targets):  # the targets are what the task says, recomputed here
        if kind == "reverse":
            assert p.endswith(" ->") and y == p[:-3][::-1] and len(y) == size
        else:
            a, b = (int(v) for v in p[:-1].split({"add": "+", "sub": "-", "mul": "*"}[kind]))
            assert y == str({"add": a + b, "sub": a - b, "mul": a * b}[kind])
            assert len(str(a)) == size or size == 1
            assert len(str(b)) == (size_b or size) or (size_b or size) == 1
    for s in shots:  # the solved examples follow the same format as the answers
        q, ans = (s.split(" -> ") if kind == "reverse" else s.split("="))
        assert ans == (q[::-1] if kind == "reverse" else str(eval(q)))
    assert set("".join(t.prompts + t.targets)) <= set(t.alphabet)
    assert few_shot_task(kind, 10, 5, 3, size, size_b, seed=3).prompts == t.prompts
    assert few_shot_task(kind, 10, 5, 3, size, size_b, seed=4).prompts != t.prompts


def test_answer_extraction_and_outcome():
    t = LMTask("t", ["p"], ["12"], "12", torch.ones(1, dtype=torch.float64), stop="\n")
    f = t.outcome_fn()
    cases = {
        "12\n": 1,
        " 12 \nxx": 1,
        "12": 1,
        "12\n\n": 1,
        "123\n": 0,
        "1\n2": 0,
        "\n12": 0,
        "": 0,
        "1 2\n": 0,
    }
    assert f(prompts=["p"] * len(cases), completions=list(cases)) == [float(v) for v in cases.values()]
    plain = LMTask("t", ["p"], ["12"], "12", torch.ones(1, dtype=torch.float64))
    assert plain.outcome_fn()(prompts=["p", "p"], completions=["12", "12\n"]) == [1.0, 0.0]


def test_process_verifier_is_completability_by_brute_force():
    """r⋆(x, y_{1:i}) = 1 iff some continuation of the prefix verifies: checked over every prefix of length
    ≤ 4 over a small alphabet, against every continuation of length ≤ 3 (enough: after a completable prefix
    a correct answer needs at most the 2 target characters and the newline)."""
    t = LMTask("t", ["p"], ["12"], "12", torch.ones(1, dtype=torch.float64), stop="\n")
    alphabet = "12 \nx"

    def words(n):
        return [""] + ["".join(s) for k in range(1, n + 1) for s in itertools.product(alphabet, repeat=k)]

    tails = words(3)
    for p in words(4):
        completable = any(t.answer(p + s) == "12" for s in tails)
        assert t.prefix_ok("p", p) == completable, repr(p)
        # an ended response is its outcome
        assert t.prefix_ok("p", p, ended=True) == (t.answer(p) == "12"), repr(p)


def test_target_tokens_use_lead_and_stop():
    pytest.importorskip("transformers")
    from oraclerl.models.hf.tiny import tiny_causal_lm

    t = few_shot_task("reverse", num_train=2, num_test=1, shots=1, size=2, seed=0)
    lm = tiny_causal_lm(t.alphabet, t.prompts, max_new_tokens=5, stop_strings=("\n",))
    tgt = t.target_tokens(lm)
    text = lm.tokenizer.batch_decode(tgt.tolist(), skip_special_tokens=True)
    assert text == [" " + y + "\n" for y in t.targets]  # the canonical completion: lead, answer, stop
    assert (lm.response_lengths(tgt[:, None])[0][:, 0] == 4).all()  # ends at the stop string


def test_few_shot_task_validates_input():
    with pytest.raises(ConfigError, match="kind"):
        few_shot_task("div")
    with pytest.raises(ConfigError, match="num_test"):
        few_shot_task("add", num_train=40, num_test=20, size=1)  # 100 problems: at most 50 may be drawn
    with pytest.raises(ConfigError, match="size"):
        few_shot_task("add", size=4)
