#include "dataset_wrap.h"

#include <cmath>

#include "args.h"
#include "env_state.h"
#include "errors.h"

namespace nasjs {

namespace {
// mean/std: finite numbers, std > 0 (it divides).
std::vector<float> Floats(const Napi::Value& v, const char* field, bool positive) {
  if (!v.IsArray()) throw nas::NasException("ERR_NAS_BAD_ARG", std::string(field) + ": expected an array of numbers");
  auto arr = v.As<Napi::Array>();
  std::vector<float> out;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value x = arr.Get(i);
    const double d = x.IsNumber() ? x.As<Napi::Number>().DoubleValue() : std::nan("");
    if (!std::isfinite(d) || (positive && d <= 0)) {
      throw nas::NasException("ERR_NAS_BAD_DATA", std::string(field) + "[" + std::to_string(i) +
                                                      "]: expected a finite " + (positive ? "number > 0" : "number") +
                                                      ", got " + x.ToString().Utf8Value());
    }
    out.push_back(static_cast<float>(d));
  }
  return out;
}

// A Uint8Array (a Buffer is one) that is not detached; anything else is refused by its type name.
Napi::Uint8Array Bytes(const Napi::Value& v, const char* field) {
  auto a = TypedArg<Napi::Uint8Array>(v, field);
  if (a.ArrayBuffer().IsDetached()) {
    throw nas::NasException("ERR_NAS_BAD_DATA", std::string(field) + ": its ArrayBuffer is detached (transferred)");
  }
  return a;
}
}  // namespace

Napi::Function DatasetWrap::Init(Napi::Env env) {
  auto fn = DefineClass(env, "Dataset", {InstanceMethod<&DatasetWrap::Size>("size")});
  State(env).datasetCtor = Napi::Persistent(fn);
  return fn;
}

DatasetWrap* DatasetWrap::Unwrap(const Napi::Value& v) {
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(State(v.Env()).datasetCtor.Value())) {
    throw nas::NasException("ERR_NAS_BAD_ARG", "expected a native Dataset");
  }
  return Napi::ObjectWrap<DatasetWrap>::Unwrap(v.As<Napi::Object>());
}

DatasetWrap::DatasetWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DatasetWrap>(info) {
  Guard(info.Env(), [&]() -> Napi::Value {
    if (info.Length() < 5 || !info[2].IsObject()) {
      throw nas::NasException("ERR_NAS_BAD_ARG",
                              "Dataset(images: Uint8Array | {file, offset}, labels: Uint8Array, shape, mean, std)");
    }
    auto labels = Bytes(info[1], "labels");
    auto shape = info[2].As<Napi::Object>();
    auto dim = [&](const char* k) { return shape.Get(k).As<Napi::Number>().Int64Value(); };
    const int64_t n = dim("n"), h = dim("h"), w = dim("w"), c = dim("c");
    if (info[0].IsObject() && !info[0].IsTypedArray()) {
      // Pixels in a file ({file, offset}): read a batch at a time, never loaded whole.
      auto src = info[0].As<Napi::Object>();
      const Napi::Value file = src.Get("file");
      const Napi::Value offset = src.Get("offset");
      if (!file.IsString() || !offset.IsNumber() || offset.As<Napi::Number>().Int64Value() < 0) {
        throw nas::NasException("ERR_NAS_BAD_ARG",
                                "images: expected a Uint8Array or {file: string, offset: number >= 0}");
      }
      if (n <= 0 || h <= 0 || w <= 0 || c <= 0 || static_cast<int64_t>(labels.ByteLength()) != n) {
        throw nas::NasException("ERR_NAS_BAD_DATA", "labels: expected " + std::to_string(n) + " bytes, got " +
                                                        std::to_string(labels.ByteLength()));
      }
      const int64_t at = offset.As<Napi::Number>().Int64Value();
      auto pixels = std::make_shared<const nas::PixelFile>(file.As<Napi::String>().Utf8Value(), at + n * h * w * c);
      data_ = std::make_unique<nas::Dataset>(std::move(pixels), at, labels.Data(), n, h, w, c,
                                             Floats(info[3], "mean", false), Floats(info[4], "std", true));
      return info.Env().Undefined();
    }
    auto images = Bytes(info[0], "images");
    if (n <= 0 || h <= 0 || w <= 0 || c <= 0 || static_cast<int64_t>(images.ByteLength()) != n * h * w * c ||
        static_cast<int64_t>(labels.ByteLength()) != n) {
      throw nas::NasException("ERR_NAS_BAD_DATA",
                              "images/labels: expected " + std::to_string(n * h * w * c) + " and " + std::to_string(n) +
                                  " bytes for shape n=" + std::to_string(n) + " h=" + std::to_string(h) +
                                  " w=" + std::to_string(w) + " c=" + std::to_string(c) + ", got " +
                                  std::to_string(images.ByteLength()) + " and " + std::to_string(labels.ByteLength()));
    }
    // Copied once: JavaScript may transfer (detach) or reuse its buffers while a job reads the set.
    data_ = std::make_unique<nas::Dataset>(images.Data(), labels.Data(), n, h, w, c, Floats(info[3], "mean", false),
                                           Floats(info[4], "std", true));
    return info.Env().Undefined();
  });
}

Napi::Value DatasetWrap::Size(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(data_->size()));
}

}  // namespace nasjs
