# S3 checksum digests vs memcpy and MD5 on the same buffer (docs/s3.md "Checksums").
if(TARGET granary_s3)
  add_executable(s3_checksum_bench ${CMAKE_CURRENT_LIST_DIR}/s3_checksum_bench.cpp)
  set_target_properties(s3_checksum_bench PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
  target_include_directories(s3_checksum_bench PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_options(s3_checksum_bench PRIVATE ${GRANARY_WARNINGS})
  target_link_libraries(s3_checksum_bench PRIVATE granary_s3 granary_client OpenSSL::Crypto)
endif()
