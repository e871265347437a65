"""Adjudication: which batches a user may adjudicate, the disputed pairs of a batch, everything the
raters said about one pair (selectors.py), the final decision (services.py), over HTTP (apis.py,
urls.py). Adjudications are rows of their own; raw judgments are never changed.

May import: annotation.agreement (the engine's dispute ranking), annotation.labeling and the
shared base. exports reads Adjudication rows itself, so nothing in annotation imports this package."""
