"""Refuse a SECRET_KEY that is known or guessable, at production start-up. Length alone is not
enough: the placeholder in .env.example is long enough, and `check --deploy` passes it."""

import re

from django.core.exceptions import ImproperlyConfigured

GENERATE = ('python -c "from django.core.management.utils import get_random_secret_key; '
            'print(get_random_secret_key())"')

# Values shipped in this repository or in Django's own templates and docs; a key anyone can read.
KNOWN_PLACEHOLDERS = {
    "change-me-to-a-random-string-of-at-least-fifty-characters-0123456789",
    "dev-only-insecure-key-change-me-" + "x" * 20,
}
# Words that mark a value someone meant to replace.
PLACEHOLDER_WORDS = re.compile(r"change[-_ ]?me|changeme|replace[-_ ]?me|placeholder|insecure|example|secret[-_ ]?key|your[-_ ]|dummy|not[-_ ]secret", re.I)


def secret_key_problem(key: str) -> str | None:
    """Why `key` must not sign production sessions, or None when it may."""
    if key in KNOWN_PLACEHOLDERS:
        return "SECRET_KEY is a placeholder published in this repository"
    if PLACEHOLDER_WORDS.search(key):
        return f"SECRET_KEY looks like a placeholder (it contains {PLACEHOLDER_WORDS.search(key).group(0)!r})"
    if len(key) < 50:
        return f"SECRET_KEY has {len(key)} characters; use at least 50"
    if len(set(key)) < 5:
        return "SECRET_KEY has fewer than 5 distinct characters"
    return None


def secret_key_check(key: str, *, allow_weak: bool = False) -> None:
    problem = secret_key_problem(key)
    if problem and not allow_weak:
        raise ImproperlyConfigured(f"{problem}. Generate a random key with\n    {GENERATE}\nand put it in SECRET_KEY (e.g. in .env).")
