#include "client/granary.h"

#include <fmt/format.h>

#include "client/block_io.h"
#include "client/cluster_view.h"
#include "client/ec_block_io.h"
#include "client/meta_client.h"
#include "client/releaser.h"
#include "common/config.h"
#include "common/data_connection.h"
#include "common/log.h"

namespace granary::client {
namespace {

// Path components, skipping empty ones ("a//b/" -> a, b). '.' and '..' are refused: a volume
// path is always canonical.
Result<std::vector<std::string>> SplitPath(std::string_view path) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i <= path.size()) {
    size_t slash = path.find('/', i);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view part = path.substr(i, slash - i);
    if (part == "." || part == "..") {
      return InvalidArgument(fmt::format("path '{}': '.' and '..' are not allowed", path));
    }
    if (!part.empty()) parts.emplace_back(part);
    i = slash + 1;
  }
  return parts;
}

}  // namespace

Client::~Client() = default;

void Client::DrainReleases() { releaser_->Drain(); }

Result<std::unique_ptr<Client>> Client::Connect(const ClientOptions& options) {
  std::unique_ptr<Client> c(new Client());
  c->options_ = options;
  MetaClientOptions meta_options;
  meta_options.address = options.meta;
  meta_options.deadline = options.operation_timeout;
  auto meta = MetaClient::Connect(meta_options);
  if (!meta.ok()) return meta.status();
  c->meta_ = std::move(*meta);
  c->releaser_ = std::make_unique<Releaser>(*c->meta_);

  std::string label_text = options.labels.empty() ? EnvOr("GRANARY_LABELS", "") : options.labels;
  auto labels = ParseLabels(label_text);
  if (!labels.ok()) return labels.status().WithContext("client labels");
  Location self = Location::FromLabels(*labels, LocalHostname());

  MetaClient* raw_meta = c->meta_.get();
  c->cluster_ = std::make_unique<ClusterView>(
      [raw_meta](uint64_t known) { return raw_meta->GetClusterMap(known); }, self);
  BlockIoOptions io_options;
  io_options.request_timeout = options.request_timeout;
  c->blocks_ = std::make_unique<BlockIo>(
      DataConnectionPool::Create(), io_options,
      [raw_meta](uint32_t node, const BlockKey& key, const std::string& detail) {
        ReportCorruptionRequest req;
        req.set_node_id(node);
        req.set_slice_id(key.slice_id());
        req.set_block_index(key.block_index());
        req.set_fragment(key.fragment());
        req.set_detail(detail);
        Status s = raw_meta->ReportCorruption(req);
        if (!s.ok()) GLOG_WARN("event=report_corruption_failed error=\"{}\"", s.ToString());
      });
  EcReadOptions ec_options;
  ec_options.fragment_deadline = options.fragment_deadline;
  ec_options.request_timeout = options.request_timeout;
  c->ec_blocks_ = std::make_unique<EcBlockIo>(*c->blocks_, ec_options);
  return c;
}

Result<uint64_t> Client::VolumeRoot(std::string_view volume) {
  auto v = meta_->VolumeGet(volume);
  if (!v.ok()) return v.status().WithContext(fmt::format("volume '{}'", volume));
  return v->root_ino();
}

Result<std::pair<InodeAttr, std::vector<std::string>>> Client::RootAndComponents(
    std::string_view volume, std::string_view path) {
  auto root = VolumeRoot(volume);
  if (!root.ok()) return root.status();
  auto parts = SplitPath(path);
  if (!parts.ok()) return parts.status();
  auto attr = meta_->GetAttr(*root);
  if (!attr.ok()) return attr.status().WithContext(fmt::format("volume '{}' root", volume));
  return std::make_pair(std::move(*attr), std::move(*parts));
}

Result<InodeAttr> Client::Resolve(std::string_view volume, std::string_view path) {
  auto start = RootAndComponents(volume, path);
  if (!start.ok()) return start.status();
  Result<InodeAttr> attr = std::move(start->first);
  for (const std::string& part : start->second) {
    if (!attr.ok()) break;
    attr = meta_->Lookup(attr->ino(), part);
  }
  if (!attr.ok()) return attr.status().WithContext(fmt::format("resolve {}/{}", volume, path));
  return attr;
}

Result<std::pair<uint64_t, std::string>> Client::ResolveParent(std::string_view volume,
                                                               std::string_view path) {
  auto parts = SplitPath(path);
  if (!parts.ok()) return parts.status();
  if (parts->empty()) {
    return InvalidArgument(fmt::format("{}/{}: the volume root has no name", volume, path));
  }
  std::string name = parts->back();
  std::string parent_path;
  for (size_t i = 0; i + 1 < parts->size(); ++i) parent_path += (*parts)[i] + "/";
  auto parent = Resolve(volume, parent_path);
  if (!parent.ok()) return parent.status();
  if (parent->type() != FileType::DIRECTORY) {
    return Status(Code::NOT_DIRECTORY,
                  fmt::format("{}/{} is not a directory", volume, parent_path));
  }
  return std::make_pair(parent->ino(), name);
}

Result<std::unique_ptr<File>> Client::Open(std::string_view volume, std::string_view path,
                                           const OpenOptions& options) {
  auto parent = ResolveParent(volume, path);
  if (!parent.ok()) return parent.status();
  if (options.create) {
    CreateRequest req;
    req.set_parent(parent->first);
    req.set_name(parent->second);
    req.set_mode(options.mode);
    req.set_uid(options_.uid);
    req.set_gid(options_.gid);
    req.set_exclusive(options.exclusive);
    req.set_truncate(options.truncate);
    auto file = CreateFile(std::move(req));
    if (!file.ok()) return file.status().WithContext(fmt::format("open {}/{}", volume, path));
    return file;
  }
  Result<InodeAttr> attr = meta_->Lookup(parent->first, parent->second);
  if (attr.ok() && options.truncate && attr->type() == FileType::REGULAR && attr->size() > 0) {
    SetAttrRequest req;
    req.set_ino(attr->ino());
    req.set_valid(SETATTR_SIZE);
    req.set_size(0);
    attr = meta_->SetAttr(req);
  }
  if (!attr.ok()) return attr.status().WithContext(fmt::format("open {}/{}", volume, path));
  if (attr->type() == FileType::DIRECTORY) {
    return Status(Code::IS_DIRECTORY, fmt::format("open {}/{}: is a directory", volume, path));
  }
  return OpenInode(*attr);
}

uint64_t Client::NextHandleOwner() {
  return meta_->client_id() ^ (++handles_opened_ * 0x9E3779B97F4A7C15ull);
}

Result<std::unique_ptr<File>> Client::OpenInode(const InodeAttr& attr) {
  // Pins the inode: unlinked while open, it stays readable until this handle is released.
  const uint64_t owner = NextHandleOwner();
  auto pinned = meta_->Open(attr.ino(), owner);
  if (!pinned.ok()) return pinned.status().WithContext(fmt::format("open ino {}", attr.ino()));
  return std::unique_ptr<File>(new File(this, *pinned, owner));
}

Result<std::unique_ptr<File>> Client::CreateFile(CreateRequest req) {
  const uint64_t owner = NextHandleOwner();
  req.set_handle_owner(owner);
  if (req.writer_host().empty()) req.set_writer_host(cluster_->self().host);
  auto attr = meta_->Create(std::move(req));
  if (!attr.ok()) return attr.status();
  return std::unique_ptr<File>(new File(this, *attr, owner));
}

Result<InodeAttr> Client::Mkdir(std::string_view volume, std::string_view path, uint32_t mode,
                                bool parents) {
  if (!parents) {
    auto parent = ResolveParent(volume, path);
    if (!parent.ok()) return parent.status();
    return meta_->Mkdir(parent->first, parent->second, mode, options_.uid, options_.gid);
  }
  auto start = RootAndComponents(volume, path);
  if (!start.ok()) return start.status();
  Result<InodeAttr> attr = std::move(start->first);
  for (const std::string& part : start->second) {
    if (!attr.ok()) break;
    uint64_t dir = attr->ino();
    attr = meta_->Mkdir(dir, part, mode, options_.uid, options_.gid);
    if (!attr.ok() && attr.status().code() == Code::ALREADY_EXISTS) {
      attr = meta_->Lookup(dir, part);
      if (attr.ok() && attr->type() != FileType::DIRECTORY) {
        return Status(Code::NOT_DIRECTORY,
                      fmt::format("mkdir -p {}/{}: '{}' is not a directory", volume, path, part));
      }
    }
  }
  if (!attr.ok()) return attr.status().WithContext(fmt::format("mkdir {}/{}", volume, path));
  return attr;
}

Status Client::Remove(std::string_view volume, std::string_view path) {
  auto parent = ResolveParent(volume, path);
  if (!parent.ok()) return parent.status();
  auto attr = meta_->Lookup(parent->first, parent->second);
  if (!attr.ok()) return attr.status().WithContext(fmt::format("rm {}/{}", volume, path));
  Status s = attr->type() == FileType::DIRECTORY ? meta_->Rmdir(parent->first, parent->second)
                                                 : meta_->Unlink(parent->first, parent->second);
  return s.WithContext(fmt::format("rm {}/{}", volume, path));
}

Result<std::vector<DirEntry>> Client::List(std::string_view volume, std::string_view path) {
  auto dir = Resolve(volume, path);
  if (!dir.ok()) return dir.status();
  if (dir->type() != FileType::DIRECTORY) {
    return Status(Code::NOT_DIRECTORY, fmt::format("ls {}/{}: not a directory", volume, path));
  }
  std::vector<DirEntry> out;
  std::string after;
  while (true) {
    auto page = meta_->ReadDir(dir->ino(), after, 0, /*plus=*/true);
    if (!page.ok()) return page.status().WithContext(fmt::format("ls {}/{}", volume, path));
    for (const DirEntry& e : page->entries()) out.push_back(e);
    if (page->eof() || page->entries_size() == 0) break;
    after = page->entries(page->entries_size() - 1).name();
  }
  return out;
}

}  // namespace granary::client
