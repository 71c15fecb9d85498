# metanode_bench: durable creates/s over gRPC with 16 clients vs RocksDB fillrandom (one JSON).
if(TARGET granary_metanode AND TARGET granary_client)
  add_executable(metanode_bench ${CMAKE_CURRENT_LIST_DIR}/metanode_bench.cpp)
  set_target_properties(metanode_bench PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
  target_compile_options(metanode_bench PRIVATE ${GRANARY_WARNINGS})
  target_link_libraries(metanode_bench PRIVATE granary_metanode granary_client
                        nlohmann_json::nlohmann_json)
endif()
