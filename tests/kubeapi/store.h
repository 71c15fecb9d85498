// The state and semantics of the test API server, without HTTP: objects per resource, the one
// resourceVersion counter, the event history watches replay, and compaction. Every call takes
// the store's lock; replies are {HTTP status, JSON body} with Kubernetes `Status` bodies for
// errors.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tests/kubeapi/kubeapi_server.h"

namespace granary::kubeapi {

using Json = nlohmann::json;

struct Reply {
  int code = 200;
  Json body;
};

// A Kubernetes `Status` failure body.
Reply ErrorReply(int code, const std::string& reason, const std::string& message);

struct ListQuery {
  std::string label_selector;
  std::string field_selector;
  int64_t limit = 0;
  std::string continue_token;
};

struct DeleteQuery {
  std::string propagation;  // Orphan | Background | Foreground ("" = Background)
  std::optional<std::string> precondition_rv;
  std::optional<std::string> precondition_uid;
};

struct WatchQuery {
  std::string ns;  // empty: all namespaces
  std::string resource_version;
  std::string label_selector;
  std::string field_selector;
  bool bookmarks = false;
};

// One open watch: where it is in the history and what it has asked for.
struct WatchState {
  const ResourceType* type = nullptr;
  WatchQuery query;
  uint64_t cursor = 0;  // last resourceVersion delivered
  bool initial_sent = false;
  bool dropped = false;
  bool bookmark_due = false;
  bool done = false;  // the stream ended (410 sent)
  std::chrono::milliseconds bookmark_interval{1000};
  std::chrono::steady_clock::time_point next_bookmark;
};

class Store {
 public:
  Store();

  void AddType(ResourceType type);
  // By group and plural; null when unknown.
  const ResourceType* FindType(const std::string& group, const std::string& plural) const;
  // Every registered resource (built-in and CRD-served), for the discovery documents.
  std::vector<ResourceType> Types() const;

  Reply Get(const ResourceType& t, const std::string& ns, const std::string& name);
  Reply List(const ResourceType& t, const std::string& ns, const ListQuery& q);
  Reply Create(const ResourceType& t, const std::string& ns, Json body);
  // `status`: the /status subresource (only .status changes) — otherwise .status is kept.
  Reply Update(const ResourceType& t, const std::string& ns, const std::string& name, Json body,
               bool status);
  // RFC 7386 JSON merge patch, then the same rules as Update.
  Reply MergePatch(const ResourceType& t, const std::string& ns, const std::string& name,
                   const Json& patch, bool status);
  Reply Delete(const ResourceType& t, const std::string& ns, const std::string& name,
               const DeleteQuery& q);

  // Watch: validates the start point (410 when compacted away) and registers the watch.
  std::optional<Reply> OpenWatch(WatchState& w);
  void CloseWatch(WatchState& w);
  // Blocks until there are lines to send for `w` (JSON watch events), the watch was dropped,
  // or `deadline`. Returns the lines; empty with w.dropped or w.done set means end the stream.
  std::vector<std::string> NextLines(WatchState& w, std::chrono::steady_clock::time_point deadline);

  void Compact();
  void DropWatches();
  void SendBookmarks();
  void Shutdown();  // wakes every watch; they end
  Status MarkReady(const std::string& group, const std::string& plural, const std::string& ns,
                   const std::string& name, int replicas);
  Result<Json> Object(const std::string& group, const std::string& plural, const std::string& ns,
                      const std::string& name) const;
  // Creates and spec updates of `plural.group` in `ns` answer `reply` (see KubeApiServer).
  void RefuseWrites(const std::string& group, const std::string& plural, const std::string& ns,
                    Reply reply);
  void ClearRefusals();
  size_t open_watches() const;
  uint64_t resource_version() const;

 private:
  struct Event {
    uint64_t rv;
    std::string type_key;
    std::string type;  // ADDED | MODIFIED | DELETED
    Json object;
    Json previous;  // before a MODIFIED, for selector transitions
  };
  using Objects = std::map<std::string, Json>;  // "ns/name" → object

  static std::string TypeKey(const std::string& group, const std::string& plural);
  Objects& ObjectsOf(const ResourceType& t);
  Reply WriteLocked(const ResourceType& t, const std::string& ns, const std::string& name,
                    Json body, bool status);
  // `previous`: the object before a MODIFIED (null: same labels as `object`).
  void RecordLocked(const ResourceType& t, const std::string& event_type, const Json& object,
                    const Json& previous = Json());
  void RemoveLocked(const ResourceType& t, const std::string& key, const std::string& propagation);
  void CollectGarbageLocked();
  bool WatchMatches(const WatchState& w, const Json& object) const;
  void MaybeRegisterCrdLocked(const Json& crd);
  std::optional<Reply> RefusedLocked(const ResourceType& t, const std::string& ns,
                                     const std::string& name) const;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, ResourceType> types_;
  std::map<std::string, Objects> objects_;
  std::deque<Event> history_;
  uint64_t rv_ = 1;
  uint64_t compacted_rv_ = 0;
  uint64_t uid_counter_ = 0;
  std::vector<WatchState*> watches_;
  bool shutdown_ = false;
  std::map<std::string, Reply> refusals_;  // "plural.group/ns" → the answer to a write
};

}  // namespace granary::kubeapi
