// A small ext4 file system on a loop device, mounted at a directory, for "disk full" tests.
// Unmounted (lazily, so a process still inside cannot block it) on destruction.
#pragma once

#include <string>

#include "tests/harness/process.h"

namespace granary::testing {

class SmallFilesystem {
 public:
  // Creates an image of `mib` MiB and mounts it at `mountpoint` (created if missing). When
  // loop devices are unavailable, mounted() is false and why() says so.
  SmallFilesystem(const std::string& mountpoint, int mib);
  ~SmallFilesystem();
  bool mounted() const { return mounted_; }
  const std::string& why() const { return why_; }

 private:
  TempDir image_dir_;
  std::string mountpoint_;
  bool mounted_ = false;
  std::string why_;
};

}  // namespace granary::testing
