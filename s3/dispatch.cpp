// Routes an authenticated request to its S3 operation by method, bucket, key and subresource
// (docs/s3.md "Operations"), after checking what the requester may do (access.cpp). A known S3
// subresource Granary does not implement is 501 NotImplemented naming the operation, never
// another operation's answer: GET ?torrent once returned the object's bytes.
#include <fmt/format.h>

#include "s3/internal.h"

namespace granary::s3 {

namespace {

struct Unsupported {
  const char* method;  // GET also covers HEAD
  const char* subresource;
  const char* operation;
};

constexpr Unsupported kBucketUnsupported[] = {
    {"GET", "policy", "GetBucketPolicy"},
    {"PUT", "policy", "PutBucketPolicy"},
    {"DELETE", "policy", "DeleteBucketPolicy"},
    {"GET", "policyStatus", "GetBucketPolicyStatus"},
    {"GET", "lifecycle", "GetBucketLifecycleConfiguration"},
    {"PUT", "lifecycle", "PutBucketLifecycleConfiguration"},
    {"DELETE", "lifecycle", "DeleteBucketLifecycle"},
    {"GET", "tagging", "GetBucketTagging"},
    {"PUT", "tagging", "PutBucketTagging"},
    {"DELETE", "tagging", "DeleteBucketTagging"},
    {"GET", "website", "GetBucketWebsite"},
    {"PUT", "website", "PutBucketWebsite"},
    {"DELETE", "website", "DeleteBucketWebsite"},
    {"GET", "logging", "GetBucketLogging"},
    {"PUT", "logging", "PutBucketLogging"},
    {"GET", "replication", "GetBucketReplication"},
    {"PUT", "replication", "PutBucketReplication"},
    {"DELETE", "replication", "DeleteBucketReplication"},
    {"GET", "encryption", "GetBucketEncryption"},
    {"PUT", "encryption", "PutBucketEncryption"},
    {"DELETE", "encryption", "DeleteBucketEncryption"},
    {"GET", "object-lock", "GetObjectLockConfiguration"},
    {"PUT", "object-lock", "PutObjectLockConfiguration"},
    {"GET", "notification", "GetBucketNotificationConfiguration"},
    {"PUT", "notification", "PutBucketNotificationConfiguration"},
    {"GET", "accelerate", "GetBucketAccelerateConfiguration"},
    {"PUT", "accelerate", "PutBucketAccelerateConfiguration"},
    {"GET", "requestPayment", "GetBucketRequestPayment"},
    {"PUT", "requestPayment", "PutBucketRequestPayment"},
    {"GET", "analytics", "GetBucketAnalyticsConfiguration"},
    {"PUT", "analytics", "PutBucketAnalyticsConfiguration"},
    {"DELETE", "analytics", "DeleteBucketAnalyticsConfiguration"},
    {"GET", "inventory", "GetBucketInventoryConfiguration"},
    {"PUT", "inventory", "PutBucketInventoryConfiguration"},
    {"DELETE", "inventory", "DeleteBucketInventoryConfiguration"},
    {"GET", "metrics", "GetBucketMetricsConfiguration"},
    {"PUT", "metrics", "PutBucketMetricsConfiguration"},
    {"DELETE", "metrics", "DeleteBucketMetricsConfiguration"},
    {"GET", "intelligent-tiering", "GetBucketIntelligentTieringConfiguration"},
    {"PUT", "intelligent-tiering", "PutBucketIntelligentTieringConfiguration"},
    {"DELETE", "intelligent-tiering", "DeleteBucketIntelligentTieringConfiguration"},
    {"GET", "publicAccessBlock", "GetPublicAccessBlock"},
    {"PUT", "publicAccessBlock", "PutPublicAccessBlock"},
    {"DELETE", "publicAccessBlock", "DeletePublicAccessBlock"},
    {"PUT", "versioning", "PutBucketVersioning"},
    {"GET", "metadataTable", "GetBucketMetadataTableConfiguration"},
};

constexpr Unsupported kObjectUnsupported[] = {
    {"GET", "torrent", "GetObjectTorrent"},      {"GET", "retention", "GetObjectRetention"},
    {"PUT", "retention", "PutObjectRetention"},  {"GET", "legal-hold", "GetObjectLegalHold"},
    {"PUT", "legal-hold", "PutObjectLegalHold"}, {"POST", "restore", "RestoreObject"},
    {"POST", "select", "SelectObjectContent"},   {"PUT", "renameObject", "RenameObject"},
};

template <size_t N>
const char* FindUnsupported(const Unsupported (&table)[N], const Request& req) {
  const std::string method = req.method == "HEAD" ? "GET" : req.method;
  for (const Unsupported& u : table) {
    if (method == u.method && req.Has(u.subresource)) return u.operation;
  }
  return nullptr;
}

S3Error NotImplemented(const char* operation) {
  return Err(501, "NotImplemented",
             fmt::format("The operation {} is not implemented by this server.", operation));
}

S3Error MethodNotAllowed() {
  return Err(405, "MethodNotAllowed", "The specified method is not allowed against this resource.");
}

Outcome DispatchBucket(Context& ctx, Request& req, const Identity& id, std::string* op) {
  if (const char* name = FindUnsupported(kBucketUnsupported, req)) {
    *op = name;
    return NotImplemented(name);
  }
  const std::string& m = req.method;
  if (m == "PUT" && !req.Has("acl") && !req.Has("cors") && !req.Has("ownershipControls")) {
    *op = "CreateBucket";
    if (id.anonymous) return AccessDenied();
    return CreateBucket(ctx, req, id);
  }
  if (m == "POST" && !req.Has("delete")) {
    *op = "PostObject";  // a browser form upload
    return NotImplemented("PostObject");
  }
  // Which operation, and what it needs of the requester.
  enum class Need { kPermission, kAdmin, kOwner };
  Need need = Need::kPermission;
  Permission permission = Permission::kRead;
  if (m == "GET" || m == "HEAD") {
    if (m == "HEAD") {
      *op = "HeadBucket";
    } else if (req.Has("acl")) {
      *op = "GetBucketAcl";
      permission = Permission::kReadAcp;
    } else if (req.Has("cors")) {
      *op = "GetBucketCors";
      need = Need::kAdmin;
    } else if (req.Has("ownershipControls")) {
      *op = "GetBucketOwnershipControls";
      need = Need::kAdmin;
    } else if (req.Has("location")) {
      *op = "GetBucketLocation";
    } else if (req.Has("versioning")) {
      *op = "GetBucketVersioning";
    } else if (req.Has("versions")) {
      *op = "ListObjectVersions";
    } else if (req.Has("uploads")) {
      *op = "ListMultipartUploads";
    } else {
      *op = req.Q("list-type") == "2" ? "ListObjectsV2" : "ListObjects";
    }
  } else if (m == "PUT") {
    if (req.Has("acl")) {
      *op = "PutBucketAcl";
      permission = Permission::kWriteAcp;
    } else {
      *op = req.Has("cors") ? "PutBucketCors" : "PutBucketOwnershipControls";
      need = Need::kAdmin;
    }
  } else if (m == "DELETE") {
    if (req.Has("cors")) {
      *op = "DeleteBucketCors";
      need = Need::kAdmin;
    } else if (req.Has("ownershipControls")) {
      *op = "DeleteBucketOwnershipControls";
      need = Need::kAdmin;
    } else {
      *op = "DeleteBucket";
      need = Need::kOwner;
    }
  } else if (m == "POST") {
    *op = "DeleteObjects";
    permission = Permission::kWrite;
  } else {
    *op = "Bucket";
    return MethodNotAllowed();
  }
  auto loaded = LoadBucket(ctx, req.bucket);
  if (auto* e = std::get_if<S3Error>(&loaded)) return *e;
  const Bucket& b = std::get<Bucket>(loaded);
  const bool allowed = need == Need::kPermission ? BucketAllows(b, id, permission)
                       : need == Need::kAdmin    ? BucketAdmin(b, id)
                                                 : !id.anonymous && b.owner() == id.access_key;
  if (!allowed) return AccessDenied();

  const std::string& o = *op;
  if (o == "HeadBucket") {
    Response r = Empty(200);
    r.Header("x-amz-bucket-region", ctx.options().region);
    return r;
  }
  if (o == "GetBucketAcl") return GetBucketAcl(ctx, req, id, b);
  if (o == "GetBucketCors") return GetBucketCors(b);
  if (o == "GetBucketOwnershipControls") return GetOwnershipControls(b);
  if (o == "GetBucketLocation") {
    Xml x("LocationConstraint");
    if (ctx.options().region != "us-east-1") x.root().text().set(ctx.options().region.c_str());
    return XmlResponse(x);
  }
  if (o == "GetBucketVersioning") return XmlResponse(Xml("VersioningConfiguration"));
  if (o == "ListObjectVersions") return ListVersions(ctx, req, id, b);
  if (o == "ListMultipartUploads") return ListUploads(ctx, req, b);
  if (o == "ListObjects" || o == "ListObjectsV2") return ListObjects(ctx, req, id, b);
  if (o == "PutBucketAcl") return PutBucketAcl(ctx, req, id, b);
  if (o == "PutBucketCors") return PutBucketCors(ctx, req, id, b);
  if (o == "PutBucketOwnershipControls") return PutOwnershipControls(ctx, req, id, b);
  if (o == "DeleteBucketCors") return DeleteBucketCors(ctx, b);
  if (o == "DeleteBucketOwnershipControls") return DeleteOwnershipControls(ctx, b);
  if (o == "DeleteBucket") return DeleteBucket(ctx, req, id, b);
  return DeleteObjects(ctx, req, id, b);
}

Outcome DispatchObject(Context& ctx, Request& req, const Identity& id, std::string* op) {
  if (const char* name = FindUnsupported(kObjectUnsupported, req)) {
    *op = name;
    return NotImplemented(name);
  }
  const std::string& m = req.method;
  // Object-level checks (object ACLs) happen inside the read operations; the others need the
  // bucket's WRITE (or READ, listing parts).
  std::optional<Permission> bucket_permission = Permission::kWrite;
  if (m == "GET" || m == "HEAD") {
    bucket_permission.reset();
    if (m == "GET" && req.Has("uploadId")) {
      *op = "ListParts";
      bucket_permission = Permission::kRead;
    } else if (req.Has("acl")) {
      *op = "GetObjectAcl";
    } else if (req.Has("tagging")) {
      *op = "GetObjectTagging";
    } else if (req.Has("attributes")) {
      *op = "GetObjectAttributes";
    } else {
      *op = m == "GET" ? "GetObject" : "HeadObject";
    }
  } else if (m == "PUT") {
    if (req.Has("uploadId") || req.Has("partNumber")) {
      *op = req.headers.Find("x-amz-copy-source") ? "UploadPartCopy" : "UploadPart";
    } else if (req.Has("acl")) {
      *op = "PutObjectAcl";
      bucket_permission.reset();
    } else if (req.Has("tagging")) {
      *op = "PutObjectTagging";
    } else if (req.headers.Find("x-amz-copy-source")) {
      *op = "CopyObject";
    } else {
      *op = "PutObject";
    }
  } else if (m == "DELETE") {
    *op = req.Has("tagging")    ? "DeleteObjectTagging"
          : req.Has("uploadId") ? "AbortMultipartUpload"
                                : "DeleteObject";
  } else if (m == "POST" && req.Has("uploads")) {
    *op = "CreateMultipartUpload";
  } else if (m == "POST" && req.Has("uploadId")) {
    *op = "CompleteMultipartUpload";
  } else {
    *op = "Object";
    return MethodNotAllowed();
  }
  // Every object has the one version "null" (docs/s3.md "Versioning").
  if (req.Has("versionId") && req.Q("versionId") != "null") {
    return Err(400, "InvalidArgument", "Invalid version id specified");
  }
  auto loaded = LoadBucket(ctx, req.bucket);
  if (auto* e = std::get_if<S3Error>(&loaded)) return *e;
  const Bucket& b = std::get<Bucket>(loaded);
  if (bucket_permission && !BucketAllows(b, id, *bucket_permission)) return AccessDenied();

  const std::string& o = *op;
  if (o == "ListParts") return ListParts(ctx, req, b);
  if (o == "GetObjectAcl") return GetObjectAcl(ctx, req, id, b);
  if (o == "GetObjectTagging") return GetObjectTagging(ctx, req, id, b);
  if (o == "GetObjectAttributes") return GetObjectAttributes(ctx, req, id, b);
  if (o == "GetObject" || o == "HeadObject") {
    if (auto e = CheckKey(req.key)) return *e;
    return GetObject(ctx, req, id, b, m == "HEAD");
  }
  if (o == "UploadPart" || o == "UploadPartCopy") return UploadPartOp(ctx, req, id, b);
  if (o == "PutObjectAcl") return PutObjectAcl(ctx, req, id, b);
  if (o == "PutObjectTagging") return PutObjectTagging(ctx, req, id, b);
  if (o == "CopyObject") return CopyObject(ctx, req, id, b);
  if (o == "PutObject") return PutObject(ctx, req, id, b);
  if (o == "DeleteObjectTagging") return DeleteObjectTagging(ctx, req, id, b);
  if (o == "AbortMultipartUpload") return AbortUpload(ctx, req, b);
  if (o == "DeleteObject") return DeleteObject(ctx, req, b);
  if (o == "CreateMultipartUpload") return CreateUpload(ctx, req, id, b);
  return CompleteUpload(ctx, req, id, b);
}

}  // namespace

Outcome Dispatch(Context& ctx, Request& req, const Identity& id, std::string* op) {
  if (req.bucket.empty()) {
    *op = "ListBuckets";
    if (req.method != "GET") return MethodNotAllowed();
    if (id.anonymous) return AccessDenied();
    return ListBuckets(ctx, req, id);
  }
  if (req.key.empty()) return DispatchBucket(ctx, req, id, op);
  return DispatchObject(ctx, req, id, op);
}

}  // namespace granary::s3
