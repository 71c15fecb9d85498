# Erasure-coded pools end to end (real metanode and datanode processes) and GPU locality.
granary_add_test(ec_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/ec_test.cpp
  DEPS granary_test_harness granary_client
  LABELS integration TIMEOUT 300)

granary_add_test(locality_test
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/locality_test.cpp
  DEPS granary_test_harness granary_client
  LABELS integration TIMEOUT 300)
