#include "replication/raft_group.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "common/net.h"

namespace granary::replication {
namespace {

using namespace std::chrono_literals;

// A replicated list of strings. Restore copies the state of the member that sent the snapshot
// (the metanode fetches a checkpoint instead).
class ListFsm : public StateMachine {
 public:
  Result<std::vector<std::shared_ptr<void>>> Apply(
      uint64_t index, const std::vector<std::string_view>& commands) override {
    std::lock_guard lock(mu_);
    std::vector<std::shared_ptr<void>> out;
    for (auto c : commands) {
      items_.emplace_back(c);
      out.push_back(std::make_shared<size_t>(items_.size()));
    }
    applied_ = index;
    return out;
  }
  uint64_t applied_index() const override {
    std::lock_guard lock(mu_);
    return applied_;
  }
  Result<std::string> Snapshot() override {
    std::lock_guard lock(mu_);
    ++snapshots_;
    return std::to_string(applied_);
  }
  Status Restore(std::string_view snapshot, const std::string& leader) override;
  void LeadershipChanged(bool leader) override { leading_ = leader; }

  std::vector<std::string> items() const {
    std::lock_guard lock(mu_);
    return items_;
  }
  int restores_from_leader() const { return restores_; }
  bool leading() const { return leading_; }

  static std::mutex registry_mu;
  static std::map<std::string, ListFsm*> registry;  // service address -> fsm

 private:
  mutable std::mutex mu_;
  std::vector<std::string> items_;
  uint64_t applied_ = 0;
  int snapshots_ = 0;
  std::atomic<int> restores_{0};
  std::atomic<bool> leading_{false};
};
std::mutex ListFsm::registry_mu;
std::map<std::string, ListFsm*> ListFsm::registry;

Status ListFsm::Restore(std::string_view snapshot, const std::string& leader) {
  const uint64_t index = std::stoull(std::string(snapshot));
  if (applied_index() >= index) return Status::Ok();
  if (leader.empty()) return Unavailable("behind the snapshot and no leader to copy from");
  std::lock_guard reg(registry_mu);
  ListFsm* source = registry.at(leader);
  std::scoped_lock both(mu_, source->mu_);
  items_ = source->items_;
  applied_ = source->applied_;
  ++restores_;
  return Status::Ok();
}

struct Node {
  Member member;
  std::string dir;
  std::unique_ptr<ListFsm> fsm;
  std::unique_ptr<RaftGroup> group;
};

class RaftGroupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() /
            ("raft_group_test_" + std::to_string(getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
  }
  void TearDown() override {
    for (auto& n : nodes_) Stop(n);
    std::filesystem::remove_all(root_);
  }

  Member NewMember(uint64_t id) {
    auto port = FreePortPair();
    EXPECT_TRUE(port.ok());
    return {id, "127.0.0.1:" + std::to_string(*port)};
  }

  GroupOptions Options(const Node& n, std::vector<Member> bootstrap) {
    GroupOptions o;
    o.dir = n.dir;
    o.id = n.member.id;
    o.address = n.member.address;
    o.bootstrap = std::move(bootstrap);
    o.election_timeout_ms = 300;
    o.heartbeat_ms = 30;
    o.snapshot_threshold = threshold_;
    o.snapshot_trailing = trailing_;
    return o;
  }

  void Start(Node& n, std::vector<Member> bootstrap) {
    n.fsm = std::make_unique<ListFsm>();
    {
      std::lock_guard lock(ListFsm::registry_mu);
      ListFsm::registry[n.member.address] = n.fsm.get();
    }
    auto g = RaftGroup::Start(Options(n, std::move(bootstrap)), *n.fsm);
    ASSERT_TRUE(g.ok()) << g.status().ToString();
    n.group = std::move(*g);
  }

  void Stop(Node& n) {
    if (n.group) n.group->Stop();
    n.group.reset();
    std::lock_guard lock(ListFsm::registry_mu);
    ListFsm::registry.erase(n.member.address);
  }

  std::vector<Member> StartGroup(int count) {
    std::vector<Member> members;
    for (int i = 1; i <= count; ++i) members.push_back(NewMember(i));
    for (const Member& m : members) {
      nodes_.push_back({m, (root_ / std::to_string(m.id)).string(), nullptr, nullptr});
    }
    for (auto& n : nodes_) Start(n, members);
    return members;
  }

  // The one member that is leader and ready, waiting up to `timeout`.
  Node* WaitLeader(std::chrono::milliseconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      for (auto& n : nodes_) {
        if (n.group && n.group->is_leader() && n.group->ReadFence(0ms).ok()) return &n;
      }
      std::this_thread::sleep_for(10ms);  // polling with a deadline
    }
    return nullptr;
  }

  Status ProposeSync(RaftGroup& g, std::string command, size_t* position = nullptr) {
    std::promise<Status> done;
    g.Propose(std::move(command), [&](Status s, std::shared_ptr<void> r) {
      if (s.ok() && position && r) *position = *std::static_pointer_cast<size_t>(r);
      done.set_value(s);
    });
    return done.get_future().get();
  }

  bool WaitEqual(const Node& a, const Node& b, std::chrono::milliseconds timeout = 10s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (a.fsm->items() == b.fsm->items()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  std::filesystem::path root_;
  std::vector<Node> nodes_;
  unsigned threshold_ = 4096;
  unsigned trailing_ = 1024;
};

TEST(ParseMembersTest, ParsesSortsAndRejectsMistakes) {
  auto m = ParseMembers("2=127.0.0.1:7420,1=localhost:7410");
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->size(), 2u);
  EXPECT_EQ((*m)[0], (Member{1, "localhost:7410"}));
  EXPECT_EQ(FormatMembers(*m), "1=localhost:7410,2=127.0.0.1:7420");
  EXPECT_EQ(ParseMembers("0=h:1").status().code(), Code::INVALID_ARGUMENT);
  EXPECT_EQ(ParseMembers("1=h:1,1=h:2").status().message(), "member id 1 named twice");
  EXPECT_EQ(ParseMembers("1=h:1,2=h:1").status().message(), "member address h:1 named twice");
  EXPECT_EQ(ParseMembers("1=h:0").status().code(), Code::INVALID_ARGUMENT);
  EXPECT_EQ(*RaftAddressOf("meta-0.meta:7410"), "meta-0.meta:7411");
}

TEST_F(RaftGroupTest, ThreeMembersAgreeOnEveryCommandInOrder) {
  StartGroup(3);
  Node* leader = WaitLeader();
  ASSERT_NE(leader, nullptr);
  std::vector<std::thread> writers;
  std::atomic<int> failures{0};
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < 50; ++i) {
        if (!ProposeSync(*leader->group, fmt::format("w{}-{}", w, i)).ok()) ++failures;
      }
    });
  }
  for (auto& t : writers) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(leader->fsm->items().size(), 200u);
  for (auto& n : nodes_) EXPECT_TRUE(WaitEqual(n, *leader)) << "member " << n.member.id;
  EXPECT_TRUE(leader->fsm->leading());
}

TEST_F(RaftGroupTest, FollowersRefuseAndNameTheLeader) {
  StartGroup(3);
  Node* leader = WaitLeader();
  ASSERT_NE(leader, nullptr);
  for (auto& n : nodes_) {
    if (&n == leader) continue;
    // A follower learns the leader from its first heartbeat.
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (n.group->leader_address().empty() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(10ms);
    }
    Status s = ProposeSync(*n.group, "x");
    EXPECT_EQ(s.code(), Code::NOT_LEADER);
    EXPECT_EQ(LeaderHint(s), leader->member.address) << s.ToString();
    Status r = n.group->ReadFence(100ms);
    EXPECT_EQ(r.code(), Code::NOT_LEADER);
    EXPECT_EQ(LeaderHint(r), leader->member.address);
  }
  EXPECT_TRUE(leader->group->ReadFence(1s).ok());
}

TEST_F(RaftGroupTest, ANewLeaderKeepsEverythingCommittedAndTheOldOneCatchesUp) {
  StartGroup(3);
  Node* leader = WaitLeader();
  ASSERT_NE(leader, nullptr);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(ProposeSync(*leader->group, fmt::format("a{}", i)).ok());
  const uint64_t old_id = leader->member.id;
  Stop(*leader);
  Node* next = WaitLeader();
  ASSERT_NE(next, nullptr);
  EXPECT_NE(next->member.id, old_id);
  EXPECT_EQ(next->fsm->items().size(), 20u);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(ProposeSync(*next->group, fmt::format("b{}", i)).ok());
  Node& old = nodes_[old_id - 1];
  Start(old, {});
  EXPECT_TRUE(WaitEqual(old, *next));
  EXPECT_EQ(old.fsm->items().size(), 40u);
}

TEST_F(RaftGroupTest, AWipedMemberRejoinsFromASnapshot) {
  threshold_ = 16;
  trailing_ = 4;
  StartGroup(3);
  Node* leader = WaitLeader();
  ASSERT_NE(leader, nullptr);
  Node* follower = leader == &nodes_[0] ? &nodes_[1] : &nodes_[0];
  Stop(*follower);
  std::filesystem::remove_all(follower->dir);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(ProposeSync(*leader->group, fmt::format("c{}", i)).ok());
  Start(*follower, {});  // pristine, not bootstrapped: the leader's log start is gone
  EXPECT_TRUE(WaitEqual(*follower, *leader));
  EXPECT_GE(follower->fsm->restores_from_leader(), 1);
  EXPECT_GE(follower->group->counters().snapshots_installed, 1u);
}

TEST_F(RaftGroupTest, MembersAreAddedAndRemovedWhileServing) {
  StartGroup(1);
  Node* leader = WaitLeader();
  ASSERT_NE(leader, nullptr);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(ProposeSync(*leader->group, fmt::format("d{}", i)).ok());
  Member joining = NewMember(2);
  nodes_.push_back({joining, (root_ / "2").string(), nullptr, nullptr});
  leader = &nodes_[0];
  Start(nodes_[1], {});
  std::promise<Status> added;
  leader->group->AddMember(joining, [&](Status s) { added.set_value(s); });
  Status s = added.get_future().get();
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(WaitEqual(nodes_[1], *leader));
  auto view = leader->group->View();
  ASSERT_TRUE(view.ok());
  ASSERT_EQ(view->members.size(), 2u);
  EXPECT_TRUE(view->members[1].voter);
  // Adding it again is refused with a clear error.
  std::promise<Status> again;
  leader->group->AddMember(joining, [&](Status s) { again.set_value(s); });
  EXPECT_EQ(again.get_future().get().code(), Code::ALREADY_EXISTS);
  ASSERT_TRUE(ProposeSync(*leader->group, "e").ok());
  std::promise<Status> removed;
  leader->group->RemoveMember(2, [&](Status s) { removed.set_value(s); });
  s = removed.get_future().get();
  ASSERT_TRUE(s.ok()) << s.ToString();
  view = leader->group->View();
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->members.size(), 1u);
  ASSERT_TRUE(ProposeSync(*leader->group, "f").ok());
}

}  // namespace
}  // namespace granary::replication
