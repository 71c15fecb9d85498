// Routes a signed request to its S3 operation by method, bucket, key and subresource.
#include <fmt/format.h>

#include "s3/internal.h"

namespace granary::s3 {

Outcome Dispatch(Context& ctx, Request& req, const Identity& id, std::string* op) {
  const std::string& m = req.method;
  if (req.bucket.empty()) {
    *op = "ListBuckets";
    if (m != "GET") return Err(405, "MethodNotAllowed", "The specified method is not allowed");
    return ListBuckets(ctx, id);
  }
  if (req.key.empty()) {
    if (m == "PUT" && req.query.empty()) {
      *op = "CreateBucket";
      return CreateBucket(ctx, req, id);
    }
    const bool write = m != "GET" && m != "HEAD";
    auto b = Authorize(ctx, req, id, write);
    if (auto* e = std::get_if<S3Error>(&b)) {
      *op = "Bucket";
      return *e;
    }
    const Bucket& bucket = std::get<Bucket>(b);
    if (m == "DELETE" && req.query.empty()) {
      *op = "DeleteBucket";
      return DeleteBucket(ctx, req, id);
    }
    if (m == "HEAD") {
      *op = "HeadBucket";
      Response r = Empty(200);
      r.Header("x-amz-bucket-region", ctx.options().region);
      return r;
    }
    if (m == "POST" && req.Has("delete")) {
      *op = "DeleteObjects";
      return DeleteObjects(ctx, req, id, bucket);
    }
    if (m == "GET") {
      if (req.Has("location")) {
        *op = "GetBucketLocation";
        Xml x("LocationConstraint");
        if (ctx.options().region != "us-east-1") x.root().text().set(ctx.options().region.c_str());
        return XmlResponse(x);
      }
      if (req.Has("versioning")) {
        *op = "GetBucketVersioning";
        return XmlResponse(Xml("VersioningConfiguration"));
      }
      if (req.Has("versions")) {
        *op = "ListObjectVersions";
        return ListVersions(ctx, req, id, bucket);
      }
      if (req.Has("uploads")) {
        *op = "ListMultipartUploads";
        return ListUploads(ctx, req, bucket);
      }
      static const char* kUnsupported[] = {
          "acl",     "policy",      "cors",       "lifecycle",   "tagging",     "website",
          "logging", "replication", "encryption", "object-lock", "notification"};
      for (const char* q : kUnsupported) {
        if (req.Has(q)) {
          *op = "Unsupported";
          return Err(501, "NotImplemented",
                     fmt::format("bucket subresource '{}' is not implemented", q));
        }
      }
      *op = req.Q("list-type") == "2" ? "ListObjectsV2" : "ListObjects";
      return ListObjects(ctx, req, id, bucket);
    }
    *op = "Bucket";
    return Err(405, "MethodNotAllowed",
               "The specified method is not allowed against this resource.");
  }
  const bool write = m != "GET" && m != "HEAD";
  auto b = Authorize(ctx, req, id, write);
  if (auto* e = std::get_if<S3Error>(&b)) {
    *op = "Object";
    return *e;
  }
  const Bucket& bucket = std::get<Bucket>(b);
  if (m == "GET" || m == "HEAD") {
    if (m == "GET" && req.Has("uploadId")) {
      *op = "ListParts";
      return ListParts(ctx, req, bucket);
    }
    if (req.Has("acl") || req.Has("tagging")) {
      *op = "Unsupported";
      return Err(501, "NotImplemented", "object ACLs and tagging are not implemented");
    }
    *op = m == "GET" ? "GetObject" : "HeadObject";
    if (auto e = CheckKey(req.key)) return *e;
    return GetObject(ctx, req, bucket, m == "HEAD");
  }
  if (m == "PUT") {
    if (req.Has("uploadId") || req.Has("partNumber")) {
      *op = req.headers.Find("x-amz-copy-source") ? "UploadPartCopy" : "UploadPart";
      return UploadPartOp(ctx, req, id, bucket);
    }
    if (req.Has("acl") || req.Has("tagging")) {
      *op = "Unsupported";
      return Err(501, "NotImplemented", "object ACLs and tagging are not implemented");
    }
    if (req.headers.Find("x-amz-copy-source")) {
      *op = "CopyObject";
      return CopyObject(ctx, req, id, bucket);
    }
    *op = "PutObject";
    return PutObject(ctx, req, id, bucket);
  }
  if (m == "DELETE") {
    if (req.Has("uploadId")) {
      *op = "AbortMultipartUpload";
      return AbortUpload(ctx, req, bucket);
    }
    *op = "DeleteObject";
    return DeleteObject(ctx, req, bucket);
  }
  if (m == "POST") {
    if (req.Has("uploads")) {
      *op = "CreateMultipartUpload";
      return CreateUpload(ctx, req, bucket);
    }
    if (req.Has("uploadId")) {
      *op = "CompleteMultipartUpload";
      return CompleteUpload(ctx, req, id, bucket);
    }
  }
  *op = "Object";
  return Err(405, "MethodNotAllowed", "The specified method is not allowed against this resource.");
}

}  // namespace granary::s3
