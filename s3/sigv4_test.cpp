// SigV4 against AWS's published S3 examples (the "Signature Calculations for the Authorization
// Header" and "Query String" pages of the S3 API reference: access key AKIAIOSFODNN7EXAMPLE,
// secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY, bucket examplebucket, 20130524).
#include "s3/sigv4.h"

#include <gtest/gtest.h>

namespace granary::s3 {
namespace {

constexpr const char* kSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

std::string Sign(const CanonicalInput& in, const char* date) {
  std::string key = SigningKey(kSecret, "20130524", "us-east-1", "s3");
  return Hex(HmacSha256(
      key, StringToSign(date, "20130524/us-east-1/s3/aws4_request", CanonicalRequest(in))));
}

TEST(SigV4Test, GetObjectWithRangeMatchesAwsExample) {
  CanonicalInput in;
  in.method = "GET";
  in.path = "/test.txt";
  in.headers = {{"host", "examplebucket.s3.amazonaws.com"},
                {"range", "bytes=0-9"},
                {"x-amz-content-sha256", Sha256Hex("")},
                {"x-amz-date", "20130524T000000Z"}};
  in.signed_headers = {"host", "range", "x-amz-content-sha256", "x-amz-date"};
  in.payload_hash = Sha256Hex("");
  EXPECT_EQ(Sign(in, "20130524T000000Z"),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(SigV4Test, PutObjectMatchesAwsExample) {
  CanonicalInput in;
  in.method = "PUT";
  in.path = "/test$file.text";
  const std::string hash = Sha256Hex("Welcome to Amazon S3.");
  EXPECT_EQ(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
  in.headers = {{"date", "Fri, 24 May 2013 00:00:00 GMT"},
                {"host", "examplebucket.s3.amazonaws.com"},
                {"x-amz-content-sha256", hash},
                {"x-amz-date", "20130524T000000Z"},
                {"x-amz-storage-class", "REDUCED_REDUNDANCY"}};
  in.signed_headers = {"date", "host", "x-amz-content-sha256", "x-amz-date", "x-amz-storage-class"};
  in.payload_hash = hash;
  EXPECT_EQ(Sign(in, "20130524T000000Z"),
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
}

TEST(SigV4Test, ListObjectsQueryIsSortedAndEncoded) {
  CanonicalInput in;
  in.method = "GET";
  in.path = "/";
  in.query = {{"prefix", "J"}, {"max-keys", "2"}};
  in.headers = {{"host", "examplebucket.s3.amazonaws.com"},
                {"x-amz-content-sha256", Sha256Hex("")},
                {"x-amz-date", "20130524T000000Z"}};
  in.signed_headers = {"host", "x-amz-content-sha256", "x-amz-date"};
  in.payload_hash = Sha256Hex("");
  EXPECT_EQ(Sign(in, "20130524T000000Z"),
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(SigV4Test, PresignedUrlMatchesAwsExample) {
  CanonicalInput in;
  in.method = "GET";
  in.path = "/test.txt";
  in.query = {{"X-Amz-Algorithm", "AWS4-HMAC-SHA256"},
              {"X-Amz-Credential", "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"},
              {"X-Amz-Date", "20130524T000000Z"},
              {"X-Amz-Expires", "86400"},
              {"X-Amz-SignedHeaders", "host"}};
  in.headers = {{"host", "examplebucket.s3.amazonaws.com"}};
  in.signed_headers = {"host"};
  in.payload_hash = "UNSIGNED-PAYLOAD";
  EXPECT_EQ(Sign(in, "20130524T000000Z"),
            "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
}

TEST(SigV4Test, ChunkedUploadSeedAndChunkSignaturesMatchAwsExample) {
  // "Signature Calculations for the Authorization Header: Transferring Payload in Multiple
  // Chunks": 65 KiB of 'a' in a 64 KiB and a 1 KiB chunk.
  CanonicalInput in;
  in.method = "PUT";
  in.path = "/examplebucket/chunkObject.txt";
  in.headers = {{"content-encoding", "aws-chunked"},
                {"content-length", "66824"},
                {"host", "s3.amazonaws.com"},
                {"x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"},
                {"x-amz-date", "20130524T000000Z"},
                {"x-amz-decoded-content-length", "66560"},
                {"x-amz-storage-class", "REDUCED_REDUNDANCY"}};
  in.signed_headers = {"content-encoding",     "content-length", "host",
                       "x-amz-content-sha256", "x-amz-date",     "x-amz-decoded-content-length",
                       "x-amz-storage-class"};
  in.payload_hash = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
  std::string seed = Sign(in, "20130524T000000Z");
  EXPECT_EQ(seed, "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9");
  std::string key = SigningKey(kSecret, "20130524", "us-east-1", "s3");
  std::string scope = "20130524/us-east-1/s3/aws4_request";
  std::string c1 =
      ChunkSignature(key, "20130524T000000Z", scope, seed, Sha256Hex(std::string(65536, 'a')));
  EXPECT_EQ(c1, "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648");
  std::string c2 =
      ChunkSignature(key, "20130524T000000Z", scope, c1, Sha256Hex(std::string(1024, 'a')));
  EXPECT_EQ(c2, "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497");
  std::string c3 = ChunkSignature(key, "20130524T000000Z", scope, c2, Sha256Hex(""));
  EXPECT_EQ(c3, "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9");
}

TEST(SigV4Test, ParsesAuthorizationHeader) {
  auto h = ParseAuthorization(
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
      "SignedHeaders=host;range;x-amz-date, "
      "Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->credential.access_key, "AKIAIOSFODNN7EXAMPLE");
  EXPECT_EQ(h->credential.scope(), "20130524/us-east-1/s3/aws4_request");
  EXPECT_EQ(h->signed_headers.size(), 3u);
  EXPECT_FALSE(ParseAuthorization("AWS4-HMAC-SHA256 Credential=x"));
  EXPECT_FALSE(ParseAuthorization("AWS AKIA:sig"));
}

TEST(SigV4Test, UriEncodingFollowsAwsRules) {
  EXPECT_EQ(UriEncode("a b/c~d+e", true), "a%20b/c~d%2Be");
  EXPECT_EQ(UriEncode("a/b", false), "a%2Fb");
  EXPECT_EQ(*UriDecode("a%2Fb%20c"), "a/b c");
  EXPECT_FALSE(UriDecode("%4"));
  EXPECT_FALSE(UriDecode("%zz"));
  auto q = ParseQuery("list-type=2&prefix=a%2Fb&delimiter=%2F&uploads");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->size(), 4u);
  EXPECT_EQ((*q)[1].second, "a/b");
  EXPECT_EQ((*q)[3].first, "uploads");
}

TEST(SigV4Test, ParsesAmzDate) {
  EXPECT_EQ(ParseAmzDate("20130524T000000Z"), 1369353600);
  EXPECT_FALSE(ParseAmzDate("2013-05-24T00:00:00Z"));
  EXPECT_FALSE(ParseAmzDate("20131324T000000Z"));
}

}  // namespace
}  // namespace granary::s3
