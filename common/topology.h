// Where a process or datanode sits: datanode < host < rack < zone (DESIGN §2), parsed from
// labels such as "zone=a,rack=r1,host=h1,gpu=true" (--labels, or GRANARY_LABELS for clients).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "common/status.h"

namespace granary {

using Labels = std::map<std::string, std::string>;

enum class DomainLevel : uint8_t { kDatanode = 0, kHost = 1, kRack = 2, kZone = 3 };

Result<DomainLevel> ParseDomainLevel(std::string_view name);  // "datanode|host|rack|zone"
std::string_view DomainLevelName(DomainLevel level);

// "k=v,k2=v2" -> labels. Empty input gives no labels; a pair without '=' or an empty key is
// InvalidArgument.
Result<Labels> ParseLabels(std::string_view text);
std::string FormatLabels(const Labels& labels);

struct Location {
  std::string zone;
  std::string rack;
  std::string host;
  bool gpu = false;

  bool operator==(const Location&) const = default;

  // Missing labels default to "" (one anonymous rack/zone), and host to `default_host`.
  static Location FromLabels(const Labels& labels, std::string_view default_host);
};

// How far a copy is from a reader: 0 same host, 1 same rack, 2 same zone, 3 elsewhere.
// Readers prefer the smallest distance (DESIGN §2, nearest healthy copy).
int Distance(const Location& reader, const Location& node);

// This machine's hostname (the default `host` label).
std::string LocalHostname();

}  // namespace granary
