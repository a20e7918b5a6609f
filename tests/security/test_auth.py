"""Authentication: tokens, API keys, disabled users, roles, the login flow and its limits."""

from __future__ import annotations

import base64
import datetime as dt
import json

import jwt
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from pydantic import ValidationError

from api.ratelimit import ReportRateLimit
from api.security import CurrentPrincipal, install_security
from gridmap.common.settings import SecuritySettings
from gridmap.security.audit import read_log
from gridmap.security.auth import add_user, issue_token, set_disabled
from tests.security.conftest import PASSWORD, SECRET, World, make_app, security_settings

PROTECTED = ("/auth/me", "/registry/residents", "/registry/households")


def _b64(obj: dict[str, object]) -> str:
    raw = json.dumps(obj, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(**kw: object) -> dict[str, object]:
    now = dt.datetime.now(dt.UTC)
    claims: dict[str, object] = {
        "sub": "admin",
        "role": "city_admin",
        "areas": [""],
        "iat": now,
        "exp": now + dt.timedelta(minutes=5),
        "jti": "x",
        "iss": "gridmap",
        "aud": "gridmap-api",
    }
    claims.update(kw)
    return claims


def _bad_tokens(world: World) -> dict[str, str]:
    good = world.tokens["worker_b"]
    head, body, sig = good.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload["sub"] = "admin"
    now = int(dt.datetime.now(dt.UTC).timestamp())
    none_claims = {**payload, "iat": now, "exp": now + 300}
    return {
        "alg_none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(none_claims)}.",
        "alg_none_upper": f"{_b64({'alg': 'None', 'typ': 'JWT'})}.{_b64(none_claims)}.",
        "tampered_payload": f"{head}.{_b64(payload)}.{sig}",
        "tampered_signature": f"{head}.{body}.{sig[:-4]}AAAA",
        "expired": jwt.encode(
            _claims(exp=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)), SECRET, "HS256"
        ),
        "wrong_secret": jwt.encode(_claims(), "another-secret-" + "f" * 64, "HS256"),
        "wrong_audience": jwt.encode(_claims(aud="someone-else"), SECRET, "HS256"),
        "wrong_issuer": jwt.encode(_claims(iss="evil"), SECRET, "HS256"),
        "other_algorithm": jwt.encode(_claims(), SECRET, "HS512"),
        "no_exp": jwt.encode({k: v for k, v in _claims().items() if k != "exp"}, SECRET, "HS256"),
        "unknown_user": jwt.encode(_claims(sub="nobody"), SECRET, "HS256"),
        "garbage": "not-a-token",
        "huge": "a" * 10_000,
    }


BAD = (
    "alg_none",
    "alg_none_upper",
    "tampered_payload",
    "tampered_signature",
    "expired",
    "wrong_secret",
    "wrong_audience",
    "wrong_issuer",
    "other_algorithm",
    "no_exp",
    "unknown_user",
    "garbage",
    "huge",
)


@pytest.mark.parametrize("path", PROTECTED)
def test_missing_credentials(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("kind", BAD)
def test_bad_tokens_are_401(world: World, client: TestClient, kind: str) -> None:
    token = _bad_tokens(world)[kind]
    for path in PROTECTED:
        r = client.get(path, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, (kind, path, r.text)


def test_valid_token_and_api_key(world: World, client: TestClient) -> None:
    r = client.get("/auth/me", headers=world.headers("worker_a"))
    assert r.status_code == 200
    assert r.json() == {
        "name": "worker_a",
        "role": "grid_worker",
        "areas": [world.grid_a],
        "can_unmask": True,
        "sees_personal_data": True,
    }
    r = client.get("/auth/me", headers={"X-API-Key": world.api_key})
    assert r.status_code == 200 and r.json()["role"] == "external_system"
    for key in ("gmk_wrong", world.api_key + "x", "", "x" * 5000):
        assert client.get("/auth/me", headers={"X-API-Key": key}).status_code == 401


def test_invalid_bearer_is_not_passed_over_for_api_key(world: World, client: TestClient) -> None:
    r = client.get(
        "/auth/me", headers={"Authorization": "Bearer nonsense", "X-API-Key": world.api_key}
    )
    assert r.status_code == 401


def test_disabled_user_rejected_despite_valid_token(world: World, client: TestClient) -> None:
    user = add_user(world.store, "leaver", role="grid_worker", areas=[world.grid_a])
    token = issue_token(user, security_settings().token_config())
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/auth/me", headers=headers).status_code == 200
    set_disabled(world.store, "leaver")
    assert client.get("/auth/me", headers=headers).status_code == 401
    assert client.get("/registry/residents", headers=headers).status_code == 401


@pytest.mark.parametrize("user", ["viewer", "hotline"])
def test_roles_without_personal_data_get_403(world: World, client: TestClient, user: str) -> None:
    headers = {"X-API-Key": world.api_key} if user == "hotline" else world.headers(user)
    for path in ("/registry/residents", "/registry/households", "/registry/residents.csv"):
        assert client.get(path, headers=headers).status_code == 403, path


def test_login_flow_and_audit(world: World, client: TestClient) -> None:
    r = client.post("/auth/token", data={"username": "admin", "password": PASSWORD})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    me = client.get("/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["name"] == "admin"
    claims = jwt.decode(body["access_token"], SECRET, algorithms=["HS256"], audience="gridmap-api")
    assert {"sub", "role", "areas", "exp", "iat", "jti", "iss", "aud"} <= set(claims)
    r = client.post("/auth/token", data={"username": "coordinator", "password": "wrong password"})
    assert r.status_code == 401
    r = client.post("/auth/token", data={"username": "nobody", "password": "wrong password"})
    assert r.status_code == 401
    log = read_log(world.store)
    assert ((log["action"] == "login.success") & (log["actor"] == "admin")).any()
    failures = log[log["action"] == "login.failure"]
    assert {"coordinator", "nobody"} <= set(failures["actor"])
    assert PASSWORD not in log.to_string() and "wrong password" not in log.to_string()


@pytest.mark.parametrize(
    "form",
    [{}, {"username": "admin"}, {"password": "x"}, {"username": "", "password": ""}],
)
def test_login_bad_forms_are_4xx(client: TestClient, form: dict[str, str]) -> None:
    r = client.post("/auth/token", data=form)
    assert 400 <= r.status_code < 500


def test_login_rate_limit(world: World, client: TestClient) -> None:
    # login_burst=3: the 4th attempt within the minute is refused, even with the right password.
    codes = [
        client.post(
            "/auth/token", data={"username": "staff_a", "password": "nope-nope"}
        ).status_code
        for _ in range(3)
    ]
    assert codes == [401, 401, 401]
    r = client.post("/auth/token", data={"username": "staff_a", "password": PASSWORD})
    assert r.status_code == 429
    assert int(r.headers["retry-after"]) >= 1
    # Another user from the same address is not affected.
    r = client.post("/auth/token", data={"username": "worker_b", "password": PASSWORD})
    assert r.status_code == 200


def test_security_headers(world: World, client: TestClient) -> None:
    r = client.get("/auth/me", headers=world.headers("admin"))
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["cache-control"] == "no-store"
    csp = r.headers["content-security-policy"]
    assert "script-src 'self' 'unsafe-inline'" in csp and "http" not in csp
    r = client.get("/conformance")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "no-store" not in r.headers.get("cache-control", "")


def test_settings_refuse_default_secrets() -> None:
    assert SecuritySettings(environment="development").secret_key.get_secret_value()
    strong, other = "Zq3v-9xKp2Lm8Rt4Wb7Nc1Hd6Fg0Js5Ay", "Ue8Ti3Op7Ka2Sd6Fg1Hj5Kl9Zx4Cv0Bn_M"
    for kw, why in (
        ({}, "GRIDMAP_SECRET_KEY"),
        ({"secret_key": "short", "data_key": other}, "5 characters"),
        ({"secret_key": strong}, "GRIDMAP_DATA_KEY"),
        ({"secret_key": "changeme", "data_key": other}, "GRIDMAP_SECRET_KEY"),
        # issue 25: blank, low-entropy and shared keys
        ({"secret_key": " " * 32, "data_key": other}, "0 characters"),
        ({"secret_key": strong, "data_key": " " * 16 + other[:16] + " " * 16}, "16 characters"),
        ({"secret_key": "s" * 40, "data_key": other}, "1 distinct"),
        ({"secret_key": "password" * 4, "data_key": other}, "distinct"),
        ({"secret_key": "a" * 30 + "bcdefghijk", "data_key": other}, "entropy"),
        ({"secret_key": "0123456789" * 4, "data_key": other}, "repeats"),
        ({"secret_key": strong, "data_key": strong}, "different"),
        ({"secret_key": strong, "data_key": f" {strong} "}, "different"),
    ):
        with pytest.raises(ValidationError, match=why):
            SecuritySettings(environment="production", **kw)  # type: ignore[arg-type]
    ok = SecuritySettings(environment="production", secret_key=strong, data_key=other)
    assert ok.token_config().secret == strong


def test_app_refuses_to_start_with_default_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRIDMAP_ENVIRONMENT", "production")
    monkeypatch.delenv("GRIDMAP_SECRET_KEY", raising=False)
    with pytest.raises(ValidationError, match="GRIDMAP_SECRET_KEY"):
        install_security(FastAPI())


_reports = APIRouter()


@_reports.post("/_test_reports", dependencies=[ReportRateLimit])
def _report(p: CurrentPrincipal) -> dict[str, str]:
    return {"by": p.name}


def test_report_rate_limit(world: World) -> None:
    with make_app(world.store, reports_burst=2, reports_per_minute=1) as c:
        c.app.include_router(_reports)  # type: ignore[attr-defined]
        codes = [
            c.post("/_test_reports", headers=world.headers("worker_a")).status_code
            for _ in range(3)
        ]
        assert codes == [200, 200, 429]
        assert c.post("/_test_reports", headers=world.headers("worker_b")).status_code == 200
        assert c.post("/_test_reports").status_code == 401


def test_remembered_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    """A token verified once is remembered, but only until its ``exp`` (issue 22)."""
    import time
    import types

    from gridmap.security import auth
    from gridmap.security.access import Principal

    cfg = auth.TokenConfig(secret=SECRET, minutes=1)
    token = issue_token(Principal("memo_worker", "grid_worker", ("990100001001001",)), cfg)
    first = auth.decode_token(token, cfg)
    first["sub"] = "someone else"  # callers get their own copy
    assert auth.decode_token(token, cfg)["sub"] == "memo_worker"
    assert auth._verified.cache_info().hits >= 1
    later = time.time() + 61 + auth.TOKEN_LEEWAY_S
    monkeypatch.setattr(auth, "time", types.SimpleNamespace(time=lambda: later))
    with pytest.raises(auth.NotAuthenticated, match="expired"):
        auth.decode_token(token, cfg)
    # A forged copy (other signature) is never taken from the memo.
    head, body, _sig = token.split(".")
    with pytest.raises(auth.NotAuthenticated, match="invalid"):
        auth.decode_token(f"{head}.{body}.AAAA", cfg)
