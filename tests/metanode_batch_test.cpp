// Two namespace calls of issue 24 against a real `granary metanode`: Batch (several mutations in
// one call, each answered on its own and deduplicated on retry) and Changes (the feed a mount
// follows to keep its cache coherent).
#include <gtest/gtest.h>

#include <future>

#include "client/meta_client.h"
#include "tests/harness/process.h"

namespace granary {
namespace {

using testing::Process;
using testing::TempDir;
using namespace std::chrono_literals;

class MetanodeBatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    node_ = std::make_unique<Process>(
        std::vector<std::string>{testing::GranaryBinary(), "metanode", "--data", dir_.str(),
                                 "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"});
    auto m = node_->WaitForLine(R"(listening meta=(\S+) admin=(\S+))", 30s);
    ASSERT_TRUE(m) << node_->Output();
    meta_ = (*m)[1];
  }
  std::unique_ptr<client::MetaClient> Client() {
    client::MetaClientOptions o;
    o.address = meta_;
    o.keep_alive = false;
    auto c = client::MetaClient::Connect(o);
    EXPECT_TRUE(c.ok());
    return std::move(*c);
  }
  TempDir dir_;
  std::unique_ptr<Process> node_;
  std::string meta_;
};

TEST_F(MetanodeBatchTest, EachOperationOfABatchIsAnsweredOnItsOwnAndARetryGetsTheSameAnswers) {
  auto c = Client();
  auto volume = c->VolumeCreate("v");
  ASSERT_TRUE(volume.ok()) << volume.status().ToString();
  const uint64_t root = volume->root_ino();
  BatchRequest req;
  for (const char* name : {"a", "b", "a"}) {
    CreateRequest* r = req.add_ops()->mutable_create();
    r->set_parent(root);
    r->set_name(name);
    r->set_mode(0644);
    r->set_exclusive(true);
  }
  req.add_ops();  // empty
  UnlinkRequest* u = req.add_ops()->mutable_unlink();
  u->set_parent(root);
  u->set_name("b");
  // Ids filled in by the client; kept so the retry below is the same batch.
  for (BatchOp& op : *req.mutable_ops()) {
    if (op.has_create()) *op.mutable_create()->mutable_op() = c->NextOpId();
    if (op.has_unlink()) *op.mutable_unlink()->mutable_op() = c->NextOpId();
  }
  auto first = c->Batch(req);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_EQ(first->results_size(), 5);
  EXPECT_EQ(first->results(0).code(), Code::OK);
  EXPECT_EQ(first->results(1).code(), Code::OK);
  EXPECT_EQ(first->results(2).code(), Code::ALREADY_EXISTS) << first->results(2).message();
  EXPECT_EQ(first->results(3).code(), Code::INVALID_ARGUMENT);
  EXPECT_EQ(first->results(4).code(), Code::OK);  // applied in order: b existed
  const uint64_t a_ino = first->results(0).attr().ino();
  EXPECT_NE(a_ino, 0u);
  // The reply was lost, say: the same batch again changes nothing and answers the same.
  auto again = c->Batch(req);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->results(0).code(), Code::OK);
  EXPECT_EQ(again->results(0).attr().ino(), a_ino);
  EXPECT_EQ(again->results(2).code(), Code::ALREADY_EXISTS);
  EXPECT_EQ(again->results(4).code(), Code::OK);
  auto listed = c->ReadDir(root);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->entries_size(), 1);
  EXPECT_EQ(listed->entries(0).name(), "a");
  // Too many operations: the call as a whole is refused, nothing applied.
  BatchRequest big;
  for (int i = 0; i < 1025; ++i) {
    CreateRequest* r = big.add_ops()->mutable_create();
    r->set_parent(root);
    r->set_name("n" + std::to_string(i));
  }
  auto refused = c->Batch(big);
  EXPECT_EQ(refused.status().code(), Code::INVALID_ARGUMENT) << refused.status().ToString();
  EXPECT_EQ(c->ReadDir(root)->entries_size(), 1);
}

TEST_F(MetanodeBatchTest, AFollowerOfTheFeedIsToldOfAnotherClientsChangesNotOfItsOwn) {
  auto watcher = Client();
  auto writer = Client();
  auto volume = writer->VolumeCreate("v");
  ASSERT_TRUE(volume.ok());
  const uint64_t root = volume->root_ino();
  ChangesRequest req;
  auto start = watcher->Changes(req);
  ASSERT_TRUE(start.ok()) << start.status().ToString();
  EXPECT_TRUE(start->reset());
  req.set_epoch(start->epoch());
  req.set_since(start->next());
  // The watcher's own create is not reported; the writer's is, to a poll already waiting.
  ASSERT_TRUE(watcher->Create(root, "mine").ok());
  req.set_timeout_ms(10000);
  auto waiting = std::async(std::launch::async, [&] { return watcher->Changes(req); });
  EXPECT_EQ(waiting.wait_for(300ms), std::future_status::timeout);
  auto theirs = writer->Create(root, "theirs");
  ASSERT_TRUE(theirs.ok());
  ASSERT_EQ(waiting.wait_for(10s), std::future_status::ready);
  auto got = waiting.get();
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_FALSE(got->reset());
  bool name = false, inode = false;
  for (const Change& ch : got->changes()) {
    EXPECT_NE(ch.name(), "mine");
    name |= ch.parent() == root && ch.name() == "theirs";
    inode |= ch.ino() == theirs->ino();
  }
  EXPECT_TRUE(name);
  EXPECT_TRUE(inode);
}

}  // namespace
}  // namespace granary
