"""The training gate: whether a batch's agreement is good enough to train on. Pure rules on a
report (or on a stored report's headline) and the batch's thresholds, plus the record kept on the
batch when a close did not start training because of it. Reports themselves come from
annotation.agreement.services, which applies these rules to every report it serves."""

from __future__ import annotations

from django.utils import timezone

from annotation.audit import audit_record
from annotation.models import Batch, GateRule


GATE_PASSED, GATE_FAILED, GATE_NOT_ENOUGH_DATA = "passed", "failed", "not_enough_data"


def gate_from_report(report: dict, *, min_alpha: float, min_rater_kappa: float, min_pairs: int = 1,
                     rule: str = GateRule.POINT) -> dict:
    """The training gate on a batch's report (three classes). Not enough data - fewer rated pairs
    than min_pairs, or alpha undefined - never passes, and says so rather than "failed". Otherwise
    alpha (its estimate, or with rule=lower_bound the lower end of its 95% interval) must reach
    min_alpha and every rater's kappa against the consensus of the others min_rater_kappa.
    Returns {status, passed, reasons, decided_by, n_pairs, rule, thresholds}."""
    n_pairs = int(report.get("n_items_multiply_rated", report.get("n_items")) or 0)
    alpha = report.get("krippendorff_alpha")
    ci = report.get("krippendorff_alpha_ci")
    figure, figure_name = alpha, "Krippendorff's alpha"
    if rule == GateRule.LOWER_BOUND:
        figure, figure_name = (ci[0] if ci else None), "the lower bound of alpha's 95% interval"
    base = {"n_pairs": n_pairs, "rule": rule, "min_pairs": min_pairs, "min_alpha": min_alpha,
            "min_rater_kappa": min_rater_kappa}
    if n_pairs < min_pairs:
        why = f"Only {n_pairs} pair(s) were rated by two or more physicians; the gate needs at least {min_pairs}."
        return {**base, "status": GATE_NOT_ENOUGH_DATA, "passed": False, "reasons": [why],
                "decided_by": f"minimum of {min_pairs} rated pairs"}
    if alpha is None or figure is None:
        why = "; ".join(report.get("notes") or []) or "too little overlap between raters"
        return {**base, "status": GATE_NOT_ENOUGH_DATA, "passed": False,
                "reasons": [f"Krippendorff's alpha is undefined ({why}), so agreement cannot be confirmed."],
                "decided_by": "alpha undefined"}
    reasons = []
    if figure < min_alpha:
        reasons.append(f"{figure_name[0].upper() + figure_name[1:]} is {figure:.3f}, below the batch threshold {min_alpha:.2f} "
                       f"(on {n_pairs} pairs).")
    for row in report.get("per_rater") or []:
        kappa = row.get("kappa_vs_consensus")
        if kappa is not None and kappa < min_rater_kappa:
            reasons.append(
                f"Rater {row['rater']}: kappa against the consensus of the other raters is {kappa:.3f} "
                f"(on {row['n_consensus']} pairs), below the threshold {min_rater_kappa:.2f}."
            )
    decided_by = f"{figure_name} >= {min_alpha:.2f} and every rater's kappa >= {min_rater_kappa:.2f}, on {n_pairs} pairs"
    return {**base, "status": GATE_FAILED if reasons else GATE_PASSED, "passed": not reasons, "reasons": reasons,
            "decided_by": decided_by}


def gate_from_headline(headline: dict, *, batch: Batch) -> dict:
    """The same gate as the report's (gate_from_report), on a stored headline: the weakest
    rater's kappa stands for every rater's."""
    weakest = headline.get("min_kappa_vs_consensus")
    return gate_from_report(
        {"n_items_multiply_rated": headline.get("n_items_multiply_rated", headline.get("n_items")),
         "krippendorff_alpha": headline.get("krippendorff_alpha"),
         "krippendorff_alpha_ci": headline.get("krippendorff_alpha_ci"), "notes": [],
         "per_rater": [] if weakest is None else [{"rater": "(weakest)", "kappa_vs_consensus": weakest, "n_consensus": 0}]},
        min_alpha=batch.min_alpha, min_rater_kappa=batch.min_rater_kappa, min_pairs=batch.gate_min_pairs,
        rule=batch.gate_rule)


def batch_gate_block_record(*, batch: Batch, reasons: list[str]) -> None:
    """Record on the batch that closing it did not start training because agreement is below its
    gate (and no override reason was given), and audit it. The batch row then answers "was
    training blocked?" in one read. Call inside the caller's transaction, holding the batch's row lock."""
    batch.gate_blocked_at = timezone.now()
    batch.gate_blocked_reasons = list(reasons)
    batch.save(update_fields=["gate_blocked_at", "gate_blocked_reasons"])
    audit_record(actor=None, action="training.gate_blocked", obj=batch, batch=batch,
                 data={"reasons": reasons, "note": "Training was not started: agreement is below the batch's "
                       "gate and no override reason was given."})
