# Compiler settings shared by every target: warnings, ccache, sanitizers, fuzzing instrumentation.
find_program(SKD_CCACHE ccache)
if(SKD_CCACHE)
  # PCH + ccache needs these sloppiness settings to get cache hits. They must be in the compiler's
  # environment at build time (set(ENV) would only last for the configure step), so the launcher
  # sets them; the base directory makes a second checkout or worktree of the project hit the same
  # cache entries.
  set(CMAKE_CXX_COMPILER_LAUNCHER ${CMAKE_COMMAND} -E env
      "CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime"
      "CCACHE_BASEDIR=${CMAKE_SOURCE_DIR}" ${SKD_CCACHE})
endif()

add_library(skd_warnings INTERFACE)
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  target_compile_options(skd_warnings INTERFACE -Wall -Wextra -Wno-unused-parameter)
  if(SKD_WARNINGS_AS_ERRORS)
    target_compile_options(skd_warnings INTERFACE -Werror)
  endif()
endif()

# Sanitizers (scripts/sanitize.sh) and libFuzzer coverage (scripts/fuzz.sh) apply to every target of
# this project through directory-wide options, never per target: the torch precompiled header is
# built once with skd's flags and reused by the tests and apps, so they must all compile alike.
# Imported third-party libraries (LibTorch, OpenCV, ...) stay uninstrumented.
if(SKD_SANITIZE)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    message(FATAL_ERROR "SKD_SANITIZE needs GCC or Clang (compiler is ${CMAKE_CXX_COMPILER_ID})")
  endif()
  add_compile_options(-fsanitize=${SKD_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${SKD_SANITIZE} -fno-sanitize-recover=all)
  message(STATUS "Sanitizers: ${SKD_SANITIZE}")
endif()
if(SKD_BUILD_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "SKD_BUILD_FUZZ needs clang (libFuzzer); configure with -DCMAKE_CXX_COMPILER=clang++")
  endif()
  # Coverage for libFuzzer in every object; only the fuzz executables link libFuzzer's main
  # (-fsanitize=fuzzer), so the unit tests of the same build keep their own main.
  add_compile_options(-fsanitize=fuzzer-no-link)
  add_link_options(-fsanitize=fuzzer-no-link)
endif()

# skd_unity_by_area(target): a unity build of `target` with one group per source folder (the area),
# except the sources whose SKIP_UNITY_BUILD_INCLUSION is set (they compile alone).
function(skd_unity_by_area target)
  get_target_property(_srcs ${target} SOURCES)
  get_target_property(_dir ${target} SOURCE_DIR)
  foreach(_src ${_srcs})
    get_filename_component(_abs ${_src} ABSOLUTE BASE_DIR ${_dir})
    get_filename_component(_area_dir ${_abs} DIRECTORY)
    get_filename_component(_area ${_area_dir} NAME)
    set_property(SOURCE ${_src} DIRECTORY ${_dir} PROPERTY UNITY_GROUP ${_area})
  endforeach()
  set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_MODE GROUP)
endfunction()
