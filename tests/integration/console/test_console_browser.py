"""The console in a real headless browser: Debian's chromium driven by Selenium.

Against a real ``kubeboot server`` with a node that joined for real and asked for a serving
certificate: load the console through its token URL, see the pending CSR with the policy
approver's explanation, click Approve, see the server's signer issue it (the CSR's status and
a serving bar in the chart), see the chart drawn by the browser (bars with a size), then
revoke that certificate with ``kubeboot certs revoke`` and see it under recent revocations
and gone from the chart.

Without chromium or chromedriver the test skips with the reason; in CI (``CI=true``) it
fails instead (:mod:`tests.integration.console.browser`).
"""

from __future__ import annotations

import base64
import time
from typing import Any

from cryptography import x509

from tests.integration.agent.nodes import run_kubeboot
from tests.integration.console.browser import browser  # noqa: F401 - the fixture
from tests.integration.console.conftest import NODE, SERVING_CSR, Console


def test_approve_a_csr_by_clicking_and_see_it_issued(
    console: Console,
    browser: Any,  # noqa: F811 - the fixture imported above
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    browser.get(console.url)
    assert browser.title == "kubeboot console"
    assert browser.current_url == f"{console.base}/"  # the token left the address bar

    row = browser.find_element(By.ID, f"csr-{SERVING_CSR}")
    assert "policy: approve" in row.text
    assert "SANs are the Node's addresses" in row.text
    assert "node-addresses" in row.text

    chart = browser.find_element(By.ID, "cert-timeline")
    assert chart.size["width"] > 500
    client_bar = browser.find_element(By.CSS_SELECTOR, f'rect.cert-client[data-node="{NODE}"]')
    assert client_bar.size["width"] > 1  # laid out and painted, not just present in the text
    assert not browser.find_elements(By.CSS_SELECTOR, f'rect.cert-serving[data-node="{NODE}"]')

    browser.find_element(By.ID, f"approve-{SERVING_CSR}").click()
    flash = WebDriverWait(browser, 30).until(
        lambda b: b.find_elements(By.ID, "flash") or b.find_elements(By.ID, "problem"),
        message="no answer to the click",
    )
    assert flash[0].text == f"approved {SERVING_CSR}", browser.page_source

    deadline = time.monotonic() + 60
    while not (console.csr(SERVING_CSR).get("status") or {}).get("certificate"):
        assert time.monotonic() < deadline, console.csr(SERVING_CSR)
        time.sleep(0.3)
    (approved,) = console.csr(SERVING_CSR)["status"]["conditions"]
    assert (approved["type"], approved["reason"]) == ("Approved", "KubebootConsoleApprove")

    browser.refresh()
    assert not browser.find_elements(By.ID, f"csr-{SERVING_CSR}")
    serving_bar = browser.find_element(By.CSS_SELECTOR, f'rect.cert-serving[data-node="{NODE}"]')
    assert serving_bar.size["width"] > 1
    assert browser.find_element(By.ID, "now-line")
    assert "issuance ledger" in browser.find_element(By.TAG_NAME, "body").text

    # Revoke the new serving certificate: listed under recent revocations, gone from the chart.
    pem = base64.b64decode(console.csr(SERVING_CSR)["status"]["certificate"])
    serial = format(x509.load_pem_x509_certificate(pem).serial_number, "x")
    revoked = run_kubeboot(
        "certs", "revoke", "--serial", serial, "--reason", "browser test: key leaked",
        "--kubeconfig", str(console.running.kubeconfig),
    )  # fmt: skip
    assert revoked.returncode == 0, revoked.stdout + revoked.stderr
    browser.refresh()
    row = browser.find_element(By.CSS_SELECTOR, "#revocations tr:nth-child(2)")
    assert serial in row.text
    assert "browser test: key leaked" in row.text
    assert NODE in row.text
    assert not browser.find_elements(By.CSS_SELECTOR, f'rect.cert-serving[data-node="{NODE}"]')
    assert browser.find_element(By.CSS_SELECTOR, f'rect.cert-client[data-node="{NODE}"]')
