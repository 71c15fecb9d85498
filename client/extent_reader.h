// Reading file bytes through a read map: the one block walk behind File::Pread, the mount's
// reads and S3 GETs. Internal to client/ (and fuse/).
#pragma once

#include <cstdint>
#include <span>

#include "client/granary.h"
#include "common/status.h"

namespace granary::client {

// Fills `out` with file bytes [offset, offset + out.size()) as `extents` (a read map's, in
// file order) describe them under `layout`: holes are zeros; the blocks are fetched in parallel
// (up to max_inflight_blocks) from the nearest copies, erasure-coded blocks from their data
// fragments (rebuilt from any K when some are missing, slow or corrupt), and during a PG move
// from the members that hold the data.
Status ReadExtents(Client& client, const Layout& layout,
                   const google::protobuf::RepeatedPtrField<Extent>& extents,
                   std::span<uint8_t> out, uint64_t offset);

}  // namespace granary::client
