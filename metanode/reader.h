// Read-only queries. Each runs on a Txn snapshot of committed state, so a multi-record answer
// (readdir plus attributes, a read map with its attributes) is consistent.
#pragma once

#include "granary/meta.pb.h"
#include "metanode/records.pb.h"
#include "metanode/store.h"

namespace granary::metanode {

Result<InodeAttr> QueryLookup(Txn& txn, uint64_t parent, const std::string& name);
Result<InodeAttr> QueryGetAttr(Txn& txn, uint64_t ino);
Result<ReadDirReply> QueryReadDir(Txn& txn, const ReadDirRequest& req);
Result<std::string> QueryReadLink(Txn& txn, uint64_t ino);
Result<std::string> QueryGetXattr(Txn& txn, uint64_t ino, const std::string& name);
Result<ListXattrReply> QueryListXattr(Txn& txn, uint64_t ino);
Result<StatFsReply> QueryStatFs(Txn& txn, uint64_t ino);
Result<ReadMapReply> QueryReadMap(Txn& txn, const ReadMapRequest& req);

Result<Volume> QueryVolume(Txn& txn, const VolumeGetRequest& req);
Result<VolumeListReply> QueryVolumes(Txn& txn);
// The snapshots of `req.volume()` (all when empty), each with its exclusive bytes (slices nothing
// else references), which takes a walk of its namespace.
Result<VolumeListReply> QuerySnapshots(Txn& txn, const SnapshotListRequest& req);
Result<PoolListReply> QueryPools(Txn& txn);
Result<Bucket> QueryBucket(Txn& txn, const std::string& name);
Result<BucketListReply> QueryBuckets(Txn& txn);
Result<KeyRecord> QueryKey(Txn& txn, const std::string& access_key);
Result<KeyListReply> QueryKeys(Txn& txn);  // without secrets
Result<std::vector<NodeInfo>> QueryNodes(Txn& txn);
Result<ClusterRecord> QueryCluster(Txn& txn);

}  // namespace granary::metanode
