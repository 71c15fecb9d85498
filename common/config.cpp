#include "common/config.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <sstream>

namespace granary {
namespace {

void Flatten(const YAML::Node& node, std::vector<std::string>& parents,
             std::vector<CLI::ConfigItem>& out) {
  for (const auto& entry : node) {
    std::string key = entry.first.as<std::string>();
    const YAML::Node& value = entry.second;
    if (value.IsMap()) {
      parents.push_back(key);
      Flatten(value, parents, out);
      parents.pop_back();
      continue;
    }
    CLI::ConfigItem item;
    item.parents = parents;
    item.name = key;
    if (value.IsSequence()) {
      for (const auto& v : value) item.inputs.push_back(v.as<std::string>());
    } else if (!value.IsNull()) {
      item.inputs.push_back(value.as<std::string>());
    }
    out.push_back(std::move(item));
  }
}

class YamlConfig : public CLI::Config {
 public:
  std::string to_config(const CLI::App* app, bool default_also, bool, std::string) const override {
    YAML::Emitter out;
    out << YAML::BeginMap;
    for (const CLI::Option* opt : app->get_options()) {
      if (opt->get_lnames().empty() || opt->get_lnames()[0] == "config") continue;
      if (opt->count() == 0 && !default_also) continue;
      auto results = opt->results();
      out << YAML::Key << opt->get_lnames()[0] << YAML::Value
          << (results.empty() ? opt->get_default_str() : results.front());
    }
    out << YAML::EndMap;
    return out.c_str();
  }

  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    std::stringstream text;
    text << input.rdbuf();
    return ParseYamlConfig(text.str());
  }
};

}  // namespace

std::vector<CLI::ConfigItem> ParseYamlConfig(const std::string& yaml_text) {
  std::vector<CLI::ConfigItem> items;
  try {
    YAML::Node root = YAML::Load(yaml_text);
    if (root.IsNull()) return items;
    if (!root.IsMap()) throw CLI::ConversionError("config: top level must be a YAML map");
    std::vector<std::string> parents;
    Flatten(root, parents, items);
  } catch (const YAML::Exception& e) {
    throw CLI::ConversionError(std::string("config: ") + e.what());
  }
  return items;
}

void AddYamlConfig(CLI::App& app) {
  app.config_formatter(std::make_shared<YamlConfig>());
  app.set_config("--config", "", "YAML file whose keys are long flag names");
}

std::string EnvOr(const char* name, std::string fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : std::move(fallback);
}

}  // namespace granary
