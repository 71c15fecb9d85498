// granary: one binary, one subcommand per role (DESIGN §1).
#include <cstdio>
#include <cstring>
#include <string_view>

#include "cmd/roles.h"

namespace {

struct Subcommand {
  std::string_view name;
  int (*run)(int, char**);
  std::string_view summary;
};

constexpr Subcommand kSubcommands[] = {
    {"server", granary::cmd::RunServer,
     "embedded all-in-one: metanode + datanodes + S3 gateway under one data dir"},
    {"metanode", granary::cmd::RunMetanode,
     "metadata service (namespace, slices, PG map) on RocksDB"},
    {"datanode", granary::cmd::RunDatanode, "block store on local disks (io_uring), data protocol"},
    {"s3", granary::cmd::RunS3, "stateless S3 gateway"},
    {"mount", granary::cmd::RunMount, "FUSE client: mount a volume"},
    {"csi", granary::cmd::RunCsi, "CSI driver (Identity/Controller/Node) on a unix socket"},
    {"operator", granary::cmd::RunOperator, "Kubernetes operator for the granary.io CRDs"},
    {"put", granary::cmd::RunFileVerb, "copy a local file into VOLUME/PATH"},
    {"get", granary::cmd::RunFileVerb, "copy VOLUME/PATH to a local file"},
    {"ls", granary::cmd::RunFileVerb, "list a directory"},
    {"stat", granary::cmd::RunFileVerb, "show a file's attributes"},
    {"rm", granary::cmd::RunFileVerb, "remove a file or an empty directory"},
    {"mkdir", granary::cmd::RunFileVerb, "create a directory"},
    {"admin", granary::cmd::RunAdmin,
     "pools, volumes, keys, buckets, nodes, repair, placement-sim"},
    {"bench", granary::cmd::RunBench, "built-in benchmarks"},
};

void PrintUsage(FILE* out) {
  std::fprintf(out, "usage: granary <subcommand> [flags]   (granary <subcommand> --help)\n\n");
  for (const auto& sc : kSubcommands) {
    std::fprintf(out, "  %-10.*s %.*s\n", static_cast<int>(sc.name.size()), sc.name.data(),
                 static_cast<int>(sc.summary.size()), sc.summary.data());
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    PrintUsage(stderr);
    return 2;
  }
  std::string_view name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    PrintUsage(stdout);
    return 0;
  }
  for (const auto& sc : kSubcommands) {
    if (sc.name == name) return sc.run(argc - 1, argv + 1);
  }
  std::fprintf(stderr, "granary: unknown subcommand '%s'\n\n", argv[1]);
  PrintUsage(stderr);
  return 2;
}
