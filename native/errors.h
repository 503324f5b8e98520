// Errors crossing into JavaScript: an Error with a `code` (ERR_NAS_*) that src/native/errors.ts turns into a NasError.
// Every entry point runs under Guard so that no C++ or LibTorch exception reaches Node (an escaped c10::Error aborts).
#pragma once
#include <napi.h>
#include <torch/torch.h>

#include <string>

#include "core/brief.h"
#include "core/config.h"

namespace nasjs {

inline Napi::Error MakeError(Napi::Env env, const std::string& code, const std::string& message) {
  auto err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

// Maps the current exception to (code, message). Call only inside a catch block.
inline std::pair<std::string, std::string> DescribeCurrentException() {
  try {
    throw;
  } catch (const nas::NasException& e) {
    return {e.code(), e.what()};
  } catch (const c10::Error& e) {
    std::string msg = e.what_without_backtrace();
    const bool oom = msg.find("out of memory") != std::string::npos;
    return {oom ? "ERR_NAS_OUT_OF_MEMORY" : "ERR_NAS_TORCH", "LibTorch: " + msg};
  } catch (const std::bad_alloc&) {
    return {"ERR_NAS_OUT_OF_MEMORY", "out of memory"};
  } catch (const std::exception& e) {
    return {"ERR_NAS_NATIVE", nas::briefError(e)};
  } catch (...) {
    return {"ERR_NAS_NATIVE", "unknown native error"};
  }
}

// Runs f, turning any native exception into a thrown NasError-shaped JS error.
template <typename F>
Napi::Value Guard(Napi::Env env, F&& f) {
  try {
    return f();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    auto [code, message] = DescribeCurrentException();
    throw MakeError(env, code, message);
  }
}

}  // namespace nasjs
