"""api.middleware.Compress: gzip for clients that accept it; tiles, photos and plain writes pass."""

from __future__ import annotations

import gzip

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from api.middleware import Compress

BODY = "网格 grid " * 400  # well above the 1 KiB minimum


async def _text(request: Request) -> PlainTextResponse:
    return PlainTextResponse(BODY)


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = Starlette(
        routes=[
            Route("/events", _text, methods=["GET", "POST"]),
            Route("/tiles/1/0/0", _text),
        ]
    )
    return TestClient(Compress(app))


def _raw(client: TestClient, method: str, path: str, encoding: str) -> tuple[dict[str, str], bytes]:
    with client.stream(method, path, headers={"Accept-Encoding": encoding}) as r:
        assert r.status_code == 200
        return dict(r.headers), b"".join(r.iter_raw())


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_client_accepting_gzip_gets_gzip(client: TestClient, method: str) -> None:
    headers, raw = _raw(client, method, "/events", "gzip, deflate")
    assert headers["content-encoding"] == "gzip"
    assert "Accept-Encoding" in headers["vary"]
    assert gzip.decompress(raw).decode() == BODY


def test_a_read_without_gzip_still_says_it_varies(client: TestClient) -> None:
    """A cache must not hand this identity answer to a gzip client as the only variant."""
    headers, raw = _raw(client, "GET", "/events", "identity")
    assert "content-encoding" not in headers
    assert "Accept-Encoding" in headers["vary"]
    assert raw.decode() == BODY


def test_a_write_without_gzip_passes_by_the_gzip_middleware(client: TestClient) -> None:
    headers, raw = _raw(client, "POST", "/events", "identity")
    assert "content-encoding" not in headers
    assert "vary" not in headers  # the gzip middleware never saw it
    assert raw.decode() == BODY


def test_tiles_are_never_compressed(client: TestClient) -> None:
    headers, raw = _raw(client, "GET", "/tiles/1/0/0", "gzip")
    assert "content-encoding" not in headers
    assert raw.decode() == BODY
