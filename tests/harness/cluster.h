// A metanode and N datanodes as separate `granary` processes on loopback, for end-to-end and
// fault tests: kill -9 any of them, restart it on the same address and data dir.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tests/harness/meta_group.h"
#include "tests/harness/process.h"

namespace granary::testing {

struct ClusterOptions {
  int datanodes = 3;
  // > 1: a metadata Raft group of this many metanode processes (meta_group()).
  int metanodes = 1;
  // Datanodes silent this long are marked down (and writes continue on the others).
  int down_after_ms = 3000;
  int heartbeat_ms = 500;
  // Extra flags per datanode index (e.g. labels).
  std::vector<std::vector<std::string>> datanode_flags;
  // Extra flags for every datanode, and for the metanode (e.g. --out-after-ms).
  std::vector<std::string> all_datanode_flags;
  std::vector<std::string> metanode_flags;
  // Called with (index, data dir) before datanode `index` first starts (e.g. to mount a small
  // file system there).
  std::function<void(int, const std::string&)> prepare_datanode_dir;
};

class LocalCluster {
 public:
  explicit LocalCluster(ClusterOptions options = {});
  ~LocalCluster();

  // Starts every process, waits until every datanode is up in the cluster map, and creates
  // volume `default` in the default pool (as `granary server` does).
  // Throws std::runtime_error (with the processes' output) when that does not happen in time.
  void Start();

  // The --meta list: one address, or every member of the metadata group.
  const std::string& meta_address() const { return meta_address_; }
  MetaGroupProcesses& meta_group() { return *group_; }
  std::string datanode_dir(int i) const;
  std::string meta_dir() const;
  // The framed-protocol address datanode i printed (matches NodeInfo.data_address).
  const std::string& datanode_data_address(int i) const { return data_addresses_[i]; }
  Process& metanode() { return *metanode_; }
  Process& datanode(int i) { return *datanodes_[i]; }
  int datanode_count() const { return static_cast<int>(datanodes_.size()); }

  // SIGKILLs every process, keeping the data dirs (the destructor removes them): for a test
  // that must unmount something inside them first.
  void KillAll();
  void KillMetanode();     // SIGKILL
  void RestartMetanode();  // same address and data dir; waits until it answers
  void KillDatanode(int i);
  void RestartDatanode(int i);
  // Starts one more datanode (flags from datanode_flags[index] if set); returns its index.
  int AddDatanode();

  // Waits until the metanode's map shows `up` datanodes up.
  bool WaitForUpDatanodes(int up, std::chrono::milliseconds timeout = seconds(30));

 private:
  void StartMetanode(const std::string& listen);
  void StartDatanode(int i);

  ClusterOptions options_;
  TempDir dir_;
  std::string meta_address_;
  std::unique_ptr<Process> metanode_;
  std::unique_ptr<MetaGroupProcesses> group_;
  std::vector<std::unique_ptr<Process>> datanodes_;
  std::vector<std::string> data_addresses_;
};

// Bytes and number of block files under a datanode's data dir (blocks kept in its small-block
// RocksDB are not counted). Blocks deleted while the directory is walked are skipped.
struct BlockFileUsage {
  uint64_t bytes = 0;
  uint64_t files = 0;
};
BlockFileUsage BlockFilesOf(const std::string& datanode_dir);

}  // namespace granary::testing
