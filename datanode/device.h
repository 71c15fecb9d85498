// Disk I/O behind a small interface (CONVENTIONS "Concurrency and I/O"): the block store talks
// to a Device and its Files only, so tests can swap in FaultInjectionDevice. The default device
// does data I/O through io_uring (one small ring per thread) and metadata calls directly.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "common/status.h"

namespace granary::datanode {

// errno -> Status: ENOSPC/EDQUOT -> NO_SPACE, ENOENT -> NOT_FOUND, EEXIST -> ALREADY_EXISTS,
// EIO -> UNAVAILABLE (this copy cannot be served; readers go to another one), else INTERNAL.
// The message is "<what> <path>: <ERRNO name> (<description>)".
Status ErrnoStatus(int err, std::string_view what, std::string_view path);

class File {
 public:
  virtual ~File() = default;
  // Writes every byte of `iov` at `offset` (short writes are continued).
  virtual Status WriteAt(std::span<const iovec> iov, uint64_t offset) = 0;
  // Reads up to dst.size() bytes at `offset`; fewer only at end of file.
  virtual Result<size_t> ReadAt(std::span<uint8_t> dst, uint64_t offset) = 0;
  // fsync: data and size are durable when this returns Ok.
  virtual Status Sync() = 0;
  virtual Result<uint64_t> Size() = 0;
  // The descriptor, for sendfile from the page cache.
  virtual int fd() const = 0;
  virtual const std::string& path() const = 0;
};

class Device {
 public:
  virtual ~Device() = default;
  // Creates a new file for writing (fails with ALREADY_EXISTS if present). `direct`: its
  // page-aligned bytes are written with O_DIRECT, from the caller's buffers to the disk without
  // a page-cache copy (buffered where the file system has no O_DIRECT).
  virtual Result<std::unique_ptr<File>> Create(const std::string& path, bool direct = false) = 0;
  virtual Result<std::unique_ptr<File>> OpenForRead(const std::string& path) = 0;
  // rename(2): atomically replaces `to`.
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  virtual Status Unlink(const std::string& path) = 0;
  // mkdir -p.
  virtual Status MakeDirs(const std::string& dir) = 0;
  // fsync of a directory, so a rename or unlink in it is durable.
  virtual Status SyncDir(const std::string& dir) = 0;
};

// The production device: reads, writes and fsyncs through io_uring.
std::shared_ptr<Device> NewUringDevice();

}  // namespace granary::datanode
