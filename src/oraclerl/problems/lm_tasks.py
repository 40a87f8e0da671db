"""Verifiable synthetic tasks for language models, with exact outcome and process verifiers.

Every task is a list of prompt strings, one target string per prompt, and a prompt law ρ. Verifiers:

* string level, TRL signature ``f(prompts, completions, **kwargs) -> list[float]`` (:meth:`LMTask.outcome_fn`,
  :meth:`LMTask.process_fn`): outcome = 1[completion == target]; process = 1[completion prefix is a prefix
  of the target] (the exact process verifier r⋆(x, y_{1:i}) = 1[y_{1:i} = y⋆_{1:i}] of Mousavi-Hosseini &
  Erdogdu 2026, Eq. 4). Completions are decoded text: EOS, padding and any other special token (e.g. an
  emitted ``<unk>``) are invisible to them, whereas the token-level verifier counts such a token as wrong.
* token level, vectorised (:meth:`LMTask.token_reward`): the target is tokenised once (``+ EOS`` unless
  the task has fixed length, in which case responses are exactly ``length`` tokens), and the reward compares
  padded token tensors: outcome = 1[y = y⋆], process = cumprod of token matches. ``values=(-1, 1)`` gives the
  ±1 rewards of the authors' experiments (docs/papers/mousavi2026_pg_barrier.md §2.2).

Tasks: :func:`teacher_sequence_task` (the Mousavi-Hosseini & Erdogdu teacher: a bigram-plus-context greedy
walk, with a rare part of the context distribution), :func:`arithmetic_task`, :func:`string_transform_task`,
and :func:`few_shot_tasks` (train / held-out splits of few-shot prompts for a *pretrained* LM).

Tasks with a ``stop`` string (few-shot prompts: the answer ends at the newline, as every solved example in
the prompt does) verify the *answer* of a completion, the text before the first ``stop`` with surrounding
whitespace removed (:meth:`LMTask.answer`). Their exact process verifier is 1[the prefix can still be
completed into a correct completion]: before the stop (or the end of the response) the prefix without its
leading whitespace must be a prefix of the target, or the target followed by whitespace only; once the stop
string or the end is reached, the answer must equal the target.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..common.validation import check_choice, check_int, check_range
from ..errors import ConfigError
from .teacher import teacher_task

LETTERS = "abcdefghijklmnopqrstuvwxyz"


@dataclass
class LMTask:
    """A verifiable prompt → target task (see the module docstring)."""

    name: str
    prompts: list[str]
    targets: list[str]
    alphabet: str
    """Every character used by prompts and targets (for a character-level tokenizer)."""
    weights: torch.Tensor
    """Prompt law ρ over prompt ids [X] (float64, sums to 1)."""
    fixed_length: int | None = None
    """Responses are exactly this many tokens (no EOS) when set; else target + EOS."""
    meta: dict = field(default_factory=dict)
    stop: str | None = None
    """The answer ends at the first occurrence of this string (e.g. a newline); None: the whole completion."""
    lead: str = ""
    """What a canonical completion writes before the target (e.g. the space after ``->``): part of the target
    tokens, ignored by the (whitespace-stripping) verifiers of a task with a stop string."""

    def __post_init__(self):
        if len(self.prompts) != len(self.targets) or not self.prompts:
            raise ConfigError(
                "targets", f"need one target per prompt, got {len(self.targets)} for {len(self.prompts)}"
            )
        self._target_of = dict(zip(self.prompts, self.targets))

    @property
    def num_prompts(self) -> int:
        return len(self.prompts)

    @property
    def max_target_len(self) -> int:
        return max(len(t) for t in self.targets)

    # -- string-level verifiers (TRL signature) --------------------------------------------------------
    def _target(self, prompt: str) -> str:
        if prompt not in self._target_of:
            raise ConfigError("prompts", f"prompt {prompt!r} is not part of task {self.name!r}")
        return self._target_of[prompt]

    def answer(self, completion: str) -> str:
        """The answer a completion gives: all of it, or (with ``stop``) the text before the first stop string,
        stripped of surrounding whitespace."""
        if self.stop is None:
            return completion
        return completion.split(self.stop, 1)[0].strip()

    def prefix_ok(self, prompt: str, prefix: str, ended: bool = False) -> bool:
        """The exact process verifier r⋆(x, y_{1:i}) on a decoded prefix (see the module docstring);
        ``ended``: the prefix contains the end of the response."""
        target = self._target(prompt)
        if self.stop is None:
            return prefix == target if ended else target.startswith(prefix)
        if ended or self.stop in prefix:
            return self.answer(prefix) == target
        body = prefix.lstrip()
        return target.startswith(body) or (body.startswith(target) and not body[len(target):].strip())

    def outcome_fn(self):
        """TRL reward function: 1.0 if the completion's answer equals the target, else 0.0."""
        def exact_match(prompts, completions, **kwargs):
            return [float(self.answer(c) == self._target(p)) for p, c in zip(prompts, completions)]
        return exact_match

    def process_fn(self):
        """TRL-signature process verifier (:meth:`prefix_ok`): 1.0 if the partial completion can still
        become a correct one (keyword ``prefix_ended``, passed by ``TRLProcessReward``, marks a finished
        response)."""
        def prefix_correct(prompts, completions, prefix_ended=None, **kwargs):
            ended = prefix_ended if prefix_ended is not None else [False] * len(completions)
            return [float(self.prefix_ok(p, c, bool(e))) for p, c, e in zip(prompts, completions, ended)]
        return prefix_correct

    # -- token-level verifier ----------------------------------------------------------------------------
    def target_tokens(self, lm) -> torch.Tensor:
        """Targets as canonical padded token tensors [X, L] for ``lm`` (a CausalLM), L = lm.max_new_tokens:
        the tokens of ``lead + target + stop`` (with a stop string; ``lm`` must stop at it) or of
        ``lead + target + EOS``."""
        L = lm.max_new_tokens
        if self.fixed_length is not None and L != self.fixed_length:
            raise ConfigError(
                "max_new_tokens",
                f"task {self.name!r} has fixed-length responses: must be {self.fixed_length}, got {L}",
            )
        out = torch.full((self.num_prompts, L), lm.pad_token_id, dtype=torch.long)
        for i, t in enumerate(self.targets):  # once per prompt, at construction
            ids = lm.tokenizer(self.lead + t + (self.stop or ""), add_special_tokens=False)["input_ids"]
            if self.fixed_length is None and self.stop is None:
                ids = ids + [lm.eos_token_id]
            if len(ids) > L:
                raise ConfigError(
                    "max_new_tokens", f"target {t!r} needs {len(ids)} tokens, the model allows {L}"
                )
            out[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        return out.to(lm.device)

    def token_reward(self, lm, values: tuple[float, float] = (0.0, 1.0)) -> TargetTokenReward:
        """Vectorised exact verifier on token tensors (outcome ``mean`` and process ``process_mean``)."""
        return TargetTokenReward(self.target_tokens(lm), values, terminal=(lm.pad_token_id, lm.eos_token_id))


class TargetTokenReward:
    """Exact verifier against target tokens y⋆(x) [X, L]: outcome 1[y = y⋆], process 1[y_{1:i} = y⋆_{1:i}].

    Rewards take ``values = (wrong, right)``: (0, 1) as in the theory, (−1, 1) as in the authors' code.
    Responses must be canonical (padded after their end), which :class:`CausalLM` guarantees. ``terminal =
    (pad_id, eos_id)`` makes an emitted pad token count as EOS (both end a response).
    """

    def __init__(self, targets: torch.Tensor, values: tuple[float, float] = (0.0, 1.0),
                 terminal: tuple[int, int] | None = None):
        if len(values) != 2 or not values[1] > values[0]:
            raise ConfigError("values", f"must be (wrong, right) with right > wrong, got {values!r}")
        self.targets = torch.as_tensor(targets, dtype=torch.long)
        self.values = (float(values[0]), float(values[1]))
        self.r_max = self.values[1]
        self.terminal = terminal
        if terminal is not None:
            self.targets = self._norm(self.targets)

    def _norm(self, t: torch.Tensor) -> torch.Tensor:
        if self.terminal is None:
            return t
        pad, eos = self.terminal
        return torch.where(t == pad, torch.full_like(t, eos), t)

    def _match(self, prompts, responses):
        prompts = torch.as_tensor(prompts, dtype=torch.long, device=self.targets.device)
        tgt = self.targets[prompts][:, None, :]
        if responses.shape[-1] != tgt.shape[-1]:
            raise ConfigError("responses", f"must have length {tgt.shape[-1]}, got {responses.shape[-1]}")
        return self._norm(responses.to(tgt.device)) == tgt  # [B, n, L]

    def _value(self, ok: torch.Tensor) -> torch.Tensor:
        lo, hi = self.values
        return torch.where(ok, torch.tensor(hi, dtype=torch.float64, device=ok.device),
                           torch.tensor(lo, dtype=torch.float64, device=ok.device))

    def mean(self, prompts, responses):
        """Outcome r⋆(x, y) [B, n]."""
        return self._value(self._match(prompts, responses).all(-1))

    def process_mean(self, prompts, responses):
        """Process r⋆(x, y_{1:i}) [B, n, L] (Mousavi-Hosseini & Erdogdu Eq. 4)."""
        return self._value(self._match(prompts, responses).long().cumprod(-1).bool())


def _uniform(n: int) -> torch.Tensor:
    return torch.full((n,), 1.0 / n, dtype=torch.float64)


def teacher_sequence_task(
    num_contexts: int = 16,
    length: int = 5,
    vocab: int = 6,
    rare_fraction: float = 0.25,
    rare_mass: float = 0.01,
    seed: int = 0,
) -> LMTask:
    """The teacher-sequence task of Mousavi-Hosseini & Erdogdu (docs/papers/mousavi2026_pg_barrier.md §1.2)
    with one-hot contexts, as strings.

    Context c ∈ [C] is the prompt ``f"{c:02d}:"``; the teacher is
    :func:`oraclerl.problems.teacher.teacher_task` on the one-hot contexts e_c (W₁⋆ ∈ ℝ^{k×C}, W₂⋆ ∈ ℝ^{k×k},
    N(0, 1) entries; y⋆₁ = argmax_j W₁⋆[j, c], y⋆ᵢ = argmax_j (W₁⋆[j, c] + W₂⋆[j, y⋆ᵢ₋₁]), the greedy decode
    of the bigram-plus-context class), written with the letters a, b, ... A random ``rare_fraction`` of the
    contexts (``meta["rare"]``) shares total mass ``rare_mass`` under ρ; the others share the rest uniformly.
    """
    C = check_int("num_contexts", num_contexts, low=2, high=100)
    N = check_int("length", length, low=1)
    k = check_int("vocab", vocab, low=2, high=len(LETTERS))
    check_range("rare_fraction", rare_fraction, 0.0, 1.0, high_open=True)
    check_range("rare_mass", rare_mass, 0.0, 1.0, high_open=True)
    g = torch.Generator().manual_seed(int(seed))
    eye = torch.eye(C, dtype=torch.float64)  # one-hot contexts: the finite context law of problems.teacher
    teacher = teacher_task(
        context_dim=C,
        num_actions=k,
        horizon=N,
        contexts="finite",
        support=eye,
        generator=g,
        dtype=torch.float64,
    )
    y = teacher.target(eye)  # [C, N], the greedy walk y⋆(c)
    num_rare = int(round(rare_fraction * C))
    rare = torch.zeros(C, dtype=torch.bool)
    rare[torch.randperm(C, generator=g)[:num_rare]] = True
    w = torch.where(rare, rare_mass / max(num_rare, 1), (1 - rare_mass) / (C - num_rare)).to(torch.float64)
    if num_rare == 0:
        w = _uniform(C)
    letters = LETTERS[:k]
    targets = ["".join(letters[j] for j in row) for row in y.tolist()]
    return LMTask("teacher-sequence", [f"{c:02d}:" for c in range(C)], targets, "0123456789:" + letters,
                  w / w.sum(), fixed_length=N,
                  meta={"rare": rare, "vocab": k, "length": N, "teacher": y, "teacher_task": teacher,
                        "margin": teacher.margin(eye)})


def arithmetic_task(num_prompts: int = 32, max_operand: int = 9, ops: str = "+-", seed: int = 0) -> LMTask:
    """Prompts ``"a+b="`` / ``"a-b="`` / ``"a*b="`` with 0 ≤ a, b ≤ max_operand; target: the decimal
    result."""
    n = check_int("num_prompts", num_prompts, low=1)
    m = check_int("max_operand", max_operand, low=1)
    if not ops or set(ops) - set("+-*"):
        raise ConfigError("ops", f"must be a non-empty subset of '+-*', got {ops!r}")
    g = torch.Generator().manual_seed(int(seed))
    ab = torch.randint(0, m + 1, (n, 2), generator=g).tolist()
    opi = torch.randint(0, len(ops), (n,), generator=g).tolist()
    fns = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}
    prompts = [f"{a}{ops[o]}{b}=" for (a, b), o in zip(ab, opi)]
    targets = [str(fns[ops[o]](a, b)) for (a, b), o in zip(ab, opi)]
    return LMTask("arithmetic", prompts, targets, "0123456789+-*=", _uniform(n))


def string_transform_task(
    kind: str = "reverse", num_prompts: int = 32, length: int = 4, alphabet: str = "abcd", seed: int = 0
) -> LMTask:
    """Prompts ``"word>"``; targets: the word reversed, upper-cased, sorted, or rotated left by one."""
    check_choice("kind", kind, ("reverse", "upper", "sort", "rotate"))
    n = check_int("num_prompts", num_prompts, low=1)
    ln = check_int("length", length, low=1)
    if not alphabet or not alphabet.islower() or len(set(alphabet)) != len(alphabet):
        raise ConfigError("alphabet", f"must be distinct lower-case letters, got {alphabet!r}")
    g = torch.Generator().manual_seed(int(seed))
    idx = torch.randint(0, len(alphabet), (n, ln), generator=g).tolist()
    words = ["".join(alphabet[j] for j in row) for row in idx]
    fn = {"reverse": lambda w: w[::-1], "upper": str.upper, "sort": lambda w: "".join(sorted(w)),
          "rotate": lambda w: w[1:] + w[:1]}[kind]
    chars = alphabet + (alphabet.upper() if kind == "upper" else "") + ">"
    return LMTask(f"string-{kind}", [w + ">" for w in words], [fn(w) for w in words], chars, _uniform(n))


_FEW_SHOT = {
    "add": ("{a}+{b}=", lambda a, b: str(a + b)),
    "sub": ("{a}-{b}=", lambda a, b: str(a - b)),
    "mul": ("{a}*{b}=", lambda a, b: str(a * b)),
}


def _distinct(draw, count: int, space: int, g: torch.Generator) -> list:
    """``count`` distinct draws of ``draw(g)`` from a space of ``space`` items (needs count <= space / 2)."""
    if 2 * count > space:
        raise ConfigError("num_test", f"needs {count} distinct problems, the problem space has only {space} "
                          "(at most half of it may be used): raise size or ask for fewer problems")
    seen: dict = {}
    while len(seen) < count:  # rejection of repeats: expected < 2 draws per problem (count <= space / 2)
        seen.setdefault(draw(g), None)
    return list(seen)


def few_shot_task(kind: str = "add", num_train: int = 64, num_test: int = 16, shots: int = 3, size: int = 2,
                  size_b: int | None = None, seed: int = 0) -> LMTask:
    """A few-shot task for a pretrained LM: ``num_train`` training and ``num_test`` held-out problems,
    disjoint.

    Every prompt is ``shots`` solved examples, one per line, followed by the problem:
    ``"23+45=68\n...\n17+30="`` (``kind`` = ``add`` / ``sub`` / ``mul``, a first operand of ``size`` digits
    and a second of ``size_b`` digits, default ``size``; one digit means 0-9) or ``"abc -> cba\n...\nxyz ->"``
    (``kind="reverse"``, words of ``size`` letters). The answer ends at the newline (``stop="\n"``; see
    :meth:`LMTask.answer`). Prompt ids ``0 .. num_train-1`` are the training problems (``meta["train_ids"]``;
    the prompt law ρ is uniform on them), the next ``num_test`` the held-out ones (``meta["test_ids"]``,
    weight 0). The examples and all problems are distinct uniform draws (``seed``).
    """
    check_choice("kind", kind, (*_FEW_SHOT, "reverse"))
    n_tr = check_int("num_train", num_train, low=1)
    n_te = check_int("num_test", num_test, low=1)
    k = check_int("shots", shots, low=0)
    m = check_int("size", size, low=1, high=3 if kind in _FEW_SHOT else 5)
    mb = m if size_b is None else check_int("size_b", size_b, low=1, high=3)
    g = torch.Generator().manual_seed(int(seed))
    total = k + n_tr + n_te
    if kind in _FEW_SHOT:
        (lo, hi), (lo_b, hi_b) = ((0, 9) if d == 1 else (10 ** (d - 1), 10 ** d - 1) for d in (m, mb))
        fmt, fn = _FEW_SHOT[kind]

        def draw(gen):
            return int(torch.randint(lo, hi + 1, (), generator=gen)), int(
                torch.randint(lo_b, hi_b + 1, (), generator=gen)
            )

        space = (hi - lo + 1) * (hi_b - lo_b + 1)
        problems = [(fmt.format(a=a, b=b), fn(a, b)) for a, b in _distinct(draw, total, space, g)]
        chars = "0123456789" + {"add": "+", "sub": "-", "mul": "*"}[kind] + "=-\n"
    else:
        def draw(gen):
            return "".join(LETTERS[j] for j in torch.randint(0, len(LETTERS), (m,), generator=gen).tolist())

        problems = [(f"{w} ->", w[::-1]) for w in _distinct(draw, total, len(LETTERS) ** m, g)]
        chars = LETTERS + " ->\n"
    sep = "" if kind in _FEW_SHOT else " "  # "23+45=68", "abc -> cba"
    header = "".join(f"{p}{sep}{t}\n" for p, t in problems[:k])
    rows = problems[k:]
    weights = torch.cat(
        [torch.full((n_tr,), 1.0 / n_tr, dtype=torch.float64), torch.zeros(n_te, dtype=torch.float64)]
    )
    return LMTask(
        f"few-shot-{kind}",
        [header + p for p, _ in rows],
        [t for _, t in rows],
        "".join(dict.fromkeys(chars)),
        weights,
        stop="\n",
        lead=sep,
        meta={
            "kind": kind,
            "shots": k,
            "size": m,
            "size_b": mb,
            "header": header,
            "train_ids": list(range(n_tr)),
            "test_ids": list(range(n_tr, n_tr + n_te)),
        },
    )
