"""The fast trl-jsonl writer: export_write for trl-jsonl alone over database-summarised votes,
byte for byte, with one decision per distinct key and the file hashed while it is written."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from json.encoder import encode_basestring as _json_str  # the C string escaper json uses

from .aggregate import Decision, pair_decide
from .params import FORMAT_SUFFIX, ExportParams
from .rows import triple_json_template
from .votes import AdjudicationVote, PairVotes, summary_from_aggregates
from .writers import ExportFile, ExportResult


# Row layout of export_write_trl_jsonl: these leading columns, then the decision key.
FAST_ROW_COLUMNS = ("pair_id", "prompt", "response_a", "response_b")
FAST_KEY_COLUMNS = ("is_calibration", "n_a", "n_tie", "n_b", "preference_sum", "veto_a", "veto_b", "flags_json",
                    "adj_preference", "adj_a_unsafe", "adj_b_unsafe")
# Distinct decision keys held at once; beyond it the memo starts over (memory stays flat on odd data).
_FAST_MEMO_MAX = 100_000


class _HashingWriter:
    """Writes byte blocks to files and hashes them on a thread of its own: file writes and
    SHA-256 of large blocks release the GIL, so both overlap the formatting of the next chunk
    (and the file is never read back for its checksum)."""

    def __init__(self, paths: dict[str, str]):
        import queue
        import threading

        self._handles = {s: open(p, "wb") for s, p in paths.items()}
        self._hashes = {s: hashlib.sha256() for s in paths}
        self._queue: queue.Queue = queue.Queue(maxsize=8)  # bounded: memory stays flat
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="export-writer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._handles[item[0]].write(item[1])
                    self._hashes[item[0]].update(item[1])
                except BaseException as exc:  # raised in the caller's thread by write/close
                    self._error = exc

    def write(self, split: str, data: bytes) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put((split, data))

    def close(self) -> dict[str, str]:
        """Wait for every block; close the files; the SHA-256 of each."""
        self._queue.put(None)
        self._thread.join()
        for fh in self._handles.values():
            fh.close()
        if self._error is not None:
            raise self._error
        return {s: h.hexdigest() for s, h in self._hashes.items()}


def decision_from_key(key: tuple, params: ExportParams, batch_id: int) -> Decision:
    """pair_decide on a pair described only by its decision key (FAST_KEY_COLUMNS): the
    database summary of its votes, its adjudication and whether it is a calibration item.
    veto_a/veto_b already include both_unacceptable; flags_json is a JSON array of the non-empty
    flags objects (or None)."""
    calib, n_a, n_tie, n_b, pref_sum, veto_a, veto_b, flags, adj_pref, adj_a, adj_b = key
    flags_json = [json.dumps(f) for f in json.loads(flags)] if flags else None
    summary = summary_from_aggregates(n_a or 0, n_tie or 0, n_b or 0, pref_sum, veto_a, veto_b, False, flags_json,
                                      params.veto_flags)
    adjudication = AdjudicationVote(adj_pref, adj_a, adj_b) if adj_pref is not None else None
    pair = PairVotes(0, batch_id, 0, "", "", "", [], adjudication, bool(calib), summary)
    return pair_decide(pair, params)


def export_write_trl_jsonl(
    chunks: Iterable[list[tuple]],
    params: ExportParams,
    out_dir: str,
    *,
    batch_id: int,
    test_pairs: frozenset[int] = frozenset(),
    progress: Callable[[int], None] | None = None,
) -> ExportResult:
    """export_write for formats == ("trl-jsonl",) with database-summarised votes, byte for byte,
    at a fraction of the cost per pair: the decision is a function of a handful of aggregates,
    so it is made once per distinct key (pair_decide itself, memoised) and kept as a line
    template (triple_json_template) that takes the escaped texts with one %; each chunk is
    joined once, then written and hashed by a thread (no second read for the SHA-256).

    chunks: lists of rows in pair id order, each FAST_ROW_COLUMNS + FAST_KEY_COLUMNS.
    test_pairs: ids of the pairs on the test side (those whose prompt key is in the
    split_test_prompts set that export_write would be given)."""
    if params.formats != ("trl-jsonl",) or params.needs_vote_prepass or params.rater_disjoint_test:
        raise ValueError("export_write_trl_jsonl handles trl-jsonl alone, without rater filters or Dawid-Skene")
    splits = ("train", "test") if params.test_fraction > 0 else ("train",)
    paths = {s: os.path.join(out_dir, f"{s}.{FORMAT_SUFFIX['trl-jsonl']}") for s in splits}
    sink = _HashingWriter(paths)
    rows = dict.fromkeys(splits, 0)
    nbytes = dict.fromkeys(splits, 0)
    # memo entry: [template or None, chosen column, rejected column, train count, test count, decision]
    memo: dict[tuple, list] = {}
    retired: list[list] = []
    esc = _json_str
    n_pairs = 0
    try:
        for chunk in chunks:
            lines = {s: [] for s in splits}
            train, test = lines["train"], lines.get("test")
            for row in chunk:
                key = row[4:]
                e = memo.get(key)
                if e is None:
                    if len(memo) >= _FAST_MEMO_MAX:
                        retired.extend(memo.values())
                        memo.clear()
                    d = decision_from_key(key, params, batch_id)
                    is_triple = d.outcome in ("a", "b")
                    e = memo[key] = [triple_json_template(d, batch_id) if is_triple else None,
                                     2 if d.outcome == "a" else 3, 3 if d.outcome == "a" else 2, 0, 0, d]
                if row[0] in test_pairs:
                    e[4] += 1
                    out = test
                else:
                    e[3] += 1
                    out = train
                if e[0] is not None:
                    out.append(e[0] % (esc(row[e[1]]), row[0], esc(row[1]), esc(row[e[2]])))
            for s in splits:
                if lines[s]:
                    data = ("\n".join(lines[s]) + "\n").encode()
                    sink.write(s, data)
                    rows[s] += len(lines[s])
                    nbytes[s] += len(data)
            before, n_pairs = n_pairs, n_pairs + len(chunk)
            if progress is not None:
                for done in range((before // 10_000 + 1) * 10_000, n_pairs + 1, 10_000):
                    progress(done)
    finally:
        sha256 = sink.close()
        if hasattr(chunks, "close"):  # a database stream: stop its reader now, not at garbage collection
            chunks.close()
    if progress is not None:
        progress(n_pairs)
    decided = dict.fromkeys(splits, 0)
    ties = dict.fromkeys(splits, 0)
    dropped: dict[str, int] = {}
    for _, _, _, n_train, n_test, d in [*retired, *memo.values()]:
        for s, n in (("train", n_train), ("test", n_test)):
            if not n:
                continue
            if d.outcome in ("a", "b"):
                decided[s] += n
            else:
                dropped[d.reason] = dropped.get(d.reason, 0) + n
                if d.outcome == "tie":
                    ties[s] += n
    files = sorted((ExportFile(name=os.path.basename(paths[s]), path=paths[s], rows=rows[s], sha256=sha256[s],
                               bytes=nbytes[s], format="trl-jsonl", split=s) for s in splits), key=lambda f: f.name)
    counts = {
        "pairs": n_pairs,
        "triples": decided,
        "ties_kept": ties if params.ties == "keep" else dict.fromkeys(splits, 0),
        "files": {f.name: f.rows for f in files},
    }
    return ExportResult(files=files, counts=counts, dropped=dict(sorted(dropped.items())),
                        excluded_votes={"excluded_raters": 0, "rater_disjoint_split": 0})
