// `granary admin …`: placement-sim runs locally; every other verb talks to the metanode.
#include <cstring>
#include <string_view>

#include "cmd/roles.h"

namespace granary::cmd {

int RunAdminPlacementSim(int argc, char** argv);  // cmd/admin_placement_sim.cpp
int RunAdminMeta(int argc, char** argv);          // cmd/admin_meta.cpp
int RunAdminFsck(int argc, char** argv);          // cmd/admin_fsck.cpp
int RunAdminGroup(int argc, char** argv);         // cmd/admin_group.cpp
int RunAdminLocality(int argc, char** argv);      // cmd/admin_locality.cpp

int RunAdmin(int argc, char** argv) {
  if (argc >= 2 && std::string_view(argv[1]) == "placement-sim") {
    return RunAdminPlacementSim(argc - 1, argv + 1);
  }
  if (argc >= 2 && std::string_view(argv[1]) == "fsck") return RunAdminFsck(argc - 1, argv + 1);
  if (argc >= 2 && std::string_view(argv[1]) == "meta") return RunAdminGroup(argc - 1, argv + 1);
  // Locality and warm-ups (docs/locality.md): `warmup …` and `volume locality …`.
  if (argc >= 2 && (std::string_view(argv[1]) == "warmup" ||
                    (argc >= 3 && std::string_view(argv[1]) == "volume" &&
                     std::string_view(argv[2]) == "locality"))) {
    return RunAdminLocality(argc, argv);
  }
  return RunAdminMeta(argc, argv);
}

}  // namespace granary::cmd
