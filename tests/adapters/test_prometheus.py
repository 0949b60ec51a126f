"""The Prometheus adapter against a loopback server answering in the HTTP API's shapes: one
series is its value, an empty vector or NaN/Inf is no value, several series, other result
types, HTTP and JSON failures are one-line AdapterErrors with the server's text stripped."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from shipdeck.adapters.prometheus import PrometheusQueries
from shipdeck.core.errors import AdapterError
from tests.support.http import QuietHandler, serving


def _vector(*values: str) -> dict[str, Any]:
    result = [{"metric": {"color": "blue"}, "value": [1700000000.1, v]} for v in values]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


class Answers(QuietHandler):
    """GET /api/v1/query: the answer is chosen by the query text (the test's queries name
    their case); every query the server saw is kept."""

    seen: list[tuple[str, str]] = []
    cases: dict[str, tuple[int, bytes]] = {
        "one": (200, json.dumps(_vector("0.05")).encode()),
        "empty": (200, json.dumps(_vector()).encode()),
        "nan": (200, json.dumps(_vector("NaN")).encode()),
        "inf": (200, json.dumps(_vector("+Inf")).encode()),
        "two": (200, json.dumps(_vector("1", "2")).encode()),
        "scalar": (200, b'{"status":"success","data":{"resultType":"scalar","result":[1,"3.5"]}}'),
        "matrix": (200, b'{"status":"success","data":{"resultType":"matrix","result":[]}}'),
        "bad": (
            400,
            b'{"status":"error","errorType":"bad_data",'
            b'"error":"1:5: parse error: unexpected \\u001b[31m\\n\\u202e"}',
        ),
        "html": (503, b"<html>\x1b]0;pwned\x07Service Unavailable\n</html>"),
        "notjson": (200, b"up 1"),
        "failed": (200, b'{"status":"error","errorType":"timeout","error":"query timed out"}'),
    }

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query).get("query", [""])[0]
        self.seen.append((parts.path, query))
        status, body = self.cases.get(query.split("#")[0], (404, b"no such case"))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def prom() -> Iterator[str]:
    Answers.seen = []
    with serving(Answers) as url:
        yield url


def test_one_series_is_its_value_and_the_query_is_sent_whole(prom: str) -> None:
    query = 'one#{color="blue"} & [60s]'
    assert PrometheusQueries().value(prom + "/", query) == 0.05
    assert Answers.seen == [("/api/v1/query", query)]
    assert PrometheusQueries().value(prom, "scalar") == 3.5


@pytest.mark.parametrize("case", ["empty", "nan", "inf"])
def test_no_data_is_no_value(prom: str, case: str) -> None:
    assert PrometheusQueries().value(prom, case) is None


ERRORS = [
    ("two", "the query must return one series, it returned 2 (aggregate it, e.g. with sum(...))"),
    ("matrix", "the query must return an instant vector or a scalar, not matrix"),
    ("bad", "HTTP 400: bad_data: 1:5: parse error: unexpected"),
    ("html", "HTTP 503: <html>Service Unavailable </html>"),
    ("notjson", "the answer is not JSON"),
    ("failed", "timeout: query timed out"),
]


@pytest.mark.parametrize(("case", "message"), ERRORS, ids=[e[0] for e in ERRORS])
def test_a_bad_answer_is_one_stripped_line(prom: str, case: str, message: str) -> None:
    with pytest.raises(AdapterError) as caught:
        PrometheusQueries().value(prom, case)
    text = caught.value.message
    assert text == f"prometheus {urlsplit(prom).netloc}: {message}"
    assert "\n" not in text and "\x1b" not in text and "\u202e" not in text and "\x07" not in text


def test_an_unreachable_server_is_an_adapter_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: the connection is refused
        with pytest.raises(AdapterError, match=rf"^prometheus 127.0.0.1:{port}: cannot reach: "):
            PrometheusQueries(timeout=2).value(f"http://127.0.0.1:{port}", "one")
