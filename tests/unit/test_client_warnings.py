"""Server warnings (`Warning: 299 - "text"` headers) as client-go parses and hands them on:
several per header value, commas and escaped quotes inside the quoted text, malformed parts
skipped. Plus the client's plumbing (fieldValidation sent only when asked), on a mock transport."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubelab.client import ApiClient, ApiError
from kubelab.client.rest import LogWarnings, WarningHeader, parse_warning_header, parse_warning_headers, warning_texts


def quoted(text: str) -> str:
    """How the API server (apimachinery's makeQuotedString) writes a warn-text."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def test_the_api_servers_unknown_field_warning():
    assert parse_warning_headers(['299 - "unknown field \\"spec.containers[0].readinesProbe\\""']) == \
        [WarningHeader(299, "-", 'unknown field "spec.containers[0].readinesProbe"')]


def test_several_headers_and_several_warnings_in_one_header():
    headers = ['299 - "unknown field \\"metadata.lables\\"", 299 - "unknown field \\"datta\\""',
               '299 - "third"']
    assert warning_texts(headers) == ['unknown field "metadata.lables"', 'unknown field "datta"', "third"]


def test_quoted_commas_are_not_separators():
    assert warning_texts(['299 - "a, b, c", 299 - "d,e"']) == ["a, b, c", "d,e"]


def test_escaped_quotes_and_backslashes():
    # the header test_field_validation pins for a key `a"b\nc` (a real backslash-n in the key name)
    header = '299 - "unknown field \\"a\\\\\\"b\\\\nc\\""'
    assert warning_texts([header]) == ['unknown field "a\\"b\\nc"']
    assert warning_texts(['299 - "ends with a backslash \\\\"']) == ["ends with a backslash \\"]


def test_optional_date_then_the_next_warning():
    header = '299 - "first" "Wed, 21 Oct 2015 07:28:00 GMT", 299 kube-apiserver "second"'
    assert parse_warning_headers([header]) == [WarningHeader(299, "-", "first"),
                                               WarningHeader(299, "kube-apiserver", "second")]


def test_remainder_is_returned_for_the_next_call():
    warning, rest = parse_warning_header('  299 - "a, b" ,  299 - "c"')
    assert warning.text == "a, b" and rest == '299 - "c"'


@pytest.mark.parametrize("header", [
    "299 -", '29 - "x"', '2999 - "x"', 'abc - "x"', '299  "x"', '299 - x', '299 - "unterminated',
    '299 - "open\\"', '299 - "x" "unterminated date', '299 - "x" junk', '299 - "bell\x07"', '299 a\x01b "x"',
])
def test_malformed_warnings_raise(header):
    with pytest.raises(ValueError):
        parse_warning_header(header)


def test_a_malformed_warning_drops_only_the_rest_of_its_header():
    headers = ['299 - "kept", 299 - broken, 299 - "lost"', 'nonsense', '299 - "next header"']
    assert warning_texts(headers) == ["kept", "next header"]


def test_only_nonempty_299_texts_reach_handlers():
    assert warning_texts(['199 agent "misc"', '299 - ""', '214 - "transformed"', '299 - "kept"']) == ["kept"]


def test_rfc2047_encoded_text_is_decoded():
    assert warning_texts(['299 - "=?utf-8?q?caf=C3=A9?="']) == ["café"]
    assert warning_texts(['299 - "=?bogus-charset?q?x?="']) == ["=?bogus-charset?q?x?="]


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=40))
def test_any_printable_text_round_trips(text):
    header = f"299 - {quoted(text)}"
    if "=?" in text:  # RFC 2047 words are decoded on purpose
        return
    assert parse_warning_headers([f"{header}, {header}"]) == [WarningHeader(299, "-", text)] * 2


def test_default_handler_logs_each_text_once(caplog):
    handler = LogWarnings()
    with caplog.at_level(logging.WARNING, logger="kubelab.client"):
        for text in ("a", "b", "a"):
            handler(text)
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == \
        [("kubelab.client", logging.WARNING, "a"), ("kubelab.client", logging.WARNING, "b")]


# ---- the client on a mock transport -------------------------------------------------------------

def mock_client(handler, seen: list[str]) -> tuple[ApiClient, list[httpx.Request]]:
    requests: list[httpx.Request] = []

    def respond(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return handler(request)

    client = ApiClient(server="http://kubelab.invalid", warning_handler=seen.append)
    client._http = httpx.AsyncClient(base_url=client.server, transport=httpx.MockTransport(respond))
    return client, requests


CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns"}}


async def test_client_hands_warnings_on_and_sends_field_validation_only_when_asked():
    seen: list[str] = []

    def respond(request):
        return httpx.Response(201, json=json.loads(request.content),
                              headers=[("Warning", '299 - "unknown field \\"datta\\""'), ("Warning", '299 - "x, y"')])

    client, requests = mock_client(respond, seen)
    async with client:
        await client.create("configmaps", CM)
        await client.create("configmaps", CM, field_validation="Warn")
        await client.replace("configmaps", "c", CM, namespace="ns", field_validation="Ignore")
        await client.patch("configmaps", "c", {"data": {}}, namespace="ns", field_validation="Strict")
    assert [r.url.params.get("fieldValidation") for r in requests] == [None, "Warn", "Ignore", "Strict"]
    assert seen == ['unknown field "datta"', "x, y"] * 4  # the client does not deduplicate; handlers may


async def test_warnings_on_an_error_answer_come_before_the_error():
    seen: list[str] = []

    def respond(request):
        return httpx.Response(400, json={"kind": "Status", "code": 400, "reason": "BadRequest", "message": "no"},
                              headers={"Warning": '299 - "heads up"'})

    client, _ = mock_client(respond, seen)
    async with client:
        with pytest.raises(ApiError) as err:
            await client.create("configmaps", CM, field_validation="Strict")
    assert (err.value.code, seen) == (400, ["heads up"])


async def test_no_warning_header_calls_no_handler():
    seen: list[str] = []
    client, _ = mock_client(lambda request: httpx.Response(200, json={"kind": "ConfigMap"}), seen)
    async with client:
        await client.get("configmaps", "c", namespace="ns")
    assert seen == []
