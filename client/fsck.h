// `granary admin fsck`: cross-checks the metanode's PG -> blocks index against what every up
// datanode stores (its self-describing block headers, listed over DataControl). See
// docs/maintenance.md "fsck".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "client/meta_client.h"

namespace granary::client {

struct FsckReport {
  uint64_t blocks_indexed = 0;     // blocks in the index (each held by one or more members)
  uint64_t copies_checked = 0;     // (member, fragment) pairs expected on up datanodes
  uint64_t missing = 0;            // expected on an up member, not stored there
  uint64_t dead = 0;               // stored, but the slice is collected or was never committed
  uint64_t misplaced = 0;          // live slice stored on a node that is not one of its holders
  uint64_t header_mismatch = 0;    // stored where expected, but its header names another pool/PG
  uint64_t datanodes_skipped = 0;  // not up, or unreachable: their blocks are not checked
  // With repair: dead blocks deleted, datanodes asked to repair now.
  uint64_t deleted = 0;
  uint64_t repairs_requested = 0;
  std::vector<std::string> problems;  // the first few, one line each

  bool clean() const { return missing + dead + misplaced + header_mismatch == 0; }
};

// With `repair`: deletes dead blocks and asks every datanode missing copies to run a repair
// pass now. Misplaced copies are left to the datanodes' reconcile (they drop them once the
// cluster is healthy).
Result<FsckReport> Fsck(MetaClient& meta, bool repair);

}  // namespace granary::client
