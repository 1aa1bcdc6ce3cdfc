"""The kubelet's ``--config`` file (``kubelet.config.k8s.io/v1beta1`` ``KubeletConfiguration``)
for ``kubeboot agent``.

Fields with a meaning for the agent (names and defaults from upstream's
``staging/src/k8s.io/kubelet/config/v1beta1/types.go``):

========================  =====================================  ==========================
field                     agent setting                          flag that overrides it
========================  =====================================  ==========================
``rotateCertificates``    client certificate rotation            ``--rotate-certificates``
``serverTLSBootstrap``    serving certificate from a CSR         ``--rotate-server-certificates``
``tlsCertFile``           a given serving certificate (checked)  ``--tls-cert-file``
``tlsPrivateKeyFile``     its key                                ``--tls-private-key-file``
``featureGates``          ``RotateKubeletServerCertificate``     ``--feature-gates`` (merged)
``logging.format``        log format                             ``--logging-format``
``logging.verbosity``     ``-v``                                 ``-v``/``--v``
========================  =====================================  ==========================

``address`` and ``port`` (where the kubelet serves its API) are read and type-checked but
change nothing: ``kubeboot agent`` serves no kubelet API. Every other field of the upstream
type is ignored with one line each (cgroups, DNS, eviction… are the kubelet's own job);
a field upstream does not have gets an "unknown field" line, as the kubelet's lenient
decoding logs. Relative paths are relative to the file's directory, as the kubelet resolves
them. Flags given on the command line override the file, as the kubelet does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kubeboot.cli.configfile import ConfigFileError, Document, load_documents

__all__ = ["API_VERSION", "KIND", "KubeletFile", "load_kubelet_config"]

API_VERSION = "kubelet.config.k8s.io/v1beta1"
KIND = "KubeletConfiguration"

# Every top-level field of upstream's v1beta1 KubeletConfiguration (Kubernetes 1.37).
UPSTREAM_FIELDS = [
    "enableServer",
    "staticPodPath",
    "podLogsDir",
    "syncFrequency",
    "fileCheckFrequency",
    "httpCheckFrequency",
    "staticPodURL",
    "staticPodURLHeader",
    "address",
    "port",
    "readOnlyPort",
    "tlsCertFile",
    "tlsPrivateKeyFile",
    "tlsCipherSuites",
    "tlsCurvePreferences",
    "tlsMinVersion",
    "rotateCertificates",
    "serverTLSBootstrap",
    "authentication",
    "authorization",
    "registryPullQPS",
    "registryBurst",
    "imagePullCredentialsVerificationPolicy",
    "preloadedImagesVerificationAllowlist",
    "eventRecordQPS",
    "eventBurst",
    "enableDebuggingHandlers",
    "enableContentionProfiling",
    "healthzPort",
    "healthzBindAddress",
    "oomScoreAdj",
    "clusterDomain",
    "clusterDNS",
    "streamingConnectionIdleTimeout",
    "nodeStatusUpdateFrequency",
    "nodeStatusReportFrequency",
    "nodeLeaseDurationSeconds",
    "imageMinimumGCAge",
    "imageMaximumGCAge",
    "imageGCHighThresholdPercent",
    "imageGCLowThresholdPercent",
    "volumeStatsAggPeriod",
    "kubeletCgroups",
    "systemCgroups",
    "cgroupRoot",
    "cgroupsPerQOS",
    "cgroupDriver",
    "cpuManagerPolicy",
    "singleProcessOOMKill",
    "cpuManagerPolicyOptions",
    "cpuManagerReconcilePeriod",
    "memoryManagerPolicy",
    "topologyManagerPolicy",
    "topologyManagerScope",
    "topologyManagerPolicyOptions",
    "qosReserved",
    "runtimeRequestTimeout",
    "hairpinMode",
    "maxPods",
    "podCIDR",
    "podPidsLimit",
    "resolvConf",
    "runOnce",
    "cpuCFSQuota",
    "cpuCFSQuotaPeriod",
    "nodeStatusMaxImages",
    "maxOpenFiles",
    "contentType",
    "kubeAPIQPS",
    "kubeAPIBurst",
    "serializeImagePulls",
    "maxParallelImagePulls",
    "evictionHard",
    "evictionSoft",
    "evictionSoftGracePeriod",
    "evictionPressureTransitionPeriod",
    "evictionMaxPodGracePeriod",
    "evictionMinimumReclaim",
    "mergeDefaultEvictionSettings",
    "podsPerCore",
    "enableControllerAttachDetach",
    "protectKernelDefaults",
    "makeIPTablesUtilChains",
    "iptablesMasqueradeBit",
    "iptablesDropBit",
    "featureGates",
    "failSwapOn",
    "memorySwap",
    "containerLogMaxSize",
    "containerLogMaxFiles",
    "containerLogMaxWorkers",
    "containerLogMonitorInterval",
    "configMapAndSecretChangeDetectionStrategy",
    "systemReserved",
    "kubeReserved",
    "reservedSystemCPUs",
    "showHiddenMetricsForVersion",
    "systemReservedCgroup",
    "kubeReservedCgroup",
    "enforceNodeAllocatable",
    "allowedUnsafeSysctls",
    "defaultPodSysctls",
    "volumePluginDir",
    "providerID",
    "kernelMemcgNotification",
    "logging",
    "enableSystemLogHandler",
    "enableSystemLogQuery",
    "shutdownGracePeriod",
    "shutdownGracePeriodCriticalPods",
    "shutdownGracePeriodByPodPriority",
    "crashLoopBackOff",
    "reservedMemory",
    "enableProfilingHandler",
    "enableDebugFlagsHandler",
    "seccompDefault",
    "memoryThrottlingFactor",
    "memoryReservationPolicy",
    "registerWithTaints",
    "registerNode",
    "tracing",
    "localStorageCapacityIsolation",
    "containerRuntimeEndpoint",
    "imageServiceEndpoint",
    "failCgroupV1",
    "userNamespaces",
]
_LOGGING_FIELDS = ("format", "flushFrequency", "verbosity", "vmodule", "options")


@dataclass
class KubeletFile:
    """What a KubeletConfiguration file sets (None: not set, the flag's default applies)."""

    path: Path
    rotate_certificates: bool | None = None
    rotate_server_certificates: bool | None = None
    tls_cert_file: Path | None = None
    tls_private_key_file: Path | None = None
    feature_gates: dict[str, bool] = field(default_factory=dict)
    logging_format: str | None = None
    verbosity: int | None = None
    notes: list[str] = field(default_factory=list)


def load_kubelet_config(path: Path) -> KubeletFile:
    """Read ``path``; raises :class:`ConfigFileError` with a one-line reason."""
    docs = load_documents(path)
    if len(docs) != 1:
        raise ConfigFileError(f"{path}: expected one {KIND} document, found {len(docs)}")
    _, data = docs[0]
    if data.get("kind") != KIND or data.get("apiVersion") != API_VERSION:
        raise ConfigFileError(
            f'{path}: kind "{data.get("kind", "")}" apiVersion "{data.get("apiVersion", "")}" '
            f"is not a {KIND} of {API_VERSION}"
        )
    doc = Document(path, data)
    out = KubeletFile(path)
    out.rotate_certificates = doc.get_bool("rotateCertificates")
    out.rotate_server_certificates = doc.get_bool("serverTLSBootstrap")
    out.tls_cert_file = doc.get_path("tlsCertFile")
    out.tls_private_key_file = doc.get_path("tlsPrivateKeyFile")
    out.feature_gates = doc.get_bools("featureGates") or {}
    doc.get_str("address")
    port = doc.get_int("port")
    if doc.has("address") or doc.has("port"):
        out.notes.append(
            f"{path}: address/port read (port {port or 10250}); they change nothing: "
            "kubeboot agent serves no kubelet API"
        )
    logging_doc = doc.child("logging")
    if logging_doc is not None:
        out.logging_format = logging_doc.get_str("format")
        out.verbosity = logging_doc.get_int("verbosity")
        out.notes += logging_doc.leftovers(_LOGGING_FIELDS, "not used by kubeboot agent")
    out.notes += doc.leftovers(UPSTREAM_FIELDS, "not used by kubeboot agent")
    return out
