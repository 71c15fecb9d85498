// Shared by the operator_* tests: YAML files as JSON (what kubectl sends), and a small
// structural-schema validator for the CRDs. Hand-written because no OpenAPI validator is packaged
// in Debian 12 for C++; it covers exactly the keywords crds/ uses.
#pragma once

#include <yaml-cpp/yaml.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "operator/kube/resource.h"

namespace granary::testing {

using kube::Json;

inline Json YamlToJson(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      Json o = Json::object();
      for (const auto& kv : n) o[kv.first.as<std::string>()] = YamlToJson(kv.second);
      return o;
    }
    case YAML::NodeType::Sequence: {
      Json a = Json::array();
      for (const auto& e : n) a.push_back(YamlToJson(e));
      return a;
    }
    case YAML::NodeType::Scalar: {
      std::string s = n.Scalar();
      if (n.Tag() == "!") return s;  // quoted: always a string
      if (s == "true") return true;
      if (s == "false") return false;
      if (s == "null" || s == "~") return nullptr;
      static const std::regex kInt("^-?[0-9]+$"), kFloat("^-?[0-9]+\\.[0-9]+([eE][-+]?[0-9]+)?$");
      if (std::regex_match(s, kInt)) return std::stoll(s);
      if (std::regex_match(s, kFloat)) return std::stod(s);
      return s;
    }
    default:
      return nullptr;
  }
}

inline std::vector<Json> LoadYamlFile(const std::string& path) {
  std::vector<Json> docs;
  for (const auto& d : YAML::LoadAllFromFile(path))
    if (d.IsMap()) docs.push_back(YamlToJson(d));
  return docs;
}

// Validates `v` against an OpenAPI v3 (structural) schema; appends "path: problem" to `errors`.
// Unknown fields are errors here (the API server would prune them silently: in a sample or a
// test object they are a typo).
inline void Validate(const Json& schema, const Json& v, const std::string& path,
                     std::vector<std::string>& errors) {
  auto fail = [&](const std::string& m) { errors.push_back(path + ": " + m); };
  std::string type = schema.value("type", "");
  if (type == "object" && !v.is_object()) return fail("must be an object");
  if (type == "array" && !v.is_array()) return fail("must be an array");
  if (type == "string" && !v.is_string()) return fail("must be a string");
  if (type == "integer" && !v.is_number_integer()) return fail("must be an integer");
  if (type == "number" && !v.is_number()) return fail("must be a number");
  if (type == "boolean" && !v.is_boolean()) return fail("must be a boolean");
  if (schema.contains("enum")) {
    bool found = false;
    for (const auto& e : schema["enum"]) found |= e == v;
    if (!found) fail("unsupported value " + v.dump() + ", allowed " + schema["enum"].dump());
  }
  if (v.is_number()) {
    if (schema.contains("minimum") && v.get<double>() < schema["minimum"].get<double>())
      fail("must be >= " + schema["minimum"].dump());
    if (schema.contains("maximum") && v.get<double>() > schema["maximum"].get<double>())
      fail("must be <= " + schema["maximum"].dump());
  }
  if (v.is_string()) {
    auto s = v.get<std::string>();
    if (schema.contains("minLength") && s.size() < schema["minLength"].get<size_t>())
      fail("shorter than " + schema["minLength"].dump());
    if (schema.contains("maxLength") && s.size() > schema["maxLength"].get<size_t>())
      fail("longer than " + schema["maxLength"].dump());
    if (schema.contains("pattern") &&
        !std::regex_search(s, std::regex(schema["pattern"].get<std::string>())))
      fail("does not match " + schema["pattern"].get<std::string>());
  }
  if (v.is_object()) {
    Json required = schema.value("required", Json::array());
    for (const auto& r : required)
      if (!v.contains(r.get<std::string>())) fail("required field " + r.get<std::string>());
    bool preserve = schema.value("x-kubernetes-preserve-unknown-fields", false);
    for (auto& [k, child] : v.items()) {
      if (schema.contains("properties") && schema["properties"].contains(k)) {
        Validate(schema["properties"][k], child, path + "." + k, errors);
      } else if (schema.contains("additionalProperties")) {
        Validate(schema["additionalProperties"], child, path + "." + k, errors);
      } else if (!preserve && schema.contains("properties")) {
        fail("unknown field " + k);
      }
    }
  }
  if (v.is_array() && schema.contains("items")) {
    for (size_t i = 0; i < v.size(); ++i)
      Validate(schema["items"], v[i], path + "[" + std::to_string(i) + "]", errors);
  }
  if (schema.contains("oneOf")) {
    int matches = 0;
    for (const auto& alt : schema["oneOf"]) {
      std::vector<std::string> e;
      Validate(alt, v, path, e);
      matches += e.empty();
    }
    if (matches != 1) fail("must match exactly one of oneOf, matched " + std::to_string(matches));
  }
}

// The structural rule: every node under properties/items/additionalProperties says its type
// (or preserves unknown fields); oneOf branches carry no type.
inline void CheckStructural(const Json& schema, const std::string& path,
                            std::vector<std::string>& errors) {
  if (!schema.contains("type") && !schema.value("x-kubernetes-preserve-unknown-fields", false))
    errors.push_back(path + ": no type");
  Json properties = schema.value("properties", Json::object());  // items() needs a named value
  for (auto& [k, child] : properties.items()) CheckStructural(child, path + "." + k, errors);
  if (schema.contains("items")) CheckStructural(schema["items"], path + "[]", errors);
  if (schema.contains("additionalProperties") && schema["additionalProperties"].is_object())
    CheckStructural(schema["additionalProperties"], path + "{}", errors);
  Json one_of = schema.value("oneOf", Json::array());
  for (const auto& alt : one_of)
    if (alt.contains("type")) errors.push_back(path + ": a oneOf branch has a type");
  if (schema.contains("default")) Validate(schema, schema["default"], path + " (default)", errors);
}

}  // namespace granary::testing
