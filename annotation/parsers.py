"""Request body parsers for every API endpoint (REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"]).

Each one reads at most DATA_UPLOAD_MAX_MEMORY_SIZE bytes (DRF reads the request stream itself, so
Django's own check of that setting never runs) and the JSON ones refuse documents nested deeper
than MAX_JSON_DEPTH: a body nested thousands of levels deep would otherwise end in a
RecursionError, a 500, in the parser or in whatever walks the data next."""

import json

from django.conf import settings
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.parsers import BaseParser, JSONParser

# Our deepest legitimate body is a judgment's error_spans (object > list > object): 32 leaves
# room for nested import metadata while staying far below Python's recursion limit.
MAX_JSON_DEPTH = 32


class RequestTooLarge(APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"


def max_body_bytes() -> int:
    return int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)


def read_bounded(stream) -> bytes:
    """The whole body, or RequestTooLarge when it is longer than one request may carry."""
    if stream is None:
        return b""
    limit = max_body_bytes()
    body = stream.read(limit + 1)
    if len(body) > limit:
        raise RequestTooLarge(
            f"The request body is larger than {limit:,} bytes. Split it, or import big files with "
            "`manage.py import_pairs` or the dashboard's upload (it runs in the background)."
        )
    return body


def json_depth_exceeds(value, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """Whether a parsed JSON value nests lists/objects deeper than max_depth (iterative: the
    check itself must not recurse)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def json_loads_bounded(raw: bytes | str, max_depth: int = MAX_JSON_DEPTH):
    """json.loads that refuses over-deep documents with ValueError (JSONDecodeError for bad JSON)."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise ValueError(f"JSON nested deeper than {max_depth} levels")
    if json_depth_exceeds(value, max_depth):
        raise ValueError(f"JSON nested deeper than {max_depth} levels")
    return value


class BoundedJSONParser(JSONParser):
    """DRF's JSONParser with a size and a nesting bound: a clear 400 (413 for size), never a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        body = read_bounded(stream)
        try:
            return json_loads_bounded(body.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ParseError(f"JSON parse error - the body is not UTF-8 (byte {exc.start}).")
        except json.JSONDecodeError as exc:
            raise ParseError(f"JSON parse error - {exc.msg} (line {exc.lineno}, column {exc.colno}).")
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}; send a flatter document.")


class NDJSONParser(BaseParser):
    """JSONL bodies: hands the importer raw lines, so it can report bad ones by number (each
    line's nesting is bounded there)."""

    media_type = "application/x-ndjson"

    def parse(self, stream, media_type=None, parser_context=None):
        return {"lines": read_bounded(stream).split(b"\n")}
