#include "dashboard/assets/assets.h"

#include <gtest/gtest.h>

#include <string>

namespace granary::dashboard {
namespace {

TEST(AssetsTest, ServeThePageAndEveryFileItLoadsFromTheBinary) {
  const Asset* page = FindAsset("/");
  ASSERT_NE(page, nullptr);
  EXPECT_EQ(FindAsset("/index.html"), page);
  EXPECT_EQ(page->content_type, "text/html; charset=utf-8");
  const std::string html(page->body);
  for (const char* path : {"/assets/app.js", "/assets/style.css", "/assets/uPlot.iife.min.js",
                           "/assets/uPlot.min.css", "/assets/favicon.svg"}) {
    const Asset* a = FindAsset(path);
    ASSERT_NE(a, nullptr) << path;
    EXPECT_FALSE(a->body.empty()) << path;
    EXPECT_NE(html.find(path), std::string::npos) << "the page does not load " << path;
  }
  EXPECT_EQ(FindAsset("/assets/missing.js"), nullptr);
}

TEST(AssetsTest, LoadNothingFromElsewhere) {
  // The cluster may be offline: no CDN, no absolute URL in what the page loads.
  for (const Asset& a : EmbeddedAssets()) {
    if (a.path.find("uPlot") != std::string_view::npos) continue;  // the library's own comments
    const std::string body(a.body);
    EXPECT_EQ(body.find("src=\"http"), std::string::npos) << a.path;
    EXPECT_EQ(body.find("href=\"http"), std::string::npos) << a.path;
  }
}

}  // namespace
}  // namespace granary::dashboard
