#!/usr/bin/env bash
# Joins a real node to the local control plane, for what must really run (the operator's
# own pods): containerd and runc from Debian, the bridge CNI, a pause image built here, and
# the kubelet and kube-proxy built from the same Kubernetes module as the control plane.
# Called by tests/cluster/up.sh when HEADROOM_REAL_NODE=1; tests/cluster/down.sh stops it.
# Everything lives under $state/node; processes are tracked by PID in $state/pids.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
: "${BIN:?}" "${KUBE_SERVER:?}" "${KUBECONFIG:?}"
node="$state/node"
pki="$state/pki"
mkdir -p "$node"/{containerd/root,containerd/state,runc,cni/net.d,cni/ipam,kubelet,certs,image}

missing=()
command -v containerd >/dev/null || missing+=(containerd)
command -v runc >/dev/null || missing+=(runc)
[ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
command -v conntrack >/dev/null || missing+=(conntrack)
command -v iptables >/dev/null || missing+=(iptables)
command -v buildah >/dev/null || missing+=(buildah)
command -v musl-gcc >/dev/null || missing+=(musl-tools)
# shellcheck source=../serial.sh
source "$(dirname "$0")/../serial.sh"
apt_install "${missing[@]}"


# --- containerd ----------------------------------------------------------------------
sock="$node/containerd.sock"
cat >"$node/containerd.toml" <<TOML
version = 2
root = "$node/containerd/root"
state = "$node/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[debug]
  address = "$sock.debug"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Without it, this VM's runc fails every sandbox: "can't get final child's PID from pipe".
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        Root = "$node/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$node/cni/net.d"
TOML
cat >"$node/cni/net.d/10-headroom.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "headroom",
  "plugins": [
    {
      "type": "bridge", "bridge": "$NODE_BRIDGE", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": {"type": "host-local", "dataDir": "$node/cni/ipam", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}]}
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
start containerd containerd --config "$node/containerd.toml" --log-level warn
wait_for containerd 30 ctr --address "$sock" version

# --- the pause image -----------------------------------------------------------------
# No image can be pulled here: the sandbox image is a tiny static program on an empty base.
pause_tar="$node/image/pause.oci.tar"
musl-gcc -static -Os -o "$node/image/pause" "$(dirname "$0")/pause.c"
export STORAGE_DRIVER=${STORAGE_DRIVER:-vfs}
c=$(buildah from --quiet scratch)
buildah copy --quiet "$c" "$node/image/pause" /pause >/dev/null
buildah config --entrypoint '["/pause"]' --user 65535:65535 "$c"
buildah commit --quiet --timestamp 0 --rm "$c" "$PAUSE_IMAGE" >/dev/null
buildah push --quiet "$PAUSE_IMAGE" "oci-archive:$pause_tar:$PAUSE_IMAGE" >/dev/null
# Its progress is noise; its error is what a failed start must show.
"$(dirname "$0")/load-image.sh" "$pause_tar" "$PAUSE_IMAGE" 2>"$node/load-image.log" ||
  { cat "$node/load-image.log" >&2; die "could not load the pause image into containerd"; }

# --- identities: the kubelet as system:node:<name>, kube-proxy as system:kube-proxy ------
(
  cd "$pki"
  sign kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" "extendedKeyUsage=clientAuth"
  sign kubelet-serving "/CN=$NODE_NAME" "subjectAltName=IP:$NODE_IP,DNS:$NODE_NAME
extendedKeyUsage=serverAuth"
  sign kube-proxy "/CN=system:kube-proxy" "extendedKeyUsage=clientAuth"
)
kubeconfig_for() { # name
  local f="$node/$1.kubeconfig"
  kubectl config --kubeconfig "$f" set-cluster local --server "$KUBE_SERVER" --certificate-authority "$pki/ca.crt" --embed-certs >/dev/null
  kubectl config --kubeconfig "$f" set-credentials "$1" --client-certificate "$pki/$1.crt" --client-key "$pki/$1.key" --embed-certs >/dev/null
  kubectl config --kubeconfig "$f" set-context local --cluster local --user "$1" >/dev/null
  kubectl config --kubeconfig "$f" use-context local >/dev/null
}
kubeconfig_for kubelet
kubeconfig_for kube-proxy
# The API server authorizes by RBAC alone (no Node authorizer): bind the nodes' role.
kubectl apply -f - >/dev/null <<'YAML'
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: headroom-test:nodes
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:node}
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: Group, name: system:nodes}
YAML

# --- kubelet and kube-proxy ------------------------------------------------------------
kubelet_port=$(free_port); kubelet_health=$(free_port); proxy_health=$(free_port); proxy_metrics=$(free_port)
cat >"$node/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: $kubelet_port
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $kubelet_health
tlsCertFile: $pki/kubelet-serving.crt
tlsPrivateKeyFile: $pki/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$sock
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
maxPods: 30
registerNode: true
resolvConf: /etc/resolv.conf
serializeImagePulls: false
# A test node on a shared disk: never evict or collect images for the host's sake.
# Absolute floors: 1 % of a large disk is gigabytes, and a nearly full build disk evicted the test pods.
evictionHard: {memory.available: "1Mi", nodefs.available: "200Mi", nodefs.inodesFree: "1%", imagefs.available: "200Mi"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
YAML
# --containerd: cAdvisor's own connection to containerd, which gives its series their
# namespace, pod and container labels (at the default socket path it finds none here).
start kubelet "$BIN/kubelet" --config "$node/kubelet.yaml" --kubeconfig "$node/kubelet.kubeconfig" \
  --root-dir "$node/kubelet" --cert-dir "$node/certs" --hostname-override "$NODE_NAME" \
  --node-ip "$NODE_IP" --node-labels "headroom.dev/test-node=real" -v 1 \
  --containerd "$sock"
start kube-proxy "$BIN/kube-proxy" --kubeconfig "$node/kube-proxy.kubeconfig" \
  --hostname-override "$NODE_NAME" --cluster-cidr "$POD_CIDR" --proxy-mode iptables \
  --conntrack-max-per-core 0 --healthz-bind-address "127.0.0.1:$proxy_health" \
  --metrics-bind-address "127.0.0.1:$proxy_metrics" -v 1
wait_for "node $NODE_NAME Ready" 120 prints True get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}'
wait_for "kube-proxy healthy" 60 curl -sf "http://127.0.0.1:$proxy_health/healthz"
# --- cAdvisor: the kubelet's own endpoint, scraped as kube-prometheus scrapes it -------------
# (https with a client certificate the kubelet's webhook authorizes; its series keep their
# namespace, pod and container labels.)
cat >>"$state/prometheus/prometheus.yml" <<YAML
  - job_name: kubelet
    scrape_interval: 2s
    scheme: https
    metrics_path: /metrics/cadvisor
    honor_labels: true
    tls_config: {ca_file: $pki/ca.crt, cert_file: $pki/admin.crt, key_file: $pki/admin.key}
    static_configs:
      - targets: ['$NODE_IP:$kubelet_port']
        labels: {node: $NODE_NAME, metrics_path: /metrics/cadvisor}
YAML
kill -HUP "$(cat "$state/pids/prometheus.pid")"
log "real node $NODE_NAME Ready at $NODE_IP (pods in $POD_CIDR)"
