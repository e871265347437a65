"""The dataset card (README.md) written next to every export's files."""

from __future__ import annotations

import json


def dataset_card(*, manifest: dict) -> str:
    """The Markdown dataset card (README.md) of one export."""
    p = manifest["params"]
    lines = [
        f"# ClinPref export: batch {manifest['batch']['name']} v{manifest['version']}",
        "",
        "Physician preference judgments of paired model completions of clinical prompts, aggregated into "
        "chosen/rejected triples for TRL (RewardTrainer, DPOTrainer) and unpaired rows for KTOTrainer.",
        "",
        "## Files",
        "",
        "| file | format | split | rows | sha256 |",
        "|---|---|---|---|---|",
        *[f"| {f['name']} | {f['format']} | {f['split']} | {f['rows']} | `{f['sha256']}` |" for f in manifest["files"]],
        "",
        "Load: `datasets.load_dataset(\"json\", data_files={\"train\": \"train.jsonl\", \"test\": \"test.jsonl\"})` "
        "or `load_dataset(\"parquet\", data_files=...)`.",
        "",
        "## Aggregation",
        "",
        f"- policy: **{p['policy']}**; ties: {p['ties']}; min votes: {p['min_votes']}; "
        f"adjudication override: {p['adjudication_override']}"
        + (f"; min agreement: {p['min_agreement']}" if p["policy"] == "min_agreement" else ""),
        f"- rater filters: min kappa against consensus {p['min_rater_kappa']}; specialties {p['specialties'] or 'all'}",
        f"- veto flags: {', '.join(p['veto_flags']) or 'none'} (plus a_unsafe / b_unsafe / both_unacceptable, and adjudicators' unsafe marks)",
        f"- split: grouped by prompt, test fraction {p['test_fraction']}, seed {p['seed']}"
        + (f", rater-disjoint test side ({p['test_rater_fraction']} of raters held out)" if p["rater_disjoint_test"] else ""),
        "",
        "## Counts",
        "",
        "```json",
        json.dumps({"counts": manifest["counts"], "dropped": manifest["dropped"],
                    "excluded_votes": manifest["excluded_votes"]}, indent=2, sort_keys=True),
        "```",
        "",
        "## Columns",
        "",
        "- `prompt`, `chosen`, `rejected`: strings (standard) or chat messages (conversational flavour).",
        "- `margin`: mean vote strength towards `chosen` (+2 much better ... -2 much worse), floored at 0, in [0, 2]; "
        "Dawid-Skene weighs votes by rater accuracy; adjudicated pairs take the adjudicator's strength.",
        "- `pair_id`, `batch`, `chosen_side` (a/b in the canonical pair), `n_votes`, "
        "`vote_split` {chosen, rejected, tie}, `agreement` (share of votes backing the decision), "
        "`flags` (comma-separated `side:flag`, `side:vetoed`), `source` (votes/adjudication/dawid_skene).",
        "- KTO: `prompt`, `completion`, `label`, plus `pair_id`, `batch`, `response`, `reason` (chosen/rejected/vetoed/tie).",
        "",
        "## Caveats",
        "",
        "A vetoed (unsafe) response is never `chosen`. Preferences reflect the judging physicians "
        "of this batch; they are not clinical guidance.",
        "",
    ]
    return "\n".join(lines)
