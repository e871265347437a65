"""Template filters for the browser pages."""

from django import template
from django.utils.safestring import mark_safe

from annotation import agreement
from frontend.markdown import markdown_to_safe_html

register = template.Library()


@register.filter
def markdown_safe(text: str) -> str:
    return mark_safe(markdown_to_safe_html(text))


@register.simple_tag
def landis_koch_legend() -> str:
    return agreement.landis_koch_legend()


@register.filter
def landis_koch(value) -> str:
    """The engine's Landis & Koch (1977) wording; a missing figure reads "not enough data"."""
    if value is None:
        return "not enough data"
    return agreement.landis_koch(float(value))


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
