// Throughput of each x-amz-checksum-* digest as the gateway runs it (1 MiB updates, the size of
// its receive buffer) over one buffer, beside memcpy of the same buffer (the memory limit) and
// MD5 (what every PUT already pays for its ETag). One JSON line per figure:
//   build/bench/s3_checksum_bench [MiB]   (default 256)
#include <fmt/format.h>
#include <openssl/evp.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

#include "s3/checksum.h"

namespace {

using granary::s3::ChecksumAlgorithm;

double BestGBps(size_t bytes, const std::function<void()>& run) {
  double best = 0;
  for (int i = 0; i < 3; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    run();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, bytes / s / 1e9);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const size_t mib = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 256;
  const size_t size = mib << 20, step = 1 << 20;
  std::vector<uint8_t> buf(size), dst(size);
  for (size_t i = 0; i < size; ++i) buf[i] = static_cast<uint8_t>(i * 2654435761u >> 13);
  volatile uint8_t sink = 0;
  const double memcpy_gbps = BestGBps(size, [&] {
    for (size_t off = 0; off < size; off += step)
      std::memcpy(dst.data() + off, buf.data() + off, step);
    sink = sink + dst[size / 2];
  });
  const double md5_gbps = BestGBps(size, [&] {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_md5(), nullptr);
    for (size_t off = 0; off < size; off += step) EVP_DigestUpdate(ctx, buf.data() + off, step);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    sink = sink + md[0];
  });
  fmt::print("{{\"figure\":\"memcpy\",\"mib\":{},\"gbps\":{:.2f}}}\n", mib, memcpy_gbps);
  fmt::print("{{\"figure\":\"md5\",\"mib\":{},\"gbps\":{:.2f},\"vs_memcpy\":{:.3f}}}\n", mib,
             md5_gbps, md5_gbps / memcpy_gbps);
  for (auto a :
       {ChecksumAlgorithm::kCrc32, ChecksumAlgorithm::kCrc32c, ChecksumAlgorithm::kCrc64Nvme,
        ChecksumAlgorithm::kSha1, ChecksumAlgorithm::kSha256}) {
    const double gbps = BestGBps(size, [&] {
      granary::s3::Checksummer c(a);
      for (size_t off = 0; off < size; off += step) c.Update(buf.data() + off, step);
      sink = sink + static_cast<uint8_t>(c.Final()[0]);
    });
    fmt::print(
        "{{\"figure\":\"checksum\",\"algorithm\":\"{}\",\"mib\":{},\"gbps\":{:.2f},"
        "\"vs_memcpy\":{:.3f},\"vs_md5\":{:.2f}}}\n",
        granary::s3::AlgorithmName(a), mib, gbps, gbps / memcpy_gbps, gbps / md5_gbps);
  }
  return 0;
}
