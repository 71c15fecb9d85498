# Locality and warm-ups (issue 28, docs/locality.md): warm copies on the live data path with
# simulated hosts (datanode host labels), the mount's local-read metric, a full disk on the
# warmed host; the operator's scheduling hint and DatasetWarmup against the API test server.
granary_add_test(warmup_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/warmup_test.cpp
  DEPS granary_test_harness granary_client
  LABELS integration TIMEOUT 300)

granary_add_test(operator_locality_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/operator_locality_test.cpp
  DEPS granary_operator granary_kubeapi granary_test_harness granary_client
  LABELS integration TIMEOUT 180)
target_compile_definitions(operator_locality_test PRIVATE GRANARY_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
target_link_libraries(operator_locality_test PRIVATE yaml-cpp)
