// Concurrency against invariants that hold whatever order the group commits chose:
// no lost or duplicated names, exact nlink, no cycles, one winner per name, quotas never
// overshot.
#include <map>
#include <set>
#include <thread>

#include "metanode/test_util.h"

namespace granary::metanode {
namespace {

constexpr int kThreads = 16;

template <typename Kind>
class ConcurrencyTest : public MetaTest<Kind> {};
TYPED_TEST_SUITE(ConcurrencyTest, StoreKinds);

TYPED_TEST(ConcurrencyTest, TwoCreatesOfOneNameOneWins) {
  constexpr int kNames = 40;
  std::vector<std::atomic<int>> wins(kNames);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kNames; ++i) {
        auto r = this->Create(this->root_, "n" + std::to_string(i), true);
        if (r.ok()) {
          ++wins[i];
        } else {
          EXPECT_EQ(r.status().code(), Code::ALREADY_EXISTS);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kNames; ++i) EXPECT_EQ(wins[i].load(), 1) << i;
  EXPECT_EQ(this->Names(this->root_).size(), static_cast<size_t>(kNames));
  EXPECT_EQ(this->GetVolume()->used_inodes(), static_cast<uint64_t>(kNames));
}

TYPED_TEST(ConcurrencyTest, RandomCreateRenameUnlinkLinkKeepsNamespaceConsistent) {
  std::mutex mu;
  std::vector<uint64_t> dirs{this->root_};
  std::vector<uint64_t> files;
  std::atomic<int64_t> file_entries{0}, dir_count{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(1234 + t);
      auto pick = [&](const std::vector<uint64_t>& v) {
        std::lock_guard lock(mu);
        return v.empty() ? this->root_ : v[rng() % v.size()];
      };
      auto name = [&] { return "n" + std::to_string(rng() % 12); };
      for (int i = 0; i < 120; ++i) {
        int op = rng() % 7;
        if (op == 0) {
          auto r = this->Create(pick(dirs), name());
          if (r.ok()) {
            ++file_entries;
            std::lock_guard lock(mu);
            files.push_back(r->ino());
          }
        } else if (op == 1) {
          auto r = this->Mkdir(pick(dirs), name());
          if (r.ok()) {
            ++dir_count;
            std::lock_guard lock(mu);
            dirs.push_back(r->ino());
          }
        } else if (op == 2) {
          if (this->Unlink(pick(dirs), name()).ok()) --file_entries;
        } else if (op == 3) {
          if (this->Rmdir(pick(dirs), name()).ok()) --dir_count;
        } else if (op == 4) {
          if (this->Link(pick(files), pick(dirs), name()).ok()) ++file_entries;
        } else {
          auto flags = op == 6 && rng() % 2 ? RENAME_FLAG_EXCHANGE : RENAME_FLAG_PLAIN;
          auto r = this->Rename(pick(dirs), name(), pick(dirs), name(), flags);
          if (r.ok() && flags == RENAME_FLAG_PLAIN && r->replaced_ino() != 0 &&
              r->replaced_ino() != r->moved().ino()) {
            if (r->moved().type() == DIRECTORY) {
              --dir_count;
            } else {
              --file_entries;
            }
          }
        }
      }
    });
  }
  for (auto& t : threads) t.join();

  // Walk the tree: every directory reached once (no cycles), parents consistent.
  auto snap = this->core_->Snapshot();
  std::map<uint64_t, uint32_t> file_links;
  std::set<uint64_t> seen_dirs{this->root_};
  std::vector<uint64_t> todo{this->root_};
  int64_t entries = 0;
  while (!todo.empty()) {
    uint64_t dir = todo.back();
    todo.pop_back();
    ReadDirRequest req;
    req.set_ino(dir);
    req.set_limit(10000);
    auto list = QueryReadDir(*snap, req);
    ASSERT_OK(list);
    uint32_t subdirs = 0;
    for (const auto& e : list->entries()) {
      auto attr = QueryGetAttr(*snap, e.ino());
      ASSERT_OK(attr) << "dangling entry " << e.name();
      ASSERT_EQ(attr->type(), e.type());
      if (e.type() == DIRECTORY) {
        ASSERT_TRUE(seen_dirs.insert(e.ino()).second) << "directory reached twice: cycle";
        EXPECT_EQ(attr->parent(), dir);
        ++subdirs;
        todo.push_back(e.ino());
      } else {
        ++file_links[e.ino()];
        ++entries;
      }
    }
    EXPECT_EQ(QueryGetAttr(*snap, dir)->nlink(), 2 + subdirs) << "dir " << dir;
  }
  for (const auto& [ino, links] : file_links) {
    EXPECT_EQ(QueryGetAttr(*snap, ino)->nlink(), links) << "inode " << ino;
  }
  EXPECT_EQ(entries, file_entries.load());
  EXPECT_EQ(static_cast<int64_t>(seen_dirs.size()) - 1, dir_count.load());
  // Nothing unreachable is left behind (a cycle would detach a subtree).
  int64_t inodes = 0;
  ASSERT_OK(snap->Scan(Cf::kInodes, "", "", false, [&](std::string_view, std::string_view v) {
    InodeRecord rec;
    rec.ParseFromArray(v.data(), static_cast<int>(v.size()));
    if (rec.attr().volume_id() == this->volume_.id()) ++inodes;
    return true;
  }));
  EXPECT_EQ(inodes, static_cast<int64_t>(seen_dirs.size() + file_links.size()));
  EXPECT_EQ(this->GetVolume()->used_inodes(), static_cast<uint64_t>(inodes - 1));
}

TYPED_TEST(ConcurrencyTest, CrossingDirectoryRenamesNeverMakeCycles) {
  auto a = this->Mkdir(this->root_, "a");
  auto b = this->Mkdir(this->root_, "b");
  ASSERT_OK(a);
  ASSERT_OK(b);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 60; ++i) {
        // Half the threads move a under b, the others b under a, from wherever they are.
        uint64_t mover = t % 2 ? a->ino() : b->ino(), target = t % 2 ? b->ino() : a->ino();
        auto attr = this->GetAttr(mover);
        if (!attr.ok()) continue;
        std::string name = t % 2 ? "a" : "b";
        auto r = this->Rename(attr->parent(), name, i % 3 ? target : this->root_, name);
        if (!r.ok()) {
          EXPECT_TRUE(r.status().code() == Code::INVALID_ARGUMENT ||
                      r.status().code() == Code::NOT_FOUND)
              << r.status().ToString();
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  // Both directories are reachable from the root.
  for (uint64_t ino : {a->ino(), b->ino()}) {
    uint64_t p = ino;
    int depth = 0;
    while (p != this->root_ && depth < 10) {
      p = this->GetAttr(p)->parent();
      ++depth;
    }
    EXPECT_EQ(p, this->root_) << "inode " << ino << " is detached in a cycle";
  }
}

TYPED_TEST(ConcurrencyTest, ConcurrentWritersNeverOvershootQuota) {
  constexpr uint64_t kQuotaBytes = 20000, kQuotaInodes = 40;
  auto v = this->VolumeCreate("q", kQuotaBytes, kQuotaInodes);
  ASSERT_OK(v);
  std::atomic<int> creates{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(99 + t);
      for (int i = 0; i < 20; ++i) {
        auto f = this->Create(v->root_ino(), "t" + std::to_string(t) + "-" + std::to_string(i));
        if (!f.ok()) {
          EXPECT_EQ(f.status().code(), Code::QUOTA_EXCEEDED);
          continue;
        }
        ++creates;
        uint64_t bytes = 200 + rng() % 1000;
        Operation alloc;
        alloc.mutable_allocate()->set_ino(f->ino());
        alloc.mutable_allocate()->set_slice_count(1);
        alloc.mutable_allocate()->set_bytes(bytes);
        auto a = this->Run(alloc);
        if (!a.ok()) {
          EXPECT_EQ(a.status().code(), Code::QUOTA_EXCEEDED);
          continue;
        }
        Operation commit;
        auto* c = commit.mutable_commit();
        c->set_ino(f->ino());
        c->set_intent_id(a->allocate().intent_id());
        c->set_generation(a->allocate().generation());
        SliceRef& s = *c->add_ranges()->add_slices();
        s.set_slice_id(a->allocate().first_slice_id());
        s.set_slice_length(bytes);
        s.set_length(bytes);
        c->set_end(bytes);
        ASSERT_OK(this->Run(commit));
      }
    });
  }
  for (auto& t : threads) t.join();
  VolumeGetRequest req;
  req.set_id(v->id());
  auto vol = QueryVolume(*this->core_->Snapshot(), req);
  EXPECT_LE(vol->used_bytes(), kQuotaBytes);
  EXPECT_GT(vol->used_bytes(), kQuotaBytes / 2);  // the quota was actually contended
  EXPECT_EQ(vol->reserved_bytes(), 0u);
  EXPECT_LE(vol->used_inodes(), kQuotaInodes);
  EXPECT_EQ(creates.load(), static_cast<int>(kQuotaInodes));
}

}  // namespace
}  // namespace granary::metanode
