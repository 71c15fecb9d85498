// SigV2 against AWS's published examples (S3 Developer Guide, "Signing and authenticating REST
// requests": access key AKIAIOSFODNN7EXAMPLE, secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY,
// bucket johnsmith, March 2007).
#include "s3/sigv2.h"

#include <gtest/gtest.h>

namespace granary::s3 {
namespace {

constexpr const char* kSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

std::string Sign(std::string_view method, std::string_view md5, std::string_view type,
                 std::string_view date, const std::vector<std::pair<std::string, std::string>>& amz,
                 std::string_view path, std::string_view query = "") {
  return V2Signature(
      kSecret, V2StringToSign(method, md5, type, date, amz, V2CanonicalResource(path, query)));
}

TEST(SigV2Test, ObjectGetPutListAndAclMatchAwsExamples) {
  EXPECT_EQ(
      Sign("GET", "", "", "Tue, 27 Mar 2007 19:36:42 +0000", {}, "/johnsmith/photos/puppy.jpg"),
      "bWq2s1WEIj+Ydj0vQ697zp+IXMU=");
  EXPECT_EQ(Sign("PUT", "", "image/jpeg", "Tue, 27 Mar 2007 21:15:45 +0000", {},
                 "/johnsmith/photos/puppy.jpg"),
            "MyyxeRY7whkBe+bq8fHCL/2kKUg=");
  // prefix, max-keys and marker are not sub-resources: they are not signed.
  EXPECT_EQ(Sign("GET", "", "", "Tue, 27 Mar 2007 19:42:41 +0000", {}, "/johnsmith/",
                 "prefix=photos&max-keys=50&marker=puppy"),
            "htDYFYduRNen8P9ZfE/s9SuKy0U=");
  EXPECT_EQ(Sign("GET", "", "", "Tue, 27 Mar 2007 19:44:46 +0000", {}, "/johnsmith/", "acl"),
            "c2WLPFtWHVgbEmeEG93a4cG37dM=");
}

TEST(SigV2Test, AmzHeadersAreLowerCasedSortedAndRepeatedValuesJoined) {
  // The "Upload" example: a virtual-host bucket, repeated X-Amz-Meta-ReviewedBy.
  const std::vector<std::pair<std::string, std::string>> amz = {
      {"x-amz-acl", "public-read"},
      {"X-Amz-Meta-ReviewedBy", "joe@johnsmith.net"},
      {"X-Amz-Meta-ReviewedBy", "jane@johnsmith.net"},
      {"X-Amz-Meta-FileChecksum", "0x02661779"},
      {"X-Amz-Meta-ChecksumAlgorithm", "crc32"}};
  EXPECT_EQ(V2StringToSign("PUT", "4gJE4saaMU4BqNR0kLY+lw==", "application/x-download",
                           "Tue, 27 Mar 2007 21:06:08 +0000", amz,
                           "/static.johnsmith.net/db-backup.dat.gz"),
            "PUT\n4gJE4saaMU4BqNR0kLY+lw==\napplication/x-download\nTue, 27 Mar 2007 21:06:08 "
            "+0000\nx-amz-acl:public-read\nx-amz-meta-checksumalgorithm:crc32\n"
            "x-amz-meta-filechecksum:0x02661779\n"
            "x-amz-meta-reviewedby:joe@johnsmith.net,jane@johnsmith.net\n"
            "/static.johnsmith.net/db-backup.dat.gz");
  EXPECT_EQ(Sign("PUT", "4gJE4saaMU4BqNR0kLY+lw==", "application/x-download",
                 "Tue, 27 Mar 2007 21:06:08 +0000", amz, "/static.johnsmith.net/db-backup.dat.gz"),
            "ilyl83RwaSoYIEdixDQcA4OnAnc=");
  // "Delete": with x-amz-date the date line is empty.
  EXPECT_EQ(Sign("DELETE", "", "", "", {{"x-amz-date", "Tue, 27 Mar 2007 21:20:26 +0000"}},
                 "/johnsmith/photos/puppy.jpg"),
            "R4dJ53KECjStyBO5iTBJZ4XVOaI=");
}

TEST(SigV2Test, QueryStringAuthenticationSignsExpires) {
  // "Query string request authentication": Expires=1175139620.
  EXPECT_EQ(Sign("GET", "", "", "1175139620", {}, "/johnsmith/photos/puppy.jpg"),
            "NpgCjnDzrM+WFzoENXmpNDUsSn8=");
}

TEST(SigV2Test, CanonicalResourceKeepsSubresourcesSortedAndDecoded) {
  EXPECT_EQ(V2CanonicalResource("/b/k", "uploadId=a%2Fb&partNumber=3&x-id=PutObject"),
            "/b/k?partNumber=3&uploadId=a/b");
  EXPECT_EQ(V2CanonicalResource("/b/k", "response-content-type=text%2Fplain&versionId=null"),
            "/b/k?response-content-type=text/plain&versionId=null");
  EXPECT_EQ(V2CanonicalResource("/b", "acl="), "/b?acl=");  // as sent: "acl=" is not "acl"
  EXPECT_EQ(V2CanonicalResource("/b/k", "uploads=", /*bare_empty=*/true), "/b/k?uploads");
  EXPECT_EQ(V2CanonicalResource("/b/k", "uploadId=x&partNumber=", true),
            "/b/k?partNumber&uploadId=x");
  EXPECT_EQ(V2CanonicalResource("/b/a%20b", "AWSAccessKeyId=K&Expires=1&Signature=x"), "/b/a%20b");
}

TEST(SigV2Test, AuthorizationAndDatesParse) {
  auto a = ParseV2Authorization("AWS AKIAIOSFODNN7EXAMPLE:bWq2s1WEIj+Ydj0vQ697zp+IXMU=");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->access_key, "AKIAIOSFODNN7EXAMPLE");
  EXPECT_EQ(a->signature, "bWq2s1WEIj+Ydj0vQ697zp+IXMU=");
  EXPECT_FALSE(ParseV2Authorization("AWS nocolon"));
  EXPECT_FALSE(ParseV2Authorization("AWS :sig"));
  EXPECT_FALSE(ParseV2Authorization("AWS key:"));
  EXPECT_FALSE(ParseV2Authorization("AWS4-HMAC-SHA256 Credential=x"));
  EXPECT_EQ(ParseV2Date("Tue, 27 Mar 2007 19:36:42 +0000"), 1175024202);
  EXPECT_EQ(ParseV2Date("Tue, 27 Mar 2007 19:36:42 GMT"), 1175024202);
  EXPECT_EQ(ParseV2Date("20070327T193642Z"), 1175024202);
  EXPECT_FALSE(ParseV2Date("yesterday"));
}

}  // namespace
}  // namespace granary::s3
