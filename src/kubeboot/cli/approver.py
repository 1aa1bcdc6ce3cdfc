"""``kubeboot approver``: run the serving-certificate policy approver against any cluster.

The controller is :mod:`kubeboot.controllers.servingapprover` (rules in
:mod:`kubeboot.controllers.servingpolicy`, and in ``docs/cli.md``); this module only turns
flags into a :class:`ServingPolicy`, connects with the kubeconfig and prints one line per
decision. ``--once`` reviews the CSRs pending now and exits (for scripts and cron); without
it the approver watches until interrupted. ``approver explain <csr>`` decides nothing: it
prints every rule's outcome with the evidence it looked at (an argument form rather than a
subcommand, so the flags parse exactly as every other command's).

The identity it runs as needs: ``get``/``list``/``watch`` on certificatesigningrequests,
``update`` on ``certificatesigningrequests/approval``, ``approve`` on ``signers``
``kubernetes.io/kubelet-serving``, ``get`` on nodes, and with ``ipEvidence`` ``get`` on the
ConfigMap ``kube-system/kubeboot-node-sources`` (``docs/cli.md`` has the RBAC).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from kubeboot.cli.commandline import UpstreamCommand
from kubeboot.cli.options import KubeconfigRef, kubeconfig_options, run_api
from kubeboot.client.http import HttpApiClient
from kubeboot.client.interface import JsonObject
from kubeboot.controllers.certificates import CSR_RESOURCE
from kubeboot.controllers.servingapprover import (
    FIELD_SELECTOR,
    ServingPolicy,
    Verdict,
    apply_verdict,
    explain,
    review,
    run_servingapprover,
)
from kubeboot.controllers.servingpolicy import (
    Explanation,
    PolicyError,
    load_policy,
    policy_from_mapping,
)

__all__ = ["approver", "describe", "explanation_lines"]

log = logging.getLogger("kubeboot.approver")


def describe(csr: JsonObject, verdict: Verdict) -> str:
    name = (csr.get("metadata") or {}).get("name", "")
    verb = {"approve": "approved", "deny": "denied", "skip": "skipped", "wait": "waiting on"}
    return f"{verb[verdict.action]} csr {name}: {verdict.reason}"


async def review_pending_once(client: HttpApiClient, policy: ServingPolicy) -> list[str]:
    listed = await client.list(CSR_RESOURCE, field_selector=FIELD_SELECTOR)
    lines = []
    for csr in listed.get("items") or []:
        verdict = await review(client, csr, policy)
        if verdict.reason.startswith("already") or verdict.reason.startswith("certificate"):
            continue
        await apply_verdict(client, csr, verdict)
        lines.append(describe(csr, verdict))
    return lines


F = TypeVar("F", bound=Callable[..., Any])

_DEFAULTS = ServingPolicy()


def policy_options(f: F) -> F:
    """The policy flags, shared by the approver and ``explain``: ``--policy`` first, then
    each flag given explicitly on top of it."""
    options = [
        click.option(
            "--policy",
            "policy_source",
            default="",
            metavar="FILE|YAML",
            help="The policy as a YAML file or inline YAML ('{ipEvidence: true}'), the format "
            "of kubeboot server --serving-approver-policy; the flags below override it.",
        ),
        click.option(
            "--allowed-dns-names",
            type=click.IntRange(1, 1000),
            default=None,
            help=f"Most DNS SANs a serving CSR may carry [default: {_DEFAULTS.allowed_dns_names}].",
        ),
        click.option(
            "--max-expiration-sec",
            type=click.IntRange(0, 367 * 24 * 3600),
            default=None,
            help="Largest spec.expirationSeconds approved "
            f"[default: {_DEFAULTS.max_expiration_seconds}].",
        ),
        click.option(
            "--ignore-non-system-node",
            is_flag=True,
            default=None,
            help="Skip (instead of deny) CSRs whose requester is not system:node:<name>.",
        ),
        click.option(
            "--skip-deny-step",
            is_flag=True,
            default=None,
            help="Never deny: leave non-compliant CSRs pending for a human.",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def build_policy(
    policy_source: str,
    allowed_dns_names: int | None,
    max_expiration_sec: int | None,
    ignore_non_system_node: bool | None,
    skip_deny_step: bool | None,
) -> ServingPolicy:
    try:
        base = load_policy(policy_source) if policy_source else ServingPolicy()
        flags = {
            "allowedDNSNames": allowed_dns_names,
            "maxExpirationSeconds": max_expiration_sec,
            "ignoreNonSystemNode": ignore_non_system_node,
            "skipDeny": skip_deny_step,
        }
        return policy_from_mapping({k: v for k, v in flags.items() if v is not None}, base)
    except (OSError, PolicyError) as exc:
        raise click.BadParameter(str(exc), param_hint="--policy") from exc


def explanation_lines(csr: JsonObject, explanation: Explanation) -> list[str]:
    """``approver explain``'s text: the CSR, one line per rule, the verdict."""
    meta, spec = csr.get("metadata") or {}, csr.get("spec") or {}
    lines = [
        f"CSR {meta.get('name', '')}: signer {spec.get('signerName', '')}, "
        f"requested by {spec.get('username', '')}"
    ]
    width = max((len(r.rule) for r in explanation.rules), default=0)
    for rule in explanation.rules:
        lines.append(f"  {rule.outcome.upper():<4}  {rule.rule:<{width}}  {rule.detail}")
    verdict = explanation.verdict
    verb = {"approve": "approve", "deny": "deny", "skip": "skip", "wait": "wait (look again)"}
    lines.append(f"verdict: {verb[verdict.action]}: {verdict.reason}")
    return lines


@click.command(cls=UpstreamCommand)
@click.argument("action", nargs=-1, metavar="[explain CSR]")
@policy_options
@click.option("--once", is_flag=True, help="Review the pending CSRs once and exit.")
@kubeconfig_options
def approver(
    action: tuple[str, ...],
    policy_source: str,
    allowed_dns_names: int | None,
    max_expiration_sec: int | None,
    ignore_non_system_node: bool | None,
    skip_deny_step: bool | None,
    once: bool,
    kubeconfig: Path | None,
    context: str | None,
) -> None:
    """Approve kubelet-serving CSRs whose SANs are the requesting node's own addresses.

    Approves when the requester is system:node:<n> in system:nodes, the CN is
    system:node:<n>, and every DNS/IP SAN is among Node <n>'s status.addresses (plus the
    --policy rules: name regex, IP ranges, IP SANs proven by the node's connections);
    denies (with the reason in the condition) otherwise.

    `approver explain CSR` decides nothing and writes nothing: it prints, rule by rule and
    with the evidence, why the policy would approve the CSR or not (a CSR already decided is
    explained as if it were pending); exit code 0 whatever the verdict.

    \b
    Example:
      kubeboot approver --kubeconfig ./kubeboot-data/admin.conf --once
      kubeboot approver explain csr-7xk2p --policy '{ipEvidence: true}'
    """
    if action and (action[0] != "explain" or len(action) != 2 or once):
        raise click.UsageError(
            "the only argument form is `explain CSR` (without --once)"
            if action[0] == "explain"
            else f'unknown command "{action[0]}" for "kubeboot approver"; did you mean explain?'
        )
    policy = build_policy(
        policy_source, allowed_dns_names, max_expiration_sec, ignore_non_system_node, skip_deny_step
    )
    kube = KubeconfigRef(kubeconfig, context)
    if action:
        for line in run_api(kube, lambda client: explain_lines(client, action[1], policy)):
            click.echo(line)
        return
    if once:
        lines = run_api(kube, lambda client: review_pending_once(client, policy))
        for line in lines:
            click.echo(line)
        if not lines:
            click.echo("no pending kubelet-serving CSRs")
        return

    def report(csr: JsonObject, verdict: Verdict) -> None:
        if verdict.action == "wait":
            log.info(describe(csr, verdict))
        else:
            click.echo(describe(csr, verdict))

    async def watch(client: HttpApiClient) -> None:
        log.info(f"watching kubelet-serving CSRs on {client.server}")
        await run_servingapprover(client, policy, report)

    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        run_api(kube, watch)


async def explain_lines(client: HttpApiClient, name: str, policy: ServingPolicy) -> list[str]:
    """``approver explain``: the CSR's rules as the policy would evaluate them now."""
    csr = await client.get(CSR_RESOURCE, name)
    explanation = await explain(client, csr, policy, evaluate_decided=True)
    return explanation_lines(csr, explanation)
