#include "dashboard/assets/assets.h"

namespace granary::dashboard {

const Asset* FindAsset(std::string_view path) {
  if (path == "/index.html" || path.empty()) path = "/";
  for (const Asset& a : EmbeddedAssets()) {
    if (a.path == path) return &a;
  }
  return nullptr;
}

}  // namespace granary::dashboard
