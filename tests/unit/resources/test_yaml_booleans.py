"""YAML bodies read as kube-apiserver reads them (go-yaml v2, YAML 1.1 booleans)."""

from __future__ import annotations

from kubeboot.resources.decoding import decode_yaml


def test_lone_y_and_n_are_booleans_as_in_go_yaml_v2() -> None:
    # a real kube-apiserver stores `data: {y: "2"}` as {"true": "2"} and refuses `x: y` as
    # a string field's value: both sides must read the same document the same way
    doc = b'a: y\nb: N\nc: yes\nd: "y"\ne: yy\nf: !!bool n\ny: "2"\n'
    assert decode_yaml(doc).value == {
        "a": True,
        "b": False,
        "c": True,
        "d": "y",
        "e": "yy",
        "f": False,
        "true": "2",
    }
