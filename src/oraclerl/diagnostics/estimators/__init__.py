"""The exact estimator lab: bias and variance of KL and policy-gradient estimators, computed exactly.

On a real LM no expectation can be computed; on oraclerl's exact models every one can. The lab takes the
estimator code the trainers use (:func:`oraclerl.posttrain.kl_penalty.kl_estimate`,
:func:`oraclerl.posttrain.advantages.advantages`) or any callable of the same shape, and returns exact
moments:

* :mod:`.kl_values`: :func:`kl_estimator_moments` — E and Var of k1, k2, k3 and their importance-corrected
  variants under q, next to KL(q‖p) and KL(p‖q), batched over prompts ([..., Y] tables).
* :mod:`.score_tables`: enumerated linear-softmax / linear-AR models with closed-form per-token scores.
* :mod:`.kl_gradients`: :func:`kl_gradient_moments` — the expected gradient and variance of each KL placement
  (reward / loss × sequence / token × k1, k2, k3) against ∇KL(q‖p) and ∇KL(p‖q).
* :mod:`.groups`: :func:`group_gradient_moments` — exact E ĝ and Var ĝ of a group advantage estimator by
  enumerating all |Y|^n groups; :func:`two_point_gain` (binary rewards), :func:`policy_gradient_exact`,
  :func:`max_of_k_gradient` (∇ pass@k); :func:`sampled_group_moments` (Monte Carlo beyond enumeration).
* :mod:`.instances`: the lab's random instances (:func:`tilted_laws`, :func:`linear_ar_pair`,
  :func:`success_instance`), each drawn from one generator.
* :mod:`.lm_path`: a test oracle that runs :meth:`oraclerl.posttrain.lm_pg.LMPolicyGradient.step` unchanged on
  an
  exact model (:class:`ExactLMPolicy`) and gives its exact expected gradient (:func:`exact_step_gradient`).

The README section "Check your estimator exactly" shows a 20-line example; the experiment ``estimators-exact``
(docs/experiments/estimators-exact.md) states what the lab finds.
"""

from .groups import (
    GroupMoments,
    group_gradient_moments,
    max_of_k_gradient,
    policy_gradient_exact,
    sampled_group_moments,
    two_point_gain,
)
from .instances import linear_ar_pair, success_instance, tilted_laws
from .kl_gradients import (
    VARIANTS,
    GradientMoments,
    kl_gradient_moments,
    per_sample_gradients,
    true_kl_gradients,
)
from .kl_values import VALUE_ESTIMATORS, KLMoments, kl_estimator_moments, kl_value_estimates
from .lm_path import ExactLMPolicy, SequenceTableReward, exact_step_gradient, exact_table, step_gradients
from .score_tables import ScoreTable, all_sequences, linear_ar_table, linear_softmax_table

__all__ = [
    "GroupMoments", "group_gradient_moments", "max_of_k_gradient", "policy_gradient_exact", "two_point_gain",
    "sampled_group_moments",
    "VARIANTS", "GradientMoments", "kl_gradient_moments", "per_sample_gradients", "true_kl_gradients",
    "linear_ar_pair", "success_instance", "tilted_laws",
    "VALUE_ESTIMATORS", "KLMoments", "kl_estimator_moments", "kl_value_estimates",
    "ExactLMPolicy", "SequenceTableReward", "exact_step_gradient", "exact_table", "step_gradients",
    "ScoreTable", "all_sequences", "linear_ar_table", "linear_softmax_table",
]
