// CORS (docs/s3.md "CORS"): Put/Get/DeleteBucketCors, the OPTIONS preflight and the headers of
// an actual cross-origin request. Evaluation follows S3's: the first rule allowing the origin,
// the method (Access-Control-Request-Method for a preflight) and every requested header wins; a
// preflight no rule allows is 403, an actual request just gets no CORS headers.
#include <fmt/format.h>

#include "s3/internal.h"

namespace granary::s3 {

namespace {

std::string Join(const google::protobuf::RepeatedPtrField<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

void RuleHeaders(const CorsMatch& match, std::string_view origin,
                 std::vector<std::pair<std::string, std::string>>* out) {
  const CorsRule& rule = *match.rule;
  out->emplace_back("Access-Control-Allow-Origin", match.any_origin ? "*" : std::string(origin));
  out->emplace_back("Access-Control-Allow-Methods", Join(rule.allowed_methods()));
  if (!rule.expose_headers().empty()) {
    out->emplace_back("Access-Control-Expose-Headers", Join(rule.expose_headers()));
  }
  if (rule.has_max_age_seconds()) {
    out->emplace_back("Access-Control-Max-Age", std::to_string(rule.max_age_seconds()));
  }
  // An echoed origin may carry credentials; "*" never can (Fetch standard, CORS check).
  if (!match.any_origin) out->emplace_back("Access-Control-Allow-Credentials", "true");
  out->emplace_back("Vary",
                    "Origin, Access-Control-Request-Headers, Access-Control-Request-Method");
}

S3Error Forbidden(const std::string& message, const std::string& method, const char* type) {
  S3Error e = Err(403, "AccessForbidden", message);
  e.details = {{"Method", method}, {"ResourceType", type}};
  return e;
}

}  // namespace

Outcome GetBucketCors(const Bucket& b) {
  if (!b.cors_configured()) {
    return Err(404, "NoSuchCORSConfiguration", "The CORS configuration does not exist");
  }
  Xml x("CORSConfiguration");
  for (const CorsRule& rule : b.cors().rules()) {
    auto r = x.root().append_child("CORSRule");
    if (!rule.id().empty()) Add(r, "ID", rule.id());
    for (const auto& h : rule.allowed_headers()) Add(r, "AllowedHeader", h);
    for (const auto& m : rule.allowed_methods()) Add(r, "AllowedMethod", m);
    for (const auto& o : rule.allowed_origins()) Add(r, "AllowedOrigin", o);
    for (const auto& h : rule.expose_headers()) Add(r, "ExposeHeader", h);
    if (rule.has_max_age_seconds()) Add(r, "MaxAgeSeconds", std::to_string(rule.max_age_seconds()));
  }
  return XmlResponse(x);
}

Outcome PutBucketCors(Context& ctx, Request& req, const Identity& id, const Bucket& b) {
  // "The document is limited to 64 KB in size."
  auto body = SmallBody(req, id, 64 << 10);
  if (auto* e = std::get_if<S3Error>(&body)) return *e;
  auto config = ParseCorsXml(std::get<std::string>(body));
  if (auto* e = std::get_if<S3Error>(&config)) return *e;
  BucketConfigureRequest cr;
  cr.set_name(b.name());
  cr.set_set_cors(true);
  cr.set_cors_configured(true);
  *cr.mutable_cors() = std::move(std::get<CorsConfig>(config));
  auto done = ctx.objects().BucketConfigure(cr);
  ctx.ForgetBucket(b.name());
  if (!done.ok()) return ErrorFromStatus(done.status());
  return Empty(200);
}

Outcome DeleteBucketCors(Context& ctx, const Bucket& b) {
  BucketConfigureRequest cr;
  cr.set_name(b.name());
  cr.set_set_cors(true);
  cr.set_cors_configured(false);
  auto done = ctx.objects().BucketConfigure(cr);
  ctx.ForgetBucket(b.name());
  if (!done.ok()) return ErrorFromStatus(done.status());
  return Empty(204);
}

Outcome Preflight(Context& ctx, const Request& req) {
  // OPTIONS object (S3 developer guide, "Appendix: OPTIONS object"); the answers to missing
  // headers and refused requests are S3's as recorded against it (docs/s3.md "CORS").
  const std::string* origin = req.headers.Find("origin");
  if (!origin) {
    return Err(400, "BadRequest", "Insufficient information. Origin request header needed.");
  }
  const std::string* requested = req.headers.Find("access-control-request-method");
  const std::string method = requested ? *requested : "OPTIONS";
  if (req.bucket.empty()) return Forbidden("CORSResponse: Bucket not found", method, "BUCKET");
  auto b = ctx.GetBucket(req.bucket);
  if (!b.ok()) {
    if (b.status().code() == Code::NOT_FOUND) {
      return Forbidden("CORSResponse: Bucket not found", method, "BUCKET");
    }
    return ErrorFromStatus(b.status());
  }
  if (!b->cors_configured()) {
    return Forbidden("CORSResponse: CORS is not enabled for this bucket.", method, "BUCKET");
  }
  const auto headers = SplitHeaderList(req.headers.Get("access-control-request-headers"));
  auto match = requested ? MatchCors(b->cors(), *origin, method, headers) : std::nullopt;
  if (!match) {
    return Forbidden(
        "CORSResponse: This CORS request is not allowed. This is usually because the evalution "
        "of Origin, request method / Access-Control-Request-Method or "
        "Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
        method, req.key.empty() ? "BUCKET" : "OBJECT");
  }
  Response r = Empty(200);
  RuleHeaders(*match, *origin, &r.headers);
  if (!headers.empty()) {
    std::string allowed;
    for (const std::string& h : headers) allowed += (allowed.empty() ? "" : ", ") + h;
    r.Header("Access-Control-Allow-Headers", allowed);
  }
  return r;
}

std::vector<std::pair<std::string, std::string>> CorsHeaders(Context& ctx, const Request& req) {
  std::vector<std::pair<std::string, std::string>> out;
  const std::string* origin = req.headers.Find("origin");
  if (!origin || req.bucket.empty()) return out;
  auto b = ctx.GetBucket(req.bucket);
  if (!b.ok() || !b->cors_configured()) return out;
  // On an actual request the Access-Control-Request-Method header, when sent, decides (as S3
  // does); its requested headers are not checked.
  const std::string method = req.headers.Get("access-control-request-method", req.method);
  if (auto match = MatchCors(b->cors(), *origin, method, {})) RuleHeaders(*match, *origin, &out);
  return out;
}

}  // namespace granary::s3
