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

}  // namespace granary
