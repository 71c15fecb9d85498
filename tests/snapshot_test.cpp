// Snapshots and clones (issue 25, docs/snapshots.md) through the doors users have: the kernel
// mount, `granary admin`, libgranary. A snapshot must stay byte-exact while its volume is
// rewritten, compacted and collected; a clone must diverge both ways; a deleted volume's
// snapshots stay readable; a killed metadata leader leaves a whole snapshot or none.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <thread>

#include "client/granary.h"
#include "client/meta_client.h"
#include "tests/fuse_mount.h"
#include "tests/harness/cluster.h"
#include "tests/harness/meta_group.h"
#include "tests/harness/test_support.h"

namespace granary::testing {
namespace {

using namespace std::chrono_literals;

std::string Bytes(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  std::mt19937 rng(seed);
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

std::vector<uint8_t> AsVec(const std::string& s) { return {s.begin(), s.end()}; }

class VolumeSnapshotTest : public ::testing::Test {
 protected:
  void Start(int metanodes = 1) {
    umask(022);
    ClusterOptions o;
    o.datanodes = 3;
    o.metanodes = metanodes;
    o.metanode_flags = {"--gc-grace-ms", "500", "--compact-interval-ms", "300"};
    o.all_datanode_flags = {"--maintenance-ms", "200"};
    cluster_ = std::make_unique<LocalCluster>(std::move(o));
    cluster_->Start();
    client::ClientOptions co;
    co.meta = cluster_->meta_address();
    co.request_timeout = 5s;
    co.operation_timeout = 60s;
    auto c = client::Client::Connect(co);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    client_ = std::move(*c);
  }

  // `granary admin ARGS… --meta …`: (exit status, output).
  std::pair<int, std::string> Admin(std::vector<std::string> args) {
    std::vector<std::string> argv = {GranaryBinary(), "admin", "--meta", cluster_->meta_address()};
    argv.insert(argv.end(), args.begin(), args.end());
    Process p(argv);
    auto status = p.Wait(seconds(120));
    if (!status) p.Kill();
    p.WaitForLine("$^", milliseconds(100));  // drain
    return {status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1, p.Output()};
  }

  void Write(const std::string& volume, const std::string& path, const std::string& data) {
    auto f = client_->Open(volume, path, {.create = true, .truncate = true});
    ASSERT_TRUE(f.ok()) << volume << "/" << path << ": " << f.status().ToString();
    ASSERT_TRUE((*f)->Pwrite(AsVec(data), 0).ok());
    Status st = (*f)->Close();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  // The file's bytes through libgranary, or "<error …>".
  std::string Read(const std::string& volume, const std::string& path) {
    auto f = client_->Open(volume, path);
    if (!f.ok()) return "<error " + f.status().ToString() + ">";
    std::vector<uint8_t> got((*f)->size());
    auto n = (*f)->Pread(got, 0);
    if (!n.ok()) return "<error " + n.status().ToString() + ">";
    return std::string(got.begin(), got.begin() + static_cast<ptrdiff_t>(*n));
  }

  // Slices the metanode's GC has freed so far (granary_meta_gc_slices_total on its admin
  // port), -1 when it cannot be read.
  double GcCollected() {
    static const std::regex admin(R"(listening meta=\S+ admin=(\S+))");
    static const std::regex counter(R"((^|\n)granary_meta_gc_slices_total (\S+))");
    const std::string out = cluster_->metanode().Output();
    std::smatch m;
    if (!std::regex_search(out, m, admin)) return -1;
    auto [code, body] = HttpGet(m[1], "/metrics");
    if (code != 200) return -1;
    // The counter appears with the first slice collected.
    return std::regex_search(body, m, counter) ? std::stod(m[2]) : 0;
  }

  uint64_t BlockBytes() {
    uint64_t sum = 0;
    for (int i = 0; i < cluster_->datanode_count(); ++i) {
      sum += BlockFilesOf(cluster_->datanode_dir(i)).bytes;
    }
    return sum;
  }

  std::unique_ptr<LocalCluster> cluster_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(VolumeSnapshotTest, StaysByteExactThroughRewritesTruncatesRenamesDeletesGcAndCompaction) {
  Start();
  std::map<std::string, std::string> model;
  {
    FuseMount live(cluster_->meta_address(), "default");
    ASSERT_EQ(mkdir((live / "d").c_str(), 0755), 0);
    for (int i = 0; i < 8; ++i) {
      const std::string path = fmt::format("d/f{}", i);
      model[path] = Bytes((i + 1) * 700'000 + i, 100 + i);
      ASSERT_EQ(WriteAll(live / path, model[path]), 0) << path;
    }
    ASSERT_EQ(link((live / "d/f0").c_str(), (live / "f0-link").c_str()), 0);
    ASSERT_EQ(symlink("d/f1", (live / "f1-sym").c_str()), 0);
    ASSERT_EQ(setxattr((live / "d/f2").c_str(), "user.tag", "v1", 2, 0), 0);
  }
  auto [code, out] = Admin({"snapshot", "create", "default", "v1"});
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("snapshot=default@v1"), std::string::npos) << out;
  EXPECT_NE(out.find("inodes=11 "), std::string::npos)
      << "d, 8 files, a symlink (link shared): " << out;

  // The live volume moves on: rewrite, truncate, rename, delete, xattr, new files.
  {
    FuseMount live(cluster_->meta_address(), "default");
    const std::string patch = Bytes(300'000, 7);
    int fd = open((live / "d/f0").c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, patch.data(), patch.size(), 200'000), static_cast<ssize_t>(patch.size()));
    ASSERT_EQ(close(fd), 0);
    ASSERT_EQ(truncate((live / "d/f1").c_str(), 1000), 0);
    ASSERT_EQ(rename((live / "d/f2").c_str(), (live / "f2-moved").c_str()), 0);
    ASSERT_EQ(setxattr((live / "f2-moved").c_str(), "user.tag", "v2", 2, 0), 0);
    ASSERT_EQ(unlink((live / "d/f3").c_str()), 0);
    ASSERT_EQ(WriteAll(live / "d/f4", "replaced"), 0);
    ASSERT_EQ(WriteAll(live / "new", Bytes(100'000, 9)), 0);
  }
  // f5 is fragmented by many small flushed writes until the compactor rewrites it as one slice.
  {
    auto f = client_->Open("default", "d/f5");
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    for (int i = 0; i < 40; ++i) {
      ASSERT_TRUE((*f)->Pwrite(AsVec(Bytes(50'000, 500 + i)), i * 60'000).ok());
      ASSERT_TRUE((*f)->Flush().ok());
    }
    ASSERT_TRUE((*f)->Close().ok());
  }
  auto f5 = client_->Resolve("default", "d/f5");
  ASSERT_TRUE(f5.ok());
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto map = client_->meta().ReadMap(f5->ino(), 0, f5->size());
        return map.ok() && map->extents_size() == 1;
      },
      60s))
      << "f5 never compacted";
  // A file nothing else references, deleted: the collector must run (and must leave every slice
  // the snapshot holds).
  const double gc_before = GcCollected();
  ASSERT_GE(gc_before, 0);
  Write("default", "scratch", Bytes(2'000'000, 11));
  ASSERT_TRUE(client_->Remove("default", "scratch").ok());
  ASSERT_TRUE(WaitUntil([&] { return GcCollected() > gc_before; }, 60s))
      << "no GC pass freed the scratch file\n"
      << cluster_->metanode().Output();

  // The snapshot, mounted read-only, is the volume as it was.
  FuseMount snap(cluster_->meta_address(), "default@v1");
  for (const auto& [path, data] : model) {
    EXPECT_TRUE(ReadAll(snap / path) == data) << path << " changed in the snapshot";
  }
  struct stat a {
  }, b{};
  ASSERT_EQ(stat((snap / "d/f0").c_str(), &a), 0);
  ASSERT_EQ(stat((snap / "f0-link").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino) << "a hard link stays one inode in the snapshot";
  EXPECT_EQ(a.st_nlink, 2u);
  char target[64] = {};
  ASSERT_GT(readlink((snap / "f1-sym").c_str(), target, sizeof(target) - 1), 0);
  EXPECT_STREQ(target, "d/f1");
  char tag[8] = {};
  ASSERT_EQ(getxattr((snap / "d/f2").c_str(), "user.tag", tag, sizeof(tag)), 2);
  EXPECT_STREQ(tag, "v1");
  EXPECT_NE(access((snap / "new").c_str(), F_OK), 0) << "a later file shows in the snapshot";
  // Writes fail with EROFS, through the mount and through libgranary (PERMISSION_DENIED).
  EXPECT_EQ(WriteAll(snap / "d/f0", "x"), EROFS);
  EXPECT_EQ(WriteAll(snap / "created", "x"), EROFS);
  EXPECT_EQ(ERRNO_OF(mkdir((snap / "dir").c_str(), 0755)), EROFS);
  EXPECT_EQ(ERRNO_OF(unlink((snap / "d/f0").c_str())), EROFS);
  auto w = client_->Open("default@v1", "d/f7", {.create = true, .truncate = true});
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), Code::PERMISSION_DENIED) << w.status().ToString();
  // And the live volume has its own bytes.
  EXPECT_EQ(Read("default", "d/f4"), "replaced");
  EXPECT_EQ(Read("default", "d/f1").size(), 1000u);

  // `snapshot list` names it with its size; the exclusive bytes are those only it still holds
  // (the deleted f3, f4's old bytes, f1's truncated tail, f0's overwritten range at least).
  auto [lcode, list] = Admin({"snapshot", "list", "default"});
  ASSERT_EQ(lcode, 0) << list;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(list, m, std::regex(R"(default@v1 .* exclusive-bytes=(\d+))")))
      << list;
  const uint64_t exclusive = std::stoull(m[1]);
  const uint64_t at_least =
      model["d/f3"].size() + model["d/f4"].size() + (model["d/f1"].size() - 1000) + 300'000;
  EXPECT_GE(exclusive, at_least) << list;
}

TEST_F(VolumeSnapshotTest, ClonesDivergeBothWays) {
  Start();
  Write("default", "a", Bytes(1'500'000, 1));
  Write("default", "b", "original b");
  ASSERT_EQ(Admin({"snapshot", "create", "default", "s1"}).first, 0);
  auto [c1, out1] = Admin({"volume", "create", "c1", "--from-volume", "default"});
  ASSERT_EQ(c1, 0) << out1;
  EXPECT_NE(out1.find("from=default inodes=3 bytes=1500010"), std::string::npos) << out1;
  Write("default", "b", "live b");  // after both: shows in neither
  auto [c2, out2] = Admin({"volume", "create", "c2", "--from-snapshot", "default@s1"});
  ASSERT_EQ(c2, 0) << out2;

  Write("c1", "b", "clone b");
  Write("c1", "only-in-c1", "x");
  Write("c2", "a", "c2 a");
  EXPECT_EQ(Read("default", "b"), "live b");
  EXPECT_EQ(Read("c1", "b"), "clone b");
  EXPECT_EQ(Read("c2", "b"), "original b");
  EXPECT_EQ(Read("default@s1", "b"), "original b");
  EXPECT_TRUE(Read("c1", "a") == Bytes(1'500'000, 1));
  EXPECT_TRUE(Read("default", "a") == Bytes(1'500'000, 1));
  EXPECT_EQ(Read("c2", "a"), "c2 a");
  EXPECT_FALSE(client_->Resolve("default", "only-in-c1").ok());

  // Errors say what is wrong.
  auto [e1, o1] = Admin({"volume", "create", "c3", "--from-snapshot", "default@nope"});
  EXPECT_NE(e1, 0);
  EXPECT_NE(o1.find("NotFound: "), std::string::npos) << o1;
  auto [e2, o2] = Admin({"snapshot", "create", "default", "s1"});
  EXPECT_NE(e2, 0);
  EXPECT_NE(o2.find("AlreadyExists: "), std::string::npos) << o2;
  auto [e3, o3] = Admin({"snapshot", "create", "default@s1", "again"});
  EXPECT_NE(e3, 0);
  EXPECT_NE(o3.find("is a snapshot"), std::string::npos) << o3;
  auto [e4, o4] = Admin({"volume", "delete", "default@s1"});
  EXPECT_NE(e4, 0);
  EXPECT_NE(o4.find("snapshot delete"), std::string::npos) << o4;
}

TEST_F(VolumeSnapshotTest, DeletedVolumeKeepsItsSnapshotsUntilTheyAreDeleted) {
  Start();
  ASSERT_EQ(Admin({"volume", "create", "data"}).first, 0);
  const uint64_t empty = BlockBytes();
  std::map<std::string, std::string> files;
  for (int i = 0; i < 3; ++i) files[fmt::format("f{}", i)] = Bytes(3'000'000, 40 + i);
  for (const auto& [p, d] : files) Write("data", p, d);
  ASSERT_EQ(Admin({"snapshot", "create", "data", "keep"}).first, 0);
  for (const auto& [p, d] : files) ASSERT_TRUE(client_->Remove("data", p).ok());
  auto [dcode, dout] = Admin({"volume", "delete", "data"});
  ASSERT_EQ(dcode, 0) << dout;
  // The GC runs, and the snapshot still reads.
  const double gc_before = GcCollected();
  ASSERT_GE(gc_before, 0);
  Write("default", "scratch", Bytes(1'000'000, 3));
  ASSERT_TRUE(client_->Remove("default", "scratch").ok());
  ASSERT_TRUE(WaitUntil([&] { return GcCollected() > gc_before; }, 60s));
  for (const auto& [p, d] : files) EXPECT_TRUE(Read("data@keep", p) == d) << p;
  // A new volume cannot take the name while the old one's snapshots remain.
  auto [rcode, rout] = Admin({"volume", "create", "data"});
  EXPECT_NE(rcode, 0);
  EXPECT_NE(rout.find("snapshots of an earlier volume 'data' remain"), std::string::npos) << rout;
  // Deleting the snapshot frees the blocks.
  auto [scode, sout] = Admin({"snapshot", "delete", "data@keep"});
  ASSERT_EQ(scode, 0) << sout;
  ASSERT_TRUE(WaitUntil([&] { return BlockBytes() <= empty + (1 << 20); }, 60s))
      << BlockBytes() << " bytes of blocks left";
  EXPECT_EQ(Admin({"volume", "create", "data"}).first, 0);
  auto [lcode, lout] = Admin({"snapshot", "list"});
  EXPECT_EQ(lcode, 0);
  EXPECT_EQ(lout.find("data@keep"), std::string::npos) << lout;
}

// kill -9 of the metadata leader while a snapshot of a few thousand files is being created: the
// snapshot exists whole (every file) or not at all, and creating it again works.
TEST_F(VolumeSnapshotTest, LeaderKilledDuringCreateLeavesAWholeSnapshotOrNone) {
  Start(3);
  constexpr int kDirs = 10, kFiles = 300;
  for (int d = 0; d < kDirs; ++d) {
    ASSERT_TRUE(client_->Mkdir("default", fmt::format("d{}", d)).ok());
    for (int f = 0; f < kFiles; ++f) {
      auto file = client_->Open("default", fmt::format("d{}/f{}", d, f), {.create = true});
      ASSERT_TRUE(file.ok()) << file.status().ToString();
      ASSERT_TRUE((*file)->Close().ok());
    }
  }
  Write("default", "d0/data", Bytes(1'000'000, 5));
  auto& group = cluster_->meta_group();
  std::mt19937 rng(25);
  int whole = 0, none = 0;
  for (int round = 0; round < 3; ++round) {
    const int leader = group.WaitLeader();
    ASSERT_NE(leader, 0);
    const std::string name = fmt::format("k{}", round);
    std::vector<std::string> argv = {GranaryBinary(), "admin",  "--meta",  cluster_->meta_address(),
                                     "snapshot",      "create", "default", name};
    Process create(argv);
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 150));  // a random moment
    group.Kill(leader);
    ASSERT_NE(group.WaitLeader(20s, leader), 0) << "no new leader";
    auto status = create.Wait(seconds(90));
    if (!status) create.Kill();
    group.Restart(leader);
    auto snaps = client_->meta().SnapshotList("default");
    ASSERT_TRUE(snaps.ok()) << snaps.status().ToString();
    bool found = false;
    for (const auto& s : *snaps) {
      if (s.name() != "default@" + name) continue;
      found = true;
      EXPECT_EQ(s.used_inodes(), 1u + kDirs + kDirs * kFiles + 1) << s.ShortDebugString();
    }
    if (!found) {
      ++none;
      EXPECT_FALSE(client_->Resolve("default@" + name, "d0").ok());
      auto [code, out] = Admin({"snapshot", "create", "default", name});
      ASSERT_EQ(code, 0) << out;
    } else {
      ++whole;
    }
    // Whole: every directory holds every file, and the data reads back.
    for (int d = 0; d < kDirs; ++d) {
      auto list = client_->List("default@" + name, fmt::format("d{}", d));
      ASSERT_TRUE(list.ok()) << list.status().ToString();
      EXPECT_EQ(list->size(), static_cast<size_t>(kFiles + (d == 0 ? 1 : 0))) << name << " d" << d;
    }
    EXPECT_TRUE(Read("default@" + name, "d0/data") == Bytes(1'000'000, 5));
  }
  std::printf("snapshot under leader kill: whole=%d none=%d\n", whole, none);
}

// A notebook reads a dataset version over S3: a bucket exporting the snapshot VOLUME@NAME is a
// read-only view with the usual keys and grants (docs/snapshots.md, "S3"); boto3 GETs the
// version's bytes, and a PUT is refused with AccessDenied.
TEST(SnapshotS3Test, ABucketExportingASnapshotServesThatVersionReadOnly) {
  TempDir dir;
  Process server({GranaryBinary(), "server", "--data", dir.str() + "/data", "--meta", "127.0.0.1:0",
                  "--s3", "127.0.0.1:0"});
  auto meta = server.WaitForLine(R"(^meta=(\S+))", seconds(60));
  ASSERT_TRUE(meta) << server.Output();
  auto s3 = server.WaitForLine(R"(^s3=(\S+) access_key=(\S+) secret_key=(\S+))", seconds(60));
  ASSERT_TRUE(s3) << server.Output();
  ASSERT_TRUE(server.WaitForLine("^ready$", seconds(60))) << server.Output();
  std::string endpoint = (*s3)[1];
  if (endpoint.rfind("http", 0) != 0) endpoint = "http://" + endpoint;
  const std::string access = (*s3)[2], secret = (*s3)[3];
  auto run = [&](std::vector<std::string> argv) {
    Process p(argv);
    auto status = p.Wait(seconds(60));
    if (!status) p.Kill();
    p.WaitForLine("$^", milliseconds(100));  // drain
    return std::make_pair(status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1, p.Output());
  };
  auto boto = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/python3",
                                     std::string(GRANARY_SOURCE_DIR) + "/tests/fuse_s3_tool.py",
                                     endpoint, access, secret};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  };
  auto admin = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {GranaryBinary(), "admin", "--meta", (*meta)[1]};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
  };
  const std::string v1 = Bytes(200'000, 1), v2 = Bytes(300'000, 2);
  const std::string in = dir.str() + "/in", out = dir.str() + "/out";
  ASSERT_EQ(boto({"mkbucket", "datasets"}).first, 0);
  std::ofstream(in, std::ios::binary) << v1;
  ASSERT_EQ(boto({"put", "datasets", "train/part-0", in}).first, 0);
  auto [scode, sout] = admin({"snapshot", "create", "datasets", "v1"});
  ASSERT_EQ(scode, 0) << sout;
  std::ofstream(in, std::ios::binary | std::ios::trunc) << v2;
  ASSERT_EQ(boto({"put", "datasets", "train/part-0", in}).first, 0);
  auto [bcode, bout] =
      admin({"bucket", "create", "datasets-v1", "--volume", "datasets@v1", "--owner", access});
  ASSERT_EQ(bcode, 0) << bout;

  auto [gcode, gout] = boto({"get", "datasets-v1", "train/part-0", out});
  ASSERT_EQ(gcode, 0) << gout;
  std::ifstream got(out, std::ios::binary);
  EXPECT_TRUE(std::string(std::istreambuf_iterator<char>(got), {}) == v1) << "not the snapshot's";
  auto [lcode, lout] = boto({"get", "datasets", "train/part-0", out});
  ASSERT_EQ(lcode, 0) << lout;
  EXPECT_NE(lout.find("content_length=300000"), std::string::npos) << lout;
  auto [pcode, pout] = boto({"put", "datasets-v1", "train/part-1", in});
  EXPECT_NE(pcode, 0);
  EXPECT_NE(pout.find("AccessDenied"), std::string::npos) << pout;
  // The snapshot stays while a bucket exports it.
  auto [dcode, dout] = admin({"snapshot", "delete", "datasets@v1"});
  EXPECT_NE(dcode, 0);
  EXPECT_NE(dout.find("exported by bucket 'datasets-v1'"), std::string::npos) << dout;
  server.Signal(SIGTERM);
  if (!server.Wait(seconds(30))) server.Kill();
}

}  // namespace
}  // namespace granary::testing
