# Metadata HA (docs/metadata-ha.md): a group of three metanode processes under kill -9, SIGSTOP,
# wiped members, membership changes, and a linearizability check; the mount, S3 and libgranary
# as its clients.
granary_add_test(meta_ha_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/meta_ha_test.cpp
  DEPS granary_test_harness granary_client
  LABELS integration TIMEOUT 600)
target_compile_definitions(meta_ha_test PRIVATE GRANARY_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
