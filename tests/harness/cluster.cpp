#include "tests/harness/cluster.h"

#include <fmt/format.h>

#include <filesystem>
#include <stdexcept>

#include "client/meta_client.h"

namespace granary::testing {

LocalCluster::LocalCluster(ClusterOptions options) : options_(std::move(options)) {}

LocalCluster::~LocalCluster() { KillAll(); }

void LocalCluster::KillAll() {
  for (auto& dn : datanodes_) dn.reset();
  metanode_.reset();
  group_.reset();
}

std::string LocalCluster::meta_dir() const { return dir_.str() + "/meta"; }
std::string LocalCluster::datanode_dir(int i) const {
  return fmt::format("{}/dn{}", dir_.str(), i);
}

void LocalCluster::StartMetanode(const std::string& listen) {
  std::vector<std::string> argv = {GranaryBinary(),   "metanode",
                                   "--data",          meta_dir(),
                                   "--listen",        listen,
                                   "--admin",         "127.0.0.1:0",
                                   "--down-after-ms", std::to_string(options_.down_after_ms)};
  for (const auto& f : options_.metanode_flags) argv.push_back(f);
  metanode_ = std::make_unique<Process>(argv);
  auto line = metanode_->WaitForLine(R"(listening meta=(\S+))", seconds(30));
  if (!line) throw std::runtime_error("metanode did not start:\n" + metanode_->Output());
  meta_address_ = (*line)[1];
}

void LocalCluster::StartDatanode(int i) {
  std::vector<std::string> argv = {GranaryBinary(),  "datanode",
                                   "--data",         datanode_dir(i),
                                   "--listen",       "127.0.0.1:0",
                                   "--data-listen",  "127.0.0.1:0",
                                   "--admin",        "127.0.0.1:0",
                                   "--meta",         meta_address_,
                                   "--heartbeat-ms", std::to_string(options_.heartbeat_ms)};
  for (const auto& f : options_.all_datanode_flags) argv.push_back(f);
  if (i < static_cast<int>(options_.datanode_flags.size())) {
    for (const auto& f : options_.datanode_flags[i]) argv.push_back(f);
  }
  auto p = std::make_unique<Process>(argv);
  auto line = p->WaitForLine(R"(listening control=\S+ data=(\S+))", seconds(30));
  if (!line) {
    throw std::runtime_error(fmt::format("datanode {} did not start:\n{}", i, p->Output()));
  }
  if (i < static_cast<int>(datanodes_.size())) {
    datanodes_[i] = std::move(p);
    data_addresses_[i] = (*line)[1];
  } else {
    datanodes_.push_back(std::move(p));
    data_addresses_.push_back((*line)[1]);
  }
}

void LocalCluster::Start() {
  std::filesystem::create_directories(meta_dir());
  if (options_.metanodes > 1) {
    MetaGroupOptions go;
    go.members = options_.metanodes;
    go.dir = dir_.str();
    go.flags = {"--down-after-ms", std::to_string(options_.down_after_ms)};
    for (const auto& f : options_.metanode_flags) go.flags.push_back(f);
    group_ = std::make_unique<MetaGroupProcesses>(go);
    group_->Start();
    meta_address_ = group_->addresses();
  } else {
    StartMetanode("127.0.0.1:0");
  }
  for (int i = 0; i < options_.datanodes; ++i) {
    std::filesystem::create_directories(datanode_dir(i));
    if (options_.prepare_datanode_dir) options_.prepare_datanode_dir(i, datanode_dir(i));
    StartDatanode(i);
  }
  if (!WaitForUpDatanodes(options_.datanodes)) {
    throw std::runtime_error("datanodes did not come up:\n" +
                             (metanode_ ? metanode_->Output() : group_->Output(1)));
  }
  client::MetaClientOptions o;
  o.address = meta_address_;
  auto meta = client::MetaClient::Connect(o);
  auto volume = meta.ok() ? (*meta)->VolumeCreate("default") : Result<Volume>(meta.status());
  if (!volume.ok()) {
    throw std::runtime_error("create volume default: " + volume.status().ToString());
  }
}

bool LocalCluster::WaitForUpDatanodes(int up, std::chrono::milliseconds timeout) {
  client::MetaClientOptions o;
  o.address = meta_address_;
  o.deadline = std::chrono::seconds(2);
  auto meta = client::MetaClient::Connect(o);
  if (!meta.ok()) return false;
  return WaitUntil(
      [&] {
        auto map = (*meta)->GetClusterMap(0);
        if (!map.ok()) return false;
        int n = 0;
        for (const auto& node : map->nodes()) n += node.state() == NodeState::UP ? 1 : 0;
        return n == up;
      },
      timeout);
}

void LocalCluster::KillMetanode() { metanode_->Kill(); }

void LocalCluster::RestartMetanode() {
  metanode_.reset();
  StartMetanode(meta_address_);
}

void LocalCluster::KillDatanode(int i) { datanodes_[i]->Kill(); }

int LocalCluster::AddDatanode() {
  const int i = datanode_count();
  std::filesystem::create_directories(datanode_dir(i));
  if (options_.prepare_datanode_dir) options_.prepare_datanode_dir(i, datanode_dir(i));
  StartDatanode(i);
  return i;
}

void LocalCluster::RestartDatanode(int i) {
  datanodes_[i].reset();
  StartDatanode(i);
}

BlockFileUsage BlockFilesOf(const std::string& datanode_dir) {
  namespace fs = std::filesystem;
  BlockFileUsage usage;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(datanode_dir + "/blocks", ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    // The datanode may delete a block between the listing and the stat (GC, a PG it left).
    std::error_code gone;
    if (!it->is_regular_file(gone)) continue;
    const uint64_t size = it->file_size(gone);
    if (gone) continue;
    usage.bytes += size;
    ++usage.files;
  }
  return usage;
}

}  // namespace granary::testing
