#include "cmd/roles.h"

namespace granary::cmd {

int RunBench(int, char**) { return NotBuilt("bench", "issue 6: benchmarks"); }

}  // namespace granary::cmd
