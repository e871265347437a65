"""Small server-drawn SVG charts for the agreement report: no chart library, no JavaScript,
readable without colour (every cell and bar also carries its number and a <title>)."""

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

TEAL = (11, 100, 131)
RED = (194, 54, 44)


def _blend(rgb: tuple[int, int, int], t: float) -> str:
    t = max(0.0, min(1.0, t))
    r, g, b = (round(255 + (c - 255) * t) for c in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def kappa_colour(k: float | None) -> tuple[str, str]:
    """(fill, text colour) of a kappa cell: teal for agreement, red below chance."""
    if k is None:
        return "#eef1f4", "#55646f"
    fill = _blend(TEAL, k) if k >= 0 else _blend(RED, -k)
    return fill, ("#ffffff" if abs(k) > 0.55 else "#14212b")


def _fmt(v: float | None, digits: int = 2) -> str:
    return "—" if v is None else f"{v:.{digits}f}"


def heatmap_svg(heatmap: dict) -> SafeString:
    raters, kappa, n = heatmap.get("raters") or [], heatmap.get("kappa") or [], heatmap.get("n") or []
    if not raters:
        return mark_safe('<p class="muted">No raters yet.</p>')
    cell, left, top = 64, 150, 120
    size = len(raters)
    w, h = left + cell * size + 90, top + cell * size + 10
    out = [f'<svg class="chart heatmap" viewBox="0 0 {w} {h}" role="img" aria-label="Pairwise Cohen kappa between raters" '
           f'style="max-width:{w * 1.15:.0f}px">']
    for i, name in enumerate(raters):
        label = escape(name if len(name) <= 20 else name[:19] + "…")
        y = top + i * cell + cell / 2 + 4
        out.append(f'<text x="{left - 8}" y="{y}" text-anchor="end">{label}</text>')
        x = left + i * cell + cell / 2
        out.append(f'<text transform="translate({x + 4},{top - 8}) rotate(-45)" text-anchor="start">{label}</text>')
    for i in range(size):
        for j in range(size):
            x, y = left + j * cell, top + i * cell
            if i == j:
                out.append(f'<rect x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" rx="4" fill="#f8fafb" stroke="#e6ebef"/>')
                continue
            k = kappa[i][j]
            fill, ink = kappa_colour(k)
            title = f"{escape(raters[i])} vs {escape(raters[j])}: kappa {_fmt(k)} on {n[i][j]} shared pairs"
            out.append(f'<g><title>{title}</title><rect x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" rx="4" fill="{fill}"/>'
                       f'<text x="{x + (cell - 2) / 2}" y="{y + cell / 2 + 2}" text-anchor="middle" style="fill:{ink};font-weight:600">{_fmt(k)}</text></g>')
    out.append("</svg>")
    return mark_safe("".join(out))


def rater_bars_svg(per_rater: list[dict], *, threshold: float | None = None) -> SafeString:
    """Each rater's kappa against the consensus of the others, with its 95% interval."""
    if not per_rater:
        return mark_safe('<p class="muted">No raters yet.</p>')
    left, right, row, top = 150, 60, 30, 24
    width = 640
    lo, hi = -0.5, 1.0
    plot = width - left - right

    def xpos(v: float) -> float:
        return left + (max(lo, min(hi, v)) - lo) / (hi - lo) * plot

    h = top + row * len(per_rater) + 24
    out = [f'<svg class="chart" viewBox="0 0 {width} {h}" style="max-width:760px" role="img" aria-label="Kappa of each rater against the consensus">']
    for tick in (-0.5, 0, 0.2, 0.4, 0.6, 0.8, 1.0):
        x = xpos(tick)
        out.append(f'<line x1="{x}" x2="{x}" y1="{top - 6}" y2="{h - 20}" stroke="{"#9aa8b3" if tick == 0 else "#e6ebef"}"/>'
                   f'<text x="{x}" y="{h - 6}" text-anchor="middle">{tick:g}</text>')
    if threshold is not None:
        x = xpos(threshold)
        out.append(f'<line x1="{x}" x2="{x}" y1="{top - 10}" y2="{h - 20}" stroke="#b3261e" stroke-dasharray="4 3"/>'
                   f'<text x="{x}" y="{top - 12}" text-anchor="middle" style="fill:#b3261e">gate {threshold:g}</text>')
    for i, r in enumerate(per_rater):
        y = top + i * row
        k = r.get("kappa_vs_consensus")
        name = escape(str(r.get("rater")))
        out.append(f'<text x="{left - 8}" y="{y + row / 2 + 4}" text-anchor="end">{name}</text>')
        if k is None:
            out.append(f'<text x="{xpos(0) + 6}" y="{y + row / 2 + 4}">no consensus pairs</text>')
            continue
        x0, x1 = sorted((xpos(0), xpos(k)))
        colour = "#0b6483" if threshold is None or k >= threshold else "#c2362c"
        out.append(f'<g><title>{name}: kappa {_fmt(k)}</title><rect x="{x0}" y="{y + 7}" width="{max(x1 - x0, 1.5)}" height="{row - 14}" rx="3" fill="{colour}"/></g>')
        ci = r.get("kappa_vs_consensus_ci")
        if ci and ci[0] is not None and ci[1] is not None:
            a, b = xpos(ci[0]), xpos(ci[1])
            cy = y + row / 2
            out.append(f'<path d="M{a},{cy} H{b} M{a},{cy - 5} V{cy + 5} M{b},{cy - 5} V{cy + 5}" stroke="#14212b" stroke-width="1.3" fill="none"/>')
        out.append(f'<text x="{width - right + 8}" y="{y + row / 2 + 4}" style="font-weight:600">{_fmt(k)}</text>')
    out.append("</svg>")
    return mark_safe("".join(out))


def distribution_svg(distribution: dict) -> SafeString:
    """Counts of the five canonical preferences (A much better ... B much better)."""
    counts, labels = distribution.get("counts") or {}, distribution.get("labels") or {}
    keys = ["-2", "-1", "0", "1", "2"]
    if not counts:
        return mark_safe('<p class="muted">No judgments yet.</p>')
    width, height, bottom, top = 520, 240, 40, 20
    peak = max(counts.get(k, 0) for k in keys) or 1
    bw = (width - 40) / len(keys)
    colours = ["#084b63", "#3d8aa5", "#9aa8b3", "#d08a2e", "#9c5a0c"]
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="Distribution of preferences">']
    for i, key in enumerate(keys):
        c = counts.get(key, 0)
        bh = (height - top - bottom) * c / peak
        x = 20 + i * bw
        y = height - bottom - bh
        label = escape(labels.get(key, key))
        out.append(f'<g><title>{label}: {c}</title><rect x="{x + 8}" y="{y}" width="{bw - 16}" height="{bh}" rx="4" fill="{colours[i]}"/>'
                   f'<text x="{x + bw / 2}" y="{y - 5}" text-anchor="middle" style="font-weight:600">{c}</text>'
                   f'<text x="{x + bw / 2}" y="{height - bottom + 16}" text-anchor="middle">{label}</text></g>')
    out.append(f'<line x1="16" x2="{width - 16}" y1="{height - bottom}" y2="{height - bottom}" stroke="#9aa8b3"/></svg>')
    return mark_safe("".join(out))
