#include "cmd/roles.h"

namespace granary::cmd {

int RunAdminMeta(int, char**) { return NotBuilt("admin", "issue 4: metanode admin verbs"); }

}  // namespace granary::cmd
