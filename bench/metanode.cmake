# metanode_bench: durable creates/s over gRPC with 16 clients vs RocksDB fillrandom (one JSON).
if(TARGET granary_metanode AND TARGET granary_client)
  add_executable(metanode_bench ${CMAKE_CURRENT_LIST_DIR}/metanode_bench.cpp)
  set_target_properties(metanode_bench PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
  target_compile_options(metanode_bench PRIVATE ${GRANARY_WARNINGS})
  target_link_libraries(metanode_bench PRIVATE granary_metanode granary_client
                        nlohmann_json::nlohmann_json)
endif()

# meta_failover_bench: time from a leader kill to the first successful write, three member
# processes (the test harness starts and kills them).
if(TARGET granary_test_harness)
  add_executable(meta_failover_bench ${CMAKE_CURRENT_LIST_DIR}/meta_failover_bench.cpp)
  set_target_properties(meta_failover_bench PROPERTIES
                        RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
  target_compile_options(meta_failover_bench PRIVATE ${GRANARY_WARNINGS})
  target_link_libraries(meta_failover_bench PRIVATE granary_test_harness granary_client
                        nlohmann_json::nlohmann_json)
endif()
