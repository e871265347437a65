"""Completion text -> safe HTML. Model output is untrusted: raw HTML in it is shown as text
(never interpreted), and the result is cleaned by nh3 as a second line of defence, so no
script, no event handler, no remote image can reach a physician's browser."""

import markdown as md
import nh3

ALLOWED_TAGS = {
    "p", "br", "hr", "ul", "ol", "li", "strong", "em", "b", "i", "code", "pre", "blockquote",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td", "a",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "th": {"align"}, "td": {"align"}, "ol": {"start"}}


def _renderer() -> md.Markdown:
    renderer = md.Markdown(extensions=["sane_lists", "tables", "fenced_code"])
    # Escape HTML in the source instead of passing it through: the physician sees exactly
    # what the model wrote, and the rendered text stays a subsequence of the raw text, which
    # is what lets the page map a selection back to character offsets (see spans.js).
    renderer.preprocessors.deregister("html_block")
    renderer.inlinePatterns.deregister("html")
    return renderer


def markdown_to_safe_html(text: str) -> str:
    html = _renderer().convert(text or "")
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
