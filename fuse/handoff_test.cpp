// The handoff wire format and FUSE notification bytes without a kernel mount (the mount itself
// is covered by tests/fuse_survival_test.cpp).
#include "fuse/handoff.h"

#include <gtest/gtest.h>
#include <linux/fuse.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace granary::fuse {
namespace {

struct Pair {
  int a = -1, b = -1;
  Pair() {
    int sv[2];
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    a = sv[0];
    b = sv[1];
  }
  ~Pair() {
    if (a >= 0) close(a);
    if (b >= 0) close(b);
  }
};

TEST(HandoffTest, StateAndDescriptorArriveIntact) {
  Pair s;
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  HandoffState sent;
  sent.init = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  sent.generation = 41;
  sent.what = "vol/sub/dir";
  ASSERT_TRUE(SendState(s.a, pipe_fds[1], sent).ok());

  int got_fd = -1;
  HandoffState got;
  Status st = ReceiveState(s.b, &got_fd, &got, 1000);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(got.init, sent.init);
  EXPECT_EQ(got.generation, 41u);
  EXPECT_EQ(got.what, "vol/sub/dir");
  // A new descriptor of the same open file: what is written through it comes out of the pipe.
  ASSERT_GE(got_fd, 0);
  EXPECT_NE(got_fd, pipe_fds[1]);
  ASSERT_EQ(write(got_fd, "x", 1), 1);
  char c = 0;
  ASSERT_EQ(read(pipe_fds[0], &c, 1), 1);
  EXPECT_EQ(c, 'x');
  close(got_fd);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
}

TEST(HandoffTest, GarbageSilenceAndClosedPeersAreRefusedWithTheirCodes) {
  {
    Pair s;
    char junk[24] = "not a handoff header!!";
    ASSERT_EQ(write(s.a, junk, sizeof(junk)), static_cast<ssize_t>(sizeof(junk)));
    int fd = -1;
    HandoffState got;
    Status st = ReceiveState(s.b, &fd, &got, 1000);
    EXPECT_EQ(st.code(), Code::INVALID_ARGUMENT) << st.ToString();
    EXPECT_EQ(fd, -1);
  }
  {
    Pair s;
    int fd = -1;
    HandoffState got;
    EXPECT_EQ(ReceiveState(s.b, &fd, &got, 50).code(), Code::UNAVAILABLE);  // silent peer
    close(s.a);
    s.a = -1;
    EXPECT_EQ(ReceiveState(s.b, &fd, &got, 1000).code(), Code::UNAVAILABLE);  // closed peer
  }
}

TEST(HandoffTest, ReplayRefusesAnythingButASavedInit) {
  EXPECT_EQ(ReplayInit(nullptr, {}).code(), Code::INVALID_ARGUMENT);
  std::vector<uint8_t> lookup(sizeof(fuse_in_header) + 8, 0);
  fuse_in_header h{};
  h.len = static_cast<uint32_t>(lookup.size());
  h.opcode = FUSE_LOOKUP;
  std::memcpy(lookup.data(), &h, sizeof(h));
  EXPECT_EQ(ReplayInit(nullptr, lookup).code(), Code::INVALID_ARGUMENT);
}

TEST(HandoffTest, NotifyResendIsAHeaderWithCodeSevenAndNoRequestId) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  ASSERT_TRUE(NotifyResend(p[1]).ok());
  fuse_out_header out{};
  ASSERT_EQ(read(p[0], &out, sizeof(out)), static_cast<ssize_t>(sizeof(out)));
  EXPECT_EQ(out.len, sizeof(out));
  EXPECT_EQ(out.error, 7);
  EXPECT_EQ(out.unique, 0u);
  close(p[0]);
  close(p[1]);
}

}  // namespace
}  // namespace granary::fuse
