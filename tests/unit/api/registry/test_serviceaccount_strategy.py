"""ServiceAccount strategy: upstream's cleanSecretReferences and decode errors."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from kubeboot.api.registry.serviceaccount_strategy import ServiceAccountStrategy
from kubeboot.auth.interface import UserInfo
from kubeboot.resources.status import BadRequest

NOW = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
USER = UserInfo("admin")
STRATEGY = ServiceAccountStrategy()


def _sa(**fields: Any) -> dict[str, Any]:
    return {"metadata": {"name": "builder", "namespace": "ci"}, **fields}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"secrets": "token"},
            "cannot unmarshal string into Go struct field ServiceAccount.secrets",
        ),
        ({"secrets": ["token"]}, "of type v1.ObjectReference"),
        ({"secrets": [{"name": 7}]}, "field ObjectReference.secrets.name of type string"),
        ({"imagePullSecrets": {}}, "ServiceAccount.imagePullSecrets of type []v1.Local"),
        ({"automountServiceAccountToken": "yes"}, "automountServiceAccountToken of type bool"),
    ],
)
def test_wrongly_typed_fields_are_400_with_the_decoders_words(
    fields: dict[str, Any], message: str
) -> None:
    obj = _sa(**fields)
    with pytest.raises(BadRequest) as info:
        STRATEGY.prepare_create(obj, USER, NOW)
    assert info.value.message.startswith(
        'ServiceAccount in version "v1" cannot be handled as a ServiceAccount: json: '
    )
    assert message in info.value.message
    assert obj == _sa(**fields)  # nothing rewritten before refusing


def test_secret_references_keep_only_their_name_on_create_and_update() -> None:
    obj = _sa(
        secrets=[{"name": "tok-1", "namespace": "elsewhere", "uid": "u", "kind": "Secret"}, {}],
        imagePullSecrets=[{"name": "registry"}],
        automountServiceAccountToken=False,
    )
    STRATEGY.prepare_create(obj, USER, NOW)
    assert obj["secrets"] == [{"name": "tok-1"}, {}]
    assert obj["imagePullSecrets"] == [{"name": "registry"}]
    new = _sa(secrets=[{"name": "tok-2", "resourceVersion": "9"}])
    STRATEGY.prepare_update(new, obj, "", USER, NOW)
    assert new["secrets"] == [{"name": "tok-2"}]


def test_a_service_account_without_references_is_left_as_is() -> None:
    obj = _sa()
    STRATEGY.prepare_create(obj, USER, NOW)
    assert obj == _sa()
    assert STRATEGY.validate(obj, None, "") == []
