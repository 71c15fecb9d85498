// The metanode's state machine: one deterministic function applies every operation (DESIGN §3).
// It reads and writes through a Txn, i.e. committed state plus the operations already applied
// in the same group commit, so validation sees pending changes too.
#pragma once

#include "metanode/pg_mapper.h"
#include "metanode/records.pb.h"
#include "metanode/store.h"

namespace granary::metanode {

class Applier {
 public:
  explicit Applier(const PgMapper& mapper) : mapper_(mapper) {}

  // Applies `op`. On an error reply the operation wrote nothing the caller should keep: the
  // caller rolls the batch back to a save point taken before the call.
  OpReply Apply(Txn& txn, const Operation& op) const;

 private:
  const PgMapper& mapper_;
};

}  // namespace granary::metanode
