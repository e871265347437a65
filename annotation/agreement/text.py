"""Agreement in and out as text, for the command line: read a long ratings table (CSV with
columns item, rater, label) and render a report as aligned lines. Pure: no Django."""

import csv
from dataclasses import replace
from pathlib import Path

from .ratings import Ratings, ratings_build


class RatingsFileError(ValueError):
    """The ratings file cannot be read or is malformed; the message says what to fix."""


REQUIRED_COLUMNS = ("item", "rater", "label")


def ratings_from_csv(path: Path, *, metric: str) -> Ratings:
    """Read a long table. Ordinal and interval labels must be integers (the scale's order is
    numeric); nominal labels may be any strings (integers are read as integers)."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise RatingsFileError(f"Cannot read {path}: {exc.strerror or exc}.")
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise RatingsFileError(f"{path} is empty; expected a header line with columns {', '.join(REQUIRED_COLUMNS)}.")
        names = [h.strip().lower() for h in header]
        missing = [c for c in REQUIRED_COLUMNS if c not in names]
        if missing:
            raise RatingsFileError(
                f"{path}, line 1: missing column(s) {', '.join(missing)}; found {', '.join(names) or 'none'}. "
                f"The table needs columns {', '.join(REQUIRED_COLUMNS)}."
            )
        col = {c: names.index(c) for c in REQUIRED_COLUMNS}
        items, raters, labels, line_nos, errors, skipped = [], [], [], [], [], 0
        for line_no, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(row) < len(names):
                errors.append(f"line {line_no}: {len(row)} field(s), the header has {len(names)}")
                continue
            item, rater, label = (row[col[c]].strip() for c in REQUIRED_COLUMNS)
            if not item or not rater:
                errors.append(f"line {line_no}: empty {'item' if not item else 'rater'}")
                continue
            if not label:
                skipped += 1
                continue
            items.append(item)
            raters.append(rater)
            labels.append(label)
            line_nos.append(line_no)
    if metric != "nominal":
        errors += [
            f"line {line_no}: label {label!r} is not an integer (--level {metric} needs integer labels)"
            for line_no, label in zip(line_nos, labels) if not _is_int(label)
        ]
    if errors:
        shown = "\n  ".join(errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise RatingsFileError(f"{path}: {len(errors)} bad line(s):\n  {shown}{more}")
    if labels and (metric != "nominal" or all(_is_int(v) for v in labels)):
        labels = [int(v) for v in labels]
    ratings = ratings_build(item=items, rater=raters, label=labels)
    if skipped:
        ratings = replace(ratings, notes=(*ratings.notes, f"{skipped} row(s) with an empty label were read as missing ratings."))
    return ratings


def _is_int(text: str) -> bool:
    try:
        int(text)
        return True
    except ValueError:
        return False


def _fmt(value, ci=None) -> str:
    if value is None:
        return "undefined"
    text = f"{value:.3f}"
    if ci:
        text += f" [{ci[0]:.3f}, {ci[1]:.3f}]"
    return text


def report_text(report: dict) -> str:
    lines = [
        f"items {report['n_items']}  raters {report['n_raters']}  judgments {report['n_judgments']}  "
        f"metric {report['metric']}" + (f"  level {report['level']}" if report.get("level") else ""),
        f"percent agreement   {_fmt(report['percent_agreement'], report.get('percent_agreement_ci'))}",
        f"Fleiss' kappa       {_fmt(report['fleiss_kappa'], report.get('fleiss_kappa_ci'))}  "
        f"{report['interpretation']['fleiss_kappa'] or ''}",
        f"Krippendorff alpha  {_fmt(report['krippendorff_alpha'], report.get('krippendorff_alpha_ci'))}  "
        f"{report['interpretation']['krippendorff_alpha'] or ''}",
        f"mean Cohen's kappa  {_fmt(report['mean_cohen_kappa'])}",
        "",
        "Cohen's kappa per rater pair (n = shared items)",
    ]
    for pair in report["cohen_kappa"]:
        extra = ""
        if "kappa_quadratic" in pair:
            extra = f"  linear {_fmt(pair['kappa_linear'])}  quadratic {_fmt(pair['kappa_quadratic'])}"
        lines.append(f"  {pair['rater_a']} ~ {pair['rater_b']}  n={pair['n']}  kappa {_fmt(pair['kappa'], pair.get('kappa_ci'))}{extra}")
    lines += ["", "Per rater"]
    for row in report["per_rater"]:
        bits = [f"  {row['rater']}: n={row['n']}", f"kappa vs consensus {_fmt(row['kappa_vs_consensus'])} (n={row['n_consensus']})"]
        if row.get("gold_accuracy") is not None:
            bits.append(f"gold {row['gold_accuracy']:.2f} (n={row['gold_n']})")
        if row.get("tie_share") is not None:
            bits.append(f"ties {row['tie_share']:.2f}")
        if row.get("position_first_share") is not None:
            bits.append(f"left {row['position_first_share']:.2f} (p={row['position_p_value']:.3g})")
        if row.get("median_time_ms") is not None:
            bits.append(f"median {row['median_time_ms'] / 1000:.1f}s")
        lines.append("  ".join(bits))
    if report["notes"]:
        lines += ["", "Notes"] + [f"  - {n}" for n in report["notes"]]
    return "\n".join(lines) + "\n"
