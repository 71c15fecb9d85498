# Datanode data-protocol benchmark (bench/datanode.sh runs it beside iperf3 and fio).
add_executable(datanode_bench ${CMAKE_CURRENT_LIST_DIR}/datanode_bench.cpp)
target_include_directories(datanode_bench PRIVATE ${PROJECT_SOURCE_DIR})
target_compile_options(datanode_bench PRIVATE ${GRANARY_WARNINGS})
target_link_libraries(datanode_bench PRIVATE granary_datanode granary_common)
