// Errors as values (CONVENTIONS "Errors"): Status carries a granary::Code, a message and the
// context each layer adds; Result<T> is a value or a Status. Exceptions are for programmer bugs
// and start-up failures only.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "granary/code.pb.h"

namespace granary {

class [[nodiscard]] Status {
 public:
  Status() = default;  // Ok
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }

  bool ok() const { return code_ == Code::OK; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // Prepends what the caller was doing: "commit ino 42: write block 3 on dn2: NoSpace".
  Status WithContext(std::string_view context) const&;
  Status WithContext(std::string_view context) &&;

  // "NOT_FOUND: lookup /a/b" — for logs and CLI output.
  std::string ToString() const;

  // Ignoring an error must be explicit and greppable.
  void PermitUnchecked() const {}

  bool operator==(const Status& other) const = default;

 private:
  Code code_ = Code::OK;
  std::string message_;
};

// Short constructors for the codes callers use most.
Status NotFound(std::string message);
Status AlreadyExists(std::string message);
Status InvalidArgument(std::string message);
Status Internal(std::string message);
Status Unavailable(std::string message);
Status Corrupt(std::string message);
// A metanode that is not the metadata leader: the message carries "leader=HOST:PORT" when the
// leader is known, which LeaderHint() reads back (empty when none).
Status NotLeader(std::string_view leader_address);
std::string LeaderHint(const Status& status);

// Name of a code as in DESIGN §6 ("NotFound").
std::string_view CodeName(Code code);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(v_).ok() && "Result built from an Ok status");
  }

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  // The error; Ok when a value is held.
  Status status() const { return ok() ? Status::Ok() : std::get<1>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace granary

#define GRANARY_CONCAT_INNER(a, b) a##b
#define GRANARY_CONCAT(a, b) GRANARY_CONCAT_INNER(a, b)

// GRANARY_TRY(expr): returns the Status of a failed Status/Result expression from the caller.
// The one propagation macro (CONVENTIONS: "one TRY-style macro at most").
#define GRANARY_TRY(expr)                                                         \
  do {                                                                            \
    auto&& granary_try_result = (expr);                                           \
    if (!granary_try_result.ok()) return ::granary::StatusOf(granary_try_result); \
  } while (0)

namespace granary {
inline Status StatusOf(const Status& s) { return s; }
template <typename T>
Status StatusOf(const Result<T>& r) {
  return r.status();
}
}  // namespace granary
