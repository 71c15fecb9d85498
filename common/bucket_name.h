// S3 bucket naming rules, shared by the metanode (every bucket, however made) and the S3
// gateway (InvalidBucketName before anything is stored). AWS S3 User Guide, "General purpose
// bucket naming rules", plus the older DNS rule against ".-" / "-." that virtual-host clients
// and conformance suites still check.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>

namespace granary {

// Why `name` is not a valid bucket name, or nullopt when it is.
inline std::optional<std::string> BucketNameProblem(std::string_view name) {
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (name.size() < 3 || name.size() > 63) return "must be 3 to 63 characters long";
  for (char c : name) {
    if (!alnum(c) && c != '-' && c != '.') {
      return "may hold only lower-case letters, digits, '.' and '-'";
    }
  }
  if (!alnum(name.front()) || !alnum(name.back())) {
    return "must begin and end with a letter or digit";
  }
  if (name.find("..") != name.npos) return "must not hold two adjacent periods";
  if (name.find(".-") != name.npos || name.find("-.") != name.npos) {
    return "must not hold a period next to a hyphen";
  }
  // Formatted as an IPv4 address: four dot-separated runs of digits.
  int groups = 0;
  bool digits_only = true;
  size_t run = 0;
  for (char c : name) {
    if (c == '.') {
      ++groups;
      run = 0;
    } else if (c >= '0' && c <= '9' && ++run <= 3) {
      continue;
    } else {
      digits_only = false;
    }
  }
  if (digits_only && groups == 3) return "must not be formatted as an IP address";
  static constexpr std::array<std::string_view, 3> kPrefixes = {"xn--", "sthree-", "amzn-s3-demo-"};
  for (std::string_view p : kPrefixes) {
    if (name.starts_with(p)) return "must not begin with '" + std::string(p) + "'";
  }
  static constexpr std::array<std::string_view, 5> kSuffixes = {"-s3alias", "--ol-s3", ".mrap",
                                                                "--x-s3", "--table-s3"};
  for (std::string_view s : kSuffixes) {
    if (name.ends_with(s)) return "must not end with '" + std::string(s) + "'";
  }
  return std::nullopt;
}

}  // namespace granary
