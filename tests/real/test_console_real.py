"""``kubeboot console`` against a real kube-apiserver + kube-controller-manager, and kubeboot.

The console uses only the public API with the kubeconfig's credentials, so it must work on
any cluster. On each plane: an admin asks for a kubelet-serving certificate, the console shows
it pending with the policy approver's explanation, a click in a real headless browser
approves it, the plane's own signer issues it, and the chart draws the new serving
certificate. On the real plane the page says it has no ledger and no revocations and reads the
certificates from CSRs; on kubeboot it reads the issuance ledger.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.integration.cli.test_approver import serving_csr
from tests.integration.console.browser import browser  # noqa: F401 - the fixture
from tests.integration.console.conftest import console_process
from tests.real.controlplane import ControlPlane, wait_until


def test_console_approves_on_any_cluster(
    plane: ControlPlane,
    real_tmp: Path,
    browser: Any,  # noqa: F811 - the fixture imported above
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    node = f"console-{plane.flavor.replace('kube-apiserver', 'real')}"
    name = f"{node}-serving"
    plane.kubectl("create", "-f", "-", input=json.dumps(serving_csr(name, node, node, "10.7.0.1")))

    with console_process(plane.admin_kubeconfig, real_tmp / "console.log") as url:
        browser.get(url)
        row = browser.find_element(By.ID, f"csr-{name}")
        # Asked by the admin, not by the node: the policy approver would deny it.
        assert "policy: deny" in row.text
        assert "does not start with 'system:node:'" in row.text
        body = browser.find_element(By.TAG_NAME, "body").text
        if plane.flavor == "kube-apiserver":
            assert "This cluster does not serve certificate revocations" in body
            assert "from the certificates in CertificateSigningRequests" in body
        else:
            assert "issuance ledger" in body

        browser.find_element(By.ID, f"approve-{name}").click()
        WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.ID, "flash"))
        assert browser.find_element(By.ID, "flash").text == f"approved {name}"

        def issued() -> bool:
            out = plane.kubectl("get", "csr", name, "-o", "json").stdout
            return bool((json.loads(out).get("status") or {}).get("certificate"))

        wait_until(issued, f"the {plane.flavor} plane to issue {name}", timeout=60)
        browser.refresh()
        bar = browser.find_element(By.CSS_SELECTOR, f'rect.cert-serving[data-node="{node}"]')
        assert bar.size["width"] > 1
