"""The annotation domain: from imported pairs to judgments, agreement, adjudication and exports.

One package per concept; each holds its pure core (no Django), services (writes), selectors
(reads), API views (apis.py) and routes (urls.py). Management commands in management/commands/
are thin wrappers over those services.

- labeling/      batches and their life cycle, raters, pair import, assignment (the judging hot
                 path and its hand-written SQL), judgments, skips; /api/batches, /api/next,
                 /api/assignments, /api/judgments, /api/raters, /api/audit
- agreement/     the pure numpy engine, cached per-batch reports, the training gate, the trend;
                 /api/batches/{id}/agreement, /api/agreement/trend
- adjudication/  disputes and final decisions; /api/batches/{id}/disputes, /api/pairs/{id}/adjudication
- exports/       judgments -> TRL triples (pure), snapshots and their files; /api/exports
- demo/          the K-QA demo data and its loader (manage.py load_demo)

Shared base, imported by the packages and importing none of them: models.py (all models, so
migrations stay put), audit.py (the append-only trail), errors.py (domain errors -> 4xx),
events.py (the batch outbox), permissions.py, parsers.py, api.py (pagination, CSV renderer).
tasks.py holds the Celery entry points. Allowed import directions are the contracts in
.importlinter, checked by tests/config/test_architecture.py: annotation never imports training
or frontend, and inside a package urls -> apis -> services -> selectors -> pure core.
"""
