# The dashboard in headless Chromium against real processes (docs/dashboard.md "Tests"). Needs
# Debian's chromium and playwright-core from npm (scripts/install-deps.sh); skips without them.
# Screenshots are kept in ${CMAKE_BINARY_DIR}/test-artifacts/dashboard/.
granary_add_test(dashboard_browser_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/dashboard_test.cpp
  DEPS granary_test_harness nlohmann_json::nlohmann_json
  LABELS integration TIMEOUT 150)
target_compile_definitions(dashboard_browser_test PRIVATE
  GRANARY_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
  GRANARY_NPM_DIR="${GRANARY_NPM_DIR}"
  GRANARY_ARTIFACT_DIR="${CMAKE_BINARY_DIR}/test-artifacts")
add_dependencies(dashboard_browser_test granary)
