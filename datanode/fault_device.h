// A Device that fails on demand (CONVENTIONS "Fault injection is a first-class tool"): named,
// count-limited fault points in front of a real device. Points: "create", "write", "read",
// "sync", "rename", "unlink", "mkdir", "syncdir".
//
//   auto dev = std::make_shared<FaultInjectionDevice>(NewUringDevice());
//   dev->Inject("sync", EIO, /*times=*/1);   // the next fsync fails with EIO
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "datanode/device.h"

namespace granary::datanode {

class FaultInjectionDevice : public Device,
                             public std::enable_shared_from_this<FaultInjectionDevice> {
 public:
  explicit FaultInjectionDevice(std::shared_ptr<Device> base) : base_(std::move(base)) {}

  // The next `times` operations at `point` fail with `err` (times < 0: until Clear).
  void Inject(const std::string& point, int err, int times = 1);
  void Clear();
  // How many faults fired at `point`.
  int fired(const std::string& point) const;

  // A named sync point: `hook` runs (on the I/O thread) each time `point` is reached, before the
  // operation and any injected fault — tests use it to hold an operation while they look.
  void SetHook(const std::string& point, std::function<void()> hook);

  // Runs the hook, then returns the errno to fail with at `point`, or 0.
  int Check(const std::string& point);

  Result<std::unique_ptr<File>> Create(const std::string& path, bool direct) override;
  Result<std::unique_ptr<File>> OpenForRead(const std::string& path) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status Unlink(const std::string& path) override;
  Status MakeDirs(const std::string& dir) override;
  Status SyncDir(const std::string& dir) override;

 private:
  struct Fault {
    int err = 0;
    int remaining = 0;
    int fired = 0;
  };
  std::shared_ptr<Device> base_;
  mutable std::mutex mu_;
  std::map<std::string, Fault> faults_;
  std::map<std::string, std::function<void()>> hooks_;
};

}  // namespace granary::datanode
