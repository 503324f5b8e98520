# The C++ standard the addon is compiled with, chosen from the LibTorch found: C++20 from PyTorch 2.13 on (its
# ATen/ATen.h and torch/all.h stop with "#error C++20 or later compatible compiler is required"), C++17 before
# (Debian's 1.13 included). CMakeLists.txt includes this file; test/unit/cmake.test.ts runs it in script mode:
#   cmake -DNAS_TORCH_VERSION=2.13.0 -P cmake/CxxStandard.cmake   # prints 20
function(nas_cxx_standard torch_version out)
  if(torch_version VERSION_GREATER_EQUAL 2.13)
    set(${out} 20 PARENT_SCOPE)
  else()
    set(${out} 17 PARENT_SCOPE)
  endif()
endfunction()

if(CMAKE_SCRIPT_MODE_FILE AND DEFINED NAS_TORCH_VERSION)
  nas_cxx_standard("${NAS_TORCH_VERSION}" standard)
  message(NOTICE "${standard}")
endif()
