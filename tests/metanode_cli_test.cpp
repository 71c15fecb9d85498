// `granary metanode` as a process and the `granary admin` verbs against it.
#include <gtest/gtest.h>
#include <signal.h>

#include "tests/harness/process.h"

namespace granary {
namespace {

using testing::Process;
using testing::TempDir;
using namespace std::chrono_literals;

// Runs `granary admin ARGS… --meta ADDR` and returns {exit code, output}.
std::pair<int, std::string> Admin(const std::string& meta, std::vector<std::string> args) {
  std::vector<std::string> argv{testing::GranaryBinary(), "admin"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--meta");
  argv.push_back(meta);
  Process p(argv);
  auto status = p.Wait(30s);
  if (!status) return {-1, p.Output()};
  // Drain: a pattern that never matches returns once the output pipe reaches EOF.
  p.WaitForLine("a^", 5s);
  return {WIFEXITED(*status) ? WEXITSTATUS(*status) : -1, p.Output()};
}

TEST(MetanodeCliTest, AdminVerbsAndCleanStop) {
  TempDir dir;
  Process node({testing::GranaryBinary(), "metanode", "--data", dir.str(), "--listen",
                "127.0.0.1:0", "--admin", "127.0.0.1:0", "--default-pool", "main"});
  auto m = node.WaitForLine(R"(listening meta=(\S+) admin=(\S+))", 30s);
  ASSERT_TRUE(m) << node.Output();
  const std::string meta = (*m)[1];

  auto [rc, out] = Admin(meta, {"pool", "list"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("main id=1 redundancy=replicated:1"), std::string::npos) << out;

  std::tie(rc, out) =
      Admin(meta, {"pool", "create", "ec", "--redundancy", "ec:4+2", "--failure-domain", "host"});
  EXPECT_EQ(rc, 0) << out;
  std::tie(rc, out) = Admin(meta, {"pool", "create", "bad", "--redundancy", "ec:4+9"});
  EXPECT_NE(rc, 0) << out;
  EXPECT_NE(out.find("InvalidArgument"), std::string::npos) << out;

  std::tie(rc, out) =
      Admin(meta, {"volume", "create", "v1", "--pool", "ec", "--quota-bytes", "1000"});
  EXPECT_EQ(rc, 0) << out;
  std::tie(rc, out) = Admin(meta, {"volume", "list"});
  EXPECT_NE(out.find("v1 id="), std::string::npos) << out;
  EXPECT_NE(out.find("quota-bytes=1000"), std::string::npos) << out;

  std::tie(rc, out) = Admin(meta, {"key", "create", "--name", "alice"});
  ASSERT_EQ(rc, 0) << out;
  std::smatch km;
  ASSERT_TRUE(std::regex_search(out, km, std::regex(R"(access_key=(\S+)\nsecret_key=(\S+))")))
      << out;
  const std::string key = km[1];
  std::tie(rc, out) = Admin(meta, {"key", "list"});
  EXPECT_NE(out.find(key + " name=alice"), std::string::npos) << out;
  EXPECT_EQ(out.find(km[2].str()), std::string::npos) << "key list shows a secret";

  std::tie(rc, out) = Admin(meta, {"bucket", "create", "photos", "--owner", key});
  EXPECT_EQ(rc, 0) << out;
  std::tie(rc, out) = Admin(meta, {"bucket", "create", "v1", "--owner", key});
  EXPECT_NE(rc, 0) << "a bucket named like an existing volume: " << out;
  std::tie(rc, out) =
      Admin(meta, {"bucket", "grant", "photos", "--key", key, "--access", "readwrite"});
  EXPECT_EQ(rc, 0) << out;
  std::tie(rc, out) = Admin(meta, {"bucket", "list"});
  EXPECT_NE(out.find("photos owner=" + key), std::string::npos) << out;
  std::tie(rc, out) = Admin(meta, {"bucket", "delete", "photos"});
  EXPECT_EQ(rc, 0) << out;
  std::tie(rc, out) = Admin(meta, {"nodes"});
  EXPECT_EQ(rc, 0) << out;
  std::tie(rc, out) = Admin(meta, {"backup", dir.str() + "/backup"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "backup" / "CURRENT"));
  std::tie(rc, out) = Admin(meta, {"key", "delete", key});
  EXPECT_EQ(rc, 0) << out;

  node.Signal(SIGTERM);
  auto status = node.Wait(30s);
  ASSERT_TRUE(status) << "no exit after SIGTERM";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << node.Output();
}

}  // namespace
}  // namespace granary
