"""Post-training (Mousavi-Hosseini & Erdogdu 2026): supervised pre-training with Adagrad or the adaptive
step, policy gradients with outcome (ORM) and process (PRM) rewards, advantage estimators, exploration
behaviours, and full fine-tuning of small causal LMs (``oraclerl.posttrain.lm_pg``, extra ``[hf]``)."""

from .advantages import ESTIMATORS, outcome_advantages, process_advantages
from .behaviour import explore_outcome, explore_process
from .optim import AdaptiveStep, TrainingConfig, make_optimizer
from .policy_gradient import PGConfig, PGOracles, PGResult, PolicyGradient, pg_oracles
from .pretrain import Pretrain, PretrainConfig, PretrainResult
from .reference import reference_policy_gradient, reference_pretrain

__all__ = [
    "ESTIMATORS", "outcome_advantages", "process_advantages", "explore_outcome", "explore_process",
    "AdaptiveStep", "TrainingConfig", "make_optimizer", "PGConfig", "PGOracles", "PGResult", "pg_oracles",
    "PolicyGradient", "Pretrain", "PretrainConfig", "PretrainResult", "reference_policy_gradient",
    "reference_pretrain",
]
