#include "cmd/roles.h"

namespace granary::cmd {

int RunOperator(int, char**) { return NotBuilt("operator", "issue 14: operator"); }

}  // namespace granary::cmd
