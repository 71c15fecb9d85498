#include "metanode/posix_acl.h"

#include <fmt/format.h>

namespace granary::metanode::acl {

namespace {

constexpr uint32_t kXattrVersion = 2;  // POSIX_ACL_XATTR_VERSION
constexpr size_t kHeaderBytes = 4;
constexpr size_t kEntryBytes = 8;  // le16 tag, le16 perm, le32 id

uint32_t Le(std::string_view b, size_t at, size_t n) {
  uint32_t v = 0;
  for (size_t i = 0; i < n; ++i)
    v |= static_cast<uint32_t>(static_cast<uint8_t>(b[at + i])) << (8 * i);
  return v;
}

void PutLe(std::string* out, uint32_t v, size_t n) {
  for (size_t i = 0; i < n; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// Position of a tag in the kernel's entry order (posix_acl_valid's state machine).
int Rank(uint16_t tag) {
  switch (tag) {
    case kUserObj:
      return 0;
    case kUser:
      return 1;
    case kGroupObj:
      return 2;
    case kGroup:
      return 3;
    case kMask:
      return 4;
    case kOther:
      return 5;
    default:
      return -1;
  }
}

}  // namespace

Result<Acl> Parse(std::string_view xattr) {
  if (xattr.size() < kHeaderBytes + kEntryBytes ||
      (xattr.size() - kHeaderBytes) % kEntryBytes != 0) {
    return InvalidArgument(
        fmt::format("POSIX ACL of {} bytes: expected 4 + 8 per entry", xattr.size()));
  }
  if (uint32_t version = Le(xattr, 0, 4); version != kXattrVersion) {
    return InvalidArgument(fmt::format("POSIX ACL version {} (expected 2)", version));
  }
  Acl acl;
  int last_rank = -1;
  int64_t last_id = -1;
  int singles[6] = {};
  bool named = false;
  for (size_t at = kHeaderBytes; at < xattr.size(); at += kEntryBytes) {
    Entry e{static_cast<uint16_t>(Le(xattr, at, 2)), static_cast<uint16_t>(Le(xattr, at + 2, 2)),
            Le(xattr, at + 4, 4)};
    const int rank = Rank(e.tag);
    if (rank < 0) return InvalidArgument(fmt::format("POSIX ACL entry tag {:#x}", e.tag));
    if ((e.perm & ~7u) != 0) {
      return InvalidArgument(fmt::format("POSIX ACL entry permissions {:#o}", e.perm));
    }
    if (rank < last_rank) return InvalidArgument("POSIX ACL entries out of order");
    const bool is_named = e.tag == kUser || e.tag == kGroup;
    if (is_named) {
      // Named entries of one kind are sorted by id, each id once.
      if (rank == last_rank && static_cast<int64_t>(e.id) <= last_id) {
        return InvalidArgument(fmt::format("POSIX ACL names id {} twice or out of order", e.id));
      }
      last_id = e.id;
      named = true;
    } else {
      if (++singles[rank] > 1) {
        return InvalidArgument(fmt::format("POSIX ACL has two entries of tag {:#x}", e.tag));
      }
      e.id = UINT32_MAX;  // ACL_UNDEFINED_ID
      last_id = -1;
    }
    last_rank = rank;
    acl.push_back(e);
  }
  if (singles[Rank(kUserObj)] != 1 || singles[Rank(kGroupObj)] != 1 || singles[Rank(kOther)] != 1) {
    return InvalidArgument("POSIX ACL lacks its owner, owning group or other entry");
  }
  if (named && singles[Rank(kMask)] != 1) {
    return InvalidArgument("POSIX ACL with named entries lacks a mask entry");
  }
  return acl;
}

std::string Serialize(const Acl& acl) {
  std::string out;
  out.reserve(kHeaderBytes + kEntryBytes * acl.size());
  PutLe(&out, kXattrVersion, 4);
  for (const Entry& e : acl) {
    PutLe(&out, e.tag, 2);
    PutLe(&out, e.perm, 2);
    PutLe(&out, e.id, 4);
  }
  return out;
}

ModeOfAcl ModeOf(const Acl& acl) {
  ModeOfAcl m;
  uint32_t group = 0;
  const Entry* mask = nullptr;
  for (const Entry& e : acl) {
    switch (e.tag) {
      case kUserObj:
        m.bits |= (e.perm & 7u) << 6;
        break;
      case kGroupObj:
        group = e.perm & 7u;
        break;
      case kOther:
        m.bits |= e.perm & 7u;
        break;
      case kMask:
        mask = &e;
        m.equivalent = false;
        break;
      default:
        m.equivalent = false;
        break;
    }
  }
  m.bits |= (mask != nullptr ? mask->perm & 7u : group) << 3;
  return m;
}

bool MaskForCreate(Acl& acl, uint32_t* mode) {
  bool more = false;
  Entry* group = nullptr;
  Entry* mask = nullptr;
  for (Entry& e : acl) {
    switch (e.tag) {
      case kUserObj:
        e.perm &= (*mode >> 6) & 7u;
        *mode &= (static_cast<uint32_t>(e.perm) << 6) | ~0700u;
        break;
      case kGroupObj:
        group = &e;
        break;
      case kMask:
        mask = &e;
        more = true;
        break;
      case kOther:
        e.perm &= *mode & 7u;
        *mode &= e.perm | ~0007u;
        break;
      default:
        more = true;
        break;
    }
  }
  // The group class bits meet the mask when there is one, else the owning group.
  Entry* group_class = mask != nullptr ? mask : group;
  if (group_class != nullptr) {
    group_class->perm &= (*mode >> 3) & 7u;
    *mode &= (static_cast<uint32_t>(group_class->perm) << 3) | ~0070u;
  }
  return more;
}

void Chmod(Acl& acl, uint32_t mode) {
  Entry* group = nullptr;
  Entry* mask = nullptr;
  for (Entry& e : acl) {
    if (e.tag == kUserObj) e.perm = (mode >> 6) & 7u;
    if (e.tag == kGroupObj) group = &e;
    if (e.tag == kMask) mask = &e;
    if (e.tag == kOther) e.perm = mode & 7u;
  }
  Entry* group_class = mask != nullptr ? mask : group;
  if (group_class != nullptr) group_class->perm = (mode >> 3) & 7u;
}

}  // namespace granary::metanode::acl
