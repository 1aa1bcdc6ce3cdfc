// Command clientgo does what a kubelet does during and after TLS bootstrap, with the official
// client-go library unchanged, against a running kubeboot server:
//
//  1. the client-certificate bootstrap with client-go's own util/certificate/csr code
//     (RequestCertificate + WaitForCertificate) from a bootstrap-token kubeconfig;
//  2. with the issued certificate: who am I (SelfSubjectReview), register the Node, list and
//     watch it with a metadata.name field selector, update and patch its status, create and
//     renew its Lease in kube-node-lease, and record a core/v1 Event.
//
// --content-type picks the wire format of request bodies: the kubelet's default is
// application/vnd.kubernetes.protobuf (accepting protobuf or JSON answers). It prints a JSON
// summary on stdout and exits 1 with a message on stderr at the first failure.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/certificate/csr"
	"k8s.io/utils/ptr"
)

const (
	protobufAccept  = "application/vnd.kubernetes.protobuf,application/json"
	nodeLeaseNS     = "kube-node-lease"
	leaseDurationS  = 40 // the kubelet's --node-lease-duration-seconds default
	kubeletPort     = 10250
	stepTimeout     = 60 * time.Second
	watchEventLimit = 15 * time.Second
)

type summary struct {
	ContentType     string   `json:"contentType"`
	CSRName         string   `json:"csrName"`
	CertSubject     string   `json:"certSubject"`
	Username        string   `json:"username"`
	Groups          []string `json:"groups"`
	NodeUID         string   `json:"nodeUID"`
	NodeAddresses   []string `json:"nodeAddresses"`
	NodeReadyStatus string   `json:"nodeReadyStatus"`
	ListedNodes     []string `json:"listedNodes"`
	WatchEvents     []string `json:"watchEvents"`
	LeaseHolder     string   `json:"leaseHolder"`
	LeaseRenewed    bool     `json:"leaseRenewed"`
	LeaseOwner      string   `json:"leaseOwner"`
	EventName       string   `json:"eventName"`
	EventReason     string   `json:"eventReason"`
}

func main() {
	bootstrapKubeconfig := flag.String("bootstrap-kubeconfig", "", "kubeconfig with a bootstrap token (required)")
	certDir := flag.String("cert-dir", "", "directory for the key and the issued certificate (required)")
	nodeName := flag.String("node-name", "", "the node's name; the certificate's CN is system:node:<name> (required)")
	contentType := flag.String("content-type", "application/vnd.kubernetes.protobuf",
		"request body content type: application/vnd.kubernetes.protobuf or application/json")
	flag.Parse()
	if *bootstrapKubeconfig == "" || *certDir == "" || *nodeName == "" {
		fail(errors.New("--bootstrap-kubeconfig, --cert-dir and --node-name are required"))
	}
	out, err := run(*bootstrapKubeconfig, *certDir, *nodeName, *contentType)
	if err != nil {
		fail(err)
	}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(out); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "clientgo: %v\n", err)
	os.Exit(1)
}

// withContentType sets what the kubelet sets from --kube-api-content-type.
func withContentType(cfg *rest.Config, contentType string) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.ContentType = contentType
	if contentType == "application/vnd.kubernetes.protobuf" {
		cfg.AcceptContentTypes = protobufAccept
	} else {
		cfg.AcceptContentTypes = contentType
	}
	return cfg
}

func run(bootstrapKubeconfig, certDir, nodeName, contentType string) (*summary, error) {
	out := &summary{ContentType: contentType}
	bootstrapCfg, err := clientcmd.BuildConfigFromFlags("", bootstrapKubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading the bootstrap kubeconfig: %w", err)
	}
	certPEM, keyPEM, err := bootstrapClientCert(withContentType(bootstrapCfg, contentType), nodeName, out)
	if err != nil {
		return nil, fmt.Errorf("client certificate bootstrap: %w", err)
	}
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return nil, err
	}
	// The kubelet's layout: one PEM file with the certificate and the key.
	pair := filepath.Join(certDir, "kubelet-client-current.pem")
	if err := os.WriteFile(pair, append(append([]byte{}, certPEM...), keyPEM...), 0o600); err != nil {
		return nil, err
	}

	nodeCfg := rest.AnonymousClientConfig(bootstrapCfg)
	nodeCfg.TLSClientConfig.CertFile = pair
	nodeCfg.TLSClientConfig.KeyFile = pair
	client, err := kubernetes.NewForConfig(withContentType(nodeCfg, contentType))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*stepTimeout)
	defer cancel()
	if err := whoAmI(ctx, client, out); err != nil {
		return nil, fmt.Errorf("SelfSubjectReview: %w", err)
	}
	node, err := registerNode(ctx, client, nodeName, out)
	if err != nil {
		return nil, fmt.Errorf("registering the Node: %w", err)
	}
	if err := listWatchAndUpdateStatus(ctx, client, node, out); err != nil {
		return nil, err
	}
	if err := createAndRenewLease(ctx, client, node, out); err != nil {
		return nil, fmt.Errorf("node Lease: %w", err)
	}
	if err := recordEvent(ctx, client, nodeName, out); err != nil {
		return nil, fmt.Errorf("creating an Event: %w", err)
	}
	return out, nil
}

// bootstrapClientCert is pkg/kubelet/certificate/bootstrap's requestNodeCertificate.
func bootstrapClientCert(cfg *rest.Config, nodeName string, out *summary) (certPEM, keyPEM []byte, err error) {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	subject := &pkix.Name{Organization: []string{"system:nodes"}, CommonName: "system:node:" + nodeName}
	csrPEM, err := certutil.MakeCSR(key, subject, nil, nil)
	if err != nil {
		return nil, nil, err
	}
	usages := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}
	// The kubelet names its CSR after a digest of the key and subject, so a retry with the same
	// key finds its earlier request.
	digest := sha256.Sum256(append(append([]byte{}, der...), []byte(subject.CommonName)...))
	name := "node-csr-" + hex.EncodeToString(digest[:])[:32]
	reqName, reqUID, err := csr.RequestCertificate(client, csrPEM, name,
		certificatesv1.KubeAPIServerClientKubeletSignerName, nil, usages, key)
	if err != nil {
		return nil, nil, fmt.Errorf("RequestCertificate: %w", err)
	}
	out.CSRName = reqName
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	certPEM, err = csr.WaitForCertificate(ctx, client, reqName, reqUID)
	if err != nil {
		return nil, nil, fmt.Errorf("WaitForCertificate(%s): %w", reqName, err)
	}
	certs, err := certutil.ParseCertsPEM(certPEM)
	if err != nil {
		return nil, nil, fmt.Errorf("the issued certificate: %w", err)
	}
	out.CertSubject = certs[0].Subject.String()
	return certPEM, keyPEM, nil
}

func whoAmI(ctx context.Context, client kubernetes.Interface, out *summary) error {
	review, err := client.AuthenticationV1().SelfSubjectReviews().Create(ctx,
		&authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	out.Username = review.Status.UserInfo.Username
	out.Groups = review.Status.UserInfo.Groups
	return nil
}

// registerNode is the kubelet's initialNode + registerWithAPIServer, reduced to the fields a
// node sets at registration (the taint stands for --register-with-taints).
func registerNode(ctx context.Context, client kubernetes.Interface, nodeName string, out *summary) (*corev1.Node, error) {
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	resources := corev1.ResourceList{
		corev1.ResourceCPU:              resource.MustParse("2"),
		corev1.ResourceMemory:           resource.MustParse("4028Mi"),
		corev1.ResourcePods:             resource.MustParse("110"),
		corev1.ResourceEphemeralStorage: resource.MustParse("20Gi"),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: nodeName,
			Labels: map[string]string{
				corev1.LabelHostname:      nodeName,
				corev1.LabelOSStable:      runtime.GOOS,
				corev1.LabelArchStable:    runtime.GOARCH,
				"beta.kubernetes.io/os":   runtime.GOOS,
				"beta.kubernetes.io/arch": runtime.GOARCH,
			},
			Annotations: map[string]string{
				"volumes.kubernetes.io/controller-managed-attach-detach": "true",
			},
		},
		Spec: corev1.NodeSpec{
			Taints: []corev1.Taint{{
				Key: corev1.TaintNodeNotReady, Effect: corev1.TaintEffectNoSchedule,
			}},
		},
		Status: corev1.NodeStatus{
			Capacity:    resources,
			Allocatable: resources,
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: "127.0.0.1"},
				{Type: corev1.NodeHostName, Address: nodeName},
			},
			Conditions: []corev1.NodeCondition{{
				Type: corev1.NodeReady, Status: corev1.ConditionFalse,
				LastHeartbeatTime: now, LastTransitionTime: now,
				Reason: "KubeletNotReady", Message: "container runtime status check may not have completed yet",
			}},
			DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: kubeletPort}},
			NodeInfo: corev1.NodeSystemInfo{
				MachineID: "0123456789abcdef", SystemUUID: "4c4c4544-0000-0000-0000-000000000000",
				BootID: "b00710ad", KernelVersion: "6.1.0", OSImage: "kubeboot interop",
				ContainerRuntimeVersion: "containerd://2.0.0", KubeletVersion: "v1.37.2",
				OperatingSystem: runtime.GOOS, Architecture: runtime.GOARCH,
			},
		},
	}
	created, err := client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	if created.Labels[corev1.LabelHostname] != nodeName {
		return nil, fmt.Errorf("the created Node lost its labels: %v", created.Labels)
	}
	if len(created.Spec.Taints) != 1 || created.Spec.Taints[0].Key != corev1.TaintNodeNotReady {
		return nil, fmt.Errorf("the created Node lost its taint: %v", created.Spec.Taints)
	}
	if q := created.Status.Capacity[corev1.ResourceMemory]; q.String() != "4028Mi" {
		return nil, fmt.Errorf("the created Node's memory capacity is %q, want 4028Mi", q.String())
	}
	if created.Status.DaemonEndpoints.KubeletEndpoint.Port != kubeletPort {
		return nil, fmt.Errorf("the created Node's kubelet port is %d", created.Status.DaemonEndpoints.KubeletEndpoint.Port)
	}
	out.NodeUID = string(created.UID)
	for _, a := range created.Status.Addresses {
		out.NodeAddresses = append(out.NodeAddresses, string(a.Type)+"="+a.Address)
	}
	return created, nil
}

// listWatchAndUpdateStatus is the kubelet's node informer (list + watch with
// metadata.name=<node>) seeing the kubelet's own status updates: one PUT of /status and one
// strategic-merge patch of /status (nodeutil.PatchNodeStatus).
func listWatchAndUpdateStatus(ctx context.Context, client kubernetes.Interface, node *corev1.Node, out *summary) error {
	nodes := client.CoreV1().Nodes()
	selector := fields.OneTermEqualSelector("metadata.name", node.Name).String()
	list, err := nodes.List(ctx, metav1.ListOptions{FieldSelector: selector})
	if err != nil {
		return fmt.Errorf("listing Nodes with %s: %w", selector, err)
	}
	for _, n := range list.Items {
		out.ListedNodes = append(out.ListedNodes, n.Name)
	}
	if len(list.Items) != 1 || list.Items[0].Name != node.Name {
		return fmt.Errorf("listing Nodes with %s returned %v", selector, out.ListedNodes)
	}
	w, err := nodes.Watch(ctx, metav1.ListOptions{FieldSelector: selector, ResourceVersion: list.ResourceVersion})
	if err != nil {
		return fmt.Errorf("watching Nodes with %s: %w", selector, err)
	}
	defer w.Stop()

	got, err := nodes.Get(ctx, node.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("getting the Node: %w", err)
	}
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	got.Status.Conditions = []corev1.NodeCondition{{
		Type: corev1.NodeReady, Status: corev1.ConditionTrue,
		LastHeartbeatTime: now, LastTransitionTime: now,
		Reason: "KubeletReady", Message: "kubelet is posting ready status",
	}}
	updated, err := nodes.UpdateStatus(ctx, got, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("updating the Node's status: %w", err)
	}
	if len(updated.Status.Conditions) != 1 || updated.Status.Conditions[0].Status != corev1.ConditionTrue {
		return fmt.Errorf("the updated Node's conditions are %v", updated.Status.Conditions)
	}
	// A later heartbeat than the update's, so the patch changes the object (a no-op patch
	// would, rightly, send no watch event).
	patch := fmt.Sprintf(`{"status":{"conditions":[{"type":"Ready","status":"True","lastHeartbeatTime":%q}]}}`,
		now.Add(time.Second).UTC().Format(time.RFC3339))
	patched, err := nodes.Patch(ctx, node.Name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}, "status")
	if err != nil {
		return fmt.Errorf("patching the Node's status: %w", err)
	}
	for _, c := range patched.Status.Conditions {
		if c.Type == corev1.NodeReady {
			out.NodeReadyStatus = string(c.Status)
		}
	}

	deadline := time.After(watchEventLimit)
	for len(out.WatchEvents) < 2 {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return fmt.Errorf("the Node watch ended after %v", out.WatchEvents)
			}
			if ev.Type == watch.Error {
				return fmt.Errorf("the Node watch failed: %v", ev.Object)
			}
			n, ok := ev.Object.(*corev1.Node)
			if !ok {
				return fmt.Errorf("the Node watch sent a %T", ev.Object)
			}
			if n.Name != node.Name {
				return fmt.Errorf("the Node watch with %s sent Node %q", selector, n.Name)
			}
			out.WatchEvents = append(out.WatchEvents, string(ev.Type))
		case <-deadline:
			return fmt.Errorf("the Node watch saw %v within %v, want two MODIFIED", out.WatchEvents, watchEventLimit)
		}
	}
	return nil
}

// createAndRenewLease is pkg/kubelet/nodelease: get, create if missing (owned by the Node),
// then renew by update.
func createAndRenewLease(ctx context.Context, client kubernetes.Interface, node *corev1.Node, out *summary) error {
	leases := client.CoordinationV1().Leases(nodeLeaseNS)
	if _, err := leases.Get(ctx, node.Name, metav1.GetOptions{}); err == nil {
		return fmt.Errorf("lease %s/%s exists before the node created it", nodeLeaseNS, node.Name)
	}
	first := metav1.NewMicroTime(time.Now())
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{
			Name: node.Name, Namespace: nodeLeaseNS,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID,
			}},
		},
		Spec: coordinationv1.LeaseSpec{
			HolderIdentity:       ptr.To(node.Name),
			LeaseDurationSeconds: ptr.To[int32](leaseDurationS),
			RenewTime:            &first,
		},
	}
	created, err := leases.Create(ctx, lease, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	if created.Spec.HolderIdentity == nil || created.Spec.RenewTime == nil ||
		created.Spec.LeaseDurationSeconds == nil || *created.Spec.LeaseDurationSeconds != leaseDurationS {
		return fmt.Errorf("the created Lease lost its spec: %+v", created.Spec)
	}
	if len(created.OwnerReferences) != 1 || created.OwnerReferences[0].UID != node.UID {
		return fmt.Errorf("the created Lease lost its owner: %+v", created.OwnerReferences)
	}
	out.LeaseHolder = *created.Spec.HolderIdentity
	out.LeaseOwner = created.OwnerReferences[0].Kind + "/" + created.OwnerReferences[0].Name

	time.Sleep(10 * time.Millisecond) // so the renewal's microsecond timestamp differs
	renewed := created.DeepCopy()
	second := metav1.NewMicroTime(time.Now())
	renewed.Spec.RenewTime = &second
	updated, err := leases.Update(ctx, renewed, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("renew: %w", err)
	}
	if updated.Spec.RenewTime == nil || !updated.Spec.RenewTime.After(created.Spec.RenewTime.Time) {
		return fmt.Errorf("the renewed Lease's renewTime %v is not after %v", updated.Spec.RenewTime, created.Spec.RenewTime)
	}
	if updated.Spec.RenewTime.UnixMicro() != second.UnixMicro() {
		return fmt.Errorf("the renewed Lease's renewTime %v is not the %v sent (microsecond precision)",
			updated.Spec.RenewTime, second)
	}
	out.LeaseRenewed = true
	return nil
}

// recordEvent creates the Event that client-go's record.EventRecorder makes for the kubelet's
// "Starting kubelet." (tools/record makeEvent; the kubelet's node reference uses the node
// name as UID), through the same core/v1 Events client its EventSinkImpl uses.
func recordEvent(ctx context.Context, client kubernetes.Interface, nodeName string, out *summary) error {
	now := metav1.NewTime(time.Now())
	event := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:      fmt.Sprintf("%v.%x", nodeName, now.UnixNano()),
			Namespace: metav1.NamespaceDefault,
		},
		InvolvedObject: corev1.ObjectReference{
			Kind: "Node", Name: nodeName, UID: types.UID(nodeName),
		},
		Reason:              "Starting",
		Message:             "Starting kubelet.",
		Source:              corev1.EventSource{Component: "kubelet", Host: nodeName},
		FirstTimestamp:      now,
		LastTimestamp:       now,
		Count:               1,
		Type:                corev1.EventTypeNormal,
		ReportingController: "kubelet",
		ReportingInstance:   nodeName,
	}
	created, err := client.CoreV1().Events(metav1.NamespaceDefault).Create(ctx, event, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	if created.InvolvedObject.Name != nodeName || created.Source.Host != nodeName || created.Count != 1 {
		return fmt.Errorf("the created Event lost fields: %+v", created)
	}
	out.EventName = created.Name
	out.EventReason = created.Reason
	return nil
}
