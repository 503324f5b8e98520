// Argument helpers shared by the N-API wrappers: typed reads with errors that name the argument.
#pragma once
#include <napi.h>
#include <torch/torch.h>

#include <cstring>
#include <string>

#include "core/config.h"
#include "core/trainer.h"

namespace nasjs {

using nas::NasException;

inline int64_t IntField(const Napi::Object& o, const char* k, int64_t def) {
  auto v = o.Get(k);
  return v.IsNumber() ? v.As<Napi::Number>().Int64Value() : def;
}
inline double NumField(const Napi::Object& o, const char* k, double def) {
  auto v = o.Get(k);
  return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : def;
}
inline bool BoolField(const Napi::Object& o, const char* k, bool def) {
  auto v = o.Get(k);
  return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : def;
}
inline Napi::Object ObjArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsObject())
    throw NasException("ERR_NAS_BAD_ARG", std::string(what) + ": expected an object");
  return info[i].As<Napi::Object>();
}
inline const char* ArrayTypeName(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array: return "Int8Array";
    case napi_uint8_array: return "Uint8Array";
    case napi_uint8_clamped_array: return "Uint8ClampedArray";
    case napi_int16_array: return "Int16Array";
    case napi_uint16_array: return "Uint16Array";
    case napi_int32_array: return "Int32Array";
    case napi_uint32_array: return "Uint32Array";
    case napi_float32_array: return "Float32Array";
    case napi_float64_array: return "Float64Array";
    default: return "BigInt64Array";
  }
}

// A JS value's type as an error message names it: "Float32Array", "number", "undefined", ...
inline std::string TypeName(const Napi::Value& v) {
  if (v.IsTypedArray()) return ArrayTypeName(v.As<Napi::TypedArray>().TypedArrayType());
  switch (v.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "boolean";
    case napi_number: return "number";
    case napi_string: return "string";
    case napi_function: return "function";
    default: return v.IsArray() ? "Array" : "object";
  }
}

template <typename T>
constexpr napi_typedarray_type kArrayType = napi_uint8_array;
template <>
constexpr napi_typedarray_type kArrayType<Napi::Float32Array> = napi_float32_array;
template <>
constexpr napi_typedarray_type kArrayType<Napi::Float64Array> = napi_float64_array;
template <>
constexpr napi_typedarray_type kArrayType<Napi::Uint32Array> = napi_uint32_array;

// A typed array of exactly T's element type (As<T> alone would reinterpret any typed array's bytes).
template <typename T>
T TypedArg(const Napi::Value& v, const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != kArrayType<T>) {
    throw NasException("ERR_NAS_BAD_ARG",
                       std::string(what) + ": expected a " + ArrayTypeName(kArrayType<T>) + ", got " + TypeName(v));
  }
  return v.As<T>();
}
inline std::string StrArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsString())
    throw NasException("ERR_NAS_BAD_ARG", std::string(what) + ": expected a string");
  return info[i].As<Napi::String>().Utf8Value();
}
inline Napi::Float32Array ToF32(Napi::Env env, const torch::Tensor& t) {
  auto c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  auto out = Napi::Float32Array::New(env, c.numel());
  std::memcpy(out.Data(), c.data_ptr<float>(), c.numel() * sizeof(float));
  return out;
}
// Threads are per OS thread in LibTorch (OpenMP): every worker sets its own.
inline void UseThreads(int n) {
  if (n > 0) at::set_num_threads(n);
}

inline nas::OptimConfig ParseOptim(const Napi::Object& o, nas::OptimConfig d) {
  d.batchSize = IntField(o, "batchSize", d.batchSize);
  d.momentum = NumField(o, "momentum", d.momentum);
  d.weightDecay = NumField(o, "weightDecay", d.weightDecay);
  d.nesterov = BoolField(o, "nesterov", d.nesterov);
  d.cropPad = IntField(o, "cropPad", d.cropPad);
  d.flip = BoolField(o, "flip", d.flip);
  d.seed = static_cast<uint64_t>(IntField(o, "seed", static_cast<int64_t>(d.seed)));
  return d;
}

// Network configuration from a JS object (keys as in native/core/config.h); missing keys keep the defaults.
inline nas::NetConfig ParseNetConfig(const Napi::Object& c) {
  nas::NetConfig cfg;
  cfg.inChannels = IntField(c, "inChannels", cfg.inChannels);
  cfg.imageSize = IntField(c, "imageSize", cfg.imageSize);
  cfg.classes = IntField(c, "classes", cfg.classes);
  cfg.filters = IntField(c, "filters", cfg.filters);
  cfg.stacks = IntField(c, "stacks", cfg.stacks);
  cfg.cellsPerStack = IntField(c, "cellsPerStack", cfg.cellsPerStack);
  cfg.blocks = IntField(c, "blocks", cfg.blocks);
  cfg.ghostBatch = IntField(c, "ghostBatch", cfg.ghostBatch);
  cfg.bnEps = NumField(c, "bnEps", cfg.bnEps);
  cfg.channelsLast = BoolField(c, "channelsLast", cfg.channelsLast);
  if (c.Get("precision").IsString()) {
    const std::string p = c.Get("precision").As<Napi::String>().Utf8Value();
    if (p != "fp32" && p != "bf16")
      throw NasException("ERR_NAS_BAD_CONFIG", "precision: expected 'fp32' or 'bf16', got '" + p + "'");
    cfg.bf16 = p == "bf16";
  }
  if (c.Get("plan").IsString()) cfg.plan = c.Get("plan").As<Napi::String>().Utf8Value();
  cfg.seed = static_cast<uint64_t>(IntField(c, "seed", 0));
  if (c.Get("device").IsString()) cfg.device = c.Get("device").As<Napi::String>().Utf8Value();
  return cfg;
}

// ERR_NAS_CUDA_UNAVAILABLE / ERR_NAS_BAD_CONFIG for a device this build or machine cannot use.
inline void CheckDevice(const nas::NetConfig& cfg) {
  if (cfg.device.rfind("cuda", 0) == 0 && !torch::cuda::is_available()) {
    throw NasException("ERR_NAS_CUDA_UNAVAILABLE", "device: '" + cfg.device + "' requested, but this LibTorch build " +
                                                       "has no CUDA or no GPU is visible; use device 'cpu'");
  }
  if (cfg.device != "cpu" && cfg.device.rfind("cuda", 0) != 0) {
    throw NasException("ERR_NAS_BAD_CONFIG", "device: expected 'cpu' or 'cuda[:n]', got '" + cfg.device + "'");
  }
}

}  // namespace nasjs
