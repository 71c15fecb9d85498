#include "common/status.h"

#include <fmt/format.h>

namespace granary {

Status Status::WithContext(std::string_view context) const& {
  if (ok()) return *this;
  return Status(code_, fmt::format("{}: {}", context, message_));
}

Status Status::WithContext(std::string_view context) && {
  if (ok()) return std::move(*this);
  message_ = fmt::format("{}: {}", context, message_);
  return std::move(*this);
}

std::string Status::ToString() const {
  if (ok()) return "Ok";
  return fmt::format("{}: {}", CodeName(code_), message_);
}

Status NotFound(std::string message) { return {Code::NOT_FOUND, std::move(message)}; }
Status AlreadyExists(std::string message) { return {Code::ALREADY_EXISTS, std::move(message)}; }
Status InvalidArgument(std::string message) { return {Code::INVALID_ARGUMENT, std::move(message)}; }
Status Internal(std::string message) { return {Code::INTERNAL, std::move(message)}; }
Status Unavailable(std::string message) { return {Code::UNAVAILABLE, std::move(message)}; }
Status Corrupt(std::string message) { return {Code::CORRUPT, std::move(message)}; }

namespace {
constexpr std::string_view kLeaderTag = "leader=";
}

Status NotLeader(std::string_view leader_address) {
  if (leader_address.empty()) return {Code::NOT_LEADER, "not the metadata leader; no leader known"};
  return {Code::NOT_LEADER,
          std::string("not the metadata leader; ").append(kLeaderTag).append(leader_address)};
}

std::string LeaderHint(const Status& status) {
  if (status.code() != Code::NOT_LEADER) return {};
  const std::string& m = status.message();
  const size_t at = m.rfind(kLeaderTag);
  if (at == std::string::npos) return {};
  const size_t begin = at + kLeaderTag.size();
  size_t end = begin;
  while (end < m.size() && m[end] != ' ' && m[end] != ';' && m[end] != ',') ++end;
  return m.substr(begin, end - begin);
}

}  // namespace granary
