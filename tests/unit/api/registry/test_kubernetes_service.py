"""--service-cluster-ip-range as kube-apiserver reads it, and the default/kubernetes Service."""

from __future__ import annotations

import ipaddress

import pytest

from kubeboot.api.registry.kubernetes_service import (
    ServiceCidrError,
    kubernetes_service,
    parse_service_cidrs,
    service_ip,
)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "must contain at least one valid cidr"),
        ("10.0.0.0/8,fd00::/108,10.1.0.0/16", "must not contain more than two entries"),
        ("10.0.0.0/8,10.1.0.0/16", "must be of different IP family"),
        ("10.0.0.300/8", "is not a CIDR"),
        ("10.0.0.0/31", "too small"),
    ],
)
def test_bad_ranges_are_refused(value: str, message: str) -> None:
    with pytest.raises(ServiceCidrError, match=message):
        parse_service_cidrs(value)


def test_dual_stack_primary_first_and_addresses() -> None:
    primary, secondary = parse_service_cidrs("fd00:10::/108, 10.96.0.0/12")
    assert primary.version == 6 and secondary.version == 4
    assert service_ip(ipaddress.ip_network("10.96.0.0/12"), 10) == "10.96.0.10"
    service = kubernetes_service(primary, 6443)
    assert service["spec"]["clusterIPs"] == ["fd00:10::1"]
    assert service["spec"]["ipFamilies"] == ["IPv6"]
    assert service["spec"]["ports"][0]["targetPort"] == 6443
