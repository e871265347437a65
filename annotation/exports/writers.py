"""Writing an export: one file per (format, split), JSON lines or Parquet with fixed options
(same rows -> same bytes), and export_write, the reference path that decides and writes every pair."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .aggregate import Decision, DawidSkeneResult, pair_decide
from .params import FORMAT_SUFFIX, ExportParams
from .rows import conversational_row, kto_rows, triple_json, triple_row
from .votes import PairVotes

_dumps = json.JSONEncoder(sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode


class _JsonlFile:
    def __init__(self, path: str):
        self.path = path
        self.fh = open(path, "w", encoding="utf-8", newline="\n")
        self.rows = 0
        self._buf: list[str] = []

    def write(self, row: dict) -> None:
        self.write_line(_dumps(row))

    def write_line(self, line: str) -> None:
        self._buf.append(line)
        self.rows += 1
        if len(self._buf) >= 4096:
            self.flush()

    def flush(self) -> None:
        if self._buf:
            self.fh.write("\n".join(self._buf) + "\n")
            self._buf = []

    def close(self) -> None:
        self.flush()
        self.fh.close()


def parquet_schema():
    import pyarrow as pa

    return pa.schema([
        ("prompt", pa.string()), ("chosen", pa.string()), ("rejected", pa.string()), ("margin", pa.float64()),
        ("pair_id", pa.int64()), ("batch", pa.int64()), ("chosen_side", pa.string()), ("n_votes", pa.int32()),
        ("vote_split", pa.struct([("chosen", pa.int32()), ("rejected", pa.int32()), ("tie", pa.int32())])),
        ("agreement", pa.float64()), ("flags", pa.string()), ("source", pa.string()),
    ])


class _ParquetFile:
    BATCH_ROWS = 16_384

    def __init__(self, path: str):
        import pyarrow.parquet as pq

        self.path = path
        self.schema = parquet_schema()
        # Fixed options: same rows -> same bytes (no pandas metadata, no timestamps).
        self.writer = pq.ParquetWriter(path, self.schema, compression="zstd", compression_level=3,
                                       use_dictionary=True, write_statistics=True, version="2.6")
        self.rows = 0
        self._cols: dict[str, list] = {name: [] for name in self.schema.names}

    def write(self, row: dict) -> None:
        for name, col in self._cols.items():
            col.append(row[name])
        self.rows += 1
        if len(self._cols["prompt"]) >= self.BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        import pyarrow as pa

        if self._cols["prompt"]:
            self.writer.write_table(pa.Table.from_pydict(self._cols, schema=self.schema))
            self._cols = {name: [] for name in self.schema.names}

    def close(self) -> None:
        self.flush()
        self.writer.close()


@dataclass
class ExportFile:
    name: str
    path: str
    rows: int
    sha256: str
    bytes: int
    format: str
    split: str

    def public(self) -> dict:
        return {"name": self.name, "sha256": self.sha256, "rows": self.rows, "bytes": self.bytes,
                "format": self.format, "split": self.split}


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class ExportWriter:
    """Opens one file per (format, split) under out_dir and routes rows to them."""

    def __init__(self, out_dir: str, formats: tuple[str, ...], splits: tuple[str, ...]):
        self.out_dir = out_dir
        self.splits = splits
        self._files: dict[tuple[str, str], _JsonlFile | _ParquetFile] = {}
        for fmt in formats:
            for split in splits:
                path = os.path.join(out_dir, f"{split}.{FORMAT_SUFFIX[fmt]}")
                self._files[(fmt, split)] = _ParquetFile(path) if fmt == "parquet" else _JsonlFile(path)
        self.formats = formats

    def write_pair(self, pair: PairVotes, decision: Decision, split: str) -> None:
        formats = self.formats
        if decision.outcome in ("a", "b"):
            row = triple_row(pair, decision)
            if "trl-jsonl" in formats:
                self._files[("trl-jsonl", split)].write_line(triple_json(row))
            if "parquet" in formats:
                self._files[("parquet", split)].write(row)
            if "trl-conversational" in formats:
                self._files[("trl-conversational", split)].write(conversational_row(row))
        if "kto" in formats:
            for row in kto_rows(pair, decision):
                self._files[("kto", split)].write(row)

    def close(self) -> list[ExportFile]:
        out = []
        for (fmt, split), f in self._files.items():
            f.close()
            out.append(ExportFile(name=os.path.basename(f.path), path=f.path, rows=f.rows,
                                  sha256=file_sha256(f.path), bytes=os.path.getsize(f.path), format=fmt, split=split))
        return sorted(out, key=lambda e: e.name)


# --- the whole run -------------------------------------------------------------------------

@dataclass
class ExportResult:
    files: list[ExportFile]
    counts: dict
    dropped: dict[str, int]
    excluded_votes: dict[str, int]


def export_write(
    pairs: Iterable[PairVotes],
    params: ExportParams,
    out_dir: str,
    *,
    test_prompts: frozenset[int] = frozenset(),
    test_raters: frozenset[int] = frozenset(),
    excluded_raters: frozenset[int] = frozenset(),
    ds: DawidSkeneResult | None = None,
    progress: Callable[[int], None] | None = None,
) -> ExportResult:
    """Decide and write every pair of `pairs` (in the order given) into out_dir.

    excluded_raters: votes that never decide (low kappa, other specialty); their vetoes still count.
    test_raters: with params.rater_disjoint_test, raters whose votes decide only test pairs."""
    splits = ("train", "test") if params.test_fraction > 0 else ("train",)
    writer = ExportWriter(out_dir, params.formats, splits)
    dropped: dict[str, int] = {}
    excluded = {"excluded_raters": 0, "rater_disjoint_split": 0}
    decided = {s: 0 for s in splits}
    ties = {s: 0 for s in splits}
    n_pairs = 0
    weights = ds.rater_accuracy if ds is not None else None
    disjoint = params.rater_disjoint_test
    try:
        for pair in pairs:
            n_pairs += 1
            split = "test" if pair.prompt_key in test_prompts else "train"
            votes = None  # all of them (or the pair's database summary)
            if excluded_raters or disjoint:
                if pair.summary is not None:
                    raise ValueError("rater filters need per-vote pairs, not database summaries")
                kept = []
                for v in pair.votes:
                    if v.rater_id in excluded_raters:
                        excluded["excluded_raters"] += 1
                    elif disjoint and (v.rater_id in test_raters) != (split == "test"):
                        excluded["rater_disjoint_split"] += 1
                    else:
                        kept.append(v)
                votes = kept
            posterior = ds.posterior_for(pair.pair_id) if ds is not None else None
            decision = pair_decide(pair, params, votes=votes, posterior=posterior, rater_weights=weights)
            if decision.outcome in ("a", "b"):
                decided[split] += 1
            else:
                dropped[decision.reason] = dropped.get(decision.reason, 0) + 1
                if decision.outcome == "tie":
                    ties[split] += 1
            writer.write_pair(pair, decision, split)
            if progress is not None and n_pairs % 10_000 == 0:
                progress(n_pairs)
    finally:
        files = writer.close()
    if progress is not None:
        progress(n_pairs)
    counts = {
        "pairs": n_pairs,
        "triples": decided,
        "ties_kept": ties if params.ties == "keep" else {s: 0 for s in splits},
        "files": {f.name: f.rows for f in files},
    }
    return ExportResult(files=files, counts=counts, dropped=dict(sorted(dropped.items())), excluded_votes=excluded)
