"""Property: no RBAC write lets its writer gain a permission, unless she may escalate/bind.

Over generated rule sets (Hypothesis), a writer holds some rules in a namespace and at the
cluster scope, plus the right to create, update and patch every RBAC kind. She then tries
one write — a Role or ClusterRole of generated rules bound to herself, an update or patch
of a role she holds, a binding of a generated ClusterRole to herself — through the real
``RestService`` over a real SQLite store. Whatever the server accepts, every request she may
make afterwards (a universe of resource and non-resource requests in her namespace and at
the cluster scope) she could make before.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from kubeboot.api.registry import codec
from kubeboot.api.registry.rbac_policy import RBAC_GROUP, RbacWritePolicy
from kubeboot.api.registry.rest import NAMESPACES, RestService
from kubeboot.auth.authz import build_authorizer
from kubeboot.auth.interface import Attributes, UserInfo
from kubeboot.auth.rbac import RbacIndex
from kubeboot.clock import SystemClock
from kubeboot.resources.registry import find_resource
from kubeboot.resources.status import NotFound, StatusError
from kubeboot.storage.sqlite import SqliteStore

Obj = dict[str, Any]
ADMIN = UserInfo("admin", groups=("system:masters", "system:authenticated"))
VERBS = ["get", "list", "create", "delete", "*"]
GROUPS = ["", "apps", RBAC_GROUP, "*"]
RESOURCES = ["pods", "secrets", "pods/status", "roles", "*", "*/status"]
URLS = ["/healthz", "/api", "/api/v1", "/api*", "*"]

resource_rules = st.fixed_dictionaries(
    {
        "verbs": st.lists(st.sampled_from(VERBS), min_size=1, max_size=3, unique=True),
        "apiGroups": st.lists(st.sampled_from(GROUPS), min_size=1, max_size=2, unique=True),
        "resources": st.lists(st.sampled_from(RESOURCES), min_size=1, max_size=2, unique=True),
    },
    optional={"resourceNames": st.lists(st.sampled_from(["a", "b"]), min_size=1, unique=True)},
)
url_rules = st.fixed_dictionaries(
    {
        "verbs": st.lists(st.sampled_from(["get", "post", "*"]), min_size=1, unique=True),
        "nonResourceURLs": st.lists(st.sampled_from(URLS), min_size=1, max_size=2, unique=True),
    }
)
namespaced_rule_sets = st.lists(resource_rules, max_size=3)
cluster_rule_sets = st.lists(st.one_of(resource_rules, url_rules), max_size=3)
WRITES = [
    "role",
    "update-own",
    "patch-own",
    "clusterrole",
    "update-own-cluster",
    "bind-clusterrole",
    "bind-clusterrole-cluster-wide",
]


def _res(plural: str) -> Any:
    res = find_resource(RBAC_GROUP, "v1", plural)
    assert res is not None
    return res


ROLES, CLUSTER_ROLES = _res("roles"), _res("clusterroles")
ROLE_BINDINGS, CLUSTER_ROLE_BINDINGS = _res("rolebindings"), _res("clusterrolebindings")


def _universe(namespace: str) -> Iterator[Attributes]:
    """Requests the writer might gain, as attributes without the user (filled per check)."""
    nobody = UserInfo("")
    resources = [
        ("pods", ""),
        ("secrets", ""),
        ("pods", "status"),
        ("roles", ""),
        ("clusterroles", ""),
        ("rolebindings", ""),
    ]
    for ns, verb, group, (resource, sub), name in itertools.product(
        (namespace, ""),
        ("get", "list", "create", "delete", "update", "escalate", "bind"),
        ("", "apps", RBAC_GROUP),
        resources,
        ("", "a", "b"),
    ):
        yield Attributes(nobody, verb, True, ns, group, "v1", resource, sub, name)
    for verb, path in itertools.product(("get", "post"), [*URLS[:3], "/apis", "/x"]):
        yield Attributes(nobody, verb, resource_request=False, path=path)


class StoreBackedRbac:
    """The RBAC index rebuilt from the store on demand (no watch lag in a property test)."""

    def __init__(self, store: SqliteStore) -> None:
        self.store = store
        self.index = RbacIndex.build((), (), (), ())

    async def refresh(self) -> None:
        async def items(res: Any) -> list[Obj]:
            return [codec.decode(kv) for kv in (await self.store.range(res.storage_prefix())).kvs]

        self.index = RbacIndex.build(
            await items(CLUSTER_ROLES),
            await items(ROLES),
            await items(CLUSTER_ROLE_BINDINGS),
            await items(ROLE_BINDINGS),
        )


def _role(kind: str, name: str, rules: list[Obj]) -> Obj:
    return {"kind": kind, "metadata": {"name": name}, "rules": rules}


def _binding(kind: str, name: str, role_kind: str, role: str, user: str) -> Obj:
    return {
        "kind": kind,
        "metadata": {"name": name},
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": role_kind, "name": role},
        "subjects": [{"apiGroup": RBAC_GROUP, "kind": "User", "name": user}],
    }


class World:
    def __init__(self, store: SqliteStore) -> None:
        self.rbac = StoreBackedRbac(store)
        authorizer = build_authorizer(["RBAC"], lambda: self.rbac.index)
        self.rest = RestService(store, authorizer, SystemClock())
        self.counter = itertools.count()
        self.writer_roles_made = False

    def allowed(self, user: UserInfo, namespace: str) -> set[str]:
        authorizer = self.rest.authorizer
        return {
            repr(replace(a, user=UserInfo("")))
            for a in _universe(namespace)
            if authorizer.authorize(replace(a, user=user)).allowed
        }

    async def example(
        self,
        held_ns: list[Obj],
        held_cluster: list[Obj],
        write: str,
        rules: list[Obj],
        note: Callable[[str], None] = event,
    ) -> None:
        n = next(self.counter)
        ns, name = f"p{n}", f"w{n}"
        user = UserInfo(name, groups=("system:authenticated",))
        rest = self.rest
        await rest.create(ADMIN, NAMESPACES, None, {"metadata": {"name": ns}})
        if not self.writer_roles_made:
            writer = [
                {
                    "verbs": ["create", "update", "patch", "get"],
                    "apiGroups": [RBAC_GROUP],
                    "resources": ["roles", "rolebindings", "clusterroles", "clusterrolebindings"],
                }
            ]
            await rest.create(ADMIN, CLUSTER_ROLES, None, _role("ClusterRole", "writer", writer))
            self.writer_roles_made = True
        await rest.create(
            ADMIN,
            CLUSTER_ROLE_BINDINGS,
            None,
            _binding("ClusterRoleBinding", f"writer-{n}", "ClusterRole", "writer", name),
        )
        await rest.create(ADMIN, ROLES, ns, _role("Role", "held", held_ns))
        await rest.create(
            ADMIN, ROLE_BINDINGS, ns, _binding("RoleBinding", "held", "Role", "held", name)
        )
        await rest.create(
            ADMIN, CLUSTER_ROLES, None, _role("ClusterRole", f"held-{n}", held_cluster)
        )
        await rest.create(
            ADMIN,
            CLUSTER_ROLE_BINDINGS,
            None,
            _binding("ClusterRoleBinding", f"held-{n}", "ClusterRole", f"held-{n}", name),
        )
        await rest.create(ADMIN, CLUSTER_ROLES, None, _role("ClusterRole", f"target-{n}", rules))
        try:
            await self.rbac.refresh()
            before = self.allowed(user, ns)
            try:
                await self._write(user, ns, n, write, rules, held_ns)
                note(f"{write}: accepted")
            except StatusError as refused:
                note(f"{write}: refused {refused.code}")
            await self.rbac.refresh()
            after = self.allowed(user, ns)
        finally:
            await self._clean(n, ns)
        may_escalate = any(
            f"verb='{verb}'" in a and f"api_group='{RBAC_GROUP}'" in a
            for a in before
            for verb in ("escalate", "bind")
        )
        if may_escalate:
            note("writer may escalate or bind: not checked")
        else:
            gained = after - before
            assert not gained, f"{write} gained {sorted(gained)[:3]}"

    async def _clean(self, n: int, ns: str) -> None:
        """Delete what the example made, so every example starts from the same store size."""
        rest = self.rest
        await rest.delete(ADMIN, NAMESPACES, None, ns)
        for res, names in (
            (CLUSTER_ROLE_BINDINGS, (f"writer-{n}", f"held-{n}", f"mine-{n}", f"t-{n}")),
            (CLUSTER_ROLES, (f"held-{n}", f"target-{n}", f"mine-{n}")),
        ):
            for name in names:
                with contextlib.suppress(NotFound):
                    await rest.delete(ADMIN, res, None, name)

    async def _write(
        self, user: UserInfo, ns: str, n: int, write: str, rules: list[Obj], held_ns: list[Obj]
    ) -> None:
        rest = self.rest
        if write == "role":
            await rest.create(user, ROLES, ns, _role("Role", "mine", rules))
            await rest.create(
                user, ROLE_BINDINGS, ns, _binding("RoleBinding", "mine", "Role", "mine", user.name)
            )
        elif write == "update-own":
            current = await rest.get(user, ROLES, ns, "held")
            current["rules"] = rules
            await rest.update(user, ROLES, ns, "held", current)
        elif write == "patch-own":
            patch = {"rules": held_ns + rules}
            await rest.patch(user, ROLES, ns, "held", patch, "merge")
        elif write == "clusterrole":
            await rest.create(user, CLUSTER_ROLES, None, _role("ClusterRole", f"mine-{n}", rules))
            await rest.create(
                user,
                CLUSTER_ROLE_BINDINGS,
                None,
                _binding("ClusterRoleBinding", f"mine-{n}", "ClusterRole", f"mine-{n}", user.name),
            )
        elif write == "update-own-cluster":
            current = await rest.get(user, CLUSTER_ROLES, None, f"held-{n}")
            current["rules"] = rules
            await rest.update(user, CLUSTER_ROLES, None, f"held-{n}", current)
        elif write == "bind-clusterrole":
            await rest.create(
                user,
                ROLE_BINDINGS,
                ns,
                _binding("RoleBinding", "t", "ClusterRole", f"target-{n}", user.name),
            )
        else:
            await rest.create(
                user,
                CLUSTER_ROLE_BINDINGS,
                None,
                _binding("ClusterRoleBinding", f"t-{n}", "ClusterRole", f"target-{n}", user.name),
            )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[asyncio.Runner, World]]:
    shm = Path("/dev/shm")
    base = tmp_path_factory.mktemp("escalation") if not shm.is_dir() else None
    directory = base or Path(tempfile.mkdtemp(prefix="kubeboot-escalation-", dir=shm))
    with asyncio.Runner() as runner:
        store = runner.run(SqliteStore.open(directory / "state.db"))
        try:
            yield runner, World(store)
        finally:
            runner.run(store.close())
            shutil.rmtree(directory, ignore_errors=True)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    held_ns=namespaced_rule_sets,
    held_cluster=cluster_rule_sets,
    write=st.sampled_from(WRITES),
    rules=cluster_rule_sets,
)
def test_no_rbac_write_grants_its_writer_more(
    world: tuple[asyncio.Runner, World],
    held_ns: list[Obj],
    held_cluster: list[Obj],
    write: str,
    rules: list[Obj],
) -> None:
    runner, w = world
    runner.run(w.example(held_ns, held_cluster, write, rules))


def test_the_property_catches_an_open_policy(world: tuple[asyncio.Runner, World]) -> None:
    """The property can fail: with the policy switched off, a Role of ``*`` gains plenty."""
    runner, w = world

    class Open(RbacWritePolicy):
        async def check(self, *args: Any, **kwargs: Any) -> None:
            return None

    kept = w.rest.rbac_policy
    w.rest.rbac_policy = Open(w.rest.store, w.rest.authorizer)
    try:
        with pytest.raises(AssertionError, match="gained"):
            runner.run(
                w.example(
                    [],
                    [],
                    "role",
                    [{"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}],
                    note=lambda _: None,
                )
            )
    finally:
        w.rest.rbac_policy = kept
