# EC coder benchmark: libgranary's encode/rebuild path vs raw ISA-L (bench/ec.sh runs it).
add_executable(ec_codec_bench ${CMAKE_CURRENT_LIST_DIR}/ec_codec_bench.cpp)
target_include_directories(ec_codec_bench PRIVATE ${PROJECT_SOURCE_DIR})
target_compile_options(ec_codec_bench PRIVATE ${GRANARY_WARNINGS})
target_link_libraries(ec_codec_bench PRIVATE granary_client granary_common PkgConfig::ISAL)
