#include "common/frame.h"

#include <gtest/gtest.h>

#include <cstring>

#include "granary/data.pb.h"

namespace granary {
namespace {

std::string EncodeRequest(uint64_t id, const std::string& payload) {
  DataRequest req;
  req.set_op(DataOp::WRITE_BLOCK);
  req.set_request_id(id);
  req.mutable_block()->set_slice_id(42);
  return EncodeFramePrefix(req.SerializeAsString(), payload.size()) + payload;
}

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(FrameTest, RoundTripsHeaderAndAlignedPayload) {
  std::string wire = EncodeRequest(7, "payload bytes");
  FrameReader reader;
  auto consumed = reader.Feed(Bytes(wire));
  ASSERT_TRUE(consumed.ok());
  EXPECT_EQ(*consumed, wire.size());
  ASSERT_TRUE(reader.HasFrame());
  Frame f = reader.TakeFrame();
  DataRequest req;
  ASSERT_TRUE(req.ParseFromString(f.proto_header));
  EXPECT_EQ(req.request_id(), 7u);
  EXPECT_EQ(req.block().slice_id(), 42u);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(f.payload.data()), f.payload.size()),
            "payload bytes");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(f.payload.data()) % kPageSize, 0u);
  EXPECT_TRUE(reader.AtFrameBoundary());
}

TEST(FrameTest, AssemblesFramesFromOneByteReads) {
  std::string wire = EncodeRequest(1, std::string(5000, 'a')) + EncodeRequest(2, "");
  FrameReader reader;
  std::vector<uint64_t> ids;
  for (char c : wire) {
    auto span = reader.WritableSpan();
    ASSERT_FALSE(span.empty());
    span[0] = static_cast<uint8_t>(c);
    ASSERT_TRUE(reader.Commit(1).ok());
    if (reader.HasFrame()) {
      DataRequest req;
      ASSERT_TRUE(req.ParseFromString(reader.TakeFrame().proto_header));
      ids.push_back(req.request_id());
    }
  }
  EXPECT_EQ(ids, (std::vector<uint64_t>{1, 2}));
}

TEST(FrameTest, BadMagicIsAStickyInvalidArgument) {
  std::string wire = EncodeRequest(1, "x");
  wire[0] = 'X';
  FrameReader reader;
  auto r = reader.Feed(Bytes(wire));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::INVALID_ARGUMENT);
  EXPECT_NE(r.status().message().find("bad magic"), std::string::npos);
  EXPECT_FALSE(reader.Feed(Bytes(EncodeRequest(2, "y"))).ok());
}

TEST(FrameTest, RejectsWrongVersionAndOversizedLengths) {
  FrameHeader h;
  h.header_len = 4;
  auto fixed = EncodeFixedHeader(h);
  fixed[5] = 9;  // version 9
  auto r = DecodeFixedHeader(fixed);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("unsupported version 9"), std::string::npos);

  h.payload_len = kMaxFramePayloadLen + 1;
  r = DecodeFixedHeader(EncodeFixedHeader(h));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("payload length"), std::string::npos);

  h.payload_len = 0;
  h.header_len = 0;
  r = DecodeFixedHeader(EncodeFixedHeader(h));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("header length 0"), std::string::npos);

  h.header_len = kMaxFrameHeaderLen + 1;
  EXPECT_FALSE(DecodeFixedHeader(EncodeFixedHeader(h)).ok());
}

TEST(FrameTest, ShortFixedHeaderIsRejected) {
  std::array<uint8_t, 10> few{};
  EXPECT_EQ(DecodeFixedHeader(few).status().code(), Code::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace granary
