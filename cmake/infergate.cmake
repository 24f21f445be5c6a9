# ig_use_beast(TARGET): TARGET includes http/beast.h; link Asio/Beast (compiled once) and
# reuse the one precompiled header.
function(ig_use_beast target)
  target_link_libraries(${target} PUBLIC ig_asio)
  target_precompile_headers(${target} REUSE_FROM ig_beast_pch)
endfunction()

# ig_test(NAME LABEL SOURCES... LIBS ...): a GoogleTest executable registered with CTest.
# LABEL is unit or integration. Tests are discovered after build so each TEST() is its own
# CTest test (parallel with ctest -j).
function(ig_test name label)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS;PROPERTIES" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} GTest::gtest GTest::gmock GTest::gtest_main)
  gtest_discover_tests(${name} PROPERTIES LABELS ${label} ${T_PROPERTIES}
                       DISCOVERY_TIMEOUT 60)
endfunction()

# ig_simd_sources(FILE...): files that use simdjson's on-demand parser get the SIMD target
# flags (see INFERGATE_X86_HASWELL).
function(ig_simd_sources)
  if(IG_SIMD_FLAGS)
    set_source_files_properties(${ARGN} DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}
                                PROPERTIES COMPILE_OPTIONS "${IG_SIMD_FLAGS}"
                                           SKIP_PRECOMPILE_HEADERS ON)
  endif()
endfunction()
