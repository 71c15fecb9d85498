#include "cmd/roles.h"

namespace granary::cmd {

int RunServer(int, char**) { return NotBuilt("server", "issue 6: libgranary, CLI and granary server"); }

}  // namespace granary::cmd
