#include "dataset_wrap.h"

#include "errors.h"

namespace nasjs {

namespace {
Napi::FunctionReference* gCtor = nullptr;

std::vector<float> Floats(const Napi::Value& v, const char* field) {
  if (!v.IsArray()) throw nas::NasException("ERR_NAS_BAD_ARG", std::string(field) + ": expected an array of numbers");
  auto arr = v.As<Napi::Array>();
  std::vector<float> out;
  for (uint32_t i = 0; i < arr.Length(); ++i) out.push_back(arr.Get(i).As<Napi::Number>().FloatValue());
  return out;
}
}  // namespace

Napi::Function DatasetWrap::Init(Napi::Env env) {
  auto fn = DefineClass(env, "Dataset", {InstanceMethod<&DatasetWrap::Size>("size")});
  gCtor = new Napi::FunctionReference(Napi::Persistent(fn));
  return fn;
}

DatasetWrap* DatasetWrap::Unwrap(const Napi::Value& v) {
  if (!v.IsObject() || !v.As<Napi::Object>().InstanceOf(gCtor->Value())) {
    throw nas::NasException("ERR_NAS_BAD_ARG", "expected a native Dataset");
  }
  return Napi::ObjectWrap<DatasetWrap>::Unwrap(v.As<Napi::Object>());
}

DatasetWrap::DatasetWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DatasetWrap>(info) {
  Guard(info.Env(), [&]() -> Napi::Value {
    if (info.Length() < 5 || !info[0].IsTypedArray() || !info[1].IsTypedArray() || !info[2].IsObject()) {
      throw nas::NasException("ERR_NAS_BAD_ARG", "Dataset(images: Uint8Array, labels: Uint8Array, shape, mean, std)");
    }
    auto images = info[0].As<Napi::Uint8Array>();
    auto labels = info[1].As<Napi::Uint8Array>();
    auto shape = info[2].As<Napi::Object>();
    auto dim = [&](const char* k) { return shape.Get(k).As<Napi::Number>().Int64Value(); };
    const int64_t n = dim("n"), h = dim("h"), w = dim("w"), c = dim("c");
    if (n <= 0 || h <= 0 || w <= 0 || c <= 0 || static_cast<int64_t>(images.ByteLength()) != n * h * w * c ||
        static_cast<int64_t>(labels.ByteLength()) != n) {
      throw nas::NasException("ERR_NAS_BAD_DATA", "images/labels: expected " + std::to_string(n * h * w * c) + " and " +
                                                      std::to_string(n) + " bytes for shape n=" + std::to_string(n) +
                                                      " h=" + std::to_string(h) + " w=" + std::to_string(w) + " c=" +
                                                      std::to_string(c) + ", got " + std::to_string(images.ByteLength()) +
                                                      " and " + std::to_string(labels.ByteLength()));
    }
    data_ = std::make_unique<nas::Dataset>(images.Data(), labels.Data(), n, h, w, c, Floats(info[3], "mean"),
                                           Floats(info[4], "std"));
    images_ = Napi::Persistent(info[0].As<Napi::Object>());
    labels_ = Napi::Persistent(info[1].As<Napi::Object>());
    return info.Env().Undefined();
  });
}

Napi::Value DatasetWrap::Size(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(data_->size()));
}

}  // namespace nasjs
