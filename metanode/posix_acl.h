// POSIX ACLs (acl(5)) in the Linux xattr encoding of system.posix_acl_access and
// system.posix_acl_default: what the metanode needs to keep a file's ACL and its mode in step
// (docs/mount.md "POSIX ACLs"). The kernel enforces them (default_permissions + FUSE_POSIX_ACL);
// here they are validated, inherited on create, and updated by chmod.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace granary::metanode::acl {

inline constexpr std::string_view kAccessXattr = "system.posix_acl_access";
inline constexpr std::string_view kDefaultXattr = "system.posix_acl_default";

// Entry tags, as <linux/posix_acl.h> numbers them.
enum Tag : uint16_t {
  kUserObj = 0x01,
  kUser = 0x02,
  kGroupObj = 0x04,
  kGroup = 0x08,
  kMask = 0x10,
  kOther = 0x20,
};

struct Entry {
  uint16_t tag = 0;
  uint16_t perm = 0;  // rwx in the low three bits
  uint32_t id = 0;    // uid or gid of kUser/kGroup entries
};
using Acl = std::vector<Entry>;

// Decodes and validates an xattr value: version 2, the entries in the kernel's order (owner,
// named users by uid, owning group, named groups by gid, mask, other), one owner, owning group
// and other, a mask whenever a named entry exists. InvalidArgument says what is wrong.
Result<Acl> Parse(std::string_view xattr);
std::string Serialize(const Acl& acl);

// The permission bits (0777) an access ACL implies (the mask stands for the group bits), and
// whether the ACL says no more than those bits (then it is not stored: the mode is the ACL).
struct ModeOfAcl {
  uint32_t bits = 0;
  bool equivalent = true;
};
ModeOfAcl ModeOf(const Acl& acl);

// Object creation under a default ACL (acl(5)): `acl` (a copy of the parent's default ACL)
// becomes the new object's access ACL, its owner, group-class and other entries masked by the
// requested `mode`; `mode`'s permission bits are masked by the ACL in turn. Returns whether
// the resulting access ACL says more than the mode.
bool MaskForCreate(Acl& acl, uint32_t* mode);

// chmod of an object with an access ACL: owner, mask (or owning group) and other entries take
// the new permission bits.
void Chmod(Acl& acl, uint32_t mode);

}  // namespace granary::metanode::acl
