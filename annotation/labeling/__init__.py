"""Labeling: batches (create, open, close; the state machine), raters and specialties, pair import
(importing.py, bulk.py: validated in full, then one atomic write), and the judging hot path
(assignment.py: lease the next pair, submit a judgment, skip; hotsql.py: the hand-written SQL it
runs on). services.py writes, selectors.py reads, apis.py + urls.py serve /api/.

May import: the shared base of annotation (models, audit, errors, events, permissions, parsers,
api). Imported by the other annotation packages, frontend and training; never by the base."""
