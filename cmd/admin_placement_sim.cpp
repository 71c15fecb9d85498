#include "cmd/roles.h"

namespace granary::cmd {

int RunAdminPlacementSim(int, char**) { return NotBuilt("admin placement-sim", "issue 3: placement"); }

}  // namespace granary::cmd
