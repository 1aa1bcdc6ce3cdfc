"""Pure decisions of the serviceaccounts controller and the root-ca-cert-publisher."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kubeboot.controllers.config import enabled_controllers
from kubeboot.controllers.manager import controller_service_accounts
from kubeboot.controllers.rootcapublisher import DESCRIPTION_ANNOTATION, root_ca_change
from kubeboot.controllers.serviceaccounts import missing_service_accounts
from kubeboot.resources.serviceaccount import ROOT_CA_DESCRIPTION

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def _ns(phase: str | None = "Active") -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": "team-a"}}
    if phase is not None:
        obj["status"] = {"phase": phase}
    return obj


# --- serviceaccounts ---------------------------------------------------------------------------


@pytest.mark.parametrize("namespace", [None, _ns("Terminating"), _ns(None)])
def test_no_service_account_for_a_namespace_that_is_gone_or_not_active(
    namespace: dict[str, Any] | None,
) -> None:
    assert missing_service_accounts(namespace, lambda _name: False, ["default"]) == []


def test_missing_service_accounts_are_the_ones_the_cache_lacks() -> None:
    have = {"builder"}
    assert missing_service_accounts(_ns(), have.__contains__, ["default", "builder"]) == ["default"]
    assert missing_service_accounts(_ns(), {"default"}.__contains__, ["default"]) == []


# --- root-ca-cert-publisher ----------------------------------------------------------------------


def test_missing_configmap_is_created_with_the_ca_and_upstreams_description() -> None:
    change = root_ca_change(None, CA)
    assert change is not None
    assert change.action == "create"
    assert change.configmap == {
        "metadata": {
            "name": "kube-root-ca.crt",
            "annotations": {"kubernetes.io/description": ROOT_CA_DESCRIPTION},
        },
        "data": {"ca.crt": CA},
    }


def _cm(data: dict[str, str], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": "kube-root-ca.crt",
        "namespace": "team-a",
        "resourceVersion": "7",
        "labels": {"keep": "me"},
    }
    if annotations is not None:
        meta["annotations"] = annotations
    return {"kind": "ConfigMap", "apiVersion": "v1", "metadata": meta, "data": data}


def test_a_current_configmap_is_left_alone() -> None:
    assert root_ca_change(_cm({"ca.crt": CA}, {DESCRIPTION_ANNOTATION: "anything"}), CA) is None


@pytest.mark.parametrize(
    "existing",
    [
        _cm({"ca.crt": "tampered"}, {DESCRIPTION_ANNOTATION: ROOT_CA_DESCRIPTION}),
        _cm({"ca.crt": CA, "extra": "x"}, {DESCRIPTION_ANNOTATION: ROOT_CA_DESCRIPTION}),
        _cm({}, {DESCRIPTION_ANNOTATION: ROOT_CA_DESCRIPTION}),
        _cm({"ca.crt": CA}),  # annotation missing
        _cm({"ca.crt": CA}, {DESCRIPTION_ANNOTATION: ""}),
    ],
)
def test_a_wrong_configmap_is_updated_in_place_keeping_other_metadata(
    existing: dict[str, Any],
) -> None:
    before = copy.deepcopy(existing)
    change = root_ca_change(existing, CA)
    assert existing == before  # the cached object is never mutated
    assert change is not None
    assert change.action == "update"
    assert change.configmap["data"] == {"ca.crt": CA}
    meta = change.configmap["metadata"]
    assert meta["resourceVersion"] == "7"  # a compare-and-swap on what was read
    assert meta["labels"] == {"keep": "me"}
    assert meta["annotations"][DESCRIPTION_ANNOTATION] == ROOT_CA_DESCRIPTION


# --- which identities the manager creates --------------------------------------------------------


def test_controller_service_accounts_follow_the_enabled_controllers() -> None:
    assert controller_service_accounts(enabled_controllers(["*", "bootstrapsigner"])) == [
        "bootstrap-signer",
        "certificate-controller",
        "clusterrole-aggregation-controller",
        "namespace-controller",
        "node-controller",
        "root-ca-cert-publisher",
        "service-account-controller",
        "ttl-controller",
    ]
    assert controller_service_accounts(enabled_controllers(["tokencleaner"])) == [
        "bootstrap-signer",
        "token-cleaner",
    ]
    assert controller_service_accounts(frozenset()) == []
