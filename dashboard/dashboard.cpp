#include "dashboard/dashboard.h"

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "client/meta_client.h"
#include "common/log.h"
#include "dashboard/assets/assets.h"
#include "dashboard/io_view.h"
#include "dashboard/status.h"

namespace granary::dashboard {

namespace {

using Reply = std::function<void(AdminResponse)>;

// The page may run no inline script and load nothing from elsewhere (the cluster may be offline
// and the admin port carries no data: DESIGN §8).
constexpr const char* kPolicy =
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "connect-src 'self'; frame-ancestors 'none'";

AdminResponse Json(int status, const nlohmann::json& body) {
  AdminResponse r;
  r.status = status;
  // Labels are free text: invalid UTF-8 must not throw.
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  r.content_type = "application/json";
  r.headers = {{"Cache-Control", "no-store"}, {"X-Content-Type-Options", "nosniff"}};
  return r;
}

AdminResponse Error(int status, const std::string& message) {
  return Json(status, {{"error", message}});
}

}  // namespace

struct Dashboard::Impl {
  DashboardOptions options;
  std::unique_ptr<client::MetaClient> meta;

  // One worker thread and a short queue: a page asks every few seconds, and a metanode call may
  // take up to the deadline; more requests than that waiting means nobody is served in time.
  static constexpr size_t kMaxQueued = 16;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::function<void()>> queue;
  bool stopping = false;
  std::thread worker;

  // Worker thread only.
  nlohmann::json cached;
  std::chrono::steady_clock::time_point cached_at;

  void Enqueue(std::function<void()> job, const Reply& reply) {
    {
      std::lock_guard lock(mu);
      if (!stopping && queue.size() < kMaxQueued) {
        queue.push_back(std::move(job));
        cv.notify_one();
        return;
      }
    }
    reply(Error(503, "dashboard busy"));
  }

  void Run() {
    std::unique_lock lock(mu);
    while (true) {
      cv.wait(lock, [&] { return stopping || !queue.empty(); });
      if (queue.empty()) return;  // stopping, nothing left
      auto job = std::move(queue.front());
      queue.pop_front();
      lock.unlock();
      job();
      lock.lock();
    }
  }

  AdminResponse Status() {
    const auto now = std::chrono::steady_clock::now();
    if (!cached.is_null() && now - cached_at < options.cache) return Json(200, cached);
    auto doc = BuildStatus(*meta, options.meta);
    if (!doc.ok()) {
      GLOG_DEBUG("event=dashboard_status_failed error=\"{}\"", doc.status().ToString());
      return Error(503, doc.status().ToString());
    }
    cached = std::move(*doc);
    cached_at = now;
    return Json(200, cached);
  }

  AdminResponse Io() {
    auto history = FetchIoHistory(*meta);
    if (!history.ok()) return Error(503, history.status().ToString());
    return Json(200, IoSeries(*history));
  }

  void Api(const std::string& target, const Reply& reply) {
    const std::string path = target.substr(0, target.find('?'));
    if (path == "/api/status") {
      Enqueue([this, reply] { reply(Status()); }, reply);
    } else if (path == "/api/io") {
      Enqueue([this, reply] { reply(Io()); }, reply);
    } else {
      reply(Error(404, "no such API: " + path));
    }
  }

  static void Page(const std::string& target, const Reply& reply) {
    const std::string path = target.substr(0, target.find('?'));
    const Asset* asset = FindAsset(path);
    if (asset == nullptr) {
      AdminResponse r;
      r.status = 404;
      r.body = "not found\n";
      return reply(std::move(r));
    }
    AdminResponse r;
    r.body = std::string(asset->body);
    r.content_type = std::string(asset->content_type);
    r.headers = {{"Content-Security-Policy", kPolicy},
                 {"X-Content-Type-Options", "nosniff"},
                 // Built into this binary: a new binary may bring new assets under the same name.
                 {"Cache-Control", "no-cache"}};
    reply(std::move(r));
  }
};

Dashboard::Dashboard(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<Dashboard>> Dashboard::Attach(AdminServer& admin, DashboardOptions options) {
  auto impl = std::make_shared<Impl>();
  impl->options = std::move(options);
  client::MetaClientOptions mo;
  mo.address = impl->options.meta;
  mo.deadline = impl->options.deadline;
  mo.attempt_timeout = std::min(impl->options.deadline, std::chrono::milliseconds(2000));
  mo.keep_alive = false;  // reads only: no session to keep
  auto meta = client::MetaClient::Connect(mo);
  GRANARY_TRY(meta);
  impl->meta = std::move(*meta);
  Impl* raw = impl.get();
  impl->worker = std::thread([raw] { raw->Run(); });
  admin.AddPrefixHandler("/",
                         [](const std::string& target, Reply reply) { Impl::Page(target, reply); });
  admin.AddPrefixHandler(
      "/api/", [impl](const std::string& target, Reply reply) { impl->Api(target, reply); });
  return std::unique_ptr<Dashboard>(new Dashboard(std::move(impl)));
}

Dashboard::~Dashboard() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->worker.joinable()) impl_->worker.join();
}

}  // namespace granary::dashboard
