#include "operator/kube/resource.h"

#include <fmt/format.h>

namespace granary::kube {

std::string Resource::Path(std::string_view ns, std::string_view name,
                           std::string_view subresource) const {
  std::string p = group.empty() ? "/api/" + version : fmt::format("/apis/{}/{}", group, version);
  if (namespaced && !ns.empty()) p += fmt::format("/namespaces/{}", ns);
  p += "/" + plural;
  if (!name.empty()) p += fmt::format("/{}", name);
  if (!subresource.empty()) p += fmt::format("/{}", subresource);
  return p;
}

namespace {
std::string MetaString(const Json& o, const char* field) {
  if (!o.is_object() || !o.contains("metadata")) return "";
  const Json& m = o["metadata"];
  return m.contains(field) && m[field].is_string() ? m[field].get<std::string>() : "";
}
}  // namespace

std::string NameOf(const Json& o) { return MetaString(o, "name"); }
std::string NamespaceOf(const Json& o) { return MetaString(o, "namespace"); }
std::string ResourceVersionOf(const Json& o) { return MetaString(o, "resourceVersion"); }
std::string UidOf(const Json& o) { return MetaString(o, "uid"); }

int64_t GenerationOf(const Json& o) {
  if (!o.is_object() || !o.contains("metadata")) return 0;
  return o["metadata"].value("generation", int64_t{0});
}

std::string MakeKey(std::string_view ns, std::string_view name) {
  return ns.empty() ? std::string(name) : fmt::format("{}/{}", ns, name);
}

std::string KeyOf(const Json& o) { return MakeKey(NamespaceOf(o), NameOf(o)); }

std::pair<std::string, std::string> SplitKey(std::string_view key) {
  auto slash = key.find('/');
  if (slash == std::string_view::npos) return {"", std::string(key)};
  return {std::string(key.substr(0, slash)), std::string(key.substr(slash + 1))};
}

}  // namespace granary::kube
