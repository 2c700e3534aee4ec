# Third-party dependencies. Debian packages by default; a LibTorch 2.x is picked up through
# CMAKE_PREFIX_PATH (python3 -c 'import torch;print(torch.utils.cmake_prefix_path)').
find_package(Torch REQUIRED)
get_target_property(SKD_TORCH_CXX_STANDARD torch CXX_STANDARD)
if(SKD_TORCH_CXX_STANDARD AND SKD_TORCH_CXX_STANDARD GREATER CMAKE_CXX_STANDARD)
  set(CMAKE_CXX_STANDARD ${SKD_TORCH_CXX_STANDARD})
endif()
# A CUDA LibTorch (a PyTorch wheel built with CUDA) has the torch_cuda target.
if(TARGET torch_cuda)
  set(SKD_TORCH_CUDA ON)
else()
  set(SKD_TORCH_CUDA OFF)
endif()
message(STATUS "LibTorch ${Torch_VERSION} from ${Torch_DIR} (CUDA: ${SKD_TORCH_CUDA}, C++${CMAKE_CXX_STANDARD})")
# ATen's intra-op parallelism (at::parallel_for, used by skd::models::batched_matmul) is inline OpenMP
# code in LibTorch's headers: compiled without OpenMP it runs the whole range on the calling thread.
# batched_matmul splits attention's products only on a LibTorch without MKL (Debian's: at::bmm there
# loops over the matrices on one thread), so where this LibTorch's parallel backend is OpenMP and it
# has no MKL (ATen/Config.h), every target compiles with OpenMP: directory-wide, as the sanitizer
# flags, because the torch precompiled header is shared. (A wheel has MKL and bundles its own
# libgomp: it builds as before.)
find_file(SKD_ATEN_CONFIG ATen/Config.h PATHS ${TORCH_INCLUDE_DIRS} NO_DEFAULT_PATH)
set(SKD_ATEN_OPENMP OFF)
if(SKD_ATEN_CONFIG)
  file(STRINGS "${SKD_ATEN_CONFIG}" _aten_openmp REGEX "^#define AT_PARALLEL_OPENMP 1")
  file(STRINGS "${SKD_ATEN_CONFIG}" _aten_mkl REGEX "^#define AT_MKL_ENABLED\\(\\) 1")
  # GCC's OpenMP only: the runtime LibTorch's ATen was built with (libgomp); clang's libomp beside
  # it would be a second OpenMP runtime in the process (the clang sanitizer/fuzz builds do without).
  if(_aten_openmp AND NOT _aten_mkl AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    set(SKD_ATEN_OPENMP ON)
  endif()
endif()
set(SKD_WITH_OPENMP OFF)
if(SKD_ATEN_OPENMP)
  find_package(OpenMP COMPONENTS CXX)
  if(OpenMP_CXX_FOUND)
    # Compiled everywhere; linked through skd (src/CMakeLists.txt), whose users get both.
    set(SKD_WITH_OPENMP ON)
    add_compile_options($<$<COMPILE_LANGUAGE:CXX>:${OpenMP_CXX_FLAGS}>)
    message(STATUS "ATen parallel backend OpenMP: compiling with ${OpenMP_CXX_FLAGS}")
  else()
    message(STATUS "ATen parallel backend OpenMP, but no OpenMP for this compiler: at::parallel_for in "
                   "this project's code runs on one thread")
  endif()
endif()
# PyTorch wheels' libtorch.so exports its own copies of std::filesystem functions (built by another
# GCC); resolved before libstdc++'s, they crash (remove_all calls a null function). libstdc++ first
# among every binary's needed libraries makes the system's copies win.
if(Torch_VERSION VERSION_GREATER_EQUAL 2 AND CMAKE_SYSTEM_NAME STREQUAL "Linux" AND CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  add_link_options("LINKER:--push-state,--no-as-needed,-lstdc++,--pop-state")
endif()
# torch_cpu exports USE_C10D_GLOO, but the wheels ship no gloo headers: ProcessGroupGloo.hpp then
# needs another copy of them (Debian's libgloo-dev). Without any, the build has no Gloo backend.
find_path(SKD_GLOO_INCLUDE_DIR gloo/rendezvous/store.h)
if(SKD_GLOO_INCLUDE_DIR)
  set(SKD_WITH_GLOO ON)
else()
  set(SKD_WITH_GLOO OFF)
  message(STATUS "No gloo headers (libgloo-dev): the build has no Gloo process group")
endif()
find_package(nlohmann_json 3 REQUIRED)
find_package(spdlog REQUIRED)
find_package(ZLIB REQUIRED)
find_package(Threads REQUIRED)
if(SKD_BUILD_APPS OR SKD_BUILD_BENCH)  # the apps' and the benchmarks' command lines
  find_package(CLI11 CONFIG QUIET)
  if(NOT CLI11_FOUND)
    find_path(CLI11_INCLUDE_DIR CLI/CLI.hpp REQUIRED)
    add_library(CLI11::CLI11 INTERFACE IMPORTED)
    set_target_properties(CLI11::CLI11 PROPERTIES INTERFACE_INCLUDE_DIRECTORIES ${CLI11_INCLUDE_DIR})
  endif()
endif()
# Image decoding. Off only for builds that need no image folders (e.g. a GPU box without the
# -dev packages); decode_image then throws.
if(SKD_WITH_OPENCV)
  find_package(OpenCV REQUIRED COMPONENTS core imgproc imgcodecs)
endif()
# JPEG decoding straight into RGB (faster than OpenCV's BGR path, identical pixels to PIL).
find_package(JPEG)
# ONNX export (skd-export): Debian's libonnx-dev (ONNX 1.12, opset <= 17) and protobuf. Optional:
# on by default when found; without it skd-export says it was built without ONNX.
find_package(Protobuf QUIET)
find_package(ONNX CONFIG QUIET)
if(ONNX_FOUND AND Protobuf_FOUND)
  set(_skd_onnx_default ON)
else()
  set(_skd_onnx_default OFF)
endif()
option(SKD_WITH_ONNX "Build the ONNX export (needs libonnx-dev, libprotobuf-dev)" ${_skd_onnx_default})
if(SKD_WITH_ONNX AND NOT (ONNX_FOUND AND Protobuf_FOUND))
  message(FATAL_ERROR "SKD_WITH_ONNX=ON but ONNX/protobuf were not found (apt-get install libonnx-dev libprotobuf-dev)")
endif()
message(STATUS "ONNX export (skd-export): ${SKD_WITH_ONNX}")
