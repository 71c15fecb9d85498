#include "tests/kubeapi/store.h"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <random>
#include <set>

namespace granary::kubeapi {
namespace {

std::string Now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string Trim(const std::string& s) {
  auto b = s.find_first_not_of(' ');
  auto e = s.find_last_not_of(' ');
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

// Splits on commas outside parentheses ("a in (x,y),b" → {"a in (x,y)", "b"}).
std::vector<std::string> SplitTerms(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  int depth = 0;
  for (char c : s) {
    if (c == '(') depth++;
    if (c == ')') depth--;
    if (c == ',' && depth == 0) {
      out.push_back(Trim(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!Trim(cur).empty()) out.push_back(Trim(cur));
  return out;
}

// Kubernetes label selector: k=v, k==v, k!=v, k, !k, k in (a,b), k notin (a,b).
struct Requirement {
  enum Op { kEq, kNe, kExists, kNotExists, kIn, kNotIn } op;
  std::string key;
  std::set<std::string> values;
};

Result<std::vector<Requirement>> ParseLabelSelector(const std::string& text) {
  std::vector<Requirement> reqs;
  for (const std::string& term : SplitTerms(text)) {
    Requirement r;
    size_t p;
    if (term.empty()) continue;
    if (term[0] == '!') {
      r.op = Requirement::kNotExists;
      r.key = Trim(term.substr(1));
    } else if ((p = term.find("!=")) != std::string::npos) {
      r.op = Requirement::kNe;
      r.key = Trim(term.substr(0, p));
      r.values.insert(Trim(term.substr(p + 2)));
    } else if ((p = term.find("==")) != std::string::npos) {
      r.op = Requirement::kEq;
      r.key = Trim(term.substr(0, p));
      r.values.insert(Trim(term.substr(p + 2)));
    } else if ((p = term.find('=')) != std::string::npos) {
      r.op = Requirement::kEq;
      r.key = Trim(term.substr(0, p));
      r.values.insert(Trim(term.substr(p + 1)));
    } else if ((p = term.find(" notin ")) != std::string::npos ||
               (p = term.find(" in ")) != std::string::npos) {
      bool notin = term.compare(p, 7, " notin ") == 0;
      r.op = notin ? Requirement::kNotIn : Requirement::kIn;
      r.key = Trim(term.substr(0, p));
      std::string rest = Trim(term.substr(p + (notin ? 7 : 4)));
      if (rest.size() < 2 || rest.front() != '(' || rest.back() != ')') {
        return InvalidArgument("unable to parse requirement: " + term);
      }
      for (auto& v : SplitTerms(rest.substr(1, rest.size() - 2))) r.values.insert(v);
    } else {
      r.op = Requirement::kExists;
      r.key = term;
    }
    if (r.key.empty()) return InvalidArgument("unable to parse requirement: " + term);
    reqs.push_back(std::move(r));
  }
  return reqs;
}

bool LabelsMatch(const std::vector<Requirement>& reqs, const Json& object) {
  const Json* labels = nullptr;
  if (object.contains("metadata") && object["metadata"].contains("labels")) {
    labels = &object["metadata"]["labels"];
  }
  for (const auto& r : reqs) {
    bool has = labels && labels->contains(r.key);
    std::string v = has ? (*labels)[r.key].get<std::string>() : "";
    bool in = has && r.values.count(v) > 0;
    switch (r.op) {
      case Requirement::kEq:
      case Requirement::kIn:
        if (!in) return false;
        break;
      case Requirement::kNe:
      case Requirement::kNotIn:
        if (in) return false;
        break;
      case Requirement::kExists:
        if (!has) return false;
        break;
      case Requirement::kNotExists:
        if (has) return false;
        break;
    }
  }
  return true;
}

// Field selectors: metadata.name and metadata.namespace with = / == / !=.
Result<bool> FieldsMatch(const std::string& text, const Json& object) {
  for (const std::string& term : SplitTerms(text)) {
    bool negate = term.find("!=") != std::string::npos;
    size_t p = term.find(negate ? "!=" : "=");
    if (p == std::string::npos) return InvalidArgument("invalid field selector: " + term);
    std::string key = Trim(term.substr(0, p));
    std::string value = Trim(term.substr(p + (negate ? 2 : (term.compare(p, 2, "==") ? 1 : 2))));
    std::string actual;
    if (key == "metadata.name") {
      actual = object["metadata"].value("name", "");
    } else if (key == "metadata.namespace") {
      actual = object["metadata"].value("namespace", "");
    } else {
      return InvalidArgument(fmt::format("field label not supported: {}", key));
    }
    if ((actual == value) == negate) return false;
  }
  return true;
}

// Everything but metadata and status: what a generation counts.
Json SpecOf(Json object) {
  object.erase("metadata");
  object.erase("status");
  object.erase("kind");
  object.erase("apiVersion");
  return object;
}

std::string ApiVersion(const ResourceType& t) {
  return t.group.empty() ? t.version : t.group + "/" + t.version;
}

std::string KindDescription(const ResourceType& t) {
  return t.group.empty() ? t.plural : t.plural + "." + t.group;
}

std::string NewUid(uint64_t n) {
  static std::mt19937_64 rng(std::random_device{}());
  return fmt::format("{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}", static_cast<uint32_t>(rng()),
                     static_cast<uint16_t>(rng()), n & 0xfff, (n >> 12) & 0xfff,
                     rng() & 0xffffffffffffULL);
}

std::vector<std::string> Finalizers(const Json& object) {
  std::vector<std::string> out;
  const Json& m = object["metadata"];
  if (m.contains("finalizers") && m["finalizers"].is_array()) {
    for (const auto& f : m["finalizers"]) out.push_back(f.get<std::string>());
  }
  return out;
}

}  // namespace

Reply ErrorReply(int code, const std::string& reason, const std::string& message) {
  return {code, Json{{"kind", "Status"},
                     {"apiVersion", "v1"},
                     {"metadata", Json::object()},
                     {"status", "Failure"},
                     {"message", message},
                     {"reason", reason},
                     {"code", code}}};
}

Store::Store() {
  auto add = [this](std::string group, std::string version, std::string plural, std::string kind,
                    bool namespaced, bool has_status) {
    AddType({std::move(group), std::move(version), std::move(plural), std::move(kind), namespaced,
             has_status});
  };
  add("", "v1", "pods", "Pod", true, true);
  add("", "v1", "services", "Service", true, true);
  add("", "v1", "configmaps", "ConfigMap", true, false);
  add("", "v1", "secrets", "Secret", true, false);
  add("", "v1", "events", "Event", true, false);
  add("", "v1", "serviceaccounts", "ServiceAccount", true, false);
  add("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", true, true);
  add("", "v1", "persistentvolumes", "PersistentVolume", false, true);
  add("", "v1", "namespaces", "Namespace", false, true);
  add("", "v1", "nodes", "Node", false, true);
  add("apps", "v1", "daemonsets", "DaemonSet", true, true);
  add("apps", "v1", "statefulsets", "StatefulSet", true, true);
  add("apps", "v1", "deployments", "Deployment", true, true);
  add("coordination.k8s.io", "v1", "leases", "Lease", true, false);
  add("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", true, true);
  add("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", false,
      true);
  add("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", false, false);
  add("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", false, false);
  add("rbac.authorization.k8s.io", "v1", "roles", "Role", true, false);
  add("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", true, false);
  add("storage.k8s.io", "v1", "storageclasses", "StorageClass", false, false);
  add("storage.k8s.io", "v1", "csidrivers", "CSIDriver", false, false);
  add("granary.io", "v1alpha1", "storageclusters", "StorageCluster", true, true);
  add("granary.io", "v1alpha1", "storagepools", "StoragePool", false, true);
  add("granary.io", "v1alpha1", "buckets", "Bucket", true, true);
  add("granary.io", "v1alpha1", "datasetwarmups", "DatasetWarmup", true, true);
}

std::string Store::TypeKey(const std::string& group, const std::string& plural) {
  return plural + "." + group;
}

void Store::AddType(ResourceType type) {
  std::lock_guard lock(mu_);
  types_[TypeKey(type.group, type.plural)] = std::move(type);
}

const ResourceType* Store::FindType(const std::string& group, const std::string& plural) const {
  std::lock_guard lock(mu_);
  auto it = types_.find(TypeKey(group, plural));
  return it == types_.end() ? nullptr : &it->second;  // map nodes are stable
}

std::vector<ResourceType> Store::Types() const {
  std::lock_guard lock(mu_);
  std::vector<ResourceType> out;
  for (const auto& [key, type] : types_) out.push_back(type);
  return out;
}

Store::Objects& Store::ObjectsOf(const ResourceType& t) {
  return objects_[TypeKey(t.group, t.plural)];
}

void Store::RecordLocked(const ResourceType& t, const std::string& event_type, const Json& object,
                         const Json& previous) {
  history_.push_back({rv_, TypeKey(t.group, t.plural), event_type, object,
                      previous.is_null() ? object : previous});
  cv_.notify_all();
}

Reply Store::Get(const ResourceType& t, const std::string& ns, const std::string& name) {
  std::lock_guard lock(mu_);
  auto& objs = ObjectsOf(t);
  auto it = objs.find((t.namespaced ? ns : "") + "/" + name);
  if (it == objs.end()) {
    return ErrorReply(404, "NotFound",
                      fmt::format("{} \"{}\" not found", KindDescription(t), name));
  }
  return {200, it->second};
}

Reply Store::List(const ResourceType& t, const std::string& ns, const ListQuery& q) {
  auto reqs = ParseLabelSelector(q.label_selector);
  if (!reqs.ok()) return ErrorReply(400, "BadRequest", reqs.status().message());
  std::lock_guard lock(mu_);
  // The continue token is "<rv>/<last key>": after a compaction past <rv> it has expired, as
  // etcd's would.
  std::string after;
  uint64_t list_rv = rv_;
  if (!q.continue_token.empty()) {
    auto slash = q.continue_token.find('/');
    if (slash == std::string::npos) return ErrorReply(400, "BadRequest", "invalid continue token");
    list_rv = std::stoull(q.continue_token.substr(0, slash));
    after = q.continue_token.substr(slash + 1);
    if (list_rv < compacted_rv_) {
      return ErrorReply(410, "Expired",
                        "The provided continue parameter is too old to display a consistent list "
                        "result. You can start a new list without the continue parameter.");
    }
  }
  Json items = Json::array();
  std::string next;
  auto& objs = ObjectsOf(t);
  for (auto it = after.empty() ? objs.begin() : objs.upper_bound(after); it != objs.end(); ++it) {
    const Json& o = it->second;
    if (!ns.empty() && o["metadata"].value("namespace", "") != ns) continue;
    if (!LabelsMatch(*reqs, o)) continue;
    auto fields = FieldsMatch(q.field_selector, o);
    if (!fields.ok()) return ErrorReply(400, "BadRequest", fields.status().message());
    if (!*fields) continue;
    if (q.limit > 0 && static_cast<int64_t>(items.size()) == q.limit) {
      next = fmt::format("{}/{}", list_rv, std::prev(it)->first);
      break;
    }
    items.push_back(o);
  }
  Json meta = {{"resourceVersion", std::to_string(list_rv)}};
  if (!next.empty()) meta["continue"] = next;
  return {200, Json{{"kind", t.kind + "List"},
                    {"apiVersion", ApiVersion(t)},
                    {"metadata", meta},
                    {"items", items}}};
}

Reply Store::Create(const ResourceType& t, const std::string& ns, Json body) {
  if (!body.is_object()) return ErrorReply(400, "BadRequest", "body is not a JSON object");
  std::lock_guard lock(mu_);
  Json& meta = body["metadata"];
  if (!meta.is_object()) meta = Json::object();
  std::string name = meta.value("name", "");
  if (name.empty() && !meta.value("generateName", "").empty()) {
    name = fmt::format("{}{:05x}", meta["generateName"].get<std::string>(), ++uid_counter_);
    meta["name"] = name;
  }
  if (name.empty()) {
    return ErrorReply(422, "Invalid",
                      fmt::format("{} is invalid: metadata.name: Required value", t.kind));
  }
  if (t.namespaced) {
    std::string body_ns = meta.value("namespace", "");
    if (!body_ns.empty() && body_ns != ns) {
      return ErrorReply(400, "BadRequest",
                        "the namespace of the provided object does not match the namespace sent "
                        "on the request");
    }
    meta["namespace"] = ns;
  } else {
    meta.erase("namespace");
  }
  if (!meta.value("resourceVersion", "").empty()) {
    return ErrorReply(400, "BadRequest",
                      "resourceVersion should not be set on objects to be created");
  }
  if (auto refused = RefusedLocked(t, ns, name)) return *refused;
  std::string key = (t.namespaced ? ns : "") + "/" + name;
  auto& objs = ObjectsOf(t);
  if (objs.count(key)) {
    return ErrorReply(409, "AlreadyExists",
                      fmt::format("{} \"{}\" already exists", KindDescription(t), name));
  }
  body["kind"] = t.kind;
  body["apiVersion"] = ApiVersion(t);
  if (t.has_status) body.erase("status");
  meta["uid"] = NewUid(++uid_counter_);
  meta["creationTimestamp"] = Now();
  meta["generation"] = 1;
  meta.erase("deletionTimestamp");
  meta["resourceVersion"] = std::to_string(++rv_);
  objs[key] = body;
  RecordLocked(t, "ADDED", body);
  if (t.plural == "customresourcedefinitions") MaybeRegisterCrdLocked(body);
  return {201, body};
}

Reply Store::Update(const ResourceType& t, const std::string& ns, const std::string& name,
                    Json body, bool status) {
  if (!body.is_object()) return ErrorReply(400, "BadRequest", "body is not a JSON object");
  std::lock_guard lock(mu_);
  return WriteLocked(t, ns, name, std::move(body), status);
}

Reply Store::MergePatch(const ResourceType& t, const std::string& ns, const std::string& name,
                        const Json& patch, bool status) {
  if (!patch.is_object()) return ErrorReply(400, "BadRequest", "patch is not a JSON object");
  std::lock_guard lock(mu_);
  auto& objs = ObjectsOf(t);
  auto it = objs.find((t.namespaced ? ns : "") + "/" + name);
  if (it == objs.end()) {
    return ErrorReply(404, "NotFound",
                      fmt::format("{} \"{}\" not found", KindDescription(t), name));
  }
  Json merged = it->second;
  merged.merge_patch(patch);
  // A patch carries resourceVersion only as a precondition; without one it applies to the
  // current version.
  if (!(patch.contains("metadata") && patch["metadata"].contains("resourceVersion"))) {
    merged["metadata"]["resourceVersion"] = it->second["metadata"]["resourceVersion"];
  }
  return WriteLocked(t, ns, name, std::move(merged), status);
}

Reply Store::WriteLocked(const ResourceType& t, const std::string& ns, const std::string& name,
                         Json body, bool status) {
  if (!status) {
    if (auto refused = RefusedLocked(t, ns, name)) return *refused;
  }
  auto& objs = ObjectsOf(t);
  std::string key = (t.namespaced ? ns : "") + "/" + name;
  auto it = objs.find(key);
  if (it == objs.end()) {
    return ErrorReply(404, "NotFound",
                      fmt::format("{} \"{}\" not found", KindDescription(t), name));
  }
  Json& old = it->second;
  Json& meta = body["metadata"];
  if (!meta.is_object()) meta = Json::object();
  if (meta.value("name", name) != name) {
    return ErrorReply(400, "BadRequest",
                      "the name of the object does not match the name on the URL");
  }
  std::string rv = meta.value("resourceVersion", "");
  if (rv.empty()) {
    return ErrorReply(422, "Invalid",
                      fmt::format("{} \"{}\" is invalid: metadata.resourceVersion: Invalid value: "
                                  "0: must be specified for an update",
                                  t.kind, name));
  }
  if (rv != old["metadata"]["resourceVersion"].get<std::string>()) {
    return ErrorReply(409, "Conflict",
                      fmt::format("Operation cannot be fulfilled on {} \"{}\": the object has been "
                                  "modified; please apply your changes to the latest version and "
                                  "try again",
                                  KindDescription(t), name));
  }
  Json next;
  if (status) {
    if (!t.has_status)
      return ErrorReply(404, "NotFound", "the server could not find the requested resource");
    next = old;
    if (body.contains("status")) {
      next["status"] = body["status"];
    } else {
      next.erase("status");
    }
  } else {
    next = body;
    if (t.has_status) {
      if (old.contains("status")) {
        next["status"] = old["status"];
      } else {
        next.erase("status");
      }
    }
    // What the server owns in metadata survives any write.
    for (const char* f : {"uid", "creationTimestamp", "deletionTimestamp", "generation"}) {
      if (old["metadata"].contains(f)) {
        next["metadata"][f] = old["metadata"][f];
      } else {
        next["metadata"].erase(f);
      }
    }
    next["metadata"]["name"] = name;
    if (t.namespaced) next["metadata"]["namespace"] = ns;
    if (old["metadata"].contains("deletionTimestamp")) {
      auto before = Finalizers(old);
      for (const auto& f : Finalizers(next)) {
        if (std::find(before.begin(), before.end(), f) == before.end()) {
          return ErrorReply(
              422, "Invalid",
              fmt::format("{} \"{}\" is invalid: metadata.finalizers: Forbidden: no "
                          "new finalizers can be added if the object is being deleted",
                          t.kind, name));
        }
      }
    }
    if (SpecOf(next) != SpecOf(old)) {
      next["metadata"]["generation"] = old["metadata"].value("generation", 1) + 1;
    }
  }
  next["kind"] = t.kind;
  next["apiVersion"] = ApiVersion(t);
  // A no-op write keeps the resourceVersion and sends no event, as the real server does.
  Json old_cmp = old;
  if (next == old_cmp) return {200, old};
  next["metadata"]["resourceVersion"] = std::to_string(++rv_);
  old = next;
  RecordLocked(t, "MODIFIED", next, old_cmp);
  Json result = next;
  if (next["metadata"].contains("deletionTimestamp") && Finalizers(next).empty()) {
    RemoveLocked(t, key, "Background");
  }
  return {200, result};
}

Reply Store::Delete(const ResourceType& t, const std::string& ns, const std::string& name,
                    const DeleteQuery& q) {
  std::lock_guard lock(mu_);
  auto& objs = ObjectsOf(t);
  std::string key = (t.namespaced ? ns : "") + "/" + name;
  auto it = objs.find(key);
  if (it == objs.end()) {
    return ErrorReply(404, "NotFound",
                      fmt::format("{} \"{}\" not found", KindDescription(t), name));
  }
  Json& obj = it->second;
  if ((q.precondition_rv && *q.precondition_rv != obj["metadata"]["resourceVersion"]) ||
      (q.precondition_uid && *q.precondition_uid != obj["metadata"]["uid"])) {
    return ErrorReply(409, "Conflict",
                      fmt::format("Operation cannot be fulfilled on {} \"{}\": Precondition failed",
                                  KindDescription(t), name));
  }
  if (!Finalizers(obj).empty()) {
    if (!obj["metadata"].contains("deletionTimestamp")) {
      obj["metadata"]["deletionTimestamp"] = Now();
      obj["metadata"]["deletionGracePeriodSeconds"] = 0;
      obj["metadata"]["resourceVersion"] = std::to_string(++rv_);
      RecordLocked(t, "MODIFIED", obj);
    }
    return {200, obj};
  }
  Json result = obj;
  RemoveLocked(t, key, q.propagation);
  return {200, result};
}

void Store::RemoveLocked(const ResourceType& t, const std::string& key,
                         const std::string& propagation) {
  auto& objs = ObjectsOf(t);
  auto it = objs.find(key);
  if (it == objs.end()) return;
  Json obj = it->second;
  objs.erase(it);
  obj["metadata"]["resourceVersion"] = std::to_string(++rv_);
  RecordLocked(t, "DELETED", obj);
  if (propagation != "Orphan") CollectGarbageLocked();
}

// The garbage collector's job, done synchronously: an object whose every owner is gone is
// deleted (through the finalizer rules, so dependents with finalizers are only marked).
void Store::CollectGarbageLocked() {
  std::set<std::string> uids;
  for (auto& [tk, objs] : objects_) {
    for (auto& [k, o] : objs) uids.insert(o["metadata"].value("uid", ""));
  }
  for (auto& [tk, objs] : objects_) {
    const ResourceType& t = types_[tk];
    std::vector<std::string> orphans;
    for (auto& [k, o] : objs) {
      const Json& m = o["metadata"];
      if (!m.contains("ownerReferences") || m["ownerReferences"].empty()) continue;
      bool any_owner = false;
      for (const auto& ref : m["ownerReferences"])
        any_owner |= uids.count(ref.value("uid", "")) > 0;
      if (!any_owner) orphans.push_back(k);
    }
    for (const auto& k : orphans) {
      auto it = objs.find(k);
      if (it == objs.end()) continue;
      if (!Finalizers(it->second).empty()) {
        if (!it->second["metadata"].contains("deletionTimestamp")) {
          it->second["metadata"]["deletionTimestamp"] = Now();
          it->second["metadata"]["resourceVersion"] = std::to_string(++rv_);
          RecordLocked(t, "MODIFIED", it->second);
        }
      } else {
        RemoveLocked(t, k, "Background");  // recursion: its own dependents follow
      }
    }
  }
}

void Store::MaybeRegisterCrdLocked(const Json& crd) {
  const Json& spec = crd.value("spec", Json::object());
  if (!spec.contains("names") || !spec.contains("versions")) return;
  for (const auto& v : spec["versions"]) {
    ResourceType t{spec.value("group", ""),
                   v.value("name", ""),
                   spec["names"].value("plural", ""),
                   spec["names"].value("kind", ""),
                   spec.value("scope", "Namespaced") == "Namespaced",
                   v.contains("subresources") && v["subresources"].contains("status")};
    types_[TypeKey(t.group, t.plural)] = t;
  }
}

bool Store::WatchMatches(const WatchState& w, const Json& object) const {
  if (!w.query.ns.empty() && object["metadata"].value("namespace", "") != w.query.ns) return false;
  auto reqs = ParseLabelSelector(w.query.label_selector);
  if (!reqs.ok() || !LabelsMatch(*reqs, object)) return false;
  auto fields = FieldsMatch(w.query.field_selector, object);
  return fields.ok() && *fields;
}

std::optional<Reply> Store::OpenWatch(WatchState& w) {
  auto reqs = ParseLabelSelector(w.query.label_selector);
  if (!reqs.ok()) return ErrorReply(400, "BadRequest", reqs.status().message());
  std::lock_guard lock(mu_);
  const std::string& rv = w.query.resource_version;
  if (rv.empty() || rv == "0") {
    w.cursor = 0;  // NextLines sends the current state as ADDED first
  } else {
    uint64_t n = 0;
    try {
      n = std::stoull(rv);
    } catch (...) {
      return ErrorReply(400, "BadRequest", "invalid resourceVersion: " + rv);
    }
    if (n < compacted_rv_) {
      return ErrorReply(410, "Expired",
                        fmt::format("too old resource version: {} ({})", n, compacted_rv_));
    }
    w.cursor = n;
    w.initial_sent = true;
  }
  watches_.push_back(&w);
  return std::nullopt;
}

void Store::CloseWatch(WatchState& w) {
  std::lock_guard lock(mu_);
  watches_.erase(std::remove(watches_.begin(), watches_.end(), &w), watches_.end());
}

std::vector<std::string> Store::NextLines(WatchState& w,
                                          std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mu_);
  std::string tk = TypeKey(w.type->group, w.type->plural);
  std::vector<std::string> lines;
  auto event_line = [](const std::string& type, const Json& object) {
    return Json{{"type", type}, {"object", object}}.dump();
  };
  while (true) {
    if (shutdown_ || w.dropped || w.done) return {};
    if (!w.initial_sent) {
      for (const auto& [k, o] : ObjectsOf(*w.type)) {
        if (WatchMatches(w, o)) lines.push_back(event_line("ADDED", o));
      }
      w.initial_sent = true;
      w.cursor = rv_;
    }
    if (w.cursor < compacted_rv_) {
      Reply gone =
          ErrorReply(410, "Expired",
                     fmt::format("too old resource version: {} ({})", w.cursor, compacted_rv_));
      lines.push_back(event_line("ERROR", gone.body));
      w.done = true;
      return lines;
    }
    for (const Event& e : history_) {
      if (e.rv <= w.cursor || e.type_key != tk) continue;
      // As the real watch cache does for a selector: an object that starts matching is ADDED,
      // one that stops matching is DELETED for this watcher.
      bool was = WatchMatches(w, e.previous);
      bool is = WatchMatches(w, e.object);
      if (e.type == "MODIFIED" && was != is) {
        lines.push_back(event_line(is ? "ADDED" : "DELETED", e.object));
      } else if (is) {
        lines.push_back(event_line(e.type, e.object));
      }
    }
    w.cursor = std::max(w.cursor, rv_);
    if (w.bookmark_due && w.query.bookmarks) {
      Json bookmark = {{"kind", w.type->kind},
                       {"apiVersion", ApiVersion(*w.type)},
                       {"metadata", {{"resourceVersion", std::to_string(w.cursor)}}}};
      lines.push_back(event_line("BOOKMARK", bookmark));
    }
    w.bookmark_due = false;
    if (!lines.empty()) return lines;
    auto wake = w.query.bookmarks ? std::min(deadline, w.next_bookmark) : deadline;
    if (cv_.wait_until(lock, wake) == std::cv_status::timeout) {
      auto now = std::chrono::steady_clock::now();
      if (w.query.bookmarks && now >= w.next_bookmark) {
        w.bookmark_due = true;
        w.next_bookmark = now + w.bookmark_interval;
      }
      if (now >= deadline) return {};
    }
  }
}

void Store::Compact() {
  std::lock_guard lock(mu_);
  compacted_rv_ = ++rv_;
  history_.clear();
  cv_.notify_all();
}

void Store::DropWatches() {
  std::lock_guard lock(mu_);
  for (WatchState* w : watches_) w->dropped = true;
  cv_.notify_all();
}

void Store::SendBookmarks() {
  std::lock_guard lock(mu_);
  for (WatchState* w : watches_) w->bookmark_due = true;
  cv_.notify_all();
}

void Store::Shutdown() {
  std::lock_guard lock(mu_);
  shutdown_ = true;
  cv_.notify_all();
}

Status Store::MarkReady(const std::string& group, const std::string& plural, const std::string& ns,
                        const std::string& name, int replicas) {
  const ResourceType* t = FindType(group, plural);
  if (!t) return NotFound("unknown resource " + plural + "." + group);
  std::lock_guard lock(mu_);
  auto& objs = ObjectsOf(*t);
  auto it = objs.find((t->namespaced ? ns : "") + "/" + name);
  if (it == objs.end()) return NotFound(fmt::format("{} {}/{}", plural, ns, name));
  Json obj = it->second;
  Json& st = obj["status"];
  if (!st.is_object()) st = Json::object();
  int64_t gen = obj["metadata"].value("generation", 1);
  if (plural == "pods") {
    st["phase"] = "Running";
    st["podIP"] = "127.0.0.1";
    st["conditions"] = Json::array({{{"type", "Ready"}, {"status", "True"}},
                                    {{"type", "ContainersReady"}, {"status", "True"}}});
  } else if (plural == "daemonsets") {
    int n = replicas >= 0 ? replicas : 1;
    for (const char* f : {"currentNumberScheduled", "desiredNumberScheduled", "numberReady",
                          "numberAvailable", "updatedNumberScheduled"}) {
      st[f] = n;
    }
    st["observedGeneration"] = gen;
  } else if (plural == "statefulsets" || plural == "deployments") {
    int n = replicas >= 0 ? replicas : obj.value("spec", Json::object()).value("replicas", 1);
    for (const char* f :
         {"replicas", "readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas"}) {
      st[f] = n;
    }
    st["observedGeneration"] = gen;
  } else {
    return InvalidArgument("MarkReady knows pods, daemonsets, statefulsets and deployments");
  }
  Reply r = WriteLocked(*t, ns, name, obj, /*status=*/true);
  if (r.code != 200) return Internal("mark ready: " + r.body.dump());
  return Status::Ok();
}

void Store::RefuseWrites(const std::string& group, const std::string& plural, const std::string& ns,
                         Reply reply) {
  std::lock_guard lock(mu_);
  refusals_[TypeKey(group, plural) + "/" + ns] = std::move(reply);
}

void Store::ClearRefusals() {
  std::lock_guard lock(mu_);
  refusals_.clear();
}

std::optional<Reply> Store::RefusedLocked(const ResourceType& t, const std::string& ns,
                                          const std::string& name) const {
  auto it = refusals_.find(TypeKey(t.group, t.plural) + "/" + (t.namespaced ? ns : ""));
  if (it == refusals_.end()) return std::nullopt;
  Reply r = it->second;
  std::string message = r.body.value("message", "");
  for (size_t at; (at = message.find("{name}")) != std::string::npos;) message.replace(at, 6, name);
  r.body["message"] = message;
  return r;
}

Result<Json> Store::Object(const std::string& group, const std::string& plural,
                           const std::string& ns, const std::string& name) const {
  std::lock_guard lock(mu_);
  auto tit = objects_.find(TypeKey(group, plural));
  if (tit == objects_.end()) return NotFound(plural);
  auto it = tit->second.find(ns + "/" + name);
  if (it == tit->second.end()) return NotFound(fmt::format("{} {}/{}", plural, ns, name));
  return it->second;
}

size_t Store::open_watches() const {
  std::lock_guard lock(mu_);
  return watches_.size();
}

uint64_t Store::resource_version() const {
  std::lock_guard lock(mu_);
  return rv_;
}

}  // namespace granary::kubeapi
