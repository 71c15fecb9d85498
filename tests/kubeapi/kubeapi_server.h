// A small Kubernetes API server for tests (no etcd, no kubelet, no controllers). It speaks the
// REST protocol the real one speaks and is strict where the real one is: resourceVersion on
// every object and 409 on a stale write, generation bumped only by spec changes, deletion with
// finalizers only marks the object, the status subresource, label/field selectors, list
// pagination, watch streams (chunked JSON lines) with bookmarks, and 410 Gone after a simulated
// compaction. Tests drive what no server does on its own: Compact(), DropWatches(), MarkReady().
// Usable in-process (gtest) and as the standalone `granary-kubeapi` binary, whose /testing/*
// endpoints expose the same hooks over HTTP. Model and simplifications: docs/operator-runtime.md.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"

namespace granary::kubeapi {

// One REST resource ("plural.group"). Core resources have an empty group.
struct ResourceType {
  std::string group;
  std::string version;
  std::string plural;
  std::string kind;
  bool namespaced = true;
  bool has_status = true;  // a /status subresource: spec writes keep status and vice versa
};

struct ServerOptions {
  std::string listen_host = "127.0.0.1";
  uint16_t port = 0;         // 0 picks a free port
  std::string bearer_token;  // non-empty: every request must carry `Authorization: Bearer <t>`
  int bookmark_interval_ms = 1000;
  // Non-empty: serve HTTPS with this certificate chain and key (PEM).
  std::string tls_cert_pem;
  std::string tls_key_pem;
  // Non-empty (with TLS): client certificates signed by this CA authenticate like the token.
  std::string client_ca_pem;
};

class KubeApiServer {
 public:
  // Starts serving with the built-in resources (core v1, apps/v1, coordination.k8s.io/v1,
  // apiextensions.k8s.io/v1 CRDs, and granary.io/v1alpha1).
  static Result<std::unique_ptr<KubeApiServer>> Start(ServerOptions options = {});
  ~KubeApiServer();

  // "http://127.0.0.1:PORT" (https with TLS).
  std::string url() const;
  uint16_t port() const;

  // Registers a resource (a CRD becomes one automatically when its CustomResourceDefinition is
  // created through the API).
  void AddResource(ResourceType type);

  // Simulated etcd compaction: every resourceVersion seen so far becomes too old. Open watches
  // get an ERROR event with a 410 Status and close; a later watch or continue token from before
  // gets 410 Gone.
  void Compact();
  // Cuts every open watch connection mid-stream (no final chunk), as a restarting API server
  // or a load balancer would.
  void DropWatches();
  // Sends a BOOKMARK now on every watch that asked for them.
  void SendBookmarks();
  // Plays the kubelet / workload controllers: Pods become Running+Ready; DaemonSets,
  // StatefulSets and Deployments report all replicas ready for their current generation.
  // `group` is "" for core. NotFound when the object does not exist.
  Status MarkReady(const std::string& group, const std::string& plural, const std::string& ns,
                   const std::string& name, int replicas = -1);

  // Plays an admission webhook, PodSecurity or RBAC refusing writes: every create and spec
  // update of `plural.group` in `ns` ("" for cluster-scoped) answers `code` with a Kubernetes
  // Status of `reason` and `message` ("{name}" in it becomes the object's name), until
  // ClearRefusals().
  void RefuseWrites(const std::string& group, const std::string& plural, const std::string& ns,
                    int code, const std::string& reason, const std::string& message);
  void ClearRefusals();

  // Direct reads for assertions (no HTTP). NotFound when absent.
  Result<nlohmann::json> Object(const std::string& group, const std::string& plural,
                                const std::string& ns, const std::string& name) const;
  size_t open_watches() const;
  uint64_t resource_version() const;

  void Stop();

 private:
  struct Impl;
  explicit KubeApiServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace granary::kubeapi
