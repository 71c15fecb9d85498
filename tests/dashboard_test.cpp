// The dashboard in a real browser (docs/dashboard.md "Tests"): a local cluster of real
// processes, headless Chromium (Debian's) driven by tests/dashboard_browser.js. The page must
// load from the metanode's admin port with no console error, show the datanodes, pools and
// volumes `granary admin` prints, and show a SIGKILLed datanode down within the detection time.
// Screenshots (1280x800) stay in the build dir: test-artifacts/dashboard/.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "tests/harness/cluster.h"
#include "tests/harness/process.h"
#include "tests/harness/test_support.h"

namespace granary::testing {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr int kDownAfterMs = 3000;

// `granary admin ARGS… --meta META`: {exit code, output}.
std::pair<int, std::string> Admin(const std::string& meta, std::vector<std::string> args) {
  std::vector<std::string> argv{GranaryBinary(), "admin"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--meta", meta});
  Process p(argv);
  auto status = p.Wait(30s);
  if (!status) return {-1, p.Output()};
  p.WaitForLine("a^", 5s);  // drains the output to EOF
  return {WIFEXITED(*status) ? WEXITSTATUS(*status) : -1, p.Output()};
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

// What `granary admin nodes`, `pool list` and `volume list` print, in the browser script's terms.
json ExpectFromAdmin(const std::string& meta) {
  json expect = {{"nodes", json::object()}, {"pools", json::object()}, {"volumes", json::object()}};
  auto [rc, nodes] = Admin(meta, {"nodes"});
  EXPECT_EQ(rc, 0) << nodes;
  for (const std::string& line : Lines(nodes)) {  // "ID LABELS STATE"
    std::smatch m;
    if (!std::regex_match(line, m, std::regex(R"((\d+) (\S+) (\S+))"))) continue;
    expect["nodes"][m[1].str()] = {{"state", m[3].str()}, {"labels", m[2].str()}};
  }
  auto [prc, pools] = Admin(meta, {"pool", "list"});
  EXPECT_EQ(prc, 0) << pools;
  for (const std::string& line : Lines(pools)) {
    std::smatch m;
    if (!std::regex_search(line, m,
                           std::regex(R"(^(\S+) id=\d+ redundancy=(\S+) failure-domain=(\S+) )"
                                      R"(locality=(\S+) pgs=(\d+))"))) {
      continue;
    }
    expect["pools"][m[1].str()] = {{"redundancy", m[2].str()},
                                   {"failure_domain", m[3].str()},
                                   {"locality", m[4].str()},
                                   {"pgs", std::stoi(m[5].str())}};
  }
  auto [vrc, volumes] = Admin(meta, {"volume", "list"});
  EXPECT_EQ(vrc, 0) << volumes;
  for (const std::string& line : Lines(volumes)) {
    std::smatch m;
    if (!std::regex_search(line, m, std::regex(R"(^(\S+) id=\d+ pool=\d+ used-bytes=(\d+))"))) {
      continue;
    }
    expect["volumes"][m[1].str()] = std::stoull(m[2].str());
  }
  return expect;
}

std::string ChromiumBinary() {
  // The binary itself: Debian's /usr/bin/chromium is a launcher script.
  for (const char* p : {"/usr/lib/chromium/chromium", "/usr/bin/chromium"}) {
    if (std::filesystem::exists(p)) return p;
  }
  return "";
}

TEST(DashboardBrowserTest, ShowsWhatAdminPrintsAndAKilledDatanodeGoingDown) {
  const auto started = std::chrono::steady_clock::now();
  const std::string chromium = ChromiumBinary();
  const std::string modules = std::string(GRANARY_NPM_DIR) + "/node_modules";
  if (chromium.empty() || !std::filesystem::exists(modules + "/playwright-core")) {
    GTEST_SKIP() << "needs Debian's chromium and playwright-core (scripts/install-deps.sh)";
  }

  ClusterOptions o;
  o.datanodes = 3;
  o.down_after_ms = kDownAfterMs;
  o.heartbeat_ms = 500;
  o.datanode_flags = {
      {"--labels", "zone=a,gpu=true"}, {"--labels", "zone=a"}, {"--labels", "zone=b"}};
  LocalCluster cluster(o);
  cluster.Start();
  const std::string meta = cluster.meta_address();
  auto admin = cluster.metanode().WaitForLine(R"(dashboard=(http://\S+))", 10s);
  ASSERT_TRUE(admin) << cluster.metanode().Output();
  const std::string url = (*admin)[1];

  // Something to show: a second pool and volume, and bytes in the default volume.
  ASSERT_EQ(Admin(meta, {"pool", "create", "fast", "--redundancy", "replicated:2",
                         "--failure-domain", "zone", "--locality", "prefer-gpu"})
                .first,
            0);
  ASSERT_EQ(
      Admin(meta, {"volume", "create", "scratch", "--pool", "fast", "--quota-bytes", "1073741824"})
          .first,
      0);
  TempDir local;
  {
    std::ofstream f(local.str() + "/hello.bin", std::ios::binary);
    f << std::string(300000, 'g');
  }
  Process put(
      {GranaryBinary(), "put", local.str() + "/hello.bin", "default/hello.bin", "--meta", meta});
  auto put_status = put.Wait(30s);
  ASSERT_TRUE(put_status && WIFEXITED(*put_status) && WEXITSTATUS(*put_status) == 0)
      << put.Output();

  // `granary admin status` prints the same dashboard URL and figures.
  auto [src, summary] = Admin(meta, {"status"});
  EXPECT_NE(summary.find("dashboard=" + url), std::string::npos) << summary;
  EXPECT_NE(summary.find("datanodes total=3 up=3 down=0 out=0"), std::string::npos) << summary;
  EXPECT_NE(summary.find("pool fast redundancy=replicated:2 failure-domain=zone"),
            std::string::npos)
      << summary;

  const json expect = ExpectFromAdmin(meta);
  ASSERT_EQ(expect["nodes"].size(), 3u) << expect.dump();
  ASSERT_EQ(expect["pools"].size(), 2u) << expect.dump();
  ASSERT_EQ(expect["volumes"].size(), 2u) << expect.dump();
  ASSERT_GT(expect["volumes"]["default"].get<uint64_t>(), 0u) << expect.dump();

  // Kill the datanode that printed id… the last one started; its id from the map is the one
  // whose labels say zone=b.
  std::string victim;
  for (const auto& [id, n] : expect["nodes"].items()) {
    if (n["labels"].get<std::string>().find("zone=b") != std::string::npos) victim = id;
  }
  ASSERT_FALSE(victim.empty()) << expect.dump();

  const std::string out_dir = std::string(GRANARY_ARTIFACT_DIR) + "/dashboard";
  std::filesystem::remove_all(out_dir);
  json config = {{"url", url},
                 {"chromium", chromium},
                 {"out_dir", out_dir},
                 {"deadline_ms", 20000},
                 {"expect", expect},
                 // Detection time plus the page's 2 s poll and the 1 s status cache, with margin.
                 {"kill",
                  {{"pid", cluster.datanode(2).pid()},
                   {"node", victim},
                   {"deadline_ms", kDownAfterMs + 10000}}}};
  const std::string config_path = local.str() + "/browser.json";
  std::ofstream(config_path) << config.dump();
  Process browser({"/usr/bin/node", std::string(GRANARY_SOURCE_DIR) + "/tests/dashboard_browser.js",
                   config_path},
                  {{"NODE_PATH", modules}});
  auto line = browser.WaitForLine(R"(RESULT (.*))", 90s);
  ASSERT_TRUE(line) << browser.Output();
  auto exit_status = browser.Wait(10s);
  const json result = json::parse((*line)[1]);
  std::printf("browser: %s\n", result.dump(1).substr(0, 4000).c_str());
  EXPECT_TRUE(exit_status && WIFEXITED(*exit_status) && WEXITSTATUS(*exit_status) == 0)
      << browser.Output();
  EXPECT_TRUE(result["problems"].empty()) << result["problems"].dump(1);
  EXPECT_TRUE(result["console_errors"].empty()) << result["console_errors"].dump(1);
  EXPECT_GE(result.value("load_ms", -1), 0);
  const int down_ms = result.value("down_ms", -1);
  EXPECT_GE(down_ms, 0) << "the killed datanode never showed down";
  // Down is decided by the metanode after kDownAfterMs of silence; the page follows within
  // its poll period.
  EXPECT_LE(down_ms, kDownAfterMs + 5000);
  for (const char* shot : {"dashboard.png", "dashboard-full.png", "dashboard-datanode-down.png"}) {
    EXPECT_TRUE(std::filesystem::exists(out_dir + "/" + shot)) << shot;
  }

  // The CLI agrees with what the page showed after the kill.
  auto [nrc, nodes] = Admin(meta, {"nodes"});
  EXPECT_NE(nodes.find(" down"), std::string::npos) << nodes;
  EXPECT_LT(std::chrono::steady_clock::now() - started, 120s);
}

}  // namespace
}  // namespace granary::testing
