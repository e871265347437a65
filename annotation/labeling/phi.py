"""A PHI guard for imported text: finds what looks like a patient identifier in prompts and
completions. Pure (no Django, no database): regular expressions with context words.

Why our own recognisers and not presidio-analyzer: presidio-analyzer requires spaCy (and thinc,
preshed, ...) and tldextract (which fetches the public-suffix list over the network), and its
AnalyzerEngine loads an `en_core_web_*` model that is not on PyPI and is downloaded from GitHub at
run time when missing. Its pattern recognisers for these kinds are regular expressions much like
the ones below; the part that needs spaCy (names without a title) we do not attempt.

What it catches and what it cannot is measured on tests/annotation/labeling/phi_sample.py and
written up in the README ("PHI guard").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_MONTH = r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
_DATE = (rf"(?:\d{{1,2}}[/.-]\d{{1,2}}[/.-](?:\d{{4}}|\d{{2}})|\d{{4}}-\d{{2}}-\d{{2}}|{_MONTH}\.? \d{{1,2}}(?:st|nd|rd|th)?,? \d{{4}}"
         rf"|\d{{1,2}}(?:st|nd|rd|th)? {_MONTH},? \d{{4}})")
_NAME = r"(?:[A-Z]'[A-Z][a-z]+|[A-Z][a-z]+(?:-[A-Z][a-z]+)?)"
_STREET = (r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Court|Ct|Way|Place|Pl|Terrace|Circle|Cir"
           r"|Highway|Hwy|Parkway|Pkwy)")

# kind -> pattern. Each pattern must not match ordinary clinical text: doses ("5 mg", "0.5-1 g"),
# lab values, guideline years, ICD codes, "Dr." before a non-name (checked in the sample).
PATTERNS: dict[str, re.Pattern] = {
    "name_with_title": re.compile(
        rf"\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.?[ \t]+{_NAME}(?:[ \t]+{_NAME})?"
        rf"|\b(?:[Pp]atient|[Pp]t|[Nn]ame)[ \t]*:[ \t]*{_NAME}[ \t]+{_NAME}"),
    "date_of_birth": re.compile(
        rf"\b(?:DOB|D\.O\.B\.?|[Dd]ate of [Bb]irth|[Bb]orn(?: on)?|[Bb]irth ?date)[ \t]*[:\-]?[ \t]*{_DATE}"),
    "phone_or_fax": re.compile(
        r"(?<![\w.])(?:\+?1[ .-]?)?\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}(?!\w|[.-]\d)"
        r"|(?<![\w.])\+\d{1,3}[ .-]\d{1,4}(?:[ .-]\d{2,4}){2,4}(?!\w|[.-]\d)"
        r"|\b(?:[Pp]hone|[Tt]el|[Ff]ax|[Cc]ell|[Mm]obile)\.?[ \t]*(?:no\.?|number|#)?[ \t]*:?[ \t]*\+?\d[\d .()-]{6,}\d"),
    "email": re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b"),
    "ssn": re.compile(
        r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b"
        r"|\b(?:SSN|[Ss]ocial [Ss]ecurity(?: [Nn]umber| [Nn]o\.?)?)[ \t]*[:#]?[ \t]*\d{3}[ -]?\d{2}[ -]?\d{4}\b"),
    "medical_record_number": re.compile(
        r"\b(?:MRN|MR#|[Mm]edical [Rr]ecord(?: [Nn]umber| [Nn]o\.?| #)?|[Cc]hart (?:[Nn]umber|[Nn]o\.?|#)|[Hh]ospital (?:[Nn]umber|ID))"
        r"[ \t]*[:#]?[ \t]*[A-Z]{0,3}-?\d[\dA-Z-]{3,}"),
    "insurance_number": re.compile(
        r"\b(?:[Ii]nsurance|[Pp]olicy|[Mm]ember|[Ss]ubscriber|[Mm]edicare|[Mm]edicaid|[Bb]eneficiary|[Gg]roup)"
        r"(?: (?:[Ii][Dd]|[Nn]umber|[Nn]o\.?|#))+[ \t]*[:#]?[ \t]*[A-Z0-9][A-Z0-9-]{4,}"
        # a Medicare Beneficiary Identifier, with or without its dashes
        r"|\b[1-9][AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y\d]\d-?[AC-HJKMNP-RT-Y][AC-HJKMNP-RT-Y\d]\d-?[AC-HJKMNP-RT-Y]{2}\d{2}\b"),
    "street_address": re.compile(
        rf"\b\d{{1,6}}[ \t]+(?:[NSEW]\.?[ \t]+)?(?:{_NAME}[ \t]+){{1,3}}{_STREET}\b\.?"
        r"|\b(?:P\.?O\.? [Bb]ox)[ \t]+\d+"),
    "url_with_identifier": re.compile(
        r"\bhttps?://[^\s\"'<>]*(?:[?&](?:id|pid|patient(?:_?id)?|mrn|user(?:_?id)?|name|dob|ssn|email|member(?:_?id)?)=[^\s&\"'<>]+"
        r"|/(?:patients?|users?|records?|charts?|mrn)/[\w-]*\d[\w-]*)", re.I),
}
KIND_WORDS = {
    "name_with_title": "a name with a title",
    "date_of_birth": "a date of birth",
    "phone_or_fax": "a phone or fax number",
    "email": "an e-mail address",
    "ssn": "a social security number",
    "medical_record_number": "a medical record number",
    "insurance_number": "an insurance or member number",
    "street_address": "a street address",
    "url_with_identifier": "a URL carrying an identifier",
}


@dataclass(frozen=True)
class Finding:
    kind: str
    start: int
    end: int

    def as_dict(self, *, field: str) -> dict:
        return {"field": field, "kind": self.kind, "start": self.start, "end": self.end}


def phi_find(text: str) -> list[Finding]:
    """Every likely identifier in `text`, in order of position."""
    found = [Finding(kind, m.start(), m.end()) for kind, pattern in PATTERNS.items() for m in pattern.finditer(text)]
    return sorted(found, key=lambda f: (f.start, f.kind))


def phi_kinds(text: str) -> set[str]:
    return {f.kind for f in phi_find(text)}
