# Hand-built SigV4 requests (for what no client sends on purpose: bad signatures, aws-chunked
# variants, malformed bodies), over http.client or a raw socket.
import datetime
import hashlib
import hmac
import http.client
import socket
import urllib.parse

EMPTY_SHA = hashlib.sha256(b"").hexdigest()


def _q(s, safe):
    return urllib.parse.quote(s, safe=safe)


def signing_key(secret, date, region="us-east-1"):
    k = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, "s3", "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


def sign(method, path, query, headers, payload_hash, access, secret, when=None):
    """Adds x-amz-date, x-amz-content-sha256 and Authorization to `headers` (dict, lower-case
    names). `path` is decoded; `query` a list of (name, value)."""
    when = when or datetime.datetime.utcnow()
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    headers["x-amz-date"] = amz_date
    headers["x-amz-content-sha256"] = payload_hash
    names = sorted(headers)
    canonical = "\n".join([
        method, _q(path, "/~"),
        "&".join(f"{_q(k, '-_.~')}={_q(v, '-_.~')}" for k, v in sorted(query)),
        "".join(f"{n}:{' '.join(str(headers[n]).split())}\n" for n in names),
        ";".join(names), payload_hash])
    scope = f"{date}/us-east-1/s3/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                     hashlib.sha256(canonical.encode()).hexdigest()])
    key = signing_key(secret, date)
    sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={access}/{scope}, "
                                f"SignedHeaders={';'.join(names)}, Signature={sig}")
    return key, amz_date, scope, sig


def target(path, query):
    t = _q(path, "/~")
    if query:
        t += "?" + "&".join(f"{_q(k, '-_.~')}={_q(v, '-_.~')}" for k, v in query)
    return t


def request(endpoint, method, path, body=b"", query=(), headers=None, access=None, secret=None,
            payload_hash=None, sign_it=True, when=None, host=None):
    """Returns (status, headers dict, body bytes). `host`: the Host header (default: the
    endpoint's), e.g. a virtual-host-style name; the connection always goes to the endpoint."""
    addr = endpoint.split("//", 1)[1]
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    headers["host"] = host or addr
    if sign_it:
        sign(method, path, list(query), headers,
             payload_hash or hashlib.sha256(body).hexdigest(), access, secret, when)
    conn = http.client.HTTPConnection(addr, timeout=30)
    conn.putrequest(method, target(path, list(query)), skip_host=True,
                    skip_accept_encoding=True)
    for k, v in headers.items():
        conn.putheader(k, v)
    if "content-length" not in headers:
        conn.putheader("content-length", str(len(body)))
    conn.endheaders(body)
    r = conn.getresponse()
    data = r.read()
    out = (r.status, {k.lower(): v for k, v in r.getheaders()}, data)
    conn.close()
    return out


def trailer_signature(key, amz_date, scope, prev, lines):
    """x-amz-trailer-signature of STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER: chained on the
    final chunk's signature, over the trailer lines in canonical form."""
    canonical = "".join(f"{n.strip().lower()}:{v.strip()}\n" for n, v in
                        sorted(line.split(":", 1) for line in lines))
    sts = "\n".join(["AWS4-HMAC-SHA256-TRAILER", amz_date, scope, prev,
                     hashlib.sha256(canonical.encode()).hexdigest()])
    return hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()


def chunked_body(data, chunk, key, amz_date, scope, seed, signed=True, trailer=None,
                 trailer_sig=None):
    """aws-chunked framing of `data`: signed chunks (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, and
    -TRAILER when `trailer` is given: the trailer is signed too, or carries `trailer_sig`) or
    unsigned ones with a trailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER). `trailer`: one line or a
    list of lines."""
    out = b""
    prev = seed
    pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)] + [b""]
    for p in pieces:
        if signed:
            sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, EMPTY_SHA,
                             hashlib.sha256(p).hexdigest()])
            sig = hmac.new(key, sts.encode(), hashlib.sha256).hexdigest()
            out += f"{len(p):x};chunk-signature={sig}\r\n".encode()
            prev = sig
        else:
            out += f"{len(p):x}\r\n".encode()
        if p:
            out += p + b"\r\n"
    if trailer:
        lines = [trailer] if isinstance(trailer, str) else list(trailer)
        for line in lines:
            out += line.encode() + b"\r\n"
        if signed:
            sig = trailer_sig or trailer_signature(key, amz_date, scope, prev, lines)
            out += f"x-amz-trailer-signature:{sig}\r\n".encode()
    out += b"\r\n"
    return out


def raw_exchange(endpoint, data, shutdown_write=True):
    """Sends raw bytes, half-closes, returns everything the server answered."""
    host, port = endpoint.split("//", 1)[1].rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=30)
    s.sendall(data)
    if shutdown_write:
        s.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        got += b
    s.close()
    return got


# ---------------------------------------------------------------- SigV2 (S3 Developer Guide,
# "Signing and authenticating REST requests"), for what no client sends on purpose.
V2_SUBRESOURCES = {"acl", "cors", "delete", "location", "partNumber", "policy", "tagging",
                   "torrent", "uploadId", "uploads", "versionId", "versioning", "versions",
                   "response-content-type", "response-content-disposition"}


def v2_signature(secret, method, path, query, headers, date_line):
    """base64(HMAC-SHA1) over the StringToSign of a request to `path` (decoded) with `query`
    (list of pairs) and `headers` (lower-case names)."""
    import base64
    amz = sorted((k, v.strip()) for k, v in headers.items() if k.startswith("x-amz-"))
    sub = sorted((k, v) for k, v in query if k in V2_SUBRESOURCES)
    resource = _q(path, "/~")
    if sub:
        resource += "?" + "&".join(k if v is None else f"{k}={v}" for k, v in sub)
    sts = "\n".join([method, headers.get("content-md5", ""), headers.get("content-type", ""),
                     date_line] + [f"{k}:{v}" for k, v in amz] + [resource])
    return base64.b64encode(hmac.new(secret.encode(), sts.encode(), hashlib.sha1).digest()).decode()


def request_v2(endpoint, method, path, access, secret, body=b"", query=(), headers=None,
               when=None, signature=None):
    """A SigV2 header-signed request (Date from `when`, default now)."""
    import email.utils
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    when = when or datetime.datetime.utcnow()
    headers["date"] = email.utils.format_datetime(when.replace(tzinfo=datetime.timezone.utc),
                                                  usegmt=True)
    sig = signature or v2_signature(secret, method, path, list(query), headers, headers["date"])
    headers["authorization"] = f"AWS {access}:{sig}"
    return request(endpoint, method, path, body=body, query=query, headers=headers,
                   sign_it=False)


def presigned_v2(endpoint, method, path, access, secret, expires, query=()):
    """(status, headers, body) of a SigV2 query-string request expiring at `expires`."""
    sig = v2_signature(secret, method, path, list(query), {}, str(expires))
    q = list(query) + [("AWSAccessKeyId", access), ("Expires", str(expires)), ("Signature", sig)]
    return request(endpoint, method, path, query=q, sign_it=False)
