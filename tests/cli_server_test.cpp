// The CLI against `granary server` (the embedded all-in-one), as a user runs them: a 50 MiB
// put/get round trip and what ls/stat/rm print and return.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <fstream>
#include <random>

#include "tests/harness/process.h"

namespace granary::testing {
namespace {

struct CliResult {
  int exit_code;
  std::string output;
};

CliResult Cli(const std::string& meta, std::vector<std::string> args) {
  std::vector<std::string> argv = {GranaryBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--meta");
  argv.push_back(meta);
  Process p(argv);
  auto status = p.Wait(seconds(60));
  if (!status) return {-1, p.Output()};
  p.WaitForLine("$^", milliseconds(100));  // drain: the reader sees EOF right after exit
  return {WIFEXITED(*status) ? WEXITSTATUS(*status) : -1, p.Output()};
}

class CliServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<Process>(
        std::vector<std::string>{GranaryBinary(), "server", "--data", dir_.str() + "/data",
                                 "--meta", "127.0.0.1:0", "--s3", "127.0.0.1:0"});
    auto meta = server_->WaitForLine(R"(^meta=(\S+))", seconds(60));
    ASSERT_TRUE(meta) << server_->Output();
    meta_ = (*meta)[1];
    ASSERT_TRUE(server_->WaitForLine("^ready$", seconds(60))) << server_->Output();
  }
  void TearDown() override {
    server_->Signal(SIGTERM);
    auto status = server_->Wait(seconds(30));
    EXPECT_TRUE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
        << "server did not stop cleanly on SIGTERM:\n"
        << server_->Output();
  }

  TempDir dir_;
  std::unique_ptr<Process> server_;
  std::string meta_;
};

TEST_F(CliServerTest, PutGetRoundTripsFiftyMiBByteExact) {
  std::string local = dir_.str() + "/in.bin";
  std::string back = dir_.str() + "/out.bin";
  std::vector<char> data(50 << 20);
  std::mt19937 rng(5);
  for (auto& c : data) c = static_cast<char>(rng());
  std::ofstream(local, std::ios::binary).write(data.data(), data.size());

  CliResult put = Cli(meta_, {"put", local, "default/models/m1.bin"});
  ASSERT_EQ(put.exit_code, 0) << put.output;
  CliResult get = Cli(meta_, {"get", "default/models/m1.bin", back});
  ASSERT_EQ(get.exit_code, 0) << get.output;
  std::ifstream in(back, std::ios::binary);
  std::vector<char> read((std::istreambuf_iterator<char>(in)), {});
  EXPECT_TRUE(read == data) << "downloaded bytes differ";

  CliResult ls = Cli(meta_, {"ls", "default/models"});
  ASSERT_EQ(ls.exit_code, 0) << ls.output;
  EXPECT_NE(ls.output.find("file    0644     52428800 "), std::string::npos) << ls.output;
  EXPECT_NE(ls.output.find(" m1.bin\n"), std::string::npos) << ls.output;
  CliResult root = Cli(meta_, {"ls", "default/"});
  EXPECT_NE(root.output.find(" models/\n"), std::string::npos) << root.output;

  CliResult stat = Cli(meta_, {"stat", "default/models/m1.bin"});
  ASSERT_EQ(stat.exit_code, 0) << stat.output;
  EXPECT_NE(stat.output.find("type=file\n"), std::string::npos) << stat.output;
  EXPECT_NE(stat.output.find("size=52428800\n"), std::string::npos) << stat.output;
  EXPECT_NE(stat.output.find("nlink=1\n"), std::string::npos) << stat.output;
}

TEST_F(CliServerTest, ErrorsComeBackAsMessagesAndErrnoExitCodes) {
  CliResult missing = Cli(meta_, {"stat", "default/nope"});
  EXPECT_EQ(missing.exit_code, ENOENT);
  EXPECT_NE(missing.output.find("NotFound"), std::string::npos) << missing.output;

  ASSERT_EQ(Cli(meta_, {"mkdir", "-p", "default/a/b"}).exit_code, 0);
  CliResult not_empty = Cli(meta_, {"rm", "default/a"});
  EXPECT_EQ(not_empty.exit_code, ENOTEMPTY) << not_empty.output;
  EXPECT_EQ(Cli(meta_, {"mkdir", "default/a"}).exit_code, EEXIST);
  EXPECT_EQ(Cli(meta_, {"rm", "default/a/b"}).exit_code, 0);
  EXPECT_EQ(Cli(meta_, {"rm", "default/a"}).exit_code, 0);
  EXPECT_EQ(Cli(meta_, {"stat", "default/a"}).exit_code, ENOENT);

  CliResult no_volume = Cli(meta_, {"ls", "novolume/x"});
  EXPECT_EQ(no_volume.exit_code, ENOENT);
  EXPECT_NE(no_volume.output.find("volume 'novolume'"), std::string::npos) << no_volume.output;
}

}  // namespace
}  // namespace granary::testing
