#include "cmd/roles.h"

namespace granary::cmd {

int RunAdmin(int, char**) { return NotBuilt("admin", "issues 3 and 4: placement-sim and metanode admin verbs"); }

}  // namespace granary::cmd
