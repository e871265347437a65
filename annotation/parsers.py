from rest_framework.parsers import BaseParser


class NDJSONParser(BaseParser):
    """JSONL bodies: hands the importer raw lines, so it can report bad ones by number."""

    media_type = "application/x-ndjson"

    def parse(self, stream, media_type=None, parser_context=None):
        return {"lines": stream.read().split(b"\n")}
