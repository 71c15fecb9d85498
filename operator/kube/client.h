// A Kubernetes API client on cpprestsdk. Every call is synchronous (it blocks the calling
// thread, never a cpprest pool thread) and returns a Status: API errors are decoded from the
// server's `Status` object into granary.Code, keeping Kubernetes' reason and message:
//   NotFound → NOT_FOUND, AlreadyExists → ALREADY_EXISTS, Conflict (stale resourceVersion) →
//   STALE_GENERATION (re-read and retry), Expired/Gone (410) → STALE_EPOCH (relist),
//   Invalid/BadRequest → INVALID_ARGUMENT, Unauthorized/Forbidden → PERMISSION_DENIED,
//   TooManyRequests/ServiceUnavailable/timeouts/refused connections → UNAVAILABLE.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "operator/kube/config.h"
#include "operator/kube/resource.h"

namespace granary::kube {

// The granary.Code for a Kubernetes API error (HTTP status + Status.reason).
Code CodeFromApi(int http_status, std::string_view reason);
// Decodes an error reply (a `Status` object, or anything else a proxy may return) into a Status
// with message "<Reason> (HTTP <code>): <message>".
Status StatusFromApi(int http_status, const std::string& body);

struct ListOptions {
  std::string label_selector;  // "app=granary,tier!=cache"
  std::string field_selector;  // "metadata.name=x"
  int64_t limit = 500;         // page size; every page is fetched, following `continue`
};

struct ObjectList {
  std::vector<Json> items;
  std::string resource_version;  // of the list: where a watch starts
};

struct DeleteOptions {
  std::string propagation_policy;  // "Background" | "Foreground" | "Orphan" | "" (server default)
  std::string precondition_resource_version;
};

struct WatchOptions {
  std::string resource_version;  // "" or "0": current state as ADDED events first
  std::string label_selector;
  std::string field_selector;
  bool allow_bookmarks = true;
  int timeout_seconds = 300;  // the server ends the stream after this; the caller reconnects
};

struct WatchEvent {
  enum class Type { kAdded, kModified, kDeleted, kBookmark };
  Type type;
  Json object;
};

// One open watch stream (chunked JSON lines).
class WatchStream {
 public:
  virtual ~WatchStream() = default;
  // Blocks for the next event. nullopt: the server ended the stream cleanly (reconnect from the
  // last resourceVersion). An ERROR event comes back as its Status (410 → STALE_EPOCH); a cut
  // connection as UNAVAILABLE.
  virtual Result<std::optional<WatchEvent>> Next() = 0;
  // From any thread: makes a blocked Next() return (UNAVAILABLE).
  virtual void Cancel() = 0;
};

class Client {
 public:
  static Result<std::unique_ptr<Client>> Create(Config config);
  ~Client();

  const Config& config() const;

  Result<Json> Get(const Resource& r, std::string_view ns, std::string_view name);
  // Every page, following `continue`; a continue token that expired mid-way (410) restarts the
  // list once from the beginning.
  Result<ObjectList> List(const Resource& r, std::string_view ns, const ListOptions& options = {});
  // The namespace comes from the object's metadata.
  Result<Json> Create(const Resource& r, const Json& object);
  // PUT with the object's metadata.resourceVersion: STALE_GENERATION when it is not current.
  Result<Json> Update(const Resource& r, const Json& object);
  Result<Json> UpdateStatus(const Resource& r, const Json& object);
  // JSON merge patch (RFC 7386) of the object or of its status subresource.
  Result<Json> MergePatch(const Resource& r, std::string_view ns, std::string_view name,
                          const Json& patch, bool status = false);
  Status Delete(const Resource& r, std::string_view ns, std::string_view name,
                const DeleteOptions& options = {});
  // Read-modify-write: reads the object, applies `mutate`, writes it with its resourceVersion;
  // on 409 re-reads and tries again (up to `attempts`). `mutate` returning an error aborts.
  // `status`: write the status subresource.
  Result<Json> Modify(const Resource& r, std::string_view ns, std::string_view name,
                      const std::function<Status(Json&)>& mutate, bool status = false,
                      int attempts = 5);

  Result<std::unique_ptr<WatchStream>> Watch(const Resource& r, std::string_view ns,
                                             const WatchOptions& options);

  // Requests sent so far (for tests and metrics).
  uint64_t requests() const;

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace granary::kube
