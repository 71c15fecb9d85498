# EC coder benchmark: libgranary's encode/rebuild path vs raw ISA-L (bench/ec.sh runs it).
if(TARGET granary_client)
  add_executable(ec_codec_bench ${CMAKE_CURRENT_LIST_DIR}/ec_codec_bench.cpp)
  set_target_properties(ec_codec_bench PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bench)
  target_include_directories(ec_codec_bench PRIVATE ${PROJECT_SOURCE_DIR})
  target_compile_options(ec_codec_bench PRIVATE ${GRANARY_WARNINGS})
  target_link_libraries(ec_codec_bench PRIVATE granary_client granary_common PkgConfig::ISAL)
endif()
