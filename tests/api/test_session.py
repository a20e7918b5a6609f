"""Browser sign-in: the session cookie, CSRF, logout, and one session for every page.

Real stores (DuckDB and PostGIS), real users with Argon2 hashes; the HTTP client
plays the browser (it keeps cookies and sends the headers a browser sends).
"""

from __future__ import annotations

from collections.abc import Iterator
from http.cookies import SimpleCookie

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.session import COOKIE
from api.settings import Settings
from gridmap.common.settings import SecuritySettings, StoreSettings
from gridmap.security.access import Principal
from gridmap.security.auth import TokenConfig, add_user, issue_token, set_disabled
from gridmap.storage import Store
from tests.security.hierarchy import add_units

PASSWORD = "correct horse battery"
GRID = "990100001001003"


@pytest.fixture
def users(store: Store) -> Store:
    store.migrate()
    add_units(store, grid=GRID)
    add_user(store, "wang", role="grid_worker", areas=[GRID], password=PASSWORD)
    add_user(store, "zhao", role="town_coordinator", areas=[GRID[:9]], password=PASSWORD)
    return store


def _client(store: Store, **security: object) -> TestClient:
    app = create_app(Settings(store=StoreSettings(database_url=":memory:")), store=store)
    if security:
        from api.security import install_security

        install_security(app, SecuritySettings(**security))  # type: ignore[arg-type]
    return TestClient(app, base_url="http://gridmap.test", follow_redirects=False)


@pytest.fixture
def browser(users: Store) -> Iterator[TestClient]:
    with _client(users) as c:
        yield c


def _sign_in(c: TestClient, name: str = "wang", password: str = PASSWORD, **extra: str) -> str:
    r = c.post(
        "/login",
        data={"username": name, "password": password, **extra},
        headers={"Origin": "http://gridmap.test", "Sec-Fetch-Site": "same-origin"},
    )
    assert r.status_code == 303, r.text
    return r.headers["location"]


def _csrf(c: TestClient) -> str:
    page = c.get("/app/", headers={"Accept": "text/html"})
    assert page.status_code == 200, page.text
    marker = 'name="csrf-token" content="'
    start = page.text.index(marker) + len(marker)
    return page.text[start : page.text.index('"', start)]


def test_login_sets_a_safe_cookie_and_goes_home(browser: TestClient) -> None:
    r = browser.post(
        "/login",
        data={"username": "wang", "password": PASSWORD},
        headers={"Sec-Fetch-Site": "same-origin"},
    )
    assert r.status_code == 303 and r.headers["location"] == "/app/"
    header = r.headers["set-cookie"]
    cookie = SimpleCookie(header)[COOKIE]
    assert cookie["httponly"] and cookie["samesite"].lower() == "lax" and cookie["path"] == "/"
    assert int(cookie["max-age"]) == 12 * 3600
    assert "secure" not in header.lower()  # development: plain http on a laptop
    assert r.headers["cache-control"] == "no-store"
    # Staff start elsewhere; ``next`` wins when it is a path of this site.
    with _client(browser.app.state.store) as other:  # type: ignore[attr-defined]
        assert _sign_in(other, "zhao") != "/app/"
    with _client(browser.app.state.store) as other:  # type: ignore[attr-defined]
        assert _sign_in(other, "zhao", next="/reports/period?x=1") == "/reports/period?x=1"
    with _client(browser.app.state.store) as other:  # type: ignore[attr-defined]
        assert _sign_in(other, "zhao", next="//evil.example/") != "//evil.example/"


def test_cookie_is_secure_outside_development(users: Store) -> None:
    key = "k-Qm7Vx2Rb9Tn4Lw8Zc1Hp6Jd3Fs0Gy5Ua"  # production refuses low-entropy keys
    data = "d-Ne4Kt8Wq1Yr6Pb3Mx9Lz0Cv5Hs2Jg7Da"
    with _client(users, environment="production", secret_key=key, data_key=data) as c:
        r = c.post(
            "/login",
            data={"username": "wang", "password": PASSWORD},
            headers={"Sec-Fetch-Site": "same-origin"},
        )
        assert r.status_code == 303
        assert "secure" in r.headers["set-cookie"].lower()


def test_wrong_password_shows_the_form_again(browser: TestClient) -> None:
    r = browser.post("/login", data={"username": "wang", "password": "nope-nope"})
    assert r.status_code == 401 and "用户名或密码错误" in r.text and COOKIE not in r.cookies
    assert 'value="wang"' in r.text  # the name stays, escaped, in the form


def test_login_limit_is_keyed_like_authentication(browser: TestClient) -> None:
    # Five wrong guesses, then spaces or full-width letters must not buy more.
    for _ in range(5):
        browser.post("/login", data={"username": "wang", "password": "wrong-wrong"})
    for variant in ("wang ", " ｗａｎｇ", "WANG", "wang" + " " * 30):
        r = browser.post("/login", data={"username": variant, "password": PASSWORD})
        assert r.status_code == 429, variant
        assert "Retry-After" in r.headers
    # The bearer-token login shares the bucket.
    r = browser.post("/auth/token", data={"username": "ｗａｎｇ", "password": PASSWORD})
    assert r.status_code == 429


def test_one_session_opens_pages_and_api(browser: TestClient) -> None:
    assert browser.get("/app/", headers={"Accept": "text/html"}).status_code == 303
    _sign_in(browser)
    me = browser.get("/auth/me").json()
    assert me["name"] == "wang" and me["role"] == "grid_worker"
    assert browser.get("/events").status_code == 200
    page = browser.get("/app/", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "网格通" in page.text
    assert "script-src 'self';" in page.headers["content-security-policy"]
    overview = browser.get("/maps/overview", headers={"Accept": "text/html"})
    assert overview.status_code == 200


def test_html_navigation_without_session_goes_to_login(browser: TestClient) -> None:
    r = browser.get(
        "/reports/period", headers={"Accept": "text/html", "Sec-Fetch-Mode": "navigate"}
    )
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login?next=%2Freports%2Fperiod")
    # Programs keep their JSON 401.
    assert browser.get("/events").status_code == 401
    assert browser.get("/events", headers={"Accept": "application/json"}).status_code == 401


def test_cookie_writes_need_the_csrf_token(browser: TestClient) -> None:
    _sign_in(browser)
    token = _csrf(browser)
    body = {"status": "visited"}
    # Without the token: refused before anything is read or stored.
    r = browser.post("/events", json=body)
    assert r.status_code == 403 and "CSRF" in r.json()["description"]
    r = browser.post("/events", json=body, headers={"X-CSRF-Token": "0" * 64})
    assert r.status_code == 403
    # With it the request reaches the handler (which then judges the body: 400).
    r = browser.post("/events", json=body, headers={"X-CSRF-Token": token})
    assert r.status_code == 400, r.text
    # A cross-site form post is refused even with a token.
    r = browser.post(
        "/events",
        json=body,
        headers={
            "X-CSRF-Token": token,
            "Sec-Fetch-Site": "cross-site",
            "Origin": "https://evil.example",
        },
    )
    assert r.status_code == 403 and "cross-site" in r.json()["description"]
    r = browser.post(
        "/login",
        data={"username": "wang", "password": PASSWORD},
        headers={"Origin": "https://evil.example"},
    )
    assert r.status_code == 403


def test_bearer_tokens_are_not_sessions_and_back(browser: TestClient) -> None:
    _sign_in(browser)
    session_token = browser.cookies[COOKIE]
    # A session cookie is no bearer token (other audience) ...
    r = browser.get("/auth/me", headers={"Authorization": f"Bearer {session_token}"})
    assert r.status_code == 401
    # ... and a bearer token in the cookie is no session.
    cfg = SecuritySettings().token_config()
    bearer = issue_token(_user("wang"), cfg)
    with _client(browser.app.state.store) as other:  # type: ignore[attr-defined]
        other.cookies.set(COOKIE, bearer)
        assert other.get("/auth/me").status_code == 401
        # Programs keep using bearer tokens, with no CSRF token needed.
        r = other.post("/events", json={}, headers={"Authorization": f"Bearer {bearer}"})
        assert r.status_code == 400


def _user(name: str) -> Principal:
    return Principal(name, "grid_worker", (GRID,))


def test_logout_ends_the_session(browser: TestClient) -> None:
    _sign_in(browser)
    token = _csrf(browser)
    stolen = browser.cookies[COOKIE]
    # Logout needs the CSRF token too (a cross-site page must not sign people out).
    assert browser.post("/logout", data={}).status_code == 403
    r = browser.post("/logout", data={"csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert COOKIE not in browser.cookies
    # The old cookie, replayed, is dead.
    browser.cookies.set(COOKIE, stolen)
    assert browser.get("/auth/me").status_code == 401


def test_session_follows_the_stored_user(browser: TestClient, users: Store) -> None:
    _sign_in(browser)
    assert browser.get("/auth/me").status_code == 200
    set_disabled(users, "wang")
    assert browser.get("/auth/me").status_code == 401


def test_expired_session_is_refused(browser: TestClient) -> None:
    from api.session import AUDIENCE

    secret = SecuritySettings().secret_key.get_secret_value()
    cfg = TokenConfig(secret=secret, audience=AUDIENCE, minutes=1)
    token = issue_token(_user("wang"), cfg, minutes=1)
    import jwt

    claims = jwt.decode(token, secret, algorithms=["HS256"], audience=AUDIENCE)
    claims["exp"] = claims["iat"] - 60
    browser.cookies.set(COOKIE, jwt.encode(claims, secret, algorithm="HS256"))
    r = browser.get("/auth/me")
    assert r.status_code == 401 and "expired" in r.json()["description"]
