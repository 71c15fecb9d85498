// Configuration: flags through CLI11, with an optional YAML file (`--config FILE`) whose keys
// are the long flag names ("meta: 127.0.0.1:7410", "labels: zone=a,host=h1"). A flag given on
// the command line wins over the file.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace granary {

// Adds `--config FILE` (YAML) to `app`.
void AddYamlConfig(CLI::App& app);

// YAML text -> CLI11 config items; exposed for tests. Throws CLI::ConversionError on bad YAML.
std::vector<CLI::ConfigItem> ParseYamlConfig(const std::string& yaml_text);

// The value of environment variable `name`, or `fallback` when unset or empty.
std::string EnvOr(const char* name, std::string fallback);

}  // namespace granary
