// Feeds arbitrary bytes to the frame reader in arbitrary chunkings, then parses each frame's
// protobuf header as a DataRequest: nothing may crash, hang or read out of bounds.
#include <cstddef>
#include <cstdint>

#include "common/frame.h"
#include "granary/data.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks the chunk size, so partial reads are exercised too.
  size_t chunk = 1 + data[0] % 64;
  granary::FrameReader reader;
  size_t pos = 1;
  int frames = 0;
  while (pos < size && frames < 16) {
    size_t n = std::min(chunk, size - pos);
    auto consumed = reader.Feed({data + pos, n});
    if (!consumed.ok()) return 0;
    pos += *consumed;
    if (reader.HasFrame()) {
      granary::Frame frame = reader.TakeFrame();
      granary::DataRequest request;
      (void)request.ParseFromString(frame.proto_header);
      ++frames;
    }
  }
  return 0;
}
