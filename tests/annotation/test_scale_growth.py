"""Fails on growth, not on the clock: every GET page and endpoint runs the same number of SQL
queries with 2,000 and with 20,000 pairs in the batch, reads about as many database pages
(EXPLAIN ANALYZE BUFFERS, the work behind the clock), and none of its query plans reads a whole
table of pairs, judgments or assignments.

Plans are taken with enable_seqscan=off: at 20,000 rows the planner may prefer a sequential scan
by cost alone (the table fits in a few pages), which says nothing about a million rows. With
sequential scans priced out, one that remains is one no index can serve: exactly the plans that
grow with the table."""

import sys
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import scale_probe  # noqa: E402

# transaction=True: the seed VACUUMs (as autovacuum would), which cannot run inside a transaction.
pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def measure(seeded) -> dict[tuple[str, str], tuple[int, int, list]]:
    clients = {}
    for role, user in (("admin", seeded.admin), ("physician", seeded.physician)):
        clients[role] = Client()
        clients[role].force_login(user)
    out = {}
    for label, url, roles in scale_probe.get_urls(seeded):
        for role in roles:
            scale_probe.probe(clients[role], url)  # warm: caches (agreement reports) are filled once
            status, _, queries = scale_probe.probe(clients[role], url)
            per_query = []
            out[(label, role)] = (status, len(queries), scale_probe.seq_scanned_tables(queries, forbid_seqscan=True),
                                  scale_probe.blocks_read(queries, per_query=per_query), sorted(per_query)[-2:])
    return out


@pytest.mark.skipif(connection.vendor != "postgresql", reason="plans are checked on PostgreSQL (CI runs on it)")
def test_every_get_runs_the_same_queries_at_2000_and_20000_pairs_and_no_full_scans(settings):
    settings.AGREEMENT_INLINE_MAX_JUDGMENTS = 10**9  # compute inline here: the cache is what is measured
    # 20 raters per specialty: each judges 3 in 20 pairs, as a rater among many would.
    seeded = scale_probe.seed(batch_sizes=[2_000, 300, 300], specialties=2, raters=40, leases=200, exports=3, runs=3)
    # A non-empty trail at both sizes: an empty page skips its SELECT, which is not growth.
    from annotation.audit import audit_record
    from annotation.models import Batch

    audit_record(actor=None, action="test.seeded", obj=Batch.objects.order_by("pk").first(), data={})
    small = measure(seeded)
    scale_probe.grow(seeded, extra=18_000)
    large = measure(seeded)

    # Pages read: 10x the pairs may cost a level more of an index and a page of rows spread over
    # more heap pages (a few hundred at most), never 10x the pages.
    heavier = {key: (small[key][3], large[key][3], large[key][4]) for key in small if large[key][3] > 2 * small[key][3] + 256}
    failed = {k: v[0] for k, v in {**small, **large}.items() if v[0] != 200}
    grew = {key: (small[key][1], large[key][1]) for key in small if small[key][1] != large[key][1]}
    scans = {key: large[key][2] for key in large if large[key][2]}
    assert not (failed or grew or scans or heavier), (
        f"not 200: {failed}\nquery counts grew with the batch: {grew}\nplans reading a whole table: {scans}\n"
        f"pages read grew with the batch (2,000 -> 20,000 pairs): {heavier}")
