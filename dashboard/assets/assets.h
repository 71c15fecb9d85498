// The dashboard's static files, built into the binary (docs/dashboard.md "Assets").
#pragma once

#include <span>
#include <string_view>

namespace granary::dashboard {

struct Asset {
  std::string_view path;  // URL path: "/" or "/assets/NAME"
  std::string_view content_type;
  std::string_view body;
};

// Every embedded file (defined in the generated assets_data.cpp).
std::span<const Asset> EmbeddedAssets();
// The asset served at `path` ("/index.html" is "/"), or null.
const Asset* FindAsset(std::string_view path);

}  // namespace granary::dashboard
