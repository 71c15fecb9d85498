#include "common/error_table.h"

#include <array>
#include <cerrno>

namespace granary {
namespace {

using G = grpc::StatusCode;

// Where S3 has no standard code for a Granary condition, the code below is documented in
// docs/error-model.md (ParentIsObject, ObjectExistsAsDirectory, StorageFull).
constexpr std::array<ErrorMapping, 19> kTable = {{
    {Code::OK, "Ok", 0, "", 200, G::OK},
    {Code::NOT_FOUND, "NotFound", ENOENT, "NoSuchKey", 404, G::NOT_FOUND},
    {Code::ALREADY_EXISTS, "AlreadyExists", EEXIST, "BucketAlreadyExists", 409, G::ALREADY_EXISTS},
    {Code::NOT_EMPTY, "NotEmpty", ENOTEMPTY, "BucketNotEmpty", 409, G::FAILED_PRECONDITION},
    {Code::NOT_DIRECTORY, "NotDirectory", ENOTDIR, "ParentIsObject", 409, G::FAILED_PRECONDITION},
    {Code::IS_DIRECTORY, "IsDirectory", EISDIR, "ObjectExistsAsDirectory", 409,
     G::FAILED_PRECONDITION},
    {Code::CROSS_VOLUME, "CrossVolume", EXDEV, "InvalidRequest", 400, G::INVALID_ARGUMENT},
    {Code::NAME_TOO_LONG, "NameTooLong", ENAMETOOLONG, "KeyTooLongError", 400, G::INVALID_ARGUMENT},
    {Code::INVALID_ARGUMENT, "InvalidArgument", EINVAL, "InvalidArgument", 400,
     G::INVALID_ARGUMENT},
    {Code::PERMISSION_DENIED, "PermissionDenied", EACCES, "AccessDenied", 403,
     G::PERMISSION_DENIED},
    {Code::QUOTA_EXCEEDED, "QuotaExceeded", EDQUOT, "QuotaExceeded", 403, G::RESOURCE_EXHAUSTED},
    {Code::NO_SPACE, "NoSpace", ENOSPC, "StorageFull", 507, G::RESOURCE_EXHAUSTED},
    {Code::PRECONDITION_FAILED, "PreconditionFailed", EBUSY, "PreconditionFailed", 412,
     G::FAILED_PRECONDITION},
    {Code::STALE_EPOCH, "StaleEpoch", ESTALE, "ServiceUnavailable", 503, G::UNAVAILABLE},
    {Code::STALE_GENERATION, "StaleGeneration", ESTALE, "OperationAborted", 409, G::ABORTED},
    {Code::CORRUPT, "Corrupt", EIO, "InternalError", 500, G::DATA_LOSS},
    {Code::UNAVAILABLE, "Unavailable", EIO, "ServiceUnavailable", 503, G::UNAVAILABLE},
    {Code::INTERNAL, "Internal", EIO, "InternalError", 500, G::INTERNAL},
    {Code::NOT_LEADER, "NotLeader", EIO, "ServiceUnavailable", 503, G::UNAVAILABLE},
}};

// The table is indexed by code value; this keeps that true when a code is added.
constexpr bool TableIsIndexedByCode() {
  for (size_t i = 0; i < kTable.size(); ++i) {
    if (static_cast<size_t>(kTable[i].code) != i) return false;
  }
  return true;
}
static_assert(TableIsIndexedByCode());

}  // namespace

const ErrorMapping& MapError(Code code) {
  auto index = static_cast<size_t>(code);
  if (index >= kTable.size()) return kTable[Code::INTERNAL];
  return kTable[index];
}

Code CodeFromGrpc(grpc::StatusCode code) {
  switch (code) {
    case G::OK:
      return Code::OK;
    case G::UNAVAILABLE:
    case G::DEADLINE_EXCEEDED:
    case G::CANCELLED:
      return Code::UNAVAILABLE;
    case G::NOT_FOUND:
      return Code::NOT_FOUND;
    case G::ALREADY_EXISTS:
      return Code::ALREADY_EXISTS;
    case G::INVALID_ARGUMENT:
    case G::OUT_OF_RANGE:
      return Code::INVALID_ARGUMENT;
    case G::PERMISSION_DENIED:
    case G::UNAUTHENTICATED:
      return Code::PERMISSION_DENIED;
    case G::RESOURCE_EXHAUSTED:
      return Code::NO_SPACE;
    case G::DATA_LOSS:
      return Code::CORRUPT;
    default:
      return Code::INTERNAL;
  }
}

std::string_view CodeName(Code code) { return MapError(code).name; }

}  // namespace granary
