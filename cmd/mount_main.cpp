#include "cmd/roles.h"

namespace granary::cmd {

int RunMount(int, char**) { return NotBuilt("mount", "issue 10: POSIX mount"); }

}  // namespace granary::cmd
