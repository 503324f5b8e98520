// Dataset: images and labels owned by JavaScript (Uint8Array views, typically of one Buffer), used by C++ in place.
#pragma once
#include <napi.h>

#include <memory>

#include "core/data.h"

namespace nasjs {

class DatasetWrap : public Napi::ObjectWrap<DatasetWrap> {
 public:
  static Napi::Function Init(Napi::Env env);
  // new Dataset(images: Uint8Array (n*h*w*c, NHWC), labels: Uint8Array (n), shape: {n,h,w,c}, mean: number[], std: number[])
  // [sync] Throws ERR_NAS_BAD_DATA when a length does not match the shape.
  explicit DatasetWrap(const Napi::CallbackInfo& info);
  const nas::Dataset& data() const { return *data_; }
  static DatasetWrap* Unwrap(const Napi::Value& v);  // throws ERR_NAS_BAD_ARG for anything else

 private:
  Napi::Value Size(const Napi::CallbackInfo& info);  // [sync] number of examples
  std::unique_ptr<nas::Dataset> data_;
  Napi::ObjectReference images_, labels_;  // keep the memory alive as long as this object
};

}  // namespace nasjs
