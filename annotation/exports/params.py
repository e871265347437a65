"""Export parameters: the policies, formats and tie modes an export may ask for, and their
validation (ExportParams.from_dict), so a typo never silently exports with a default."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

POLICIES = ("majority", "unanimous", "min_agreement", "adjudicated", "dawid_skene")
FORMATS = ("trl-jsonl", "trl-conversational", "parquet", "kto")
TIE_MODES = ("drop", "keep")
# File name suffix of each format; files are "<split>.<suffix>" (train.jsonl, test.kto.jsonl, ...).
FORMAT_SUFFIX = {
    "trl-jsonl": "jsonl",
    "trl-conversational": "conversational.jsonl",
    "parquet": "parquet",
    "kto": "kto.jsonl",
}
SPLITS = ("train", "test")


class ExportParamsError(ValueError):
    """Bad export parameters; the message says which and what is allowed."""


@dataclass(frozen=True)
class ExportParams:
    policy: str = "majority"
    formats: tuple[str, ...] = ("trl-jsonl",)
    ties: str = "drop"
    min_agreement: int = 2
    min_votes: int = 1
    adjudication_override: bool = True
    min_rater_kappa: float | None = None
    veto_flags: tuple[str, ...] = ("unsafe_advice",)
    specialties: tuple[str, ...] = ()
    include_calibration: bool = False
    test_fraction: float = 0.1
    seed: int = 0
    rater_disjoint_test: bool = False
    test_rater_fraction: float = 0.34
    ds_max_iter: int = 100
    ds_tol: float = 1e-6

    @classmethod
    def from_dict(cls, raw: dict | None) -> ExportParams:
        """Validate loose input (API body, CLI options) into params; unknown keys are errors,
        so a typo never silently exports with a default."""
        raw = dict(raw or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ExportParamsError(f"Unknown export parameter(s): {', '.join(unknown)}. Known: {', '.join(sorted(known))}.")
        if "formats" in raw and isinstance(raw["formats"], str):
            raw["formats"] = [raw["formats"]]
        for key in ("formats", "veto_flags", "specialties"):
            if key in raw:
                if not isinstance(raw[key], (list, tuple)) or not all(isinstance(v, str) for v in raw[key]):
                    raise ExportParamsError(f"{key} must be a list of strings.")
                # Canonical order, so equal settings give equal params_sha256.
                order = (lambda v: (FORMATS.index(v) if v in FORMATS else len(FORMATS), v)) if key == "formats" else None
                raw[key] = tuple(sorted(set(raw[key]), key=order))
        p = cls(**raw)
        if p.policy not in POLICIES:
            raise ExportParamsError(f"Unknown policy {p.policy!r}. Choose one of: {', '.join(POLICIES)}.")
        if not p.formats:
            raise ExportParamsError(f"formats is empty. Choose from: {', '.join(FORMATS)}.")
        bad = [f for f in p.formats if f not in FORMATS]
        if bad:
            raise ExportParamsError(f"Unknown format(s) {', '.join(map(repr, bad))}. Choose from: {', '.join(FORMATS)}.")
        if p.ties not in TIE_MODES:
            raise ExportParamsError(f"ties must be one of: {', '.join(TIE_MODES)}.")
        for name in ("test_fraction", "test_rater_fraction"):
            value = getattr(p, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                raise ExportParamsError(f"{name} must be a number in [0, 1); got {value!r}.")
        if p.rater_disjoint_test and not 0 < p.test_rater_fraction < 1:
            raise ExportParamsError("rater_disjoint_test needs 0 < test_rater_fraction < 1.")
        if p.rater_disjoint_test and p.test_fraction == 0:
            raise ExportParamsError("rater_disjoint_test needs a test side: set test_fraction > 0.")
        for name in ("min_agreement", "min_votes", "seed", "ds_max_iter"):
            value = getattr(p, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "seed" else 1):
                raise ExportParamsError(f"{name} must be a positive integer; got {value!r}.")
        if p.min_rater_kappa is not None and (isinstance(p.min_rater_kappa, bool) or not isinstance(p.min_rater_kappa, (int, float))
                                              or not -1 <= p.min_rater_kappa <= 1):
            raise ExportParamsError("min_rater_kappa must be null or a number in [-1, 1].")
        for name in ("adjudication_override", "include_calibration", "rater_disjoint_test"):
            if not isinstance(getattr(p, name), bool):
                raise ExportParamsError(f"{name} must be true or false.")
        return p

    def to_dict(self) -> dict:
        d = asdict(self)
        for key in ("formats", "veto_flags", "specialties"):
            d[key] = list(d[key])
        return d

    def sha256(self) -> str:
        return hashlib.sha256(canonical_json(self.to_dict()).encode()).hexdigest()

    @property
    def needs_vote_prepass(self) -> bool:
        """Whether the votes must be read once before writing (kappa filter, Dawid-Skene)."""
        return self.policy == "dawid_skene" or self.min_rater_kappa is not None


def canonical_json(obj) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
