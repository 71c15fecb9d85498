// Pins by client session and the reaping of expired sessions (docs/metadata.md "Client sessions
// and reaping"). Every pin change goes through AddPin/DropPin so that the inode record and the
// "S" client index never disagree.
#include <fmt/format.h>

#include "metanode/apply_internal.h"

namespace granary::metanode {

namespace {
constexpr size_t kMaxTombstonesForgotten = 10000;

void UnindexPin(Ctx& ctx, InodeRecord& rec, uint64_t owner) {
  auto it = rec.mutable_pin_clients()->find(owner);
  if (it == rec.mutable_pin_clients()->end()) return;
  ctx.txn.Delete(Cf::kSystem, PinKey(it->second, rec.attr().ino(), owner));
  rec.mutable_pin_clients()->erase(it);
}
}  // namespace

void AddPin(Ctx& ctx, InodeRecord& rec, uint64_t owner) {
  (*rec.mutable_open_handles())[owner] += 1;
  const uint64_t client = ctx.op.id().client_id();
  if (client == 0) return;  // no session to tie it to: released explicitly only
  auto& clients = *rec.mutable_pin_clients();
  auto it = clients.find(owner);
  if (it != clients.end() && it->second == client) return;
  // The owner last pinned by another client (a session that rotated): the newest takes it.
  if (it != clients.end()) UnindexPin(ctx, rec, owner);
  clients[owner] = client;
  ctx.txn.Put(Cf::kSystem, PinKey(client, rec.attr().ino(), owner), "");
}

void DropPin(Ctx& ctx, InodeRecord& rec, uint64_t owner, bool all) {
  auto& handles = *rec.mutable_open_handles();
  auto it = handles.find(owner);
  if (it == handles.end()) return;
  if (!all && --it->second > 0) return;
  handles.erase(it);
  UnindexPin(ctx, rec, owner);
}

void UnindexPins(Ctx& ctx, const InodeRecord& rec) {
  for (const auto& [owner, client] : rec.pin_clients()) {
    ctx.txn.Delete(Cf::kSystem, PinKey(client, rec.attr().ino(), owner));
  }
}

Status ApplyReapSessions(Ctx& ctx, OpReply* reply) {
  const ReapSessionsOp& op = ctx.op.reap_sessions();
  SessionsReaped& out = *reply->mutable_sessions_reaped();
  size_t budget = op.max_pins() > 0 ? op.max_pins() : 100000;
  for (uint64_t client : op.client_ids()) {
    if (client == 0) return InvalidArgument("reap sessions: client id 0 has no session");
    const std::string prefix = PinPrefix(client);
    std::vector<std::pair<uint64_t, uint64_t>> pins;  // (ino, owner)
    bool more = false;
    GRANARY_TRY(
        ctx.txn.Scan(Cf::kSystem, prefix, "", false, [&](std::string_view key, std::string_view) {
          if (pins.size() >= budget) {
            more = true;
            return false;
          }
          pins.emplace_back(ReadU64(key.substr(prefix.size())),
                            ReadU64(key.substr(prefix.size() + 8)));
          return true;
        }));
    budget -= pins.size();
    uint64_t dropped = 0;
    for (auto [ino, owner] : pins) {
      ctx.txn.Delete(Cf::kSystem, PinKey(client, ino, owner));
      auto rec = FindRecord<InodeRecord>(ctx.txn, Cf::kInodes, InodeKey(ino));
      GRANARY_TRY(rec);
      if (!*rec) continue;  // stale index entry: nothing is pinned
      InodeRecord& r = **rec;
      auto pinned_by = r.pin_clients().find(owner);
      if (pinned_by == r.pin_clients().end() || pinned_by->second != client) continue;
      DropPin(ctx, r, owner, /*all=*/true);
      ++dropped;
      // The unlink rules: the last pin of an unlinked (or never published) inode frees it.
      if (r.attr().nlink() == 0 && r.open_handles().empty()) {
        auto volume = LoadVolume(ctx.txn, r.attr().volume_id());
        if (!volume.ok() && volume.status().code() != Code::NOT_FOUND) return volume.status();
        // An orphan can outlive its volume (deleted once its root was empty): there is no
        // quota left to settle, but the inode and its slices must still go.
        VolumeRecord gone;
        GRANARY_TRY(FreeInode(ctx, r, volume.ok() ? *volume : gone));
        if (volume.ok()) SaveVolume(ctx.txn, *volume);
        out.set_inodes_freed(out.inodes_freed() + 1);
      } else {
        SaveInode(ctx.txn, r);
      }
    }
    out.set_pins_dropped(out.pins_dropped() + dropped);
    uint64_t locks_dropped = 0;
    auto lock_inodes = DropHolderLocks(ctx, client, &locks_dropped);
    GRANARY_TRY(lock_inodes);
    for (uint64_t ino : *lock_inodes) out.add_lock_inodes(ino);
    out.set_locks_dropped(out.locks_dropped() + locks_dropped);
    SessionTombstone tomb;
    GRANARY_TRY(ctx.txn.GetRecord(Cf::kSystem, SessionTombstoneKey(client), &tomb));
    tomb.set_format(kFormat);
    tomb.set_reaped_ms(ctx.op.now_ms());
    tomb.set_pins_dropped(tomb.pins_dropped() + dropped);
    ctx.txn.PutRecord(Cf::kSystem, SessionTombstoneKey(client), tomb);
    if (more) out.add_unfinished(client);
  }
  std::vector<std::string> forget;
  GRANARY_TRY(ctx.txn.Scan(Cf::kSystem, kSessionTombstonePrefix, "", false,
                           [&](std::string_view key, std::string_view value) {
                             SessionTombstone tomb;
                             if (tomb.ParseFromArray(value.data(), value.size()) &&
                                 tomb.reaped_ms() < op.forget_before_ms()) {
                               forget.emplace_back(key);
                             }
                             return forget.size() < kMaxTombstonesForgotten;
                           }));
  for (const auto& key : forget) ctx.txn.Delete(Cf::kSystem, key);
  return Status::Ok();
}

}  // namespace granary::metanode
