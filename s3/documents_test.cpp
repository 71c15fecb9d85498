// S3 request documents (documents.cpp): keys arrive exactly, whitespace included; tags, ACLs
// and CORS rules are read and refused as S3 reads and refuses them.
#include "s3/documents.h"

#include <gtest/gtest.h>

namespace granary::s3 {
namespace {

template <typename T>
const S3Error& ErrorOf(const std::variant<T, S3Error>& v) {
  static const S3Error kNone{0, "none", "", {}};
  auto* e = std::get_if<S3Error>(&v);
  return e ? *e : kNone;
}

TEST(DocumentsTest, DeleteKeysArriveExactlyWhitespaceIncluded) {
  auto doc = ParseDeleteXml(
      "<Delete xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n"
      "  <Object><Key> </Key></Object>\n"
      "  <Object><Key>\t</Key></Object>\n"
      "  <Object><Key>   </Key></Object>\n"
      "  <Object><Key> a b </Key></Object>\n"
      "  <Object><Key>cr&#13;lf&#10;</Key></Object>\n"
      "  <Quiet>true</Quiet>\n"
      "</Delete>");
  ASSERT_TRUE(std::holds_alternative<DeleteDocument>(doc)) << ErrorOf(doc).message;
  const auto& d = std::get<DeleteDocument>(doc);
  EXPECT_TRUE(d.quiet);
  EXPECT_EQ(d.keys, (std::vector<std::string>{" ", "\t", "   ", " a b ", "cr\rlf\n"}));
  EXPECT_EQ(ErrorOf(ParseDeleteXml("<Delete><Object>")).code, "MalformedXML");
  EXPECT_EQ(ErrorOf(ParseDeleteXml("<Delete><Object><VersionId/></Object></Delete>")).code,
            "MalformedXML");
  EXPECT_EQ(ErrorOf(ParseDeleteXml("<Delete/>")).code, "MalformedXML");
}

TEST(DocumentsTest, TagsFromTheHeaderAndTheDocument) {
  auto h = ParseTaggingHeader("foo=bar&bar&a+b=c%2Bd");
  ASSERT_TRUE(std::holds_alternative<Tags>(h)) << ErrorOf(h).message;
  EXPECT_EQ(std::get<Tags>(h), (Tags{{"a b", "c+d"}, {"bar", ""}, {"foo", "bar"}}));
  // '&' is no tag character (decoded from %26).
  EXPECT_EQ(ErrorOf(ParseTaggingHeader("k=c%26d")).code, "InvalidTag");
  EXPECT_EQ(ErrorOf(ParseTaggingHeader("k=v&k=w")).code, "InvalidArgument");
  EXPECT_EQ(ErrorOf(ParseTaggingHeader("TagSet=[{Key=a,Value=b}]")).code, "InvalidArgument");
  EXPECT_EQ(ErrorOf(ParseTaggingHeader("k=%zz")).code, "InvalidArgument");
  auto x = ParseTaggingXml(
      "<Tagging><TagSet><Tag><Key>team</Key><Value> </Value></Tag></TagSet></Tagging>");
  ASSERT_TRUE(std::holds_alternative<Tags>(x)) << ErrorOf(x).message;
  EXPECT_EQ(std::get<Tags>(x).at("team"), " ");
  EXPECT_EQ(ErrorOf(ParseTaggingXml("<Tagging/>")).code, "MalformedXML");
  EXPECT_EQ(ErrorOf(ParseTaggingXml("<Tagging><TagSet><Tag><Key>k</Key><Value>1</Value></Tag>"
                                    "<Tag><Key>k</Key><Value>2</Value></Tag></TagSet></Tagging>"))
                .code,
            "InvalidTag");
}

TEST(DocumentsTest, TagLimitsAreS3s) {
  std::vector<std::pair<std::string, std::string>> eleven;
  for (int i = 0; i < 11; ++i) eleven.emplace_back("k" + std::to_string(i), "v");
  auto e = CheckTags(eleven);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->http, 400);
  EXPECT_EQ(e->code, "BadRequest");
  eleven.pop_back();
  EXPECT_FALSE(CheckTags(eleven));
  EXPECT_FALSE(CheckTags({{std::string(128, 'k'), std::string(256, 'v')}}));
  EXPECT_EQ(CheckTags({{std::string(129, 'k'), ""}})->code, "InvalidTag");
  EXPECT_EQ(CheckTags({{"k", std::string(257, 'v')}})->code, "InvalidTag");
  EXPECT_EQ(CheckTags({{"aws:cloudformation", "x"}})->code, "InvalidTag");
  EXPECT_EQ(CheckTags({{"", "x"}})->code, "InvalidTag");
  EXPECT_EQ(CheckTags({{"a{b}", "x"}})->code, "InvalidTag");
  // UTF-16 units: 64 characters outside the BMP are 128 units.
  std::string emoji;
  for (int i = 0; i < 64; ++i) emoji += "\xF0\x9F\x98\x80";
  EXPECT_FALSE(CheckTags({{emoji, "é_.:/=+-@ ok"}}));
  EXPECT_EQ(CheckTags({{emoji + "x", ""}})->code, "InvalidTag");
}

TEST(DocumentsTest, CannedAclsGrantWhatS3Grants) {
  auto acl = std::get<Acl>(CannedAcl("public-read", "OWNER", "OWNER", false));
  ASSERT_EQ(acl.size(), 2u);
  EXPECT_EQ(acl[0].access_key(), "OWNER");
  EXPECT_EQ(acl[0].permission(), ACL_FULL_CONTROL);
  EXPECT_EQ(acl[1].group(), ACL_ALL_USERS);
  EXPECT_EQ(acl[1].permission(), ACL_READ);
  EXPECT_EQ(std::get<Acl>(CannedAcl("public-read-write", "O", "O", true)).size(), 3u);
  EXPECT_EQ(std::get<Acl>(CannedAcl("authenticated-read", "O", "O", true))[1].group(),
            ACL_AUTHENTICATED_USERS);
  // bucket-owner-full-control: both owners; ignored on a bucket.
  auto bofc = std::get<Acl>(CannedAcl("bucket-owner-full-control", "WRITER", "BOSS", false));
  ASSERT_EQ(bofc.size(), 2u);
  EXPECT_EQ(bofc[1].access_key(), "BOSS");
  EXPECT_TRUE(IsOwnerFullControl(bofc, "BOSS"));
  EXPECT_EQ(std::get<Acl>(CannedAcl("bucket-owner-read", "O", "B", true)).size(), 1u);
  EXPECT_EQ(ErrorOf(CannedAcl("public-ready", "O", "O", true)).code, "InvalidArgument");
  EXPECT_EQ(ErrorOf(CannedAcl("aws-exec-read", "O", "O", true)).http, 501);
  EXPECT_EQ(ErrorOf(CannedAcl("log-delivery-write", "O", "O", false)).code, "InvalidArgument");
}

TEST(DocumentsTest, AclDocumentsAndGrantHeaders) {
  auto acl = ParseAclXml(
      "<AccessControlPolicy xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
      "<Owner><ID>OWNER</ID></Owner><AccessControlList>"
      "<Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
      "xsi:type=\"CanonicalUser\"><ID>OWNER</ID><DisplayName>x</DisplayName></Grantee>"
      "<Permission>FULL_CONTROL</Permission></Grant>"
      "<Grant><Grantee xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
      "xsi:type=\"Group\"><URI>http://acs.amazonaws.com/groups/global/AllUsers</URI></Grantee>"
      "<Permission>READ</Permission></Grant>"
      "</AccessControlList></AccessControlPolicy>");
  ASSERT_TRUE(std::holds_alternative<Acl>(acl)) << ErrorOf(acl).message;
  const Acl& a = std::get<Acl>(acl);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[1].group(), ACL_ALL_USERS);
  EXPECT_EQ(ErrorOf(ParseAclXml("<AccessControlPolicy><AccessControlList><Grant><Grantee><ID>x"
                                "</ID></Grantee><Permission>ALL</Permission></Grant>"
                                "</AccessControlList></AccessControlPolicy>"))
                .code,
            "MalformedACLError");
  EXPECT_EQ(ErrorOf(ParseAclXml("not xml")).code, "MalformedACLError");
  EXPECT_EQ(ErrorOf(ParseAclXml("<AccessControlPolicy><AccessControlList><Grant><Grantee>"
                                "<EmailAddress>a@b</EmailAddress></Grantee><Permission>READ"
                                "</Permission></Grant></AccessControlList></AccessControlPolicy>"))
                .code,
            "UnresolvableGrantByEmailAddress");
  auto h = GrantHeadersAcl(
      {{ACL_READ, "id=\"K1\", uri=\"http://acs.amazonaws.com/groups/global/AuthenticatedUsers\""},
       {ACL_WRITE_ACP, "id=K2"}});
  ASSERT_TRUE(std::holds_alternative<Acl>(h)) << ErrorOf(h).message;
  ASSERT_EQ(std::get<Acl>(h).size(), 3u);
  EXPECT_EQ(std::get<Acl>(h)[2].access_key(), "K2");
  EXPECT_EQ(std::get<Acl>(h)[2].permission(), ACL_WRITE_ACP);
  EXPECT_EQ(ErrorOf(GrantHeadersAcl({{ACL_READ, "uri=\"http://example.com/group\""}})).code,
            "InvalidArgument");
}

TEST(DocumentsTest, AclAllowsFollowsGranteesAndPermissions) {
  google::protobuf::RepeatedPtrField<AclGrant> acl;
  auto canned = CannedAcl("authenticated-read", "O", "O", true);  // outlives the loop
  for (const auto& g : std::get<Acl>(canned)) *acl.Add() = g;
  EXPECT_TRUE(AclAllows(acl, "O", false, Permission::kWriteAcp));
  EXPECT_TRUE(AclAllows(acl, "SOMEONE", false, Permission::kRead));
  EXPECT_FALSE(AclAllows(acl, "", true, Permission::kRead));  // anonymous is not authenticated
  EXPECT_FALSE(AclAllows(acl, "SOMEONE", false, Permission::kWrite));
  acl.Clear();
  canned = CannedAcl("public-read", "O", "O", true);
  for (const auto& g : std::get<Acl>(canned)) *acl.Add() = g;
  EXPECT_TRUE(AclAllows(acl, "", true, Permission::kRead));
  EXPECT_FALSE(AclAllows(acl, "", true, Permission::kReadAcp));
}

TEST(DocumentsTest, CorsRulesAreParsedAndMatchedAsS3Does) {
  auto config = ParseCorsXml(
      "<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod>"
      "<AllowedOrigin>*suffix</AllowedOrigin></CORSRule>"
      "<CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>start*end</AllowedOrigin>"
      "</CORSRule><CORSRule><AllowedMethod>PUT</AllowedMethod><AllowedOrigin>*.put"
      "</AllowedOrigin><AllowedHeader>x-amz-*</AllowedHeader><ExposeHeader>ETag</ExposeHeader>"
      "<MaxAgeSeconds>3000</MaxAgeSeconds></CORSRule>"
      "<CORSRule><AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule>"
      "</CORSConfiguration>");
  ASSERT_TRUE(std::holds_alternative<CorsConfig>(config)) << ErrorOf(config).message;
  const CorsConfig& c = std::get<CorsConfig>(config);
  ASSERT_EQ(c.rules_size(), 4);
  EXPECT_EQ(c.rules(2).max_age_seconds(), 3000);
  // '*' matches any run of characters, none included; patterns are anchored at both ends.
  EXPECT_EQ(MatchCors(c, "foo.suffix", "GET", {})->rule, &c.rules(0));
  EXPECT_EQ(MatchCors(c, "startend", "GET", {})->rule, &c.rules(1));
  EXPECT_EQ(MatchCors(c, "start12end", "GET", {})->rule, &c.rules(1));
  EXPECT_TRUE(MatchCors(c, "0start12end", "GET", {})->any_origin);  // only the "*" rule
  EXPECT_FALSE(MatchCors(c, "foo.suffix", "DELETE", {}));
  EXPECT_TRUE(MatchCors(c, "a.put", "PUT", {"x-amz-date", "x-amz-meta-a"}));
  EXPECT_FALSE(MatchCors(c, "a.put", "PUT", {"authorization"}));
  EXPECT_FALSE(MatchCors(c, "a.PUT", "PUT", {}));
  EXPECT_EQ(SplitHeaderList("X-Amz-Date, content-type ,"),
            (std::vector<std::string>{"x-amz-date", "content-type"}));
  EXPECT_EQ(ErrorOf(ParseCorsXml("<CORSConfiguration/>")).code, "MalformedXML");
  EXPECT_EQ(ErrorOf(ParseCorsXml("<CORSConfiguration><CORSRule><AllowedMethod>MYMETHOD"
                                 "</AllowedMethod><AllowedOrigin>*</AllowedOrigin></CORSRule>"
                                 "</CORSConfiguration>"))
                .message,
            "Found unsupported HTTP method in CORS config. Unsupported method is MYMETHOD");
  EXPECT_EQ(ErrorOf(ParseCorsXml("<CORSConfiguration><CORSRule><AllowedMethod>GET"
                                 "</AllowedMethod><AllowedOrigin>*a*</AllowedOrigin></CORSRule>"
                                 "</CORSConfiguration>"))
                .code,
            "InvalidRequest");
  EXPECT_EQ(ErrorOf(ParseCorsXml("<CORSConfiguration><CORSRule><AllowedMethod>GET"
                                 "</AllowedMethod></CORSRule></CORSConfiguration>"))
                .code,
            "MalformedXML");
}

}  // namespace
}  // namespace granary::s3
