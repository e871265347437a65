"""The dashboard shows pages for capabilities built in other modules (agreement reports,
adjudication, exports, training). A capability whose module or function is missing shows a
'not available yet' page instead of crashing the whole dashboard."""

import importlib


def capability(module: str, *names: str):
    """The module if it can be imported and has every one of `names`, else None."""
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return None
    return mod if all(hasattr(mod, n) for n in names) else None


def available_sections() -> dict[str, bool]:
    return {
        "agreement": capability("annotation.agreement_reports", "agreement_report_for_batch") is not None,
        "exports": capability("annotation.export_services", "export_list", "export_create") is not None,
        "training": capability("training.selectors") is not None,
    }
