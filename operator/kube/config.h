// Where the API server is and how to prove who we are: from the pod's service account
// (in-cluster) or from a kubeconfig file.
#pragma once

#include <string>

#include "common/status.h"

namespace granary::kube {

inline constexpr const char* kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

struct Config {
  std::string server;  // "https://10.0.0.1:443"
  std::string ca_pem;  // trusted CA certificates (PEM); empty: system roots
  bool insecure_skip_tls_verify = false;
  std::string token;       // bearer token
  std::string token_file;  // re-read periodically (bound service-account tokens rotate)
  std::string client_cert_pem;
  std::string client_key_pem;
  std::string ns = "default";  // the namespace of the context / of the pod
};

// KUBERNETES_SERVICE_HOST/PORT plus token, ca.crt and namespace from `sa_dir`.
// PreconditionFailed when not running in a cluster.
Result<Config> InClusterConfig(const std::string& sa_dir = kServiceAccountDir);

// `context` empty: the file's current-context. Relative file paths are relative to the
// kubeconfig's folder, as kubectl reads them.
Result<Config> LoadKubeconfig(const std::string& path, const std::string& context = "");

// `kubeconfig` if given, else $KUBECONFIG, else in-cluster, else ~/.kube/config.
Result<Config> LoadConfig(const std::string& kubeconfig = "");

}  // namespace granary::kube
