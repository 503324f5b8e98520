// One-line error messages: LibTorch's and Gloo's what() carry a C++ backtrace ("Exception raised from ...", then a
// frame per line), which a user cannot act on. The whole text is kept under NAS_DEBUG=1.
#pragma once
#include <c10/util/Exception.h>

#include <cstdlib>
#include <exception>
#include <string>

namespace nas {

inline std::string briefError(const std::exception& e) {
  const auto* c10 = dynamic_cast<const c10::Error*>(&e);
  std::string msg = c10 != nullptr ? c10->what_without_backtrace() : e.what();
  const char* debug = std::getenv("NAS_DEBUG");
  if (debug != nullptr && std::string(debug) == "1") return msg;
  size_t cut = msg.find("\nException raised from");
  if (cut == std::string::npos) cut = msg.find('\n');
  return cut == std::string::npos ? msg : msg.substr(0, cut);
}

}  // namespace nas
