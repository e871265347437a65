"""Import speed: 100,000 JSONL lines validated and imported atomically into PostgreSQL.
Baseline in the same run: the same rows saved one ORM .save() at a time (a sample, extrapolated).

    .venv/bin/python bench/import.py [--lines 100000]
"""

import argparse
import json
import time

from _setup import bench_database


def make_lines(n: int) -> list[bytes]:
    return [json.dumps({
        "prompt": f"A 58-year-old with type 2 diabetes asks about case {i}: should metformin be stopped before a CT with contrast?",
        "response_a": f"Hold metformin at the time of contrast if eGFR is below 30, recheck renal function in 48 hours ({i}).",
        "response_b": f"Stop all diabetes medicines for a week before any scan ({i}).",
        "model_a": "clinical-llm-v2", "model_b": "clinical-llm-v1", "id": f"case-{i}",
    }).encode() for i in range(n)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--baseline-sample", type=int, default=2_000)
    args = parser.parse_args()
    bench_database("clinpref_bench_import")
    from annotation.labeling.importing import pair_fingerprint, pairs_import, sha256
    from annotation.models import Completion, Pair, Prompt
    from annotation.labeling.services import batch_create, specialty_get_or_create

    specialty_get_or_create(name="Cardiology")
    batch = batch_create(name="import-bench", specialty_name="Cardiology", created_by=None)
    lines = make_lines(args.lines)

    t0 = time.perf_counter()
    created = pairs_import(batch=batch, lines=lines, actor=None)
    ours = time.perf_counter() - t0
    assert created == args.lines == Pair.objects.filter(batch=batch).count()

    # Baseline: the obvious ORM loop, a row at a time (validation excluded, so it is generous).
    base_batch = batch_create(name="import-baseline", specialty_name="Cardiology", created_by=None)
    sample = [json.loads(raw) for raw in make_lines(args.baseline_sample)]
    t0 = time.perf_counter()
    for row in sample:
        prompt = Prompt.objects.create(text=row["prompt"], text_sha256=sha256(row["prompt"]))
        a = Completion.objects.create(prompt=prompt, text=row["response_a"], model_name=row["model_a"])
        b = Completion.objects.create(prompt=prompt, text=row["response_b"], model_name=row["model_b"])
        Pair.objects.create(batch=base_batch, prompt=prompt, completion_a=a, completion_b=b,
                            fingerprint=pair_fingerprint(row["prompt"], a.text, b.text))
    baseline = (time.perf_counter() - t0) * args.lines / args.baseline_sample

    print(f"lines imported: {created:,} (validated, one transaction, PostgreSQL COPY)")
    print(f"clinpref import: {ours:.2f} s  ({created / ours:,.0f} lines/s; target < 5 s)")
    print(f"ORM row-by-row baseline: {baseline:.1f} s (extrapolated from {args.baseline_sample:,} lines)")
    print(f"ratio: {baseline / ours:.1f}x faster")


if __name__ == "__main__":
    main()
