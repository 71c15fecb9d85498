// A metadata Raft group of N `granary metanode` processes on loopback (docs/metadata-ha.md):
// kill -9, SIGSTOP/SIGCONT, wipe and restart any member, find the leader.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tests/harness/process.h"

namespace granary::testing {

struct MetaGroupOptions {
  int members = 3;
  std::string dir;  // members use dir/meta-<id>
  std::vector<std::string> flags;  // for every member (e.g. --down-after-ms)
  int election_timeout_ms = 1000;
};

class MetaGroupProcesses {
 public:
  explicit MetaGroupProcesses(MetaGroupOptions options);
  ~MetaGroupProcesses();

  // Starts every member and waits until one is leader. Throws std::runtime_error otherwise.
  void Start();

  int size() const { return static_cast<int>(addresses_.size()); }
  // "HOST:PORT,…" for --meta.
  std::string addresses() const;
  const std::string& address(int id) const { return addresses_[id - 1]; }
  std::string data_dir(int id) const;
  Process* process(int id) { return processes_[id - 1].get(); }
  std::string peers() const;

  // The id of the member that is leader (every answering member agrees), 0 when none within
  // `timeout`.
  int WaitLeader(std::chrono::milliseconds timeout = seconds(20), int not_id = 0);
  void Kill(int id);            // SIGKILL
  void Restart(int id, std::vector<std::string> extra = {});  // same address and data dir
  void StartWith(int id, std::vector<std::string> args_tail);  // with other flags (no --peers)
  void Wipe(int id);            // remove the member's data dir (it must be stopped)
  void Pause(int id);           // SIGSTOP
  void Resume(int id);          // SIGCONT
  // Output of member `id` so far (for failure messages).
  std::string Output(int id);
  // Adds member id (size()+1) as a process on a new address (it is not in the group until
  // `granary admin meta add`); returns its id.
  int Spawn();

 private:
  std::vector<std::string> Args(int id) const;
  void Launch(int id, std::vector<std::string> argv);

  MetaGroupOptions options_;
  std::vector<std::string> addresses_;
  std::vector<std::unique_ptr<Process>> processes_;
};

}  // namespace granary::testing
