// `granary put|get|ls|stat|rm|mkdir` on libgranary. --meta defaults to $GRANARY_META, else
// 127.0.0.1:7410.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>

#include "client/granary.h"
#include "cmd/process.h"
#include "cmd/roles.h"
#include "common/aligned_buffer.h"
#include "common/config.h"
#include "common/error_table.h"
#include "common/log.h"

namespace granary::cmd {
namespace {

using client::Client;
using Clock = std::chrono::steady_clock;

constexpr size_t kTransferChunk = 16 << 20;

struct VolumePath {
  std::string volume;
  std::string path;
};

Result<VolumePath> ParseVolumePath(const std::string& text) {
  size_t slash = text.find('/');
  VolumePath vp{text.substr(0, slash), slash == std::string::npos ? "" : text.substr(slash + 1)};
  if (vp.volume.empty()) {
    return InvalidArgument(fmt::format("'{}': expected VOLUME/PATH", text));
  }
  return vp;
}

// Exit code for a failed verb: the errno of its code, so scripts can tell ENOENT from EEXIST.
int Fail(std::string_view verb, const Status& s) {
  std::fprintf(stderr, "granary %.*s: %s\n", static_cast<int>(verb.size()), verb.data(),
               s.ToString().c_str());
  int e = MapError(s.code()).errno_value;
  return e > 0 && e < 126 ? e : 1;
}

// "copied 12.5 MiB of 50.0 MiB (210 MB/s)" on stderr, only on a terminal and only once a
// transfer has taken more than a second.
class Progress {
 public:
  explicit Progress(uint64_t total) : total_(total), tty_(isatty(STDERR_FILENO)) {}
  void Update(uint64_t done) {
    if (!tty_) return;
    auto now = Clock::now();
    if (now - start_ < std::chrono::seconds(1) || now - last_ < std::chrono::milliseconds(200)) {
      return;
    }
    last_ = now;
    shown_ = true;
    double secs = std::chrono::duration<double>(now - start_).count();
    std::fprintf(stderr, "\r%.1f MiB of %.1f MiB (%.0f MB/s)   ", done / 1048576.0,
                 total_ / 1048576.0, done / secs / 1e6);
  }
  ~Progress() {
    if (shown_) std::fprintf(stderr, "\n");
  }

 private:
  uint64_t total_;
  bool tty_;
  bool shown_ = false;
  Clock::time_point start_ = Clock::now();
  Clock::time_point last_{};
};

int Put(Client& c, const std::string& local, const VolumePath& vp) {
  int fd = open(local.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return Fail("put", InvalidArgument(fmt::format("{}: {}", local, std::strerror(errno))));
  }
  struct stat st {};
  fstat(fd, &st);
  // Like object-store CLIs, put creates the missing parent directories.
  size_t slash = vp.path.rfind('/');
  if (slash != std::string::npos && slash > 0) {
    auto parent = c.Mkdir(vp.volume, vp.path.substr(0, slash), 0755, /*parents=*/true);
    if (!parent.ok()) {
      close(fd);
      return Fail("put", parent.status());
    }
  }
  auto file = c.Open(vp.volume, vp.path, {.create = true, .truncate = true});
  if (!file.ok()) {
    close(fd);
    return Fail("put", file.status());
  }
  AlignedBuffer buf(kTransferChunk);
  Progress progress(st.st_size);
  uint64_t offset = 0;
  Status s;
  while (s.ok()) {
    ssize_t n = read(fd, buf.data(), kTransferChunk);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      s = Internal(fmt::format("read {}: {}", local, std::strerror(errno)));
      break;
    }
    if (n == 0) break;
    s = (*file)->Pwrite({buf.data(), static_cast<size_t>(n)}, offset);
    offset += n;
    progress.Update(offset);
  }
  close(fd);
  Status closed = (*file)->Close();
  if (!s.ok()) return Fail("put", s);
  if (!closed.ok()) return Fail("put", closed);
  return 0;
}

int Get(Client& c, const VolumePath& vp, const std::string& local) {
  auto file = c.Open(vp.volume, vp.path);
  if (!file.ok()) return Fail("get", file.status());
  std::string tmp = local + ".granary-partial";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Fail("get", InvalidArgument(fmt::format("{}: {}", tmp, std::strerror(errno))));
  }
  AlignedBuffer buf(kTransferChunk);
  Progress progress((*file)->size());
  uint64_t offset = 0;
  Status s;
  while (true) {
    auto n = (*file)->Pread({buf.data(), kTransferChunk}, offset);
    if (!n.ok()) {
      s = n.status();
      break;
    }
    if (*n == 0) break;
    for (size_t done = 0; done < *n;) {
      ssize_t w = write(fd, buf.data() + done, *n - done);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        s = Internal(fmt::format("write {}: {}", tmp, std::strerror(errno)));
        break;
      }
      done += w;
    }
    if (!s.ok()) break;
    offset += *n;
    progress.Update(offset);
  }
  // The local file appears whole or not at all.
  if (s.ok() && fsync(fd) != 0)
    s = Internal(fmt::format("fsync {}: {}", tmp, std::strerror(errno)));
  close(fd);
  if (s.ok() && rename(tmp.c_str(), local.c_str()) != 0) {
    s = Internal(fmt::format("rename to {}: {}", local, std::strerror(errno)));
  }
  if (!s.ok()) {
    unlink(tmp.c_str());
    return Fail("get", s);
  }
  return 0;
}

std::string TypeName(FileType t) {
  switch (t) {
    case FileType::DIRECTORY:
      return "dir";
    case FileType::SYMLINK:
      return "symlink";
    default:
      return "file";
  }
}

std::string FormatTime(const Timespec& t) {
  std::time_t secs = t.sec();
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

int Ls(Client& c, const VolumePath& vp) {
  auto attr = c.Resolve(vp.volume, vp.path);
  if (!attr.ok()) return Fail("ls", attr.status());
  if (attr->type() != FileType::DIRECTORY) {
    std::printf("%-7s %04o %12llu %s %s\n", TypeName(attr->type()).c_str(), attr->mode() & 07777,
                static_cast<unsigned long long>(attr->size()), FormatTime(attr->mtime()).c_str(),
                vp.path.c_str());
    return 0;
  }
  auto entries = c.List(vp.volume, vp.path);
  if (!entries.ok()) return Fail("ls", entries.status());
  for (const DirEntry& e : *entries) {
    const InodeAttr& a = e.attr();
    std::printf("%-7s %04o %12llu %s %s%s\n", TypeName(e.type()).c_str(), a.mode() & 07777,
                static_cast<unsigned long long>(a.size()), FormatTime(a.mtime()).c_str(),
                e.name().c_str(), e.type() == FileType::DIRECTORY ? "/" : "");
  }
  return 0;
}

int Stat(Client& c, const VolumePath& vp) {
  auto attr = c.Resolve(vp.volume, vp.path);
  if (!attr.ok()) return Fail("stat", attr.status());
  const InodeAttr& a = *attr;
  std::printf(
      "path=%s/%s\ntype=%s\nino=%llu\nsize=%llu\nmode=%04o\nuid=%u\ngid=%u\nnlink=%u\n"
      "mtime=%s\nctime=%s\ngeneration=%llu\npool=%u\n",
      vp.volume.c_str(), vp.path.c_str(), TypeName(a.type()).c_str(),
      static_cast<unsigned long long>(a.ino()), static_cast<unsigned long long>(a.size()),
      a.mode() & 07777, a.uid(), a.gid(), a.nlink(), FormatTime(a.mtime()).c_str(),
      FormatTime(a.ctime()).c_str(), static_cast<unsigned long long>(a.generation()),
      a.layout().pool_id());
  return 0;
}

}  // namespace

int RunFileVerb(int argc, char** argv) {
  const std::string verb = argv[0];
  CLI::App app{"granary " + verb};
  std::string meta = EnvOr("GRANARY_META", "127.0.0.1:7410");
  std::vector<std::string> args;
  bool parents = false;
  int timeout_s = 20;
  std::string labels;
  app.add_option("--meta", meta, "metanode address ($GRANARY_META)")->capture_default_str();
  app.add_option("--timeout", timeout_s, "seconds before an unreachable cluster is an error")
      ->capture_default_str();
  app.add_option("--labels", labels,
                 "where this client runs, e.g. zone=a,rack=r1,host=h1 ($GRANARY_LABELS); reads "
                 "prefer the nearest copy");
  const size_t want = verb == "put" || verb == "get" ? 2 : 1;
  if (verb == "put") {
    app.add_option("args", args, "LOCAL VOLUME/PATH")->required()->expected(2);
  } else if (verb == "get") {
    app.add_option("args", args, "VOLUME/PATH LOCAL")->required()->expected(2);
  } else {
    app.add_option("args", args, "VOLUME/PATH")->required()->expected(1);
  }
  if (verb == "mkdir")
    app.add_flag("-p,--parents", parents, "create missing parents; no error if it exists");
  CLI11_PARSE(app, argc, argv);
  if (args.size() != want) return Fail(verb, InvalidArgument("wrong number of arguments"));
  InitLogging("cli", EnvOr("GRANARY_LOG_LEVEL", "warn"));
  UseHeapForLargeBuffers();

  client::ClientOptions options;
  options.meta = meta;
  options.labels = labels;
  options.operation_timeout = std::chrono::seconds(timeout_s);
  options.request_timeout = std::chrono::seconds(timeout_s);
  auto c = Client::Connect(options);
  if (!c.ok()) return Fail(verb, c.status());
  auto vp = ParseVolumePath(verb == "put" ? args[1] : args[0]);
  if (!vp.ok()) return Fail(verb, vp.status());

  if (verb == "put") return Put(**c, args[0], *vp);
  if (verb == "get") return Get(**c, *vp, args[1]);
  if (verb == "ls") return Ls(**c, *vp);
  if (verb == "stat") return Stat(**c, *vp);
  if (verb == "rm") {
    Status s = (*c)->Remove(vp->volume, vp->path);
    return s.ok() ? 0 : Fail(verb, s);
  }
  if (verb == "mkdir") {
    auto a = (*c)->Mkdir(vp->volume, vp->path, 0755, parents);
    return a.ok() ? 0 : Fail(verb, a.status());
  }
  return Fail(verb, InvalidArgument("unknown verb"));
}

}  // namespace granary::cmd
