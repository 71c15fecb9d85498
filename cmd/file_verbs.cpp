#include "cmd/roles.h"

namespace granary::cmd {

int RunFileVerb(int, char**) { return NotBuilt("put/get/ls/stat/rm/mkdir", "issue 6: CLI verbs"); }

}  // namespace granary::cmd
