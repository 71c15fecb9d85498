// An S3 error as the gateway answers it: HTTP status, S3 code, message, and the extra elements
// some errors carry (SignatureDoesNotMatch's StringToSign, a CORS refusal's Method).
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace granary::s3 {

struct S3Error {
  int http = 500;
  std::string code = "InternalError";
  std::string message;
  std::vector<std::pair<std::string, std::string>> details;  // element name, text
};
inline S3Error Err(int http, std::string code, std::string message) {
  return S3Error{http, std::move(code), std::move(message), {}};
}

}  // namespace granary::s3
