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

# The same in network namespaces (one per simulated host, shaped links): bench/locality.sh with
# small sizes and CHECK=1 — a warmed host's mount reads >= 95 % locally (its own metric), a
# remote one 0 %, deleting the warm-up empties the warmed host's datanode. Skipped (77) without
# root or network namespaces.
add_test(NAME locality_netns_test
  COMMAND env CHECK=1 DATA_MIB=32 FILES=4 ROUNDS=1 NET_MBIT=1000
          BENCH_DIR=${CMAKE_BINARY_DIR}/locality-netns-test
          bash ${PROJECT_SOURCE_DIR}/bench/locality.sh ${CMAKE_BINARY_DIR})
set_tests_properties(locality_netns_test PROPERTIES LABELS integration TIMEOUT 300
                     SKIP_RETURN_CODE 77 RUN_SERIAL TRUE)
