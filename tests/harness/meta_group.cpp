#include "tests/harness/meta_group.h"

#include <fmt/format.h>
#include <signal.h>

#include <filesystem>
#include <map>
#include <stdexcept>

#include "client/meta_client.h"
#include "common/net.h"

namespace granary::testing {

MetaGroupProcesses::MetaGroupProcesses(MetaGroupOptions options) : options_(std::move(options)) {
  for (int i = 0; i < options_.members; ++i) {
    auto port = FreePortPair();
    if (!port.ok()) throw std::runtime_error(port.status().ToString());
    addresses_.push_back(fmt::format("127.0.0.1:{}", *port));
    processes_.emplace_back();
  }
}

MetaGroupProcesses::~MetaGroupProcesses() {
  for (auto& p : processes_) {
    if (p) {
      p->Signal(SIGCONT);  // a paused member must be able to die
      p.reset();
    }
  }
}

std::string MetaGroupProcesses::addresses() const {
  std::string out;
  for (const auto& a : addresses_) out += (out.empty() ? "" : ",") + a;
  return out;
}

std::string MetaGroupProcesses::peers() const {
  std::string out;
  for (size_t i = 0; i < addresses_.size(); ++i) {
    out += fmt::format("{}{}={}", out.empty() ? "" : ",", i + 1, addresses_[i]);
  }
  return out;
}

std::string MetaGroupProcesses::data_dir(int id) const {
  return fmt::format("{}/meta-{}", options_.dir, id);
}

std::vector<std::string> MetaGroupProcesses::Args(int id) const {
  std::vector<std::string> argv = {GranaryBinary(),
                                   "metanode",
                                   "--data",
                                   data_dir(id),
                                   "--listen",
                                   address(id),
                                   "--admin",
                                   "127.0.0.1:0",
                                   "--id",
                                   std::to_string(id),
                                   "--election-timeout-ms",
                                   std::to_string(options_.election_timeout_ms),
                                   "--secret-key-file",
                                   options_.dir + "/secret.key"};
  for (const auto& f : options_.flags) argv.push_back(f);
  return argv;
}

void MetaGroupProcesses::Launch(int id, std::vector<std::string> argv) {
  processes_[id - 1] = std::make_unique<Process>(std::move(argv));
}

void MetaGroupProcesses::Start() {
  for (int id = 1; id <= size(); ++id) {
    auto argv = Args(id);
    argv.push_back("--peers");
    argv.push_back(peers());
    Launch(id, std::move(argv));
  }
  for (int id = 1; id <= size(); ++id) {
    if (!processes_[id - 1]->WaitForLine(R"(listening meta=)", seconds(60))) {
      throw std::runtime_error(fmt::format("metanode {} did not start:\n{}", id, Output(id)));
    }
  }
  if (WaitLeader() == 0) throw std::runtime_error("no metadata leader:\n" + Output(1));
}

int MetaGroupProcesses::WaitLeader(std::chrono::milliseconds timeout, int not_id) {
  int leader = 0;
  WaitUntil(
      [&] {
        std::map<uint64_t, int> votes;
        int answered = 0;
        for (int id = 1; id <= size(); ++id) {
          client::MetaClientOptions o;
          o.address = address(id);
          o.keep_alive = false;
          o.attempt_timeout = std::chrono::seconds(1);  // a paused member answers nothing
          auto mc = client::MetaClient::Connect(o);
          if (!mc.ok()) continue;
          auto s = (*mc)->GroupStatus(address(id));
          if (!s.ok()) continue;
          ++answered;
          if (s->role() == "leader" && s->leader_id() == static_cast<uint64_t>(id)) {
            votes[s->leader_id()] += 1;
          }
        }
        if (votes.size() != 1 || answered == 0) return false;
        leader = static_cast<int>(votes.begin()->first);
        return leader != not_id;
      },
      timeout);
  return leader != not_id ? leader : 0;
}

void MetaGroupProcesses::Kill(int id) {
  if (processes_[id - 1]) processes_[id - 1]->Kill();
}

void MetaGroupProcesses::Restart(int id, std::vector<std::string> extra) {
  processes_[id - 1].reset();
  auto argv = Args(id);
  for (auto& e : extra) argv.push_back(std::move(e));
  Launch(id, std::move(argv));
  if (!processes_[id - 1]->WaitForLine(R"(listening meta=)", seconds(60))) {
    throw std::runtime_error(fmt::format("metanode {} did not restart:\n{}", id, Output(id)));
  }
}

void MetaGroupProcesses::StartWith(int id, std::vector<std::string> args_tail) {
  processes_[id - 1].reset();
  auto argv = Args(id);
  for (auto& a : args_tail) argv.push_back(std::move(a));
  Launch(id, std::move(argv));
}

void MetaGroupProcesses::Wipe(int id) {
  std::error_code ec;
  std::filesystem::remove_all(data_dir(id), ec);
}

void MetaGroupProcesses::Pause(int id) { processes_[id - 1]->Signal(SIGSTOP); }
void MetaGroupProcesses::Resume(int id) { processes_[id - 1]->Signal(SIGCONT); }

std::string MetaGroupProcesses::Output(int id) {
  return processes_[id - 1] ? processes_[id - 1]->Output() : std::string("(not running)");
}

int MetaGroupProcesses::Spawn() {
  auto port = FreePortPair();
  if (!port.ok()) throw std::runtime_error(port.status().ToString());
  addresses_.push_back(fmt::format("127.0.0.1:{}", *port));
  processes_.emplace_back();
  return size();
}

}  // namespace granary::testing
