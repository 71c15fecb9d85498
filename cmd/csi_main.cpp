#include "cmd/roles.h"

namespace granary::cmd {

int RunCsi(int, char**) { return NotBuilt("csi", "issue 12: CSI driver"); }

}  // namespace granary::cmd
