#include "operator/controllers/builders.h"

#include <fmt/format.h>

namespace granary::operators {
namespace {

Json SpecOf(const Json& o) {
  auto it = o.find("spec");
  return it != o.end() && it->is_object() ? *it : Json::object();
}

Json Sub(const Json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_object() ? *it : Json::object();
}

std::string Str(const Json& o, const char* key, const std::string& def) {
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : def;
}

Json Meta(const std::string& name, const std::string& ns, const Json& labels) {
  Json m = {{"name", name}, {"labels", labels}};
  if (!ns.empty()) m["namespace"] = ns;
  return m;
}

std::string ClusterName(const Json& cluster) { return kube::NameOf(cluster); }

Json Env(const std::string& name, const std::string& field_path) {
  return {{"name", name}, {"valueFrom", {{"fieldRef", {{"fieldPath", field_path}}}}}};
}

Json SocketVolume(const std::string& name, const std::string& path, const std::string& type) {
  return {{"name", name}, {"hostPath", {{"path", path}, {"type", type}}}};
}

Json HttpProbe(int port, const std::string& path) {
  return {{"httpGet", {{"path", path}, {"port", port}}}, {"periodSeconds", 10}};
}

constexpr int kAdminPort = 7480;

}  // namespace

Result<ClusterSpec> ParseClusterSpec(const Json& cluster) {
  ClusterSpec s;
  Json spec = SpecOf(cluster);
  s.image = Str(spec, "image", s.image);
  s.image_pull_policy = Str(spec, "imagePullPolicy", s.image_pull_policy);
  Json meta = Sub(spec, "metanode");
  if (meta.contains("replicas")) {
    if (!meta["replicas"].is_number_integer() ||
        (meta["replicas"] != 1 && meta["replicas"] != 3 && meta["replicas"] != 5))
      return InvalidArgument("spec.metanode.replicas: must be 1, 3 or 5");
    s.metanode_replicas = meta["replicas"].get<int>();
  }
  s.metanode_resources = Sub(meta, "resources");
  Json storage = Sub(meta, "storage");
  s.metanode_storage_size = Str(storage, "size", s.metanode_storage_size);
  s.metanode_storage_class = Str(storage, "storageClassName", "");
  Json s3 = Sub(spec, "s3");
  if (s3.contains("replicas")) {
    if (!s3["replicas"].is_number_integer() || s3["replicas"].get<int64_t>() < 0)
      return InvalidArgument("spec.s3.replicas: must be an integer >= 0");
    s.s3_replicas = s3["replicas"].get<int>();
  }
  s.s3_service_type = Str(s3, "serviceType", s.s3_service_type);
  if (s.s3_service_type != "ClusterIP" && s.s3_service_type != "NodePort" &&
      s.s3_service_type != "LoadBalancer")
    return InvalidArgument(
        "spec.s3.serviceType: must be ClusterIP, NodePort or LoadBalancer, not " +
        s.s3_service_type);
  s.s3_domain = Str(s3, "domain", "");
  Json csi = Sub(spec, "csi");
  if (csi.contains("enabled") && csi["enabled"].is_boolean()) s.csi_enabled = csi["enabled"];
  s.csi_provisioner_image = Str(csi, "provisionerImage", s.csi_provisioner_image);
  s.csi_resizer_image = Str(csi, "resizerImage", s.csi_resizer_image);
  s.csi_snapshotter_image = Str(csi, "snapshotterImage", s.csi_snapshotter_image);
  s.csi_registrar_image = Str(csi, "registrarImage", s.csi_registrar_image);
  s.kubelet_dir = Str(csi, "kubeletDir", s.kubelet_dir);
  return s;
}

Result<PoolSpec> ParsePoolSpec(const Json& pool) {
  PoolSpec s;
  Json spec = SpecOf(pool);
  Json ref = Sub(spec, "clusterRef");
  s.cluster_name = Str(ref, "name", "");
  s.cluster_namespace = Str(ref, "namespace", "");
  if (s.cluster_name.empty() || s.cluster_namespace.empty())
    return InvalidArgument(
        "spec.clusterRef: name and namespace of the StorageCluster are required");
  Json dn = Sub(spec, "datanodes");
  Json node_selector = Sub(dn, "nodeSelector");  // named: items() must not outlive a temporary
  for (auto& [k, v] : node_selector.items())
    if (v.is_string()) s.node_selector[k] = v.get<std::string>();
  if (dn.contains("tolerations") && dn["tolerations"].is_array()) s.tolerations = dn["tolerations"];
  s.resources = Sub(dn, "resources");
  Json storage = Sub(dn, "storage");
  if (storage.contains("devices"))
    return InvalidArgument(
        "spec.datanodes.storage.devices: raw devices are not supported by the datanode yet; "
        "mount them and use hostPath");
  s.host_path = Str(storage, "hostPath", "/var/lib/granary/pools/" + kube::NameOf(pool));
  Json red = Sub(spec, "redundancy");
  bool has_rep = red.contains("replicated"), has_ec = red.contains("erasureCoded");
  if (has_rep == has_ec)
    return InvalidArgument("spec.redundancy: exactly one of replicated and erasureCoded");
  if (has_rep) {
    s.replicated = true;
    s.size = Sub(red, "replicated").value("size", 3);
    if (s.size < 1 || s.size > 7)
      return InvalidArgument(
          fmt::format("spec.redundancy.replicated.size: {} not in 1..7", s.size));
  } else {
    s.replicated = false;
    Json ec = Sub(red, "erasureCoded");
    s.data_chunks = ec.value("dataChunks", 0);
    s.coding_chunks = ec.value("codingChunks", 0);
    if (s.data_chunks < 1 || s.coding_chunks < 1 || s.data_chunks + s.coding_chunks > 20)
      return InvalidArgument(
          fmt::format("spec.redundancy.erasureCoded: {}+{}: dataChunks and codingChunks must be >= "
                      "1, sum <= 20",
                      s.data_chunks, s.coding_chunks));
  }
  s.failure_domain = Str(spec, "failureDomain", s.failure_domain);
  if (s.failure_domain != "datanode" && s.failure_domain != "host" && s.failure_domain != "rack" &&
      s.failure_domain != "zone")
    return InvalidArgument("spec.failureDomain: datanode|host|rack|zone, not " + s.failure_domain);
  Json topo = Sub(spec, "topology");
  s.topology_keys["zone"] = Str(topo, "zoneKey", "topology.kubernetes.io/zone");
  s.topology_keys["rack"] = Str(topo, "rackKey", "topology.granary.io/rack");
  Json loc = Sub(spec, "locality");
  s.locality = Str(loc, "mode", "none");
  if (s.locality != "none" && s.locality != "writer-local" && s.locality != "prefer-gpu")
    return InvalidArgument("spec.locality.mode: none|writer-local|prefer-gpu, not " + s.locality);
  Json gpu_selector = Sub(loc, "gpuNodeSelector");
  for (auto& [k, v] : gpu_selector.items())
    if (v.is_string()) s.gpu_node_selector[k] = v.get<std::string>();
  if (s.locality == "prefer-gpu" && s.gpu_node_selector.empty())
    s.gpu_node_selector["nvidia.com/gpu.present"] = "true";
  Json th = Sub(spec, "thresholds");
  s.nearly_full_ratio = th.value("nearlyFullRatio", s.nearly_full_ratio);
  s.full_ratio = th.value("fullRatio", s.full_ratio);
  if (!(s.nearly_full_ratio > 0 && s.nearly_full_ratio < s.full_ratio && s.full_ratio <= 1))
    return InvalidArgument(
        fmt::format("spec.thresholds: need 0 < nearlyFullRatio ({}) < fullRatio ({}) <= 1",
                    s.nearly_full_ratio, s.full_ratio));
  return s;
}

Result<BucketSpec> ParseBucketSpec(const Json& bucket) {
  BucketSpec s;
  Json spec = SpecOf(bucket);
  s.pool = Str(spec, "pool", "");
  if (s.pool.empty()) return InvalidArgument("spec.pool: the StoragePool is required");
  s.bucket_name = Str(spec, "bucketName", kube::NamespaceOf(bucket) + "-" + kube::NameOf(bucket));
  if (s.bucket_name.size() < 3 || s.bucket_name.size() > 63)
    return InvalidArgument("bucket name " + s.bucket_name + ": 3 to 63 characters");
  for (char c : s.bucket_name)
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == '.'))
      return InvalidArgument("bucket name " + s.bucket_name +
                             ": lowercase letters, digits, '-' and '.' only");
  s.quota_bytes = spec.value("quotaBytes", int64_t{0});
  s.from_volume_claim = Str(Sub(spec, "fromVolume"), "claimName", "");
  s.reclaim_policy = Str(spec, "reclaimPolicy", s.reclaim_policy);
  if (s.reclaim_policy != "Retain" && s.reclaim_policy != "Delete")
    return InvalidArgument("spec.reclaimPolicy: Retain or Delete, not " + s.reclaim_policy);
  s.secret_name = Str(spec, "secretName", kube::NameOf(bucket) + "-s3");
  return s;
}

std::string MemberAddress(const Json& cluster, int ordinal) {
  return fmt::format("{0}-metanode-{3}.{0}-metanode.{1}.svc:{2}", ClusterName(cluster),
                     kube::NamespaceOf(cluster), kMetanodePort, ordinal);
}

std::string MetanodeAddress(const Json& cluster, int replicas) {
  std::string out;
  for (int i = 0; i < replicas; ++i) out += (i ? "," : "") + MemberAddress(cluster, i);
  return out;
}

std::string MetanodePeers(const Json& cluster, int replicas) {
  std::string out;
  for (int i = 0; i < replicas; ++i) {
    out += fmt::format("{}{}={}", i ? "," : "", i + 1, MemberAddress(cluster, i));
  }
  return out;
}

std::string S3Endpoint(const Json& cluster) {
  return fmt::format("http://{}-s3.{}.svc:{}", ClusterName(cluster), kube::NamespaceOf(cluster),
                     kS3Port);
}

std::string DashboardUrl(const Json& cluster) {
  return fmt::format("http://{}-dashboard.{}.svc/", ClusterName(cluster),
                     kube::NamespaceOf(cluster));
}

Json CommonLabels(const std::string& component, const std::string& instance) {
  return {{"app.kubernetes.io/name", "granary"},
          {"app.kubernetes.io/component", component},
          {"app.kubernetes.io/instance", instance},
          {"app.kubernetes.io/managed-by", "granary-operator"}};
}

namespace {

Json Selector(const std::string& component, const std::string& instance) {
  return {{"app.kubernetes.io/name", "granary"},
          {"app.kubernetes.io/component", component},
          {"app.kubernetes.io/instance", instance}};
}

Json GranaryContainer(const std::string& name, const ClusterSpec& spec, Json args) {
  return {{"name", name},
          {"image", spec.image},
          {"imagePullPolicy", spec.image_pull_policy},
          {"command", {"granary"}},
          {"args", std::move(args)}};
}

}  // namespace

Json MetanodeService(const Json& cluster, const ClusterSpec&) {
  std::string name = ClusterName(cluster) + "-metanode";
  return {
      {"apiVersion", "v1"},
      {"kind", "Service"},
      {"metadata",
       Meta(name, kube::NamespaceOf(cluster), CommonLabels("metanode", ClusterName(cluster)))},
      {"spec",
       {{"clusterIP", "None"},
        {"publishNotReadyAddresses", true},
        {"selector", Selector("metanode", ClusterName(cluster))},
        {"ports",
         {{{"name", "grpc"}, {"port", kMetanodePort}, {"targetPort", kMetanodePort}},
          {{"name", "raft"}, {"port", kMetanodePort + 1}, {"targetPort", kMetanodePort + 1}}}}}}};
}

std::string MetanodeKeySecretName(const Json& cluster) {
  return ClusterName(cluster) + "-metanode-key";
}

Json MetanodeKeySecret(const Json& cluster, const std::string& key_base64) {
  return {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"metadata", Meta(MetanodeKeySecretName(cluster), kube::NamespaceOf(cluster),
                            CommonLabels("metanode", ClusterName(cluster)))},
          {"type", "Opaque"},
          {"data", {{"secret.key", key_base64}}}};
}

Json MetanodePodDisruptionBudget(const Json& cluster) {
  std::string name = ClusterName(cluster) + "-metanode";
  return {{"apiVersion", "policy/v1"},
          {"kind", "PodDisruptionBudget"},
          {"metadata",
           Meta(name, kube::NamespaceOf(cluster), CommonLabels("metanode", ClusterName(cluster)))},
          {"spec",
           {{"maxUnavailable", 1},
            {"selector", {{"matchLabels", Selector("metanode", ClusterName(cluster))}}}}}};
}

Json MetanodeStatefulSet(const Json& cluster, const ClusterSpec& spec) {
  std::string name = ClusterName(cluster) + "-metanode";
  Json labels = CommonLabels("metanode", ClusterName(cluster));
  // Every member of the metadata group (a group of one when replicas is 1, so it can grow): its
  // id from the pod's ordinal, the group at stable DNS names (docs/metadata-ha.md).
  Json container = GranaryContainer(
      "metanode", spec,
      {"metanode", "--data", "/var/lib/granary/meta", "--listen",
       fmt::format("0.0.0.0:{}", kMetanodePort), "--admin", fmt::format("0.0.0.0:{}", kAdminPort),
       "--id-from-ordinal", "--peers", MetanodePeers(cluster, spec.metanode_replicas),
       "--secret-key-file", "/etc/granary/metanode-key/secret.key"});
  container["ports"] = {{{"name", "grpc"}, {"containerPort", kMetanodePort}},
                        {{"name", "raft"}, {"containerPort", kMetanodePort + 1}},
                        {{"name", "admin"}, {"containerPort", kAdminPort}}};
  container["volumeMounts"] = {
      {{"name", "data"}, {"mountPath", "/var/lib/granary/meta"}},
      {{"name", "key"}, {"mountPath", "/etc/granary/metanode-key"}, {"readOnly", true}}};
  // Ready once the member is in a group with a leader: a rolling update moves on only then.
  container["readinessProbe"] = HttpProbe(kAdminPort, "/healthz");
  if (!spec.metanode_resources.empty()) container["resources"] = spec.metanode_resources;
  Json claim_spec = {{"accessModes", {"ReadWriteOnce"}},
                     {"resources", {{"requests", {{"storage", spec.metanode_storage_size}}}}}};
  if (!spec.metanode_storage_class.empty())
    claim_spec["storageClassName"] = spec.metanode_storage_class;
  return {
      {"apiVersion", "apps/v1"},
      {"kind", "StatefulSet"},
      {"metadata", Meta(name, kube::NamespaceOf(cluster), labels)},
      {"spec",
       {{"replicas", spec.metanode_replicas},
        {"serviceName", name},
        // Members start together: one alone can never become ready (no majority).
        {"podManagementPolicy", "Parallel"},
        {"updateStrategy", {{"type", "RollingUpdate"}}},
        {"selector", {{"matchLabels", Selector("metanode", ClusterName(cluster))}}},
        {"template",
         {{"metadata", {{"labels", labels}}},
          {"spec",
           {{"terminationGracePeriodSeconds", 60},
            {"containers", Json::array({container})},
            {"volumes",
             {{{"name", "key"},
               {"secret",
                {{"secretName", MetanodeKeySecretName(cluster)}, {"defaultMode", 0400}}}}}},
            // Members on different nodes where the cluster has them (preferred, never required).
            {"affinity",
             {{"podAntiAffinity",
               {{"preferredDuringSchedulingIgnoredDuringExecution",
                 {{{"weight", 100},
                   {"podAffinityTerm",
                    {{"topologyKey", "kubernetes.io/hostname"},
                     {"labelSelector",
                      {{"matchLabels", Selector("metanode", ClusterName(cluster))}}}}}}}}}}}}}}}},
        {"volumeClaimTemplates", {{{"metadata", {{"name", "data"}}}, {"spec", claim_spec}}}}}}};
}

Json S3Service(const Json& cluster, const ClusterSpec& spec) {
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", Meta(ClusterName(cluster) + "-s3", kube::NamespaceOf(cluster),
                            CommonLabels("s3", ClusterName(cluster)))},
          {"spec",
           {{"type", spec.s3_service_type},
            {"selector", Selector("s3", ClusterName(cluster))},
            {"ports", {{{"name", "s3"}, {"port", kS3Port}, {"targetPort", kS3Port}}}}}}};
}

Json DashboardService(const Json& cluster) {
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", Meta(ClusterName(cluster) + "-dashboard", kube::NamespaceOf(cluster),
                            CommonLabels("dashboard", ClusterName(cluster)))},
          {"spec",
           {{"type", "ClusterIP"},
            {"selector", Selector("metanode", ClusterName(cluster))},
            {"ports", {{{"name", "http"}, {"port", 80}, {"targetPort", "admin"}}}}}}};
}

Json S3Deployment(const Json& cluster, const ClusterSpec& spec) {
  Json labels = CommonLabels("s3", ClusterName(cluster));
  Json args = {"s3",
               "--meta",
               MetanodeAddress(cluster, spec.metanode_replicas),
               "--listen",
               fmt::format("0.0.0.0:{}", kS3Port),
               "--admin",
               fmt::format("0.0.0.0:{}", kAdminPort)};
  if (!spec.s3_domain.empty()) {
    args.push_back("--domain");
    args.push_back(spec.s3_domain);
  }
  Json container = GranaryContainer("s3", spec, args);
  container["ports"] = {{{"name", "s3"}, {"containerPort", kS3Port}},
                        {{"name", "admin"}, {"containerPort", kAdminPort}}};
  container["readinessProbe"] = HttpProbe(kAdminPort, "/healthz");
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", Meta(ClusterName(cluster) + "-s3", kube::NamespaceOf(cluster), labels)},
          {"spec",
           {{"replicas", spec.s3_replicas},
            {"selector", {{"matchLabels", Selector("s3", ClusterName(cluster))}}},
            {"template",
             {{"metadata", {{"labels", labels}}},
              {"spec", {{"containers", Json::array({container})}}}}}}}};
}

Json CsiControllerDeployment(const Json& cluster, const ClusterSpec& spec) {
  Json labels = CommonLabels("csi-controller", ClusterName(cluster));
  Json csi = GranaryContainer(
      "csi", spec,
      {"csi", "--endpoint", "unix:///csi/csi.sock", "--node-id", "$(NODE_NAME)", "--meta",
       MetanodeAddress(cluster, spec.metanode_replicas), "--mode", "controller"});
  csi["env"] = {Env("NODE_NAME", "spec.nodeName")};
  csi["volumeMounts"] = {{{"name", "socket-dir"}, {"mountPath", "/csi"}}};
  Json provisioner = {{"name", "csi-provisioner"},
                      {"image", spec.csi_provisioner_image},
                      {"args",
                       {"--csi-address=/csi/csi.sock", "--feature-gates=Topology=true",
                        "--strict-topology", "--immediate-topology=false",
                        "--extra-create-metadata", "--leader-election=false", "--timeout=60s"}},
                      {"volumeMounts", {{{"name", "socket-dir"}, {"mountPath", "/csi"}}}}};
  Json resizer = {
      {"name", "csi-resizer"},
      {"image", spec.csi_resizer_image},
      {"args", {"--csi-address=/csi/csi.sock", "--leader-election=false", "--timeout=60s"}},
      {"volumeMounts", {{{"name", "socket-dir"}, {"mountPath", "/csi"}}}}};
  // VolumeSnapshotContents to CreateSnapshot/DeleteSnapshot (docs/snapshots.md); it idles where
  // the snapshot CRDs are not installed.
  Json snapshotter = {{"name", "csi-snapshotter"},
                      {"image", spec.csi_snapshotter_image},
                      {"args",
                       {"--csi-address=/csi/csi.sock", "--leader-election=false", "--timeout=60s",
                        "--extra-create-metadata"}},
                      {"volumeMounts", {{{"name", "socket-dir"}, {"mountPath", "/csi"}}}}};
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata",
           Meta(ClusterName(cluster) + "-csi-controller", kube::NamespaceOf(cluster), labels)},
          {"spec",
           {{"replicas", 1},  // sidecars without leader election: exactly one
            {"strategy", {{"type", "Recreate"}}},
            {"selector", {{"matchLabels", Selector("csi-controller", ClusterName(cluster))}}},
            {"template",
             {{"metadata", {{"labels", labels}}},
              {"spec",
               {{"serviceAccountName", CsiServiceAccountName(cluster)},
                {"containers", {csi, provisioner, resizer, snapshotter}},
                {"volumes", {{{"name", "socket-dir"}, {"emptyDir", Json::object()}}}}}}}}}}};
}

constexpr const char* kCsiStateDir = "/var/lib/granary/csi";

Json CsiNodeDaemonSet(const Json& cluster, const ClusterSpec& spec) {
  Json labels = CommonLabels("csi-node", ClusterName(cluster));
  std::string plugin_dir = spec.kubelet_dir + "/plugins/" + kCsiDriverName;
  Json csi =
      GranaryContainer("csi", spec,
                       {"csi", "--endpoint", "unix:///csi/csi.sock", "--node-id", "$(NODE_NAME)",
                        "--meta", MetanodeAddress(cluster, spec.metanode_replicas), "--mode",
                        "node", "--labels", "host=$(NODE_NAME)", "--state-dir", kCsiStateDir});
  csi["env"] = {Env("NODE_NAME", "spec.nodeName")};
  csi["securityContext"] = {{"privileged", true}};
  csi["volumeMounts"] = {{{"name", "socket-dir"}, {"mountPath", "/csi"}},
                         {{"name", "kubelet-dir"},
                          {"mountPath", spec.kubelet_dir},
                          {"mountPropagation", "Bidirectional"}},
                         {{"name", "fuse"}, {"mountPath", "/dev/fuse"}},
                         // Which mounts the plugin owns survives a restart of its container.
                         {{"name", "state-dir"}, {"mountPath", kCsiStateDir}},
                         // The mount supervisors leave the container's cgroup through the host's
                         // systemd (`systemd-run --scope`, docs/csi.md), so that a restart of
                         // this container does not take the pods' mounts with it.
                         {{"name", "host-systemd"}, {"mountPath", "/run/systemd"}},
                         {{"name", "host-cgroup"}, {"mountPath", "/sys/fs/cgroup"}}};
  Json registrar = {
      {"name", "node-driver-registrar"},
      {"image", spec.csi_registrar_image},
      {"args",
       {"--csi-address=/csi/csi.sock", "--kubelet-registration-path=" + plugin_dir + "/csi.sock"}},
      {"volumeMounts",
       {{{"name", "socket-dir"}, {"mountPath", "/csi"}},
        {{"name", "registration-dir"}, {"mountPath", "/registration"}}}}};
  return {
      {"apiVersion", "apps/v1"},
      {"kind", "DaemonSet"},
      {"metadata", Meta(ClusterName(cluster) + "-csi-node", kube::NamespaceOf(cluster), labels)},
      {"spec",
       {{"selector", {{"matchLabels", Selector("csi-node", ClusterName(cluster))}}},
        {"template",
         {{"metadata", {{"labels", labels}}},
          {"spec",
           {{"serviceAccountName", CsiServiceAccountName(cluster)},
            // The host's systemd places a scope by PID: the plugin's PIDs must be the host's.
            {"hostPID", true},
            {"containers", {csi, registrar}},
            {"volumes",
             {SocketVolume("socket-dir", plugin_dir, "DirectoryOrCreate"),
              SocketVolume("kubelet-dir", spec.kubelet_dir, "Directory"),
              SocketVolume("registration-dir", spec.kubelet_dir + "/plugins_registry", "Directory"),
              SocketVolume("fuse", "/dev/fuse", "CharDevice"),
              SocketVolume("state-dir", kCsiStateDir, "DirectoryOrCreate"),
              SocketVolume("host-systemd", "/run/systemd", "DirectoryOrCreate"),
              SocketVolume("host-cgroup", "/sys/fs/cgroup", "Directory")}}}}}}}}};
}

Json CsiDriver(const Json& cluster) {
  Json labels = CommonLabels("csi", ClusterName(cluster));
  labels["granary.io/cluster"] = kube::NamespaceOf(cluster) + "." + ClusterName(cluster);
  return {{"apiVersion", "storage.k8s.io/v1"},
          {"kind", "CSIDriver"},
          {"metadata", Meta(kCsiDriverName, "", labels)},
          {"spec",
           {{"attachRequired", false},
            {"podInfoOnMount", true},
            {"fsGroupPolicy", "None"},
            {"volumeLifecycleModes", {"Persistent"}}}}};
}

std::string CsiServiceAccountName(const Json& cluster) { return ClusterName(cluster) + "-csi"; }

std::string CsiClusterRoleBindingName(const Json& cluster) {
  // ':' cannot occur in a namespace or object name, so no two clusters share a binding.
  return fmt::format("{}:{}:{}", kCsiClusterRole, kube::NamespaceOf(cluster), ClusterName(cluster));
}

Json CsiServiceAccount(const Json& cluster) {
  return {{"apiVersion", "v1"},
          {"kind", "ServiceAccount"},
          {"metadata", Meta(CsiServiceAccountName(cluster), kube::NamespaceOf(cluster),
                            CommonLabels("csi", ClusterName(cluster)))}};
}

Json CsiClusterRoleBinding(const Json& cluster, const std::string& cluster_role) {
  Json labels = CommonLabels("csi", ClusterName(cluster));
  labels["granary.io/cluster"] = kube::NamespaceOf(cluster) + "." + ClusterName(cluster);
  return {{"apiVersion", "rbac.authorization.k8s.io/v1"},
          {"kind", "ClusterRoleBinding"},
          {"metadata", Meta(CsiClusterRoleBindingName(cluster), "", labels)},
          {"roleRef",
           {{"apiGroup", "rbac.authorization.k8s.io"},
            {"kind", "ClusterRole"},
            {"name", cluster_role}}},
          {"subjects",
           {{{"kind", "ServiceAccount"},
             {"name", CsiServiceAccountName(cluster)},
             {"namespace", kube::NamespaceOf(cluster)}}}}};
}

std::string MetanodeClaimName(const Json& cluster) {
  // Ordinal 0's claim: every member's looks the same, and member 0 exists at every size.
  return "data-" + ClusterName(cluster) + "-metanode-0";
}

std::string TopologyLabels(const Json& node, const PoolSpec& spec, const std::string& pool_name) {
  Json labels = node.value("metadata", Json::object()).value("labels", Json::object());
  std::string out = "host=" + kube::NameOf(node);
  for (const auto& [ours, key] : spec.topology_keys) {
    auto it = labels.find(key);
    if (it != labels.end() && it->is_string() && !it->get<std::string>().empty())
      out += "," + ours + "=" + it->get<std::string>();
  }
  if (!spec.gpu_node_selector.empty() && NodeMatches(node, spec.gpu_node_selector))
    out += ",gpu=true";
  out += ",pool=" + pool_name;
  return out;
}

bool NodeMatches(const Json& node, const std::map<std::string, std::string>& selector) {
  Json labels = node.value("metadata", Json::object()).value("labels", Json::object());
  for (const auto& [k, v] : selector) {
    auto it = labels.find(k);
    if (it == labels.end() || !it->is_string() || *it != v) return false;
  }
  return true;
}

Json DatanodeTopologyConfigMap(const Json& pool, const PoolSpec& spec,
                               const std::map<std::string, std::string>& topology) {
  Json data = Json::object();
  for (const auto& [node, labels] : topology) data[node] = labels;
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", Meta(spec.cluster_name + "-datanode-" + kube::NameOf(pool) + "-topology",
                            spec.cluster_namespace, CommonLabels("datanode", spec.cluster_name))},
          {"data", data}};
}

Json DatanodeDaemonSet(const Json& pool, const PoolSpec& spec, const ClusterSpec& cluster_spec,
                       const Json& cluster) {
  std::string pool_name = kube::NameOf(pool);
  std::string name = spec.cluster_name + "-datanode-" + pool_name;
  Json labels = CommonLabels("datanode", spec.cluster_name);
  labels["granary.io/pool"] = pool_name;
  Json selector = Selector("datanode", spec.cluster_name);
  selector["granary.io/pool"] = pool_name;
  // A DaemonSet has one pod template for every node, but each datanode needs its own node's
  // topology labels: the operator writes them per node into the topology ConfigMap and the
  // container reads its line at start.
  std::string script = fmt::format(
      "exec granary datanode --data /data --listen \"$POD_IP:{}\" --data-listen \"$POD_IP:{}\" "
      "--advertise \"$POD_IP\" --meta {} --admin 0.0.0.0:{} "
      "--labels \"$(cat /etc/granary/topology/$NODE_NAME 2>/dev/null || echo "
      "host=$NODE_NAME,pool={})\"",
      kDatanodePort, kDatanodeDataPort, MetanodeAddress(cluster, cluster_spec.metanode_replicas),
      kAdminPort, pool_name);
  Json container = {{"name", "datanode"},
                    {"image", cluster_spec.image},
                    {"imagePullPolicy", cluster_spec.image_pull_policy},
                    {"command", {"/bin/sh", "-c", script}},
                    {"env", {Env("NODE_NAME", "spec.nodeName"), Env("POD_IP", "status.podIP")}},
                    {"ports",
                     {{{"name", "grpc"}, {"containerPort", kDatanodePort}},
                      {{"name", "data"}, {"containerPort", kDatanodeDataPort}},
                      {{"name", "admin"}, {"containerPort", kAdminPort}}}},
                    {"readinessProbe", HttpProbe(kAdminPort, "/healthz")},
                    {"volumeMounts",
                     {{{"name", "data"}, {"mountPath", "/data"}},
                      {{"name", "topology"}, {"mountPath", "/etc/granary/topology"}}}}};
  if (!spec.resources.empty()) container["resources"] = spec.resources;
  Json pod_spec = {{"containers", Json::array({container})},
                   {"volumes",
                    {SocketVolume("data", spec.host_path, "DirectoryOrCreate"),
                     {{"name", "topology"},
                      {"configMap", {{"name", name + "-topology"}, {"optional", true}}}}}}};
  if (!spec.node_selector.empty()) {
    Json sel = Json::object();
    for (const auto& [k, v] : spec.node_selector) sel[k] = v;
    pod_spec["nodeSelector"] = sel;
  }
  if (!spec.tolerations.empty()) pod_spec["tolerations"] = spec.tolerations;
  return {
      {"apiVersion", "apps/v1"},
      {"kind", "DaemonSet"},
      {"metadata", Meta(name, spec.cluster_namespace, labels)},
      {"spec",
       {{"selector", {{"matchLabels", selector}}},
        {"updateStrategy", {{"type", "RollingUpdate"}, {"rollingUpdate", {{"maxUnavailable", 1}}}}},
        {"template", {{"metadata", {{"labels", labels}}}, {"spec", pod_spec}}}}}};
}

Json PoolStorageClass(const Json& pool, const PoolSpec& spec) {
  std::string pool_name = kube::NameOf(pool);
  Json labels = CommonLabels("storageclass", spec.cluster_name);
  labels["granary.io/pool"] = pool_name;
  return {{"apiVersion", "storage.k8s.io/v1"},
          {"kind", "StorageClass"},
          {"metadata", Meta("granary-" + pool_name, "", labels)},
          {"provisioner", kCsiDriverName},
          {"parameters", {{"pool", pool_name}}},
          {"reclaimPolicy", "Delete"},
          {"volumeBindingMode", "WaitForFirstConsumer"},
          {"allowVolumeExpansion", true}};
}

Json BucketSecret(const Json& bucket, const BucketSpec& spec, const std::string& access_key,
                  const std::string& secret_key, const std::string& endpoint) {
  Json labels = CommonLabels("bucket", kube::NameOf(bucket));
  return {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"metadata", Meta(spec.secret_name, kube::NamespaceOf(bucket), labels)},
          {"type", "Opaque"},
          {"data",
           {{"AWS_ACCESS_KEY_ID", Base64(access_key)},
            {"AWS_SECRET_ACCESS_KEY", Base64(secret_key)},
            {"AWS_ENDPOINT_URL", Base64(endpoint)},
            {"BUCKET_NAME", Base64(spec.bucket_name)}}}};
}

// Four lines of base64 beat pulling cpprest's conversions (and its macro clash) into this layer.
std::string Base64(const std::string& in) {
  static constexpr char kTable[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s : {18, 12, 6, 0}) out += kTable[(v >> s) & 63];
  }
  if (i < in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    if (i + 1 < in.size()) v |= uint8_t(in[i + 1]) << 8;
    out += kTable[(v >> 18) & 63];
    out += kTable[(v >> 12) & 63];
    out += i + 1 < in.size() ? kTable[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace granary::operators
