"""Template filters for the browser pages."""

from django import template
from django.utils.safestring import mark_safe

from frontend.markdown import markdown_to_safe_html

register = template.Library()


@register.filter
def markdown_safe(text: str) -> str:
    return mark_safe(markdown_to_safe_html(text))


@register.filter
def landis_koch(value) -> str:
    """Landis & Koch (1977) wording for a kappa-like coefficient."""
    if value is None:
        return "not enough data"
    v = float(value)
    if v < 0:
        return "poor (worse than chance)"
    for upper, words in ((0.20, "slight"), (0.40, "fair"), (0.60, "moderate"), (0.80, "substantial")):
        if v <= upper:
            return words
    return "almost perfect"


@register.filter
def percent(value, total) -> float:
    return round(100.0 * value / total, 1) if total else 0.0


@register.filter
def get_item(mapping, key):
    return mapping.get(key) if hasattr(mapping, "get") else None


@register.filter
def humanize_seconds(value) -> str:
    if value is None:
        return "—"
    value = float(value)
    return f"{value:.0f} s" if value < 90 else f"{value / 60:.1f} min"


@register.filter
def ms_seconds(value) -> str:
    return "—" if value is None else f"{round(value / 1000)} s"
