// rename(2) with RENAME_NOREPLACE and RENAME_EXCHANGE, atomic in one operation. The "not into its
// own subtree" walk runs here, inside apply, against committed and pending state, so two
// crossing renames in one group commit cannot build a cycle.
#include <fmt/format.h>

#include "metanode/apply_internal.h"

namespace granary::metanode {

namespace {

// InvalidArgument when `dir` is `ancestor` or below it.
Status CheckNotBelow(Txn& txn, uint64_t dir, uint64_t ancestor) {
  uint64_t p = dir;
  for (int depth = 0; p != 0; ++depth) {
    if (p == ancestor) {
      return InvalidArgument(
          fmt::format("rename directory {} into its own subtree (below {})", ancestor, dir));
    }
    if (depth > 100000) return Corrupt(fmt::format("parent chain of {} does not end", dir));
    auto rec = LoadInode(txn, p);
    GRANARY_TRY(rec);
    p = rec->attr().parent();
  }
  return Status::Ok();
}

void Touch(Ctx& ctx, InodeRecord& rec, int nlink_delta) {
  InodeAttr& a = *rec.mutable_attr();
  a.set_nlink(static_cast<uint32_t>(static_cast<int64_t>(a.nlink()) + nlink_delta));
  *a.mutable_mtime() = ctx.Now();
  *a.mutable_ctime() = ctx.Now();
}

}  // namespace

Status ApplyRename(Ctx& ctx, OpReply* reply) {
  const RenameRequest& req = ctx.op.rename();
  GRANARY_TRY(ValidateName(req.name()));
  GRANARY_TRY(ValidateName(req.new_name()));
  const bool exchange = req.flags() == RENAME_FLAG_EXCHANGE;
  const bool noreplace = req.flags() == RENAME_FLAG_NOREPLACE;
  if (req.flags() != RENAME_FLAG_PLAIN && !exchange && !noreplace) {
    return InvalidArgument(fmt::format("rename flags {}", static_cast<int>(req.flags())));
  }
  auto src_dir_r = LoadDir(ctx.txn, req.parent());
  GRANARY_TRY(src_dir_r);
  InodeRecord src_dir_rec = std::move(*src_dir_r);
  InodeRecord dst_dir_rec;
  const bool same_dir = req.parent() == req.new_parent();
  if (!same_dir) {
    auto dst_dir_r = LoadDir(ctx.txn, req.new_parent());
    GRANARY_TRY(dst_dir_r);
    dst_dir_rec = std::move(*dst_dir_r);
  }
  InodeRecord& sdir = src_dir_rec;
  InodeRecord& ddir = same_dir ? src_dir_rec : dst_dir_rec;
  if (sdir.attr().volume_id() != ddir.attr().volume_id()) {
    return Status(Code::CROSS_VOLUME,
                  fmt::format("rename from volume {} to volume {}", sdir.attr().volume_id(),
                              ddir.attr().volume_id()));
  }
  auto src = LoadDentry(ctx.txn, req.parent(), req.name());
  GRANARY_TRY(src);
  if (!*src) return NotFound(fmt::format("'{}' in directory {}", req.name(), req.parent()));
  auto dst = LoadDentry(ctx.txn, req.new_parent(), req.new_name());
  GRANARY_TRY(dst);
  if (exchange && !*dst) {
    return NotFound(
        fmt::format("exchange target '{}' in directory {}", req.new_name(), req.new_parent()));
  }
  if (noreplace && *dst) {
    return AlreadyExists(fmt::format("'{}' in directory {}", req.new_name(), req.new_parent()));
  }
  auto src_rec = LoadInode(ctx.txn, (*src)->ino());
  GRANARY_TRY(src_rec);
  if (*dst && (*dst)->ino() == (*src)->ino()) {  // same file: POSIX says do nothing
    *reply->mutable_rename()->mutable_moved() = src_rec->attr();
    return Status::Ok();
  }
  const bool src_is_dir = (*src)->type() == DIRECTORY;
  if (src_is_dir && !same_dir) GRANARY_TRY(CheckNotBelow(ctx.txn, req.new_parent(), (*src)->ino()));
  auto volume = LoadVolume(ctx.txn, sdir.attr().volume_id());
  GRANARY_TRY(volume);

  if (exchange) {
    auto dst_rec = LoadInode(ctx.txn, (*dst)->ino());
    GRANARY_TRY(dst_rec);
    const bool dst_is_dir = (*dst)->type() == DIRECTORY;
    if (dst_is_dir && !same_dir) GRANARY_TRY(CheckNotBelow(ctx.txn, req.parent(), (*dst)->ino()));
    SaveDentry(ctx.txn, req.parent(), req.name(), (*dst)->ino(), (*dst)->type());
    SaveDentry(ctx.txn, req.new_parent(), req.new_name(), (*src)->ino(), (*src)->type());
    int sdelta = 0, ddelta = 0;
    if (!same_dir) {
      if (src_is_dir) --sdelta, ++ddelta;
      if (dst_is_dir) ++sdelta, --ddelta;
      if (src_is_dir) src_rec->mutable_attr()->set_parent(req.new_parent());
      if (dst_is_dir) dst_rec->mutable_attr()->set_parent(req.parent());
    }
    *src_rec->mutable_attr()->mutable_ctime() = ctx.Now();
    *dst_rec->mutable_attr()->mutable_ctime() = ctx.Now();
    SaveInode(ctx.txn, *src_rec);
    SaveInode(ctx.txn, *dst_rec);
    Touch(ctx, sdir, sdelta);
    if (!same_dir) Touch(ctx, ddir, ddelta);
    SaveInode(ctx.txn, sdir);
    if (!same_dir) SaveInode(ctx.txn, ddir);
    RenameReply& r = *reply->mutable_rename();
    *r.mutable_moved() = src_rec->attr();
    r.set_replaced_ino((*dst)->ino());
    return Status::Ok();
  }

  int sdelta = 0, ddelta = 0;
  uint64_t replaced = 0;
  if (*dst) {
    auto dst_rec = LoadInode(ctx.txn, (*dst)->ino());
    GRANARY_TRY(dst_rec);
    const bool dst_is_dir = (*dst)->type() == DIRECTORY;
    if (src_is_dir && !dst_is_dir) {
      return Status(Code::NOT_DIRECTORY,
                    fmt::format("rename directory over non-directory '{}'", req.new_name()));
    }
    if (!src_is_dir && dst_is_dir) {
      return Status(Code::IS_DIRECTORY,
                    fmt::format("rename non-directory over directory '{}'", req.new_name()));
    }
    if (dst_is_dir) {
      auto empty = DirIsEmpty(ctx.txn, (*dst)->ino());
      GRANARY_TRY(empty);
      if (!*empty) return Status(Code::NOT_EMPTY, fmt::format("directory '{}'", req.new_name()));
      --ddelta;
    }
    replaced = (*dst)->ino();
    GRANARY_TRY(DropLink(ctx, *dst_rec, *volume));
  }
  ctx.txn.Delete(Cf::kDentries, DentryKey(req.parent(), req.name()));
  SaveDentry(ctx.txn, req.new_parent(), req.new_name(), (*src)->ino(), (*src)->type());
  if (src_is_dir && !same_dir) {
    --sdelta;
    ++ddelta;
    src_rec->mutable_attr()->set_parent(req.new_parent());
  }
  *src_rec->mutable_attr()->mutable_ctime() = ctx.Now();
  SaveInode(ctx.txn, *src_rec);
  if (same_dir) {
    Touch(ctx, sdir, sdelta + ddelta);
    SaveInode(ctx.txn, sdir);
  } else {
    Touch(ctx, sdir, sdelta);
    Touch(ctx, ddir, ddelta);
    SaveInode(ctx.txn, sdir);
    SaveInode(ctx.txn, ddir);
  }
  SaveVolume(ctx.txn, *volume);
  RenameReply& r = *reply->mutable_rename();
  *r.mutable_moved() = src_rec->attr();
  r.set_replaced_ino(replaced);
  return Status::Ok();
}

}  // namespace granary::metanode
