#include "cmd/roles.h"

namespace granary::cmd {

int RunMetanode(int, char**) { return NotBuilt("metanode", "issue 4: metanode"); }

}  // namespace granary::cmd
