"""Inter-rater agreement on plain numpy arrays: no Django in here, so it is tested against the
reference implementations (scikit-learn, statsmodels, krippendorff) on the same arrays.

Everything works from long-format ratings (one row per judgment: item, rater, label) that
`ratings_build` factorises and sorts by (item, rater) once. From there:

- an items x categories count matrix gives Fleiss' kappa, percent agreement and Krippendorff's
  coincidence matrix without visiting items one by one;
- the rater pairs that met on an item come from slot pairs inside each item's (sorted) run, and
  all pairwise confusion matrices from one `np.bincount` over combined codes;
- the bootstrap over items uses the fact that Fleiss' kappa and alpha depend on an item only
  through its count vector ("pattern"): resampling n items with replacement is exactly a
  multinomial draw over pattern frequencies, so 1,000 resamples cost 1,000 x (few dozen
  patterns) instead of 1,000 x n items. A pair's (or a rater's) kappa depends on its shared items
  only through their confusion cells, so its bootstrap is a multinomial over those cells.

Undefined figures (one rater, no overlap, chance agreement of 1) are None with a note in
`notes`, never NaN: JSON consumers and the training gate must not see NaN.

- ratings.py    Ratings, ratings_build, the preference levels and their scales
- matrices.py   kappa and alpha on stacks of confusion / coincidence matrices
- patterns.py   item patterns (Fleiss, percent agreement, coincidences), pairwise and
                leave-one-out confusion matrices
- bootstrap.py  percentile CIs, the multinomial bootstrap of confusion matrices
- report.py     agreement_report, agreement_headline(_codes), the per-rater table
- disputes.py   disputed_items
- text.py       a ratings CSV in, a report as text out (the `agreement` command)

Around the pure engine, with Django:
- services.py   per-batch reports (loaded from judgments, cached until they change), the trend
                across batches, CSV tables
- gate.py       the training gate's rules on a report or a stored headline, and the record of a
                close it blocked
- apis.py, urls.py   /api/batches/{id}/agreement/, /api/agreement/trend/

The engine's callers import from annotation.agreement, never from its modules. The engine
imports nothing of Django (a contract in .importlinter); services.py may import labeling and
the shared base of annotation.
"""
from .disputes import disputed_items
from .ratings import (
    LEVEL_CATEGORY_NAMES,
    LEVEL_SCALES,
    LEVELS,
    METRICS,
    Ratings,
    factorize,
    picked_first_from_preference,
    preference_at_level,
    ratings_build,
)
from .report import (
    LANDIS_KOCH_BANDS, agreement_headline, agreement_headline_codes, agreement_report, landis_koch, landis_koch_legend,
)

__all__ = [
    "LEVELS", "LEVEL_CATEGORY_NAMES", "LEVEL_SCALES", "METRICS", "Ratings",
    "agreement_headline", "agreement_headline_codes", "agreement_report", "disputed_items", "factorize",
    "LANDIS_KOCH_BANDS", "landis_koch", "landis_koch_legend", "picked_first_from_preference", "preference_at_level", "ratings_build",
]
