# Placement mapping time (Google Benchmark): build/update/balance a PG map, look up members.
if(TARGET granary_placement)
  add_executable(placement_bench ${CMAKE_CURRENT_LIST_DIR}/placement_bench.cpp)
  set_target_properties(placement_bench PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
  target_include_directories(placement_bench PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_options(placement_bench PRIVATE ${GRANARY_WARNINGS})
  target_link_libraries(placement_bench PRIVATE granary_placement benchmark::benchmark_main)
endif()
