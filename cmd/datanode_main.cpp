#include "cmd/roles.h"

namespace granary::cmd {

int RunDatanode(int, char**) { return NotBuilt("datanode", "issue 5: datanode"); }

}  // namespace granary::cmd
