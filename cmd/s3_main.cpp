#include "cmd/roles.h"

namespace granary::cmd {

int RunS3(int, char**) { return NotBuilt("s3", "issue 9: S3 gateway"); }

}  // namespace granary::cmd
