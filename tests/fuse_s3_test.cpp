// One volume through two doors (issue 10): files written through the mount are served by S3,
// and objects PUT over S3 read through the mount. `granary server` runs the cluster and the
// gateway; the bucket is created over S3 and its volume mounted by the bucket's name; the S3
// side is boto3 (tests/fuse_s3_tool.py under /usr/bin/python3).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <random>

#include "tests/fuse_mount.h"

namespace granary::testing {
namespace {

std::string Random(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  std::mt19937 rng(seed);
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

class FuseS3Test : public ::testing::Test {
 protected:
  void SetUp() override {
    umask(022);
    server_ = std::make_unique<Process>(
        std::vector<std::string>{GranaryBinary(), "server", "--data", dir_.str() + "/data",
                                 "--meta", "127.0.0.1:0", "--s3", "127.0.0.1:0"});
    auto meta = server_->WaitForLine(R"(^meta=(\S+))", seconds(60));
    ASSERT_TRUE(meta) << server_->Output();
    meta_ = (*meta)[1];
    auto s3 = server_->WaitForLine(R"(^s3=(\S+) access_key=(\S+) secret_key=(\S+))", seconds(60));
    ASSERT_TRUE(s3) << server_->Output();
    endpoint_ = (*s3)[1];
    if (endpoint_.rfind("http", 0) != 0) endpoint_ = "http://" + endpoint_;
    access_ = (*s3)[2];
    secret_ = (*s3)[3];
    ASSERT_TRUE(server_->WaitForLine("^ready$", seconds(60))) << server_->Output();
  }
  void TearDown() override {
    mount_.reset();  // unmount before the cluster goes away
    server_->Signal(SIGTERM);
    if (!server_->Wait(seconds(30))) server_->Kill();
  }

  // One boto3 call; returns (exit code, output).
  std::pair<int, std::string> S3(std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/python3",
                                     std::string(GRANARY_SOURCE_DIR) + "/tests/fuse_s3_tool.py",
                                     endpoint_, access_, secret_};
    argv.insert(argv.end(), args.begin(), args.end());
    Process p(argv);
    auto status = p.Wait(seconds(60));
    if (!status) p.Kill();
    p.WaitForLine("$^", milliseconds(100));  // drain: the reader sees EOF right after exit
    int code = status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
    return {code, p.Output()};
  }

  TempDir dir_;
  std::unique_ptr<Process> server_;
  std::unique_ptr<FuseMount> mount_;
  std::string meta_, endpoint_, access_, secret_;
};

TEST_F(FuseS3Test, MountWritesAreServedByS3AndS3PutsReadThroughTheMount) {
  const std::string bucket = "multi";
  auto made = S3({"mkbucket", bucket});
  ASSERT_EQ(made.first, 0) << made.second;
  // Names are cached for 0 s so that a key replaced over S3 (a new inode under the same name)
  // is seen by the next open at once; attributes and data are revalidated by every open anyway.
  mount_ =
      std::make_unique<FuseMount>(meta_, bucket, std::vector<std::string>{"--entry-timeout", "0"});
  FuseMount& m = *mount_;

  // Mount -> S3: a file in a subdirectory, of an odd size spanning several blocks.
  const std::string written = Random((9 << 20) + 4321, 1);
  ASSERT_EQ(mkdir((m / "ckpt").c_str(), 0755), 0);
  ASSERT_EQ(WriteAll(m / "ckpt/step-1.bin", written), 0);
  const std::string got_path = dir_.str() + "/got.bin";
  auto got = S3({"get", bucket, "ckpt/step-1.bin", got_path});
  ASSERT_EQ(got.first, 0) << got.second;
  EXPECT_NE(got.second.find("content_length=" + std::to_string(written.size()) +
                            " read=" + std::to_string(written.size())),
            std::string::npos)
      << got.second;
  EXPECT_TRUE(ReadAll(got_path) == written) << "bytes served over S3 differ from those written";
  auto head = S3({"head", bucket, "ckpt/step-1.bin"});
  EXPECT_NE(head.second.find("content_length=" + std::to_string(written.size())), std::string::npos)
      << head.second;

  // S3 -> mount: a new key under a new prefix appears as a directory and a file.
  const std::string put_path = dir_.str() + "/put.bin";
  const std::string object = Random((5 << 20) + 17, 2);
  std::ofstream(put_path, std::ios::binary) << object;
  auto put = S3({"put", bucket, "from-s3/obj.bin", put_path});
  ASSERT_EQ(put.first, 0) << put.second;
  struct stat st {};
  ASSERT_EQ(stat((m / "from-s3/obj.bin").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, static_cast<off_t>(object.size()));
  EXPECT_TRUE(ReadAll(m / "from-s3/obj.bin") == object) << "bytes read through the mount differ";

  // A key overwritten over S3 after the mount read it (its pages are cached): the next open
  // sees the new bytes and size, not the cached ones.
  const std::string replaced = Random(1 << 20, 3);
  std::ofstream(put_path, std::ios::binary | std::ios::trunc) << replaced;
  put = S3({"put", bucket, "from-s3/obj.bin", put_path});
  ASSERT_EQ(put.first, 0) << put.second;
  EXPECT_TRUE(ReadAll(m / "from-s3/obj.bin") == replaced) << "the mount served stale bytes";
  ASSERT_EQ(stat((m / "from-s3/obj.bin").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, static_cast<off_t>(replaced.size()));

  // And a file rewritten through the mount is what S3 serves next.
  ASSERT_EQ(WriteAll(m / "ckpt/step-1.bin", "short"), 0);
  got = S3({"get", bucket, "ckpt/step-1.bin", got_path});
  ASSERT_EQ(got.first, 0) << got.second;
  EXPECT_EQ(ReadAll(got_path), "short");
}

// The same doors over an erasure-coded pool (ec:2+1 across the server's 3 datanodes): a file
// written through the mount, an S3 PUT below the small-PUT size (one-block slices: replicated
// copies) and one above it (coded fragments), each read back byte-exact through the other door.
TEST_F(FuseS3Test, ErasureCodedBucketReadsBackThroughBothDoors) {
  auto admin = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {GranaryBinary(), "admin", "--meta", meta_};
    argv.insert(argv.end(), args.begin(), args.end());
    Process p(argv);
    auto status = p.Wait(seconds(30));
    if (!status) p.Kill();
    return std::make_pair(status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1, p.Output());
  };
  auto pool = admin({"pool", "create", "ec21", "--redundancy", "ec:2+1", "--failure-domain",
                     "datanode", "--pg-count", "8"});
  ASSERT_EQ(pool.first, 0) << pool.second;
  auto made = admin({"bucket", "create", "coded", "--owner", access_, "--pool", "ec21"});
  ASSERT_EQ(made.first, 0) << made.second;
  mount_ =
      std::make_unique<FuseMount>(meta_, "coded", std::vector<std::string>{"--entry-timeout", "0"});
  FuseMount& m = *mount_;

  // Mount -> S3: several coded blocks and a short replicated tail.
  const std::string written = Random((13 << 20) + 777, 11);
  ASSERT_EQ(WriteAll(m / "model.bin", written), 0);
  const std::string got_path = dir_.str() + "/got.bin";
  auto got = S3({"get", "coded", "model.bin", got_path});
  ASSERT_EQ(got.first, 0) << got.second;
  EXPECT_TRUE(ReadAll(got_path) == written) << "S3 served other bytes than the mount wrote";

  // S3 -> mount, a small PUT and a large one.
  const std::string put_path = dir_.str() + "/put.bin";
  for (size_t size : {size_t{300} << 10, (size_t{9} << 20) + 5}) {
    const std::string object = Random(size, static_cast<uint32_t>(size));
    std::ofstream(put_path, std::ios::binary | std::ios::trunc) << object;
    const std::string key = "put-" + std::to_string(size);
    auto put = S3({"put", "coded", key, put_path});
    ASSERT_EQ(put.first, 0) << put.second;
    EXPECT_TRUE(ReadAll(m / key) == object) << key << ": the mount read other bytes";
    got = S3({"get", "coded", key, got_path});
    ASSERT_EQ(got.first, 0) << got.second;
    EXPECT_TRUE(ReadAll(got_path) == object) << key << ": S3 served other bytes";
  }
}

}  // namespace
}  // namespace granary::testing
