"""Small server-drawn SVG charts for the agreement report: no chart library, no JavaScript,
readable without colour (every cell and bar also carries its number and a <title>)."""

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from annotation import agreement

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


# Okabe & Ito's palette, told apart by people with any common colour-vision deficiency; each
# series also has its own marker shape, so the chart reads in greyscale too.
TREND_SERIES = (
    ("krippendorff_alpha", "Krippendorff's α", "#0072b2", "circle"),
    ("fleiss_kappa", "Fleiss' κ", "#d55e00", "square"),
    ("mean_cohen_kappa", "Mean Cohen's κ", "#009e73", "triangle"),
)


def _marker(shape: str, x: float, y: float, colour: str) -> str:
    if shape == "square":
        return f'<rect x="{x - 4.5:.1f}" y="{y - 4.5:.1f}" width="9" height="9" fill="{colour}" stroke="#fff"/>'
    if shape == "triangle":
        return f'<path d="M{x:.1f},{y - 6:.1f} L{x + 5.5:.1f},{y + 4:.1f} L{x - 5.5:.1f},{y + 4:.1f} Z" fill="{colour}" stroke="#fff"/>'
    return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{colour}" stroke="#fff"/>'


def trend_svg(points: list[dict]) -> SafeString:
    """Alpha, Fleiss' kappa and mean Cohen's kappa per batch in time order (agreement_trend rows
    plus each batch's `min_alpha` and `date`), with 95% whiskers where the report has them and the
    alpha gate as a dashed line: one line when every batch has the same threshold, one segment per
    batch otherwise."""
    if not points:
        return mark_safe('<p class="muted">No batch has judgments yet.</p>')
    left, right, top, bottom = 56, 120, 44, 74
    width, height = 900, 400
    slot = (width - left - right) / len(points)
    dodge = min(12.0, slot / 6)  # the three series side by side, so whiskers never hide each other
    values = [v for p in points for key, *_ in TREND_SERIES for v in (p.get(key), *(p.get(f"{key}_ci") or ())) if v is not None]
    thresholds = [p.get("min_alpha") for p in points]
    values += [t for t in thresholds if t is not None]
    lo = max(-1.0, min(0.0, (min(values, default=0.0) * 5 // 1) / 5))  # down to the next 0.2 below the lowest figure
    hi = 1.0
    plot_h = height - top - bottom

    def ypos(v: float) -> float:
        return top + (hi - max(lo, min(hi, v))) / (hi - lo) * plot_h

    def xpos(i: int, s: int = 1) -> float:
        return left + slot * (i + 0.5) + (s - 1) * dodge

    out = [f'<svg class="chart trend" viewBox="0 0 {width} {height}" role="img" '
           f'aria-label="Agreement per batch over time: Krippendorff alpha, Fleiss kappa and mean Cohen kappa" style="max-width:1000px">']
    tick = lo
    while tick <= hi + 1e-9:
        y = ypos(tick)
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{"#9aa8b3" if abs(tick) < 1e-9 else "#e6ebef"}"/>'
                   f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{tick:.1f}</text>')
        tick = round(tick + 0.2, 10)
    bands = (((lo, "poor"),) if lo < 0 else ()) + agreement.LANDIS_KOCH_BANDS
    for (floor, words), ceiling in zip(bands, [b[0] for b in bands[1:]] + [hi]):  # each band's wording, right of the plot
        out.append(f'<text x="{width - right + 10}" y="{ypos((floor + ceiling) / 2) + 4:.1f}" style="fill:#55646f;font-style:italic">{words}</text>')
    out.append(f'<text transform="translate(14,{top + plot_h / 2:.0f}) rotate(-90)" text-anchor="middle">coefficient (1 = perfect agreement)</text>')

    distinct = set(thresholds) - {None}
    if len(distinct) == 1:
        gate = distinct.pop()
        y = ypos(gate)
        out.append(f'<g><title>Training gate: Krippendorff\'s alpha at least {gate:g}</title>'
                   f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#b3261e" stroke-dasharray="6 4" stroke-width="1.5"/>'
                   f'<text x="{width - right - 4}" y="{y - 5:.1f}" text-anchor="end" style="fill:#b3261e">gate α ≥ {gate:g}</text></g>')
    else:
        for i, p in enumerate(points):
            gate = thresholds[i]
            if gate is None:
                continue
            y = ypos(gate)
            out.append(f'<g><title>{escape(p["name"])}: gate alpha at least {gate:g}</title>'
                       f'<line x1="{left + slot * i + 3:.1f}" x2="{left + slot * (i + 1) - 3:.1f}" y1="{y:.1f}" y2="{y:.1f}" '
                       f'stroke="#b3261e" stroke-dasharray="6 4" stroke-width="1.5"/>'
                       f'<text x="{left + slot * i + 4:.1f}" y="{y - 5:.1f}" style="fill:#b3261e">gate {gate:g}</text></g>')

    for i, p in enumerate(points):  # x axis: batch name and the date that places it in time
        x = xpos(i)
        name = str(p["name"])
        when = p.get("date")
        when = "" if when is None else f"{when:%Y-%m-%d}"
        base = height - bottom + 18
        if slot >= 130:  # room for level labels
            label = escape(name if len(name) <= 22 else name[:21] + "…")
            out.append(f'<g><title>{escape(name)}</title><text x="{x:.1f}" y="{base}" text-anchor="middle" style="font-weight:600">{label}</text>'
                       f'<text x="{x:.1f}" y="{base + 15}" text-anchor="middle">{when}</text></g>')
        else:
            label = escape(name if len(name) <= 16 else name[:15] + "…")
            out.append(f'<g><title>{escape(name)} {when}</title><text transform="translate({x - 4:.1f},{base - 6}) rotate(30)" '
                       f'text-anchor="start"><tspan style="font-weight:600">{label}</tspan> {when}</text></g>')

    show_values = slot >= 90  # with many batches the numbers would collide; the table below has them all
    for s, (key, _, colour, _) in enumerate(TREND_SERIES):
        path, pen_down = [], False
        for i, p in enumerate(points):
            v = p.get(key)
            if v is None:
                pen_down = False  # an undefined figure breaks the line rather than bridging it
                continue
            path.append(f'{"L" if pen_down else "M"}{xpos(i, s):.1f},{ypos(v):.1f}')
            pen_down = True
        if path:
            out.append(f'<path d="{" ".join(path)}" fill="none" stroke="{colour}" stroke-width="2" stroke-opacity=".7"/>')
    for i, p in enumerate(points):
        labels = []
        for s, (key, words, colour, shape) in enumerate(TREND_SERIES):
            v = p.get(key)
            if v is None:
                continue
            x, y = xpos(i, s), ypos(v)
            ci = p.get(f"{key}_ci")
            title = f"{escape(p['name'])}: {words} {_fmt(v)}"
            whisker = ""
            if ci and ci[0] is not None and ci[1] is not None:
                a, b = ypos(ci[0]), ypos(ci[1])
                title += f" (95% CI {_fmt(ci[0])} to {_fmt(ci[1])})"
                whisker = (f'<path d="M{x:.1f},{a:.1f} V{b:.1f} M{x - 4:.1f},{a:.1f} H{x + 4:.1f} M{x - 4:.1f},{b:.1f} H{x + 4:.1f}" '
                           f'stroke="{colour}" stroke-width="1.3" fill="none"/>')
            out.append(f'<g><title>{title}</title>{whisker}{_marker(shape, x, y, colour)}</g>')
            labels.append((y, _fmt(v), colour))
        if show_values:
            # The values in a column right of the three markers, nudged apart so close figures stay legible.
            floor = -1e9
            for y, text, colour in sorted(labels):
                y = max(y + 4, floor + 13)
                floor = y
                out.append(f'<text x="{xpos(i, 2) + 9:.1f}" y="{y:.1f}" style="fill:{colour};font-weight:650;paint-order:stroke;stroke:#fff;stroke-width:3px">{text}</text>')

    for s, (_, words, colour, shape) in enumerate(TREND_SERIES):  # legend, top left, with the markers the plot uses
        x = left + 8 + s * 150
        out.append(f'{_marker(shape, x, 16, colour)}<text x="{x + 10}" y="20" style="font-size:12px">{words}</text>')
    out.append(f'<line x1="{left + 458}" x2="{left + 482}" y1="16" y2="16" stroke="#b3261e" stroke-dasharray="6 4" stroke-width="1.5"/>'
               f'<text x="{left + 488}" y="20" style="font-size:12px">training gate (α)</text>')
    out.append("</svg>")
    return mark_safe("".join(out))


ROUND_SERIES = (
    # key, words, colour, marker
    ("win_rate", "New policy's win rate vs the previous (95% CI)", "#0b6483", "circle"),
    ("rm_agreement", "Reward model vs physicians' majority", "#d55e00", "square"),
    ("ceiling", "Physician vs the other physicians (ceiling)", "#009e73", "triangle"),
)


def rounds_svg(points: list[dict]) -> SafeString:
    """Per round (x): the new policy's win rate with its 95% whiskers, the reward model's agreement
    with the physicians' majority and the physicians' own (the ceiling), all on 0..1, with 0.5
    (no better than the previous policy, or a coin) dashed."""
    if not points:
        return mark_safe('<p class="muted">No round has been labeled yet.</p>')
    left, right, top, bottom = 56, 24, 24, 48
    width, height = 900, 320
    slot = (width - left - right) / len(points)
    plot_h = height - top - bottom

    def ypos(v: float) -> float:
        return top + (1.0 - max(0.0, min(1.0, v))) * plot_h

    def xpos(i: int, s: int = 1) -> float:
        return left + slot * (i + 0.5) + (s - 1) * min(12.0, slot / 6)

    out = [f'<svg class="chart rounds" viewBox="0 0 {width} {height}" role="img" style="max-width:1000px" '
           f'aria-label="Per round: win rate of the new policy, reward model agreement with physicians, and the physicians ceiling">']
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = ypos(tick)
        dashed = ' stroke-dasharray="6 4"' if tick == 0.5 else ""
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{"#9aa8b3" if tick == 0.5 else "#e6ebef"}"{dashed}/>'
                   f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end">{tick:.2f}</text>')
    for i, p in enumerate(points):
        out.append(f'<text x="{xpos(i):.1f}" y="{height - bottom + 20}" text-anchor="middle" style="font-weight:600">'
                   f'{escape(p["label"])}</text>')
    for s, (key, words, colour, shape) in enumerate(ROUND_SERIES):
        path, pen = [], False
        for i, p in enumerate(points):
            v = p.get(key)
            if v is None:
                pen = False
                continue
            path.append(f'{"L" if pen else "M"}{xpos(i, s):.1f},{ypos(v):.1f}')
            pen = True
        if path:
            out.append(f'<path d="{" ".join(path)}" fill="none" stroke="{colour}" stroke-width="2" stroke-opacity=".6"/>')
        for i, p in enumerate(points):
            v = p.get(key)
            if v is None:
                continue
            ci = p.get(f"{key}_ci")
            if ci and None not in ci:
                out.append(f'<line x1="{xpos(i, s):.1f}" x2="{xpos(i, s):.1f}" y1="{ypos(ci[0]):.1f}" y2="{ypos(ci[1]):.1f}" stroke="{colour}" stroke-width="2"/>')
            out.append(f'<g><title>{escape(p["label"])}: {escape(words)} {v:.2f}</title>{_marker(shape, xpos(i, s), ypos(v), colour)}</g>')
    legend_y = height - 10
    for s, (_, words, colour, shape) in enumerate(ROUND_SERIES):
        x = left + s * 290
        out.append(f'{_marker(shape, x, legend_y - 4, colour)}<text x="{x + 10}" y="{legend_y}">{escape(words)}</text>')
    out.append("</svg>")
    return mark_safe("".join(out))
