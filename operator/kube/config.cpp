#include "operator/kube/config.h"

#include <cpprest/asyncrt_utils.h>
#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace granary::kube {
namespace {

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("read " + path + ": cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string TrimNewlines(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

Result<std::string> Base64(const std::string& field, const std::string& text) {
  try {
    auto bytes = utility::conversions::from_base64(text);
    return std::string(bytes.begin(), bytes.end());
  } catch (const std::exception& e) {
    return InvalidArgument(fmt::format("{}: not base64: {}", field, e.what()));
  }
}

// A kubeconfig value given inline (`<field>-data`, base64) or as a file (`<field>`).
Result<std::string> DataOrFile(const YAML::Node& node, const std::string& field,
                               const std::filesystem::path& base) {
  if (node[field + "-data"])
    return Base64(field + "-data", node[field + "-data"].as<std::string>());
  if (node[field]) {
    std::filesystem::path p = node[field].as<std::string>();
    if (p.is_relative()) p = base / p;
    return ReadFile(p.string());
  }
  return std::string();
}

YAML::Node Named(const YAML::Node& list, const std::string& name, const char* inner) {
  if (list && list.IsSequence()) {
    for (const auto& item : list) {
      if (item["name"] && item["name"].as<std::string>() == name) return item[inner];
    }
  }
  return YAML::Node();
}

}  // namespace

Result<Config> InClusterConfig(const std::string& sa_dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (!host || !port || !*host || !*port) {
    return Status(Code::PRECONDITION_FAILED,
                  "in-cluster config: KUBERNETES_SERVICE_HOST/PORT are not set");
  }
  Config c;
  std::string h = host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";  // IPv6
  c.server = fmt::format("https://{}:{}", h, port);
  c.token_file = sa_dir + "/token";
  auto token = ReadFile(c.token_file);
  if (!token.ok()) return token.status().WithContext("in-cluster config");
  c.token = TrimNewlines(*token);
  auto ca = ReadFile(sa_dir + "/ca.crt");
  if (!ca.ok()) return ca.status().WithContext("in-cluster config");
  c.ca_pem = *ca;
  if (auto ns = ReadFile(sa_dir + "/namespace"); ns.ok()) c.ns = TrimNewlines(*ns);
  return c;
}

Result<Config> LoadKubeconfig(const std::string& path, const std::string& context) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const std::exception& e) {
    return InvalidArgument(fmt::format("kubeconfig {}: {}", path, e.what()));
  }
  auto base = std::filesystem::path(path).parent_path();
  try {
    std::string ctx_name = context.empty() ? root["current-context"].as<std::string>("") : context;
    if (ctx_name.empty())
      return InvalidArgument(fmt::format("kubeconfig {}: no current-context", path));
    YAML::Node ctx = Named(root["contexts"], ctx_name, "context");
    if (!ctx) return NotFound(fmt::format("kubeconfig {}: context {} not found", path, ctx_name));
    std::string cluster_name = ctx["cluster"].as<std::string>("");
    YAML::Node cluster = Named(root["clusters"], cluster_name, "cluster");
    if (!cluster || !cluster["server"]) {
      return NotFound(fmt::format("kubeconfig {}: cluster {} not found", path, cluster_name));
    }
    Config c;
    c.server = cluster["server"].as<std::string>();
    while (!c.server.empty() && c.server.back() == '/') c.server.pop_back();
    c.insecure_skip_tls_verify = cluster["insecure-skip-tls-verify"].as<bool>(false);
    auto ca = DataOrFile(cluster, "certificate-authority", base);
    if (!ca.ok()) return ca.status().WithContext("kubeconfig " + path);
    c.ca_pem = *ca;
    c.ns = ctx["namespace"].as<std::string>("default");
    YAML::Node user = Named(root["users"], ctx["user"].as<std::string>(""), "user");
    if (user) {
      c.token = user["token"].as<std::string>("");
      if (user["tokenFile"]) {
        c.token_file = user["tokenFile"].as<std::string>();
        auto t = ReadFile(c.token_file);
        if (!t.ok()) return t.status().WithContext("kubeconfig " + path);
        c.token = TrimNewlines(*t);
      }
      auto cert = DataOrFile(user, "client-certificate", base);
      if (!cert.ok()) return cert.status().WithContext("kubeconfig " + path);
      auto key = DataOrFile(user, "client-key", base);
      if (!key.ok()) return key.status().WithContext("kubeconfig " + path);
      c.client_cert_pem = *cert;
      c.client_key_pem = *key;
      if (c.client_cert_pem.empty() != c.client_key_pem.empty()) {
        return InvalidArgument(fmt::format(
            "kubeconfig {}: a client certificate needs its key (and the key its certificate)",
            path));
      }
    }
    return c;
  } catch (const YAML::Exception& e) {
    return InvalidArgument(fmt::format("kubeconfig {}: {}", path, e.what()));
  }
}

Result<Config> LoadConfig(const std::string& kubeconfig) {
  if (!kubeconfig.empty()) return LoadKubeconfig(kubeconfig);
  if (const char* env = std::getenv("KUBECONFIG"); env && *env) {
    std::string first = env;
    return LoadKubeconfig(first.substr(0, first.find(':')));
  }
  auto in_cluster = InClusterConfig();
  if (in_cluster.ok() || in_cluster.status().code() != Code::PRECONDITION_FAILED) {
    return in_cluster;
  }
  const char* home = std::getenv("HOME");
  if (!home) return in_cluster.status();
  return LoadKubeconfig(std::string(home) + "/.kube/config");
}

}  // namespace granary::kube
