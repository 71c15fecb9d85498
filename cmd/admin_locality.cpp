// `granary admin volume locality NAME [--path P]` and `granary admin warmup create|list|delete`
// (docs/locality.md). Thin: parse flags, call MetaClient, print `key=value` lines.
#include <fmt/format.h>

#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "client/meta_client.h"
#include "cmd/admin_client.h"
#include "cmd/process.h"
#include "cmd/roles.h"
#include "common/config.h"

namespace granary::cmd {

namespace {

int Fail(const Status& status) { return ReportFailure("admin", status); }

std::string_view StateName(WarmupState s) {
  switch (s) {
    case WARMUP_COPYING:
      return "copying";
    case WARMUP_READY:
      return "ready";
    case WARMUP_STOPPED:
      return "stopped";
    case WARMUP_DELETING:
      return "deleting";
    default:
      return "unknown";
  }
}

std::string Percent(uint64_t done, uint64_t total) {
  return total == 0 ? "100.0%" : fmt::format("{:.1f}%", 100.0 * done / total);
}

std::string Joined(const google::protobuf::RepeatedPtrField<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ",") + i;
  return out.empty() ? "-" : out;
}

std::string Quoted(const std::string& text) {
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\\\"") : std::string(1, c);
  return out + "\"";
}

void PrintLocality(const VolumeLocalityReply& r) {
  std::printf("volume=%s path=%s files=%lu bytes=%lu\n", r.volume().c_str(), r.path().c_str(),
              r.files(), r.logical_bytes());
  auto print = [](const char* level, const DomainBytes& d) {
    std::printf("%s=%s bytes=%lu local-bytes=%lu warm-bytes=%lu\n", level, d.name().c_str(),
                d.bytes(), d.local_bytes(), d.warm_bytes());
  };
  for (const auto& d : r.hosts()) print("host", d);
  for (const auto& d : r.racks()) print("rack", d);
  for (const auto& d : r.zones()) print("zone", d);
}

// `with_progress`: list computes progress; create's reply has none to show.
void PrintWarmup(const Warmup& w, bool with_progress = true) {
  std::printf("warmup=%s volume=%s path=%s hosts=%s state=%s", w.name().c_str(), w.volume().c_str(),
              w.path().c_str(), Joined(w.hosts()).c_str(),
              std::string(StateName(w.state())).c_str());
  if (with_progress) {
    std::printf(" progress=%s bytes=%lu done-bytes=%lu copies=%lu",
                Percent(w.done_bytes(), w.bytes()).c_str(), w.bytes(), w.done_bytes(), w.copies());
  }
  if (!w.message().empty()) std::printf(" message=%s", Quoted(w.message()).c_str());
  std::printf("\n");
  for (const WarmupHost& h : w.host_progress()) {
    std::printf("  host=%s progress=%s bytes=%lu local-bytes=%lu warm-bytes=%lu\n",
                h.host().c_str(), Percent(h.local_bytes() + h.warm_bytes(), h.bytes()).c_str(),
                h.bytes(), h.local_bytes(), h.warm_bytes());
  }
}

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

}  // namespace

int RunAdminLocality(int argc, char** argv) {
  CLI::App app{"granary admin: where a volume's data is, and warm-ups"};
  std::string meta = EnvOr("GRANARY_META", "127.0.0.1:7410");
  app.add_option("--meta", meta, "metanode HOST:PORT (default $GRANARY_META, else 127.0.0.1:7410)");
  app.require_subcommand(1);
  app.fallthrough();

  auto* volume = app.add_subcommand("volume", "volumes")->require_subcommand(1);
  std::string volume_name, path;
  auto* locality =
      volume->add_subcommand("locality", "bytes of the volume per host, rack and zone");
  locality->add_option("name", volume_name)->required();
  locality->add_option("--path", path, "a directory or file inside the volume");

  auto* warmup = app.add_subcommand("warmup", "extra copies of a volume on chosen hosts")
                     ->require_subcommand(1);
  std::string name, hosts;
  auto* create = warmup->add_subcommand(
      "create", "copy volume V (or path P) to the datanodes of the hosts (again: resume/update)");
  create->add_option("name", name)->required();
  create->add_option("--volume", volume_name)->required();
  create->add_option("--path", path, "a directory or file inside the volume (default: all)");
  create->add_option("--hosts", hosts, "H1,H2,…: the datanodes' host labels")->required();
  auto* list = warmup->add_subcommand("list", "warm-ups with their progress");
  list->add_option("name", name, "only this one");
  auto* remove = warmup->add_subcommand("delete", "delete a warm-up; its copies are removed");
  remove->add_option("name", name)->required();

  CLI11_PARSE(app, argc, argv);

  auto connected = ConnectAdmin(meta);
  if (!connected.ok()) return Fail(connected.status());
  client::MetaClient& mc = **connected;

  if (locality->parsed()) {
    auto r = mc.VolumeLocality(volume_name, path);
    if (!r.ok()) return Fail(r.status());
    PrintLocality(*r);
  } else if (create->parsed()) {
    auto r = mc.WarmupCreate(name, volume_name, path, SplitList(hosts));
    if (!r.ok()) return Fail(r.status());
    PrintWarmup(*r, false);
  } else if (list->parsed()) {
    auto r = mc.WarmupList(name);
    if (!r.ok()) return Fail(r.status());
    for (const Warmup& w : *r) PrintWarmup(w);
  } else if (remove->parsed()) {
    if (Status s = mc.WarmupDelete(name); !s.ok()) return Fail(s);
    std::printf("deleted warmup=%s\n", name.c_str());
  }
  return 0;
}

}  // namespace granary::cmd
