# Compiler settings shared by every target: warnings, ccache.
find_program(SKD_CCACHE ccache)
if(SKD_CCACHE)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${SKD_CCACHE})
  # PCH + ccache needs these sloppiness settings to get cache hits.
  set(ENV{CCACHE_SLOPPINESS} "pch_defines,time_macros,include_file_mtime,include_file_ctime")
endif()

add_library(skd_warnings INTERFACE)
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  target_compile_options(skd_warnings INTERFACE -Wall -Wextra -Wno-unused-parameter)
  if(SKD_WARNINGS_AS_ERRORS)
    target_compile_options(skd_warnings INTERFACE -Werror)
  endif()
endif()
