#include "common/config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

namespace granary {
namespace {

TEST(ConfigTest, YamlFileSetsFlagsAndCommandLineWins) {
  std::string path = ::testing::TempDir() + "/granary_config_test.yaml";
  std::ofstream(path) << "meta: 10.0.0.1:7410\nlabels: zone=a,host=h1\ndatanodes: 5\n";
  CLI::App app;
  std::string meta, labels;
  int datanodes = 3;
  app.add_option("--meta", meta);
  app.add_option("--labels", labels);
  app.add_option("--datanodes", datanodes);
  AddYamlConfig(app);
  std::vector<std::string> args = {"--datanodes", "7", "--config", path};
  std::reverse(args.begin(), args.end());  // CLI11 takes a reversed vector
  app.parse(args);
  EXPECT_EQ(meta, "10.0.0.1:7410");
  EXPECT_EQ(labels, "zone=a,host=h1");
  EXPECT_EQ(datanodes, 7);
  std::remove(path.c_str());
}

TEST(ConfigTest, MalformedYamlIsAConversionError) {
  EXPECT_THROW(ParseYamlConfig("meta: [unclosed"), CLI::ConversionError);
  EXPECT_THROW(ParseYamlConfig("- a\n- b\n"), CLI::ConversionError);
  EXPECT_TRUE(ParseYamlConfig("").empty());
}

TEST(ConfigTest, NestedMapsBecomeSections) {
  auto items = ParseYamlConfig("server:\n  datanodes: 4\n");
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].fullname(), "server.datanodes");
  EXPECT_EQ(items[0].inputs, std::vector<std::string>{"4"});
}

}  // namespace
}  // namespace granary
