// Dataset: images and labels given by JavaScript (Uint8Array views, typically of one Buffer), copied once into memory
// the addon owns, so that a buffer JavaScript later transfers, reuses or frees is never read.
#pragma once
#include <napi.h>

#include <memory>

#include "core/data.h"

namespace nasjs {

class DatasetWrap : public Napi::ObjectWrap<DatasetWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  // new Dataset(images: Uint8Array (n*h*w*c, NHWC), labels: Uint8Array (n), shape: {n,h,w,c}, mean: number[], std:
  // number[]) [sync] Throws ERR_NAS_BAD_ARG for another element type, ERR_NAS_BAD_DATA when a length does not match the
  // shape, a buffer is detached, or mean/std are not finite (std > 0).
  explicit DatasetWrap(const Napi::CallbackInfo& info);
  const nas::Dataset& data() const { return *data_; }
  static DatasetWrap* Unwrap(const Napi::Value& v);  // throws ERR_NAS_BAD_ARG for anything else

 private:
  Napi::Value Size(const Napi::CallbackInfo& info);  // [sync] number of examples
  std::unique_ptr<nas::Dataset> data_;
};

}  // namespace nasjs
