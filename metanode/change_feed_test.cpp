// The change feed (change_feed.h): what applied operations wrote, numbered by apply position,
// served to long-polling clients without their own changes; and a client that cannot be told
// everything since its last position is told to reset.
#include "metanode/change_feed.h"

#include <future>

#include "metanode/test_util.h"

namespace granary::metanode {
namespace {

FeedChange Name(uint64_t client, uint64_t parent, const std::string& name) {
  FeedChange c;
  c.client = client;
  c.change.set_parent(parent);
  c.change.set_name(name);
  return c;
}

ChangesReply PollNow(ChangeFeed& feed, const ChangesRequest& req) {
  std::promise<ChangesReply> p;
  feed.Poll(req, [&](ChangesReply r) { p.set_value(std::move(r)); });
  return p.get_future().get();
}

TEST(ChangeFeedTest, ClientsGetOthersChangesInOrderAndResetWhenTheyCannotBeToldEverything) {
  ChangeFeed feed;
  feed.Start(/*epoch=*/7, /*position=*/10);
  ChangesRequest req;
  // First call: epoch 0 is nobody's; the client learns where the stream is.
  ChangesReply first = PollNow(feed, req);
  EXPECT_TRUE(first.reset());
  EXPECT_EQ(first.epoch(), 7u);
  feed.Append(10, {Name(1, 5, "a"), Name(2, 5, "b")});
  feed.Append(11, {Name(1, 5, "c")});
  req.set_epoch(7);
  req.set_since(first.next());
  req.set_client_id(1);  // its own changes (a, c) are left out
  ChangesReply r = PollNow(feed, req);
  EXPECT_FALSE(r.reset());
  ASSERT_EQ(r.changes_size(), 1);
  EXPECT_EQ(r.changes(0).name(), "b");
  // Nothing new: a poll without waiting answers empty at the same position.
  req.set_since(r.next());
  ChangesReply idle = PollNow(feed, req);
  EXPECT_EQ(idle.changes_size(), 0);
  EXPECT_EQ(idle.next(), r.next());
  // Another numbering (a member of another run), or a position before what is kept: reset.
  req.set_epoch(8);
  EXPECT_TRUE(PollNow(feed, req).reset());
  req.set_epoch(7);
  req.set_since(1);
  EXPECT_TRUE(PollNow(feed, req).reset());
}

TEST(ChangeFeedTest, AWaitingPollIsAnsweredByTheNextChangeOfAnotherClientOrItsTimeout) {
  ChangeFeed feed;
  feed.Start(3, 1);
  ChangesRequest req;
  req.set_epoch(3);
  req.set_since(PollNow(feed, req).next());
  req.set_client_id(1);
  req.set_timeout_ms(10000);
  std::promise<ChangesReply> p;
  feed.Poll(req, [&](ChangesReply r) { p.set_value(std::move(r)); });
  auto answered = p.get_future();
  feed.Append(1, {Name(1, 9, "own")});  // its own: still waiting
  EXPECT_EQ(answered.wait_for(std::chrono::milliseconds(100)), std::future_status::timeout);
  feed.Append(2, {Name(2, 9, "theirs")});
  ASSERT_EQ(answered.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  ChangesReply r = answered.get();
  ASSERT_EQ(r.changes_size(), 1);
  EXPECT_EQ(r.changes(0).name(), "theirs");
  // A poll with nothing to say ends at its timeout, empty.
  req.set_since(r.next());
  req.set_timeout_ms(200);
  const auto start = std::chrono::steady_clock::now();
  ChangesReply empty = PollNow(feed, req);
  EXPECT_EQ(empty.changes_size(), 0);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(150));
}

TEST(ChangeFeedTest, AClientTooFarBehindIsToldToReset) {
  ChangeFeed feed;
  feed.Start(5, 1);
  ChangesRequest req;
  req.set_epoch(5);
  req.set_since(PollNow(feed, req).next());
  std::vector<FeedChange> many;
  for (size_t i = 0; i < ChangeFeed::kCapacity + 10; ++i) many.push_back(Name(2, 1, "n"));
  feed.Append(1, std::move(many));
  EXPECT_TRUE(PollNow(feed, req).reset());
}

template <typename Kind>
class ChangeFeedApplyTest : public MetaTest<Kind> {};
TYPED_TEST_SUITE(ChangeFeedApplyTest, StoreKinds);

// What an operation wrote reaches the feed once applied; a failed operation writes nothing.
TYPED_TEST(ChangeFeedApplyTest, AppliedOperationsReportTheNamesAndInodesTheyWrote) {
  ChangeFeed& feed = this->core_->changes();
  ChangesRequest req;
  req.set_since(PollNow(feed, req).next());
  req.set_epoch(PollNow(feed, req).epoch());
  auto dir = this->Mkdir(this->root_, "d");
  ASSERT_OK(dir);
  ChangesReply r = PollNow(feed, req);
  ASSERT_FALSE(r.reset());
  bool name = false, parent = false;
  for (const Change& c : r.changes()) {
    name |= c.parent() == this->root_ && c.name() == "d";
    parent |= c.ino() == this->root_;  // the parent's mtime and link count
  }
  EXPECT_TRUE(name);
  EXPECT_TRUE(parent);
  // The same name again fails: nothing new in the feed.
  req.set_since(r.next());
  EXPECT_FALSE(StatusOf(this->Mkdir(this->root_, "d")).ok());
  EXPECT_EQ(PollNow(feed, req).changes_size(), 0);
  // A client's own operations are left out of its polls.
  req.set_client_id(77);  // MetaTest's operations carry client id 77
  ASSERT_OK(this->Mkdir(this->root_, "e"));
  EXPECT_EQ(PollNow(feed, req).changes_size(), 0);
}

}  // namespace
}  // namespace granary::metanode
