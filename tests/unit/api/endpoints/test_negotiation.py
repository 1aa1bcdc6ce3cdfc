"""Accept-header negotiation, clause by clause as upstream's goautoneg + negotiation package."""

from __future__ import annotations

import pytest

from kubeboot.api.endpoints.negotiation import (
    JSON,
    PROTOBUF,
    YAML,
    Convert,
    negotiate,
    negotiate_plain,
    negotiate_stream,
    parse_accept,
    wants_aggregated_discovery,
)
from kubeboot.resources.status import NotAcceptable

ALL = "only the following media types are accepted: application/json, application/yaml, "
ALL += "application/vnd.kubernetes.protobuf"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("", JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        ("application/yaml", YAML),
        ("application/vnd.kubernetes.protobuf, */*", PROTOBUF),
        ("application/vnd.kubernetes.protobuf,application/json", PROTOBUF),
        ("application/json,application/vnd.kubernetes.protobuf", JSON),
        # q wins over order; a wildcard loses to a concrete type of the same q
        ("application/json;q=0.5,application/yaml", YAML),
        ("*/*,application/yaml", YAML),
        # garbage clauses are skipped, not errors
        ("text, application/yaml", YAML),
        ("a/b/c, application/yaml", YAML),
    ],
)
def test_chosen_media_type(accept: str, expected: str) -> None:
    assert negotiate(accept).media_type == expected


@pytest.mark.parametrize("accept", ["text/html", "image/png", "application/xml", "text/*"])
def test_nothing_acceptable_is_406_listing_what_is_served(accept: str) -> None:
    with pytest.raises(NotAcceptable) as excinfo:
        negotiate(accept)
    assert excinfo.value.message == ALL
    assert excinfo.value.code == 406


def test_kinds_without_protobuf_do_not_offer_it() -> None:
    assert negotiate("application/vnd.kubernetes.protobuf, */*", protobuf=False).media_type == JSON
    with pytest.raises(NotAcceptable) as excinfo:
        negotiate(PROTOBUF, protobuf=False)
    assert "protobuf" not in excinfo.value.message


def test_table_only_in_json_or_yaml_where_the_resource_prints_columns() -> None:
    table = "application/json;as=Table;v=v1;g=meta.k8s.io"
    assert negotiate(table, table=True).convert == Convert("meta.k8s.io", "v1", "Table")
    assert negotiate(f"{table},application/json", table=False).convert is None
    with pytest.raises(NotAcceptable):
        negotiate(table, table=False)  # a review: upstream's 406 spec
    proto_table = "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io"
    assert negotiate(f"{proto_table},application/json", table=True).convert is None
    v1beta1 = negotiate("application/json;as=Table;v=v1beta1;g=meta.k8s.io", table=True)
    assert v1beta1.convert is not None and v1beta1.convert.api_version == "meta.k8s.io/v1beta1"


def test_partial_metadata_in_any_type_and_other_targets_never() -> None:
    accept = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
    chosen = negotiate(accept)
    assert chosen.media_type == PROTOBUF
    assert chosen.convert == Convert("meta.k8s.io", "v1", "PartialObjectMetadataList")
    with pytest.raises(NotAcceptable):
        negotiate("application/json;as=Deployment;g=apps;v=v1")


def test_plain_negotiation_refuses_conversions() -> None:
    assert negotiate_plain("application/json;as=Table;g=meta.k8s.io;v=v1,application/yaml") == (
        negotiate("application/yaml")
    )


def test_watch_streams_only_json_and_protobuf() -> None:
    assert negotiate_stream("application/vnd.kubernetes.protobuf").media_type == PROTOBUF
    with pytest.raises(NotAcceptable) as excinfo:
        negotiate_stream("application/yaml")
    assert excinfo.value.message == (
        "only the following media types are accepted: application/json;stream=watch, "
        "application/vnd.kubernetes.protobuf;stream=watch"
    )


def test_aggregated_discovery_is_recognized_only_for_v2() -> None:
    v2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    assert wants_aggregated_discovery(v2) is not None
    assert wants_aggregated_discovery("application/json") is None
    v2beta1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
    assert wants_aggregated_discovery(v2beta1 + ",application/json") is None


def test_parse_keeps_params_and_q() -> None:
    (clause,) = parse_accept("application/json; as=Table ;q=0.5")
    assert (clause.type, clause.subtype, clause.q, clause.params) == (
        "application",
        "json",
        0.5,
        {"as": "Table"},
    )
    assert parse_accept("*")[0].subtype == "*"
    assert parse_accept("nonsense") == []
