#include <cstdio>

#include "cmd/roles.h"

namespace granary::cmd {

int NotBuilt(std::string_view role, std::string_view issue) {
  std::fprintf(stderr, "granary %.*s: not built yet (%.*s)\n", static_cast<int>(role.size()),
               role.data(), static_cast<int>(issue.size()), issue.data());
  return 3;
}

}  // namespace granary::cmd
