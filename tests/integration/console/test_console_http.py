"""The console's guards over plain HTTP, against a real server (no browser needed).

Every refusal is checked to have changed nothing: the pending CSR stays pending.
"""

from __future__ import annotations

import html
import http.client
from urllib.parse import urlsplit

from tests.integration.console.conftest import SERVING_CSR, Console


def request(
    console: Console,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: str = "",
) -> tuple[int, dict[str, str], str]:
    parts = urlsplit(console.base)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), html.unescape(response.read().decode())
    finally:
        conn.close()


def cookie(console: Console) -> dict[str, str]:
    return {"Cookie": f"kubeboot-console={console.token}"}


def still_pending(console: Console) -> bool:
    return not (console.csr(SERVING_CSR).get("status") or {}).get("conditions")


def test_without_the_access_token_nothing_is_shown(console: Console) -> None:
    status, _, body = request(console, "GET", "/")
    assert status == 401
    assert "Open the URL that `kubeboot console` printed" in body
    status, _, _ = request(console, "GET", "/?token=wrong")
    assert status == 401


def test_the_token_url_sets_a_strict_httponly_cookie(console: Console) -> None:
    status, headers, _ = request(console, "GET", f"/?token={console.token}")
    assert status == 303
    assert headers["Location"] == "/"
    set_cookie = headers["Set-Cookie"]
    assert set_cookie.startswith(f"kubeboot-console={console.token};")
    assert "HttpOnly" in set_cookie
    assert "SameSite=Strict" in set_cookie
    status, headers, body = request(console, "GET", "/", headers=cookie(console))
    assert status == 200
    assert "script-src" not in headers["Content-Security-Policy"]
    assert headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert SERVING_CSR in body


def test_a_foreign_host_is_refused(console: Console) -> None:
    status, _, body = request(
        console, "GET", "/", headers={**cookie(console), "Host": "evil.example:80"}
    )
    assert status == 403
    assert "is not this console's address" in body


def test_posts_without_the_csrf_token_or_from_another_site_do_nothing(console: Console) -> None:
    path = f"/csrs/{SERVING_CSR}/approve"
    headers = {**cookie(console), "Content-Type": "application/x-www-form-urlencoded"}
    status, _, body = request(console, "POST", path, headers=headers, body="csrf=forged")
    assert status == 403
    assert "CSRF token" in body
    status, _, _ = request(console, "POST", path, headers=headers)
    assert status == 403
    _, _, page = request(console, "GET", "/", headers=cookie(console))
    csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    cross = {**headers, "Origin": "http://evil.example"}
    status, _, body = request(console, "POST", path, headers=cross, body=f"csrf={csrf}")
    assert status == 403
    assert "Cross-site request" in body
    no_cookie = {"Content-Type": "application/x-www-form-urlencoded"}
    status, _, _ = request(console, "POST", path, headers=no_cookie, body=f"csrf={csrf}")
    assert status == 401
    assert still_pending(console)
