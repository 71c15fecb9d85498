#include "datanode/fault_device.h"

namespace granary::datanode {
namespace {

class FaultFile : public File {
 public:
  FaultFile(std::unique_ptr<File> base, std::shared_ptr<FaultInjectionDevice> dev)
      : base_(std::move(base)), dev_(std::move(dev)) {}
  Status WriteAt(std::span<const iovec> iov, uint64_t offset) override {
    if (int err = dev_->Check("write")) return ErrnoStatus(err, "write", path());
    return base_->WriteAt(iov, offset);
  }
  Result<size_t> ReadAt(std::span<uint8_t> dst, uint64_t offset) override {
    if (int err = dev_->Check("read")) return ErrnoStatus(err, "read", path());
    return base_->ReadAt(dst, offset);
  }
  Status Sync() override {
    if (int err = dev_->Check("sync")) return ErrnoStatus(err, "fsync", path());
    return base_->Sync();
  }
  Result<uint64_t> Size() override { return base_->Size(); }
  int fd() const override { return base_->fd(); }
  const std::string& path() const override { return base_->path(); }

 private:
  std::unique_ptr<File> base_;
  std::shared_ptr<FaultInjectionDevice> dev_;
};

}  // namespace

void FaultInjectionDevice::Inject(const std::string& point, int err, int times) {
  std::lock_guard lock(mu_);
  Fault& f = faults_[point];
  f.err = err;
  f.remaining = times;
}

void FaultInjectionDevice::Clear() {
  std::lock_guard lock(mu_);
  for (auto& [name, f] : faults_) f.remaining = 0;
}

int FaultInjectionDevice::fired(const std::string& point) const {
  std::lock_guard lock(mu_);
  auto it = faults_.find(point);
  return it == faults_.end() ? 0 : it->second.fired;
}

void FaultInjectionDevice::SetHook(const std::string& point, std::function<void()> hook) {
  std::lock_guard lock(mu_);
  hooks_[point] = std::move(hook);
}

int FaultInjectionDevice::Check(const std::string& point) {
  std::function<void()> hook;
  {
    std::lock_guard lock(mu_);
    auto h = hooks_.find(point);
    if (h != hooks_.end()) hook = h->second;
  }
  if (hook) hook();
  std::lock_guard lock(mu_);
  auto it = faults_.find(point);
  if (it == faults_.end() || it->second.remaining == 0) return 0;
  if (it->second.remaining > 0) --it->second.remaining;
  ++it->second.fired;
  return it->second.err;
}

Result<std::unique_ptr<File>> FaultInjectionDevice::Create(const std::string& path, bool direct) {
  if (int err = Check("create")) return ErrnoStatus(err, "create", path);
  auto f = base_->Create(path, direct);
  if (!f.ok()) return f.status();
  return std::unique_ptr<File>(new FaultFile(std::move(*f), shared_from_this()));
}

Result<std::unique_ptr<File>> FaultInjectionDevice::OpenForRead(const std::string& path) {
  auto f = base_->OpenForRead(path);
  if (!f.ok()) return f.status();
  return std::unique_ptr<File>(new FaultFile(std::move(*f), shared_from_this()));
}

Status FaultInjectionDevice::Rename(const std::string& from, const std::string& to) {
  if (int err = Check("rename")) return ErrnoStatus(err, "rename to " + to, from);
  return base_->Rename(from, to);
}

Status FaultInjectionDevice::Unlink(const std::string& path) {
  if (int err = Check("unlink")) return ErrnoStatus(err, "unlink", path);
  return base_->Unlink(path);
}

Status FaultInjectionDevice::MakeDirs(const std::string& dir) {
  if (int err = Check("mkdir")) return ErrnoStatus(err, "mkdir", dir);
  return base_->MakeDirs(dir);
}

Status FaultInjectionDevice::SyncDir(const std::string& dir) {
  if (int err = Check("syncdir")) return ErrnoStatus(err, "fsync dir", dir);
  return base_->SyncDir(dir);
}

}  // namespace granary::datanode
