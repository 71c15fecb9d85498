#include "tests/harness/small_fs.h"

#include <fmt/format.h>
#include <sys/mount.h>

#include <cstdlib>
#include <filesystem>

namespace granary::testing {

SmallFilesystem::SmallFilesystem(const std::string& mountpoint, int mib) : mountpoint_(mountpoint) {
  std::filesystem::create_directories(mountpoint);
  std::string image = image_dir_.str() + "/fs.img";
  std::string make = fmt::format("truncate -s {}M {} && mkfs.ext4 -q -F -m 0 {} >/dev/null 2>&1",
                                 mib, image, image);
  if (std::system(make.c_str()) != 0) {
    why_ = "mkfs.ext4 failed";
    return;
  }
  std::string mount = fmt::format("mount -o loop {} {} 2>/dev/null", image, mountpoint);
  if (std::system(mount.c_str()) != 0) {
    why_ = "loop devices unavailable (mount -o loop failed)";
    return;
  }
  mounted_ = true;
}

SmallFilesystem::~SmallFilesystem() {
  if (mounted_) umount2(mountpoint_.c_str(), MNT_DETACH);
}

}  // namespace granary::testing
