#include "s3/documents.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <set>

#include "s3/sigv4.h"

namespace granary::s3 {

namespace {

constexpr const char* kAllUsers = "http://acs.amazonaws.com/groups/global/AllUsers";
constexpr const char* kAuthenticatedUsers =
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
constexpr const char* kLogDelivery = "http://acs.amazonaws.com/groups/s3/LogDelivery";

std::string_view LocalName(std::string_view name) {
  const size_t colon = name.find(':');
  return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

// Children by local name: S3 documents come with or without the S3 namespace.
pugi::xml_node Child(pugi::xml_node node, std::string_view name) {
  for (pugi::xml_node c : node.children()) {
    if (c.type() == pugi::node_element && LocalName(c.name()) == name) return c;
  }
  return {};
}
std::vector<pugi::xml_node> Children(pugi::xml_node node, std::string_view name) {
  std::vector<pugi::xml_node> out;
  for (pugi::xml_node c : node.children()) {
    if (c.type() == pugi::node_element && LocalName(c.name()) == name) out.push_back(c);
  }
  return out;
}
// Every character of an element's text, whitespace included (a key may be " ").
std::string Text(pugi::xml_node node) {
  std::string out;
  for (pugi::xml_node c : node.children()) {
    if (c.type() == pugi::node_pcdata || c.type() == pugi::node_cdata) out += c.value();
  }
  return out;
}
std::string_view Trim(std::string_view v) {
  while (!v.empty() && std::isspace(static_cast<unsigned char>(v.front()))) v.remove_prefix(1);
  while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.remove_suffix(1);
  return v;
}
std::string Lower(std::string_view v) {
  std::string out(v);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

AclGrant MakeGrant(const std::string& key, AclGroup group, AclPermission p) {
  AclGrant g;
  g.set_access_key(key);
  g.set_group(group);
  g.set_permission(p);
  return g;
}

S3Error MalformedAcl() {
  return Err(400, "MalformedACLError",
             "The XML you provided was not well-formed or did not validate against our "
             "published schema");
}

std::optional<AclGroup> GroupOfUri(std::string_view uri) {
  if (uri == kAllUsers) return ACL_ALL_USERS;
  if (uri == kAuthenticatedUsers) return ACL_AUTHENTICATED_USERS;
  if (uri == kLogDelivery) return ACL_LOG_DELIVERY;
  return std::nullopt;
}

std::optional<AclPermission> PermissionOfName(std::string_view name) {
  static constexpr std::array<std::pair<std::string_view, AclPermission>, 5> kNames = {{
      {"READ", ACL_READ},
      {"WRITE", ACL_WRITE},
      {"READ_ACP", ACL_READ_ACP},
      {"WRITE_ACP", ACL_WRITE_ACP},
      {"FULL_CONTROL", ACL_FULL_CONTROL},
  }};
  for (auto& [n, p] : kNames) {
    if (n == name) return p;
  }
  return std::nullopt;
}

// Length in UTF-16 code units, as S3 counts tag lengths.
size_t Utf16Length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) {
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte
    n += c >= 0xF0 ? 2 : 1;
  }
  return n;
}

bool TagCharsOk(std::string_view s) {
  for (unsigned char c : s) {
    if (c >= 0x80 || std::isalnum(c)) continue;  // non-ASCII: letters of other scripts
    if (std::string_view(" _.:/=+-@").find(static_cast<char>(c)) == std::string_view::npos) {
      return false;
    }
  }
  return true;
}

bool Wildcard(std::string_view pattern, std::string_view text) {
  const size_t star = pattern.find('*');
  if (star == std::string_view::npos) return pattern == text;
  std::string_view prefix = pattern.substr(0, star), suffix = pattern.substr(star + 1);
  return text.size() >= prefix.size() + suffix.size() && text.starts_with(prefix) &&
         text.ends_with(suffix);
}

}  // namespace

bool LoadXml(pugi::xml_document& doc, std::string_view xml) {
  const auto result =
      doc.load_buffer(xml.data(), xml.size(), pugi::parse_default | pugi::parse_ws_pcdata_single);
  return static_cast<bool>(result);
}

S3Error MalformedXml() {
  return Err(400, "MalformedXML",
             "The XML you provided was not well-formed or did not validate against our "
             "published schema.");
}

// ---------------------------------------------------------------- ACLs

const char* GroupUri(AclGroup g) {
  switch (g) {
    case ACL_ALL_USERS:
      return kAllUsers;
    case ACL_AUTHENTICATED_USERS:
      return kAuthenticatedUsers;
    case ACL_LOG_DELIVERY:
      return kLogDelivery;
    default:
      return "";
  }
}

const char* PermissionName(AclPermission p) {
  switch (p) {
    case ACL_READ:
      return "READ";
    case ACL_WRITE:
      return "WRITE";
    case ACL_READ_ACP:
      return "READ_ACP";
    case ACL_WRITE_ACP:
      return "WRITE_ACP";
    case ACL_FULL_CONTROL:
      return "FULL_CONTROL";
    default:
      return "";
  }
}

std::variant<Acl, S3Error> CannedAcl(std::string_view name, const std::string& owner,
                                     const std::string& bucket_owner, bool for_bucket) {
  // S3 User Guide, "Canned ACL": the owner always gets FULL_CONTROL.
  Acl acl{MakeGrant(owner, ACL_GROUP_NONE, ACL_FULL_CONTROL)};
  if (name == "private") return acl;
  if (name == "public-read" || name == "public-read-write") {
    acl.push_back(MakeGrant("", ACL_ALL_USERS, ACL_READ));
    if (name == "public-read-write") acl.push_back(MakeGrant("", ACL_ALL_USERS, ACL_WRITE));
    return acl;
  }
  if (name == "authenticated-read") {
    acl.push_back(MakeGrant("", ACL_AUTHENTICATED_USERS, ACL_READ));
    return acl;
  }
  if (name == "bucket-owner-read" || name == "bucket-owner-full-control") {
    // "If you specify this canned ACL when creating a bucket, Amazon S3 ignores it."
    if (!for_bucket && bucket_owner != owner) {
      acl.push_back(MakeGrant(bucket_owner, ACL_GROUP_NONE,
                              name == "bucket-owner-read" ? ACL_READ : ACL_FULL_CONTROL));
    }
    return acl;
  }
  if (name == "log-delivery-write" && for_bucket) {
    acl.push_back(MakeGrant("", ACL_LOG_DELIVERY, ACL_WRITE));
    acl.push_back(MakeGrant("", ACL_LOG_DELIVERY, ACL_READ_ACP));
    return acl;
  }
  if (name == "aws-exec-read") {
    return Err(501, "NotImplemented",
               "The canned ACL aws-exec-read (Amazon EC2's AMI bundles) is not implemented.");
  }
  return Err(400, "InvalidArgument", fmt::format("Invalid canned ACL: '{}'", name));
}

std::variant<Acl, S3Error> GrantHeadersAcl(
    const std::vector<std::pair<AclPermission, std::string>>& headers) {
  Acl acl;
  for (const auto& [permission, value] : headers) {
    std::string_view rest = value;
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      std::string_view item = Trim(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      if (item.empty()) continue;
      const size_t eq = item.find('=');
      if (eq == std::string_view::npos) {
        return Err(400, "InvalidArgument",
                   fmt::format("Invalid grantee '{}': expected id=, uri= or emailAddress=", item));
      }
      const std::string type = Lower(Trim(item.substr(0, eq)));
      std::string_view v = Trim(item.substr(eq + 1));
      if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
      if (type == "id") {
        if (v.empty()) return Err(400, "InvalidArgument", "Invalid id");
        acl.push_back(MakeGrant(std::string(v), ACL_GROUP_NONE, permission));
      } else if (type == "uri") {
        auto group = GroupOfUri(v);
        if (!group) return Err(400, "InvalidArgument", fmt::format("Invalid group uri: {}", v));
        acl.push_back(MakeGrant("", *group, permission));
      } else if (type == "emailaddress") {
        return Err(400, "UnresolvableGrantByEmailAddress",
                   "The email address you provided does not match any account on record.");
      } else {
        return Err(400, "InvalidArgument", fmt::format("Invalid grantee type '{}'", type));
      }
    }
  }
  return acl;
}

std::variant<Acl, S3Error> ParseAclXml(std::string_view xml) {
  pugi::xml_document doc;
  if (!LoadXml(doc, xml)) return MalformedAcl();
  pugi::xml_node root = Child(doc, "AccessControlPolicy");
  if (!root) return MalformedAcl();
  Acl acl;
  pugi::xml_node list = Child(root, "AccessControlList");
  for (pugi::xml_node grant : Children(list, "Grant")) {
    pugi::xml_node grantee = Child(grant, "Grantee");
    auto permission = PermissionOfName(Trim(Text(Child(grant, "Permission"))));
    if (!grantee || !permission) return MalformedAcl();
    if (pugi::xml_node id = Child(grantee, "ID")) {
      const std::string key(Trim(Text(id)));
      if (key.empty()) return Err(400, "InvalidArgument", "Invalid id");
      acl.push_back(MakeGrant(key, ACL_GROUP_NONE, *permission));
    } else if (pugi::xml_node uri = Child(grantee, "URI")) {
      auto group = GroupOfUri(Trim(Text(uri)));
      if (!group) {
        return Err(400, "InvalidArgument", fmt::format("Invalid group uri: {}", Text(uri)));
      }
      acl.push_back(MakeGrant("", *group, *permission));
    } else if (Child(grantee, "EmailAddress")) {
      return Err(400, "UnresolvableGrantByEmailAddress",
                 "The email address you provided does not match any account on record.");
    } else {
      return MalformedAcl();
    }
    // "An ACL can have up to 100 grants."
    if (acl.size() > 100) return MalformedAcl();
  }
  return acl;
}

bool AclAllows(const google::protobuf::RepeatedPtrField<AclGrant>& acl,
               const std::string& access_key, bool anonymous, Permission p) {
  static constexpr AclPermission kOf[] = {ACL_READ, ACL_WRITE, ACL_READ_ACP, ACL_WRITE_ACP};
  const AclPermission want = kOf[static_cast<int>(p)];
  for (const AclGrant& g : acl) {
    if (g.permission() != want && g.permission() != ACL_FULL_CONTROL) continue;
    switch (g.group()) {
      case ACL_GROUP_NONE:
        if (!anonymous && g.access_key() == access_key) return true;
        break;
      case ACL_ALL_USERS:
        return true;
      case ACL_AUTHENTICATED_USERS:
        if (!anonymous) return true;
        break;
      default:  // LogDelivery: no such service here
        break;
    }
  }
  return false;
}

bool IsOwnerFullControl(const Acl& acl, const std::string& bucket_owner) {
  for (const AclGrant& g : acl) {
    if (g.group() != ACL_GROUP_NONE || g.permission() != ACL_FULL_CONTROL) return false;
  }
  return std::any_of(acl.begin(), acl.end(),
                     [&](const AclGrant& g) { return g.access_key() == bucket_owner; });
}

// ---------------------------------------------------------------- tags

std::optional<S3Error> CheckTags(const std::vector<std::pair<std::string, std::string>>& tags) {
  if (tags.size() > 10) {
    return Err(400, "BadRequest", "Object tags cannot be greater than 10");
  }
  for (const auto& [key, value] : tags) {
    if (key.empty() || !TagCharsOk(key)) {
      return Err(400, "InvalidTag", "The TagKey you have provided is invalid");
    }
    if (Utf16Length(key) > 128) {
      return Err(400, "InvalidTag", "The TagKey you have provided is too long, max 128");
    }
    if (key.starts_with("aws:")) {
      return Err(400, "InvalidTag", "Your TagKey cannot be prefixed with aws:");
    }
    if (!TagCharsOk(value)) {
      return Err(400, "InvalidTag", "The TagValue you have provided is invalid");
    }
    if (Utf16Length(value) > 256) {
      return Err(400, "InvalidTag", "The TagValue you have provided is too long, max 256");
    }
  }
  return std::nullopt;
}

std::variant<Tags, S3Error> ParseTaggingXml(std::string_view xml) {
  pugi::xml_document doc;
  if (!LoadXml(doc, xml)) return MalformedXml();
  pugi::xml_node set = Child(Child(doc, "Tagging"), "TagSet");
  if (!set) return MalformedXml();
  std::vector<std::pair<std::string, std::string>> list;
  for (pugi::xml_node tag : Children(set, "Tag")) {
    pugi::xml_node key = Child(tag, "Key"), value = Child(tag, "Value");
    if (!key || !value) return MalformedXml();
    list.emplace_back(Text(key), Text(value));
  }
  if (auto e = CheckTags(list)) return *e;
  Tags tags;
  for (auto& [k, v] : list) {
    if (!tags.emplace(k, v).second) {
      return Err(400, "InvalidTag", "Cannot provide multiple Tags with the same key");
    }
  }
  return tags;
}

std::variant<Tags, S3Error> ParseTaggingHeader(std::string_view value) {
  const S3Error bad = Err(400, "InvalidArgument",
                          "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded "
                          "URL query parameters without tag name duplicates.");
  auto decode = [](std::string_view v) {
    std::string plus(v);
    std::replace(plus.begin(), plus.end(), '+', ' ');  // form encoding: '+' is a space
    return UriDecode(plus);
  };
  std::vector<std::pair<std::string, std::string>> list;
  while (!value.empty()) {
    const size_t amp = value.find('&');
    std::string_view item = value.substr(0, amp);
    value = amp == std::string_view::npos ? std::string_view() : value.substr(amp + 1);
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq != std::string_view::npos && item.find('=', eq + 1) != std::string_view::npos) {
      return bad;
    }
    auto k = decode(item.substr(0, eq));
    auto v = decode(eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1));
    if (!k || !v) return bad;
    list.emplace_back(std::move(*k), std::move(*v));
  }
  if (auto e = CheckTags(list)) return *e;
  Tags tags;
  for (auto& [k, v] : list) {
    if (!tags.emplace(k, v).second) return bad;
  }
  return tags;
}

// ---------------------------------------------------------------- CORS

std::variant<CorsConfig, S3Error> ParseCorsXml(std::string_view xml) {
  pugi::xml_document doc;
  if (!LoadXml(doc, xml)) return MalformedXml();
  pugi::xml_node root = Child(doc, "CORSConfiguration");
  if (!root) return MalformedXml();
  auto rules = Children(root, "CORSRule");
  if (rules.empty()) return MalformedXml();
  if (rules.size() > 100) {
    return Err(400, "InvalidRequest",
               "The number of CORS rules should not exceed allowed limit of 100 rules.");
  }
  static const std::set<std::string, std::less<>> kMethods = {"GET", "PUT", "HEAD", "POST",
                                                              "DELETE"};
  CorsConfig config;
  for (pugi::xml_node r : rules) {
    CorsRule& rule = *config.add_rules();
    if (pugi::xml_node id = Child(r, "ID")) {
      rule.set_id(Text(id));
      if (rule.id().size() > 255) {
        return Err(400, "InvalidArgument", "ID length should not exceed allowed limit of 255");
      }
    }
    for (pugi::xml_node o : Children(r, "AllowedOrigin")) {
      const std::string origin = Text(o);
      if (std::count(origin.begin(), origin.end(), '*') > 1) {
        return Err(
            400, "InvalidRequest",
            fmt::format("AllowedOrigin \"{}\" can not have more than one wildcard.", origin));
      }
      rule.add_allowed_origins(origin);
    }
    for (pugi::xml_node m : Children(r, "AllowedMethod")) {
      const std::string method = Text(m);
      if (!kMethods.contains(method)) {
        return Err(400, "InvalidRequest",
                   fmt::format("Found unsupported HTTP method in CORS config. Unsupported method "
                               "is {}",
                               method));
      }
      rule.add_allowed_methods(method);
    }
    for (pugi::xml_node h : Children(r, "AllowedHeader")) {
      const std::string header = Text(h);
      if (std::count(header.begin(), header.end(), '*') > 1) {
        return Err(
            400, "InvalidRequest",
            fmt::format("AllowedHeader \"{}\" can not have more than one wildcard.", header));
      }
      rule.add_allowed_headers(header);
    }
    for (pugi::xml_node h : Children(r, "ExposeHeader")) rule.add_expose_headers(Text(h));
    auto ages = Children(r, "MaxAgeSeconds");
    if (ages.size() > 1) return MalformedXml();
    if (!ages.empty()) {
      const std::string text(Trim(Text(ages[0])));
      try {
        size_t used = 0;
        const long age = std::stol(text, &used);
        if (used != text.size() || age < INT32_MIN || age > INT32_MAX) return MalformedXml();
        rule.set_max_age_seconds(static_cast<int32_t>(age));
      } catch (...) {
        return MalformedXml();
      }
    }
    if (rule.allowed_origins().empty() || rule.allowed_methods().empty()) return MalformedXml();
  }
  return config;
}

std::optional<CorsMatch> MatchCors(const CorsConfig& config, std::string_view origin,
                                   std::string_view method,
                                   const std::vector<std::string>& request_headers) {
  for (const CorsRule& rule : config.rules()) {
    if (std::find(rule.allowed_methods().begin(), rule.allowed_methods().end(), method) ==
        rule.allowed_methods().end()) {
      continue;
    }
    const std::string* matched = nullptr;
    for (const std::string& o : rule.allowed_origins()) {
      if (Wildcard(o, origin)) {
        matched = &o;
        break;
      }
    }
    if (!matched) continue;
    bool headers_ok = true;
    for (const std::string& h : request_headers) {
      headers_ok = std::any_of(rule.allowed_headers().begin(), rule.allowed_headers().end(),
                               [&](const std::string& a) { return Wildcard(Lower(a), h); });
      if (!headers_ok) break;
    }
    if (!headers_ok) continue;
    return CorsMatch{&rule, *matched == "*"};
  }
  return std::nullopt;
}

std::vector<std::string> SplitHeaderList(std::string_view value) {
  std::vector<std::string> out;
  while (!value.empty()) {
    const size_t comma = value.find(',');
    std::string_view item = Trim(value.substr(0, comma));
    value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
    if (!item.empty()) out.push_back(Lower(item));
  }
  return out;
}

// ---------------------------------------------------------------- DeleteObjects

std::variant<DeleteDocument, S3Error> ParseDeleteXml(std::string_view xml) {
  pugi::xml_document doc;
  if (!LoadXml(doc, xml)) return MalformedXml();
  pugi::xml_node root = Child(doc, "Delete");
  if (!root) return MalformedXml();
  DeleteDocument out;
  out.quiet = Trim(Text(Child(root, "Quiet"))) == "true";
  for (pugi::xml_node o : Children(root, "Object")) {
    pugi::xml_node key = Child(o, "Key");
    if (!key) return MalformedXml();
    out.keys.push_back(Text(key));
  }
  if (out.keys.empty() || out.keys.size() > 1000) return MalformedXml();
  return out;
}

}  // namespace granary::s3
