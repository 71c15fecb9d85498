// CSI snapshots and clones (issue 25) over the plugin's unix socket, as the csi-snapshotter and
// csi-provisioner sidecars call them: CreateSnapshot / DeleteSnapshot / ListSnapshots (pages,
// filters) and CreateVolume with a content source, with the codes the CSI spec names.
#include <set>

#include "client/granary.h"
#include "client/meta_client.h"
#include "tests/csi_support.h"

namespace granary::testing {
namespace {

using grpc::StatusCode;

class CsiSnapshotTest : public CsiFixture {
 protected:
  grpc::Status Snap(const std::string& name, const std::string& source,
                    v1::CreateSnapshotResponse* reply) {
    v1::CreateSnapshotRequest req;
    req.set_name(name);
    req.set_source_volume_id(source);
    return Call(*controller_, &v1::Controller::Stub::CreateSnapshot, req, reply);
  }
  grpc::Status DeleteSnap(const std::string& id) {
    v1::DeleteSnapshotRequest req;
    req.set_snapshot_id(id);
    v1::DeleteSnapshotResponse reply;
    return Call(*controller_, &v1::Controller::Stub::DeleteSnapshot, req, &reply);
  }
  grpc::Status List(const v1::ListSnapshotsRequest& req, v1::ListSnapshotsResponse* reply) {
    return Call(*controller_, &v1::Controller::Stub::ListSnapshots, req, reply);
  }
  std::unique_ptr<client::Client> Client() {
    client::ClientOptions o;
    o.meta = cluster_->meta_address();
    auto c = client::Client::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return std::move(*c);
  }
};

TEST_F(CsiSnapshotTest, SnapshotsListPagesFiltersAndRestoreIntoVolumes) {
  constexpr int64_t kMiB = 1 << 20;
  v1::CreateVolumeResponse src;
  ASSERT_TRUE(Create(CreateReq("pvc-src", 64 * kMiB), &src).ok());
  auto c = Client();
  const std::vector<uint8_t> data(3 << 20, 0x5a);
  {
    auto f = c->Open("pvc-src", "model.bin", {.create = true});
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    ASSERT_TRUE((*f)->Pwrite(data, 0).ok());
    ASSERT_TRUE((*f)->Close().ok());
  }

  v1::CreateSnapshotResponse snap, again;
  auto st = Snap("snapshot-1", "pvc-src", &snap);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(snap.snapshot().snapshot_id(), "pvc-src@snapshot-1");
  EXPECT_EQ(snap.snapshot().source_volume_id(), "pvc-src");
  EXPECT_TRUE(snap.snapshot().ready_to_use());
  EXPECT_EQ(snap.snapshot().size_bytes(), static_cast<int64_t>(data.size()));
  EXPECT_GT(snap.snapshot().creation_time().seconds(), 0);
  // Idempotent: the same name and source answers the same snapshot.
  ASSERT_TRUE(Snap("snapshot-1", "pvc-src", &again).ok());
  EXPECT_EQ(again.snapshot().snapshot_id(), snap.snapshot().snapshot_id());
  EXPECT_EQ(again.snapshot().creation_time().seconds(), snap.snapshot().creation_time().seconds());

  // Errors the spec names.
  v1::CreateVolumeResponse other;
  ASSERT_TRUE(Create(CreateReq("pvc-other"), &other).ok());
  EXPECT_EQ(Snap("snapshot-1", "pvc-other", &again).error_code(), StatusCode::ALREADY_EXISTS)
      << "a name is unique across sources";
  EXPECT_EQ(Snap("snapshot-2", "pvc-missing", &again).error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(Snap("", "pvc-src", &again).error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Snap("snapshot-2", "", &again).error_code(), StatusCode::INVALID_ARGUMENT);
  ASSERT_TRUE(Snap("snapshot-2", "pvc-src", &again).ok());
  ASSERT_TRUE(Snap("snapshot-3", "pvc-other", &again).ok());

  // List: everything, by page of one, by id, by source.
  v1::ListSnapshotsRequest lreq;
  v1::ListSnapshotsResponse lrep;
  ASSERT_TRUE(List(lreq, &lrep).ok());
  EXPECT_EQ(lrep.entries_size(), 3);
  std::set<std::string> paged;
  lreq.set_max_entries(1);
  for (int pages = 0; pages < 5; ++pages) {
    lrep.Clear();
    ASSERT_TRUE(List(lreq, &lrep).ok());
    for (const auto& e : lrep.entries()) paged.insert(e.snapshot().snapshot_id());
    if (lrep.next_token().empty()) break;
    lreq.set_starting_token(lrep.next_token());
  }
  EXPECT_EQ(paged, (std::set<std::string>{"pvc-other@snapshot-3", "pvc-src@snapshot-1",
                                          "pvc-src@snapshot-2"}));
  lreq.Clear();
  lreq.set_starting_token("garbage");
  EXPECT_EQ(List(lreq, &lrep).error_code(), StatusCode::ABORTED);
  lreq.Clear();
  lreq.set_snapshot_id("pvc-src@snapshot-2");
  lrep.Clear();
  ASSERT_TRUE(List(lreq, &lrep).ok());
  ASSERT_EQ(lrep.entries_size(), 1);
  EXPECT_EQ(lrep.entries(0).snapshot().source_volume_id(), "pvc-src");
  lreq.Clear();
  lreq.set_source_volume_id("pvc-other");
  lrep.Clear();
  ASSERT_TRUE(List(lreq, &lrep).ok());
  ASSERT_EQ(lrep.entries_size(), 1);
  EXPECT_EQ(lrep.entries(0).snapshot().snapshot_id(), "pvc-other@snapshot-3");
  lreq.Clear();
  lreq.set_snapshot_id("pvc-src@nope");
  lrep.Clear();
  ASSERT_TRUE(List(lreq, &lrep).ok()) << "an unknown id is an empty list, not an error";
  EXPECT_EQ(lrep.entries_size(), 0);

  // The live volume moves on after the snapshot.
  {
    auto f = c->Open("pvc-src", "model.bin", {.truncate = true});
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE((*f)->Close().ok());
  }

  // A volume from the snapshot holds the snapshot's bytes, and echoes its content source.
  auto restore = CreateReq("pvc-restored", 64 * kMiB);
  restore.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id(
      "pvc-src@snapshot-1");
  v1::CreateVolumeResponse restored;
  st = Create(restore, &restored);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(restored.volume().content_source().snapshot().snapshot_id(), "pvc-src@snapshot-1");
  EXPECT_EQ(restored.volume().capacity_bytes(), 64 * kMiB);
  {
    auto f = c->Open("pvc-restored", "model.bin");
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    std::vector<uint8_t> got(data.size());
    auto n = (*f)->Pread(got, 0);
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(*n, data.size());
    EXPECT_TRUE(got == data);
  }
  ASSERT_TRUE(Create(restore, &restored).ok()) << "idempotent";
  // A clone of a live volume.
  auto clone = CreateReq("pvc-clone", 64 * kMiB);
  clone.mutable_volume_content_source()->mutable_volume()->set_volume_id("pvc-other");
  ASSERT_TRUE(Create(clone, &restored).ok());
  EXPECT_EQ(restored.volume().content_source().volume().volume_id(), "pvc-other");

  // Source errors: missing (NOT_FOUND), smaller than the source (OUT_OF_RANGE), a snapshot id
  // given as a volume (NOT_FOUND), a pool that is not the source's (INVALID_ARGUMENT).
  auto bad = CreateReq("pvc-bad");
  bad.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id("pvc-src@missing");
  EXPECT_EQ(Create(bad, &restored).error_code(), StatusCode::NOT_FOUND);
  bad = CreateReq("pvc-bad");
  bad.mutable_volume_content_source()->mutable_volume()->set_volume_id("pvc-missing");
  EXPECT_EQ(Create(bad, &restored).error_code(), StatusCode::NOT_FOUND);
  bad = CreateReq("pvc-bad");
  bad.mutable_volume_content_source()->mutable_volume()->set_volume_id("pvc-src@snapshot-1");
  EXPECT_EQ(Create(bad, &restored).error_code(), StatusCode::NOT_FOUND);
  bad = CreateReq("pvc-bad", kMiB);
  bad.mutable_capacity_range()->set_limit_bytes(kMiB);
  bad.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id("pvc-src@snapshot-1");
  EXPECT_EQ(Create(bad, &restored).error_code(), StatusCode::OUT_OF_RANGE);
  ASSERT_TRUE((*client::MetaClient::Connect({cluster_->meta_address()}))
                  ->PoolCreate([] {
                    PoolSpec s;
                    s.set_name("other-pool");
                    s.set_redundancy(REPLICATED_POOL);
                    s.set_replicas(1);
                    return s;
                  }())
                  .ok());
  bad = CreateReq("pvc-bad");
  (*bad.mutable_parameters())["pool"] = "other-pool";
  bad.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id("pvc-src@snapshot-1");
  EXPECT_EQ(Create(bad, &restored).error_code(), StatusCode::INVALID_ARGUMENT);

  // Snapshots are not volumes: ListVolumes leaves them out.
  v1::ListVolumesResponse vols;
  ASSERT_TRUE(Call(*controller_, &v1::Controller::Stub::ListVolumes, {}, &vols).ok());
  for (const auto& e : vols.entries()) {
    EXPECT_EQ(e.volume().volume_id().find('@'), std::string::npos) << e.volume().volume_id();
  }

  // Delete: idempotent, a missing id is success; the restored volume outlives the snapshot.
  ASSERT_TRUE(DeleteSnap("pvc-src@snapshot-1").ok());
  ASSERT_TRUE(DeleteSnap("pvc-src@snapshot-1").ok());
  ASSERT_TRUE(DeleteSnap("never-existed").ok());
  EXPECT_EQ(DeleteSnap("").error_code(), StatusCode::INVALID_ARGUMENT);
  lreq.Clear();
  lrep.Clear();
  ASSERT_TRUE(List(lreq, &lrep).ok());
  EXPECT_EQ(lrep.entries_size(), 2);
  auto f = c->Open("pvc-restored", "model.bin");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ((*f)->size(), data.size());
}

}  // namespace
}  // namespace granary::testing
