// Native memory: buffers are allocated here and freed explicitly by the engine's memory scopes.
//
// alloc() returns an owner object; `owner.h` is the handle every kernel takes: a napi external
// carrying a slot number and a generation (not a pointer), so a stale handle is refused ("freed
// buffer"), never read, once its slot is reused. The owner wraps the slot with a finaliser — the
// safety net for a buffer the engine never frees — and free(owner) cancels that finaliser
// (napi_remove_wrap) while releasing the memory. Nothing of a freed buffer is left waiting: Node
// runs Node-API finalisers only when the event loop turns (queued behind a SetImmediate), and
// with one finaliser per buffer a loop that never yields — a plain `for (…) trainStep()` — piled
// up the finaliser record of every buffer it ever made (resident memory grew ~20 KB a step
// while live buffers stayed flat). A JS FinalizationRegistry has the same problem (measured).
#include "common.h"
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <vector>

namespace sw {

static std::atomic<int64_t> g_liveBytes{0};
static std::atomic<int64_t> g_liveBuffers{0};
static std::atomic<int64_t> g_peakBytes{0};

static void releaseData(Buffer* b) {
  if (b->data) {
    std::free(b->data);
    b->data = nullptr;
    g_liveBytes -= static_cast<int64_t>(b->bytes);
    g_liveBuffers -= 1;
  }
}

// Slots never move (deque), so a Buffer* stays valid for the duration of a kernel call.
static std::deque<Buffer> g_slots;
static std::vector<uint32_t> g_freeSlots;

static void retire(Buffer& b, uint32_t slot) {
  releaseData(&b);
  b.live = false;
  b.gen += 1;
  g_freeSlots.push_back(slot);
}

// A handle's payload: generation in the high 32 bits, slot + 1 in the low 32 (never null).
static void* encodeHandle(uint32_t slot, uint32_t gen) {
  return reinterpret_cast<void*>((static_cast<uintptr_t>(gen) << 32) | (static_cast<uintptr_t>(slot) + 1));
}

static Buffer* decodeLive(void* p, uint32_t* slotOut) {
  uintptr_t bits = reinterpret_cast<uintptr_t>(p);
  uint64_t slot = (bits & 0xffffffffu) - 1;
  uint32_t gen = static_cast<uint32_t>(bits >> 32);
  if (slot >= g_slots.size()) return nullptr;
  Buffer& b = g_slots[slot];
  *slotOut = static_cast<uint32_t>(slot);
  return b.live && b.gen == gen ? &b : nullptr;
}

// The safety net: an owner garbage-collected without free() releases its buffer.
static void finalizeOwner(napi_env, void* payload, void*) {
  uint32_t slot = 0;
  if (Buffer* b = decodeLive(payload, &slot)) retire(*b, slot);
}

// The live buffer a handle names, or nullptr when it was freed (or is not ours).
static Buffer* lookupHandle(napi_env env, napi_value v, bool* isExternal, uint32_t* slotOut = nullptr) {
  void* p = nullptr;
  *isExternal = napi_get_value_external(env, v, &p) == napi_ok && p != nullptr;
  if (!*isExternal) return nullptr;
  uint32_t slot = 0;
  Buffer* b = decodeLive(p, &slot);
  if (slotOut) *slotOut = slot;
  return b;
}

Args::Args(napi_env e, napi_callback_info info, const char* name) : env(e), kernel(name) {
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) throw KernelError("cannot read arguments");
}

bool Args::isNullish(size_t i) const {
  if (i >= argc) return true;
  napi_valuetype t;
  napi_typeof(env, argv[i], &t);
  return t == napi_null || t == napi_undefined;
}

Buffer* Args::buffer(size_t i) const {
  if (i >= argc) throw KernelError("argument " + std::to_string(i) + " missing (expected a buffer)");
  bool isExternal = false;
  Buffer* b = lookupHandle(env, argv[i], &isExternal);
  if (!isExternal) throw KernelError("argument " + std::to_string(i) + " is not a native buffer");
  if (!b) throw KernelError("argument " + std::to_string(i) + " is a freed buffer");
  return b;
}

float* Args::f32OrNull(size_t i) const { return isNullish(i) ? nullptr : f32(i); }
int32_t* Args::i32OrNull(size_t i) const { return isNullish(i) ? nullptr : i32(i); }

int64_t Args::integer(size_t i) const {
  double v = number(i);
  return static_cast<int64_t>(v);
}

double Args::number(size_t i) const {
  if (i >= argc) throw KernelError("argument " + std::to_string(i) + " missing (expected a number)");
  double v;
  if (napi_get_value_double(env, argv[i], &v) != napi_ok) throw KernelError("argument " + std::to_string(i) + " is not a number");
  return v;
}

bool Args::boolean(size_t i) const {
  if (i >= argc) throw KernelError("argument " + std::to_string(i) + " missing (expected a boolean)");
  bool v;
  if (napi_get_value_bool(env, argv[i], &v) != napi_ok) throw KernelError("argument " + std::to_string(i) + " is not a boolean");
  return v;
}

std::vector<int64_t> Args::ints(size_t i) const {
  if (i >= argc) throw KernelError("argument " + std::to_string(i) + " missing (expected an array)");
  uint32_t n;
  if (napi_get_array_length(env, argv[i], &n) != napi_ok) throw KernelError("argument " + std::to_string(i) + " is not an array");
  std::vector<int64_t> out(n);
  for (uint32_t k = 0; k < n; k++) {
    napi_value e;
    napi_get_element(env, argv[i], k, &e);
    double v;
    if (napi_get_value_double(env, e, &v) != napi_ok) throw KernelError("argument " + std::to_string(i) + " holds a non-number");
    out[k] = static_cast<int64_t>(v);
  }
  return out;
}

std::vector<double> Args::numbers(size_t i) const {
  if (i >= argc) throw KernelError("argument " + std::to_string(i) + " missing (expected an array)");
  uint32_t n;
  if (napi_get_array_length(env, argv[i], &n) != napi_ok) throw KernelError("argument " + std::to_string(i) + " is not an array");
  std::vector<double> out(n);
  for (uint32_t k = 0; k < n; k++) {
    napi_value e;
    napi_get_element(env, argv[i], k, &e);
    if (napi_get_value_double(env, e, &out[k]) != napi_ok) throw KernelError("argument " + std::to_string(i) + " holds a non-number");
  }
  return out;
}

std::vector<Buffer*> Args::buffers(size_t i) const {
  if (i >= argc) throw KernelError("argument " + std::to_string(i) + " missing (expected an array of buffers)");
  uint32_t n;
  if (napi_get_array_length(env, argv[i], &n) != napi_ok) throw KernelError("argument " + std::to_string(i) + " is not an array");
  std::vector<Buffer*> out(n);
  for (uint32_t k = 0; k < n; k++) {
    napi_value e;
    napi_get_element(env, argv[i], k, &e);
    bool isExternal = false;
    Buffer* b = lookupHandle(env, e, &isExternal);
    if (!isExternal) throw KernelError("argument " + std::to_string(i) + " element " + std::to_string(k) + " is not a native buffer");
    if (!b) throw KernelError("argument " + std::to_string(i) + " element " + std::to_string(k) + " is a freed buffer");
    out[k] = b;
  }
  return out;
}

std::string Args::str(size_t i) const {
  if (i >= argc) throw KernelError("argument " + std::to_string(i) + " missing (expected a string)");
  char buf[256];
  size_t len;
  if (napi_get_value_string_utf8(env, argv[i], buf, sizeof buf, &len) != napi_ok) throw KernelError("argument " + std::to_string(i) + " is not a string");
  return std::string(buf, len);
}

napi_value undefinedValue(napi_env env) {
  napi_value v;
  napi_get_undefined(env, &v);
  return v;
}

napi_value numberValue(napi_env env, double x) {
  napi_value v;
  napi_create_double(env, x, &v);
  return v;
}

void exportFunction(napi_env env, napi_value exports, const char* name, napi_callback fn) {
  napi_value f;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, nullptr, &f);
  napi_set_named_property(env, exports, name, f);
}

// Typed-array access for copies between JS and native memory.
static void typedArrayBytes(napi_env env, napi_value v, void** data, size_t* bytes) {
  napi_typedarray_type type;
  size_t length;
  napi_value ab;
  size_t offset;
  if (napi_get_typedarray_info(env, v, &type, &length, data, &ab, &offset) != napi_ok)
    throw KernelError("expected a typed array");
  size_t item = 1;
  switch (type) {
    case napi_float32_array: case napi_int32_array: case napi_uint32_array: item = 4; break;
    case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: item = 8; break;
    case napi_int16_array: case napi_uint16_array: item = 2; break;
    default: item = 1;
  }
  *bytes = length * item;
}

}  // namespace sw

using namespace sw;

// alloc(bytes, zero = true) -> buffer. Memory is zero-filled so nothing reads garbage by accident,
// unless zero is false: then the caller (a kernel output written in full) promises to write every
// byte, and no pass over memory is spent on zeros.
static napi_value Alloc(napi_env env, napi_callback_info info) {
  return guard(env, "alloc", [&]() -> napi_value {
    Args a(env, info, "alloc");
    int64_t bytes = a.integer(0);
    if (bytes < 0) throw KernelError("negative size");
    void* data = nullptr;
    if (bytes > 0) {
      // calloc: large blocks come straight from zeroed pages (no single-threaded memset of
      // hundreds of MB); 16-byte alignment is enough for the unaligned AVX loads we use.
      const bool zero = a.argc < 2 || a.isNullish(1) || a.boolean(1);
      data = zero ? std::calloc(static_cast<size_t>(bytes), 1) : std::malloc(static_cast<size_t>(bytes));
      // STACKWISE_POISON_OUTPUTS=1 (for tests): outputs start as NaN, so an element a kernel
      // failed to write shows up in the comparison with the reference backend.
      static const bool poison = [] { const char* e = std::getenv("STACKWISE_POISON_OUTPUTS"); return e && e[0] == '1'; }();
      if (data && !zero && poison) std::memset(data, 0xff, static_cast<size_t>(bytes));
      if (!data) throw KernelError("out of memory allocating " + std::to_string(bytes) + " bytes");
    }
    uint32_t slot;
    if (!g_freeSlots.empty()) {
      slot = g_freeSlots.back();
      g_freeSlots.pop_back();
    } else {
      if (g_slots.size() >= 0xfffffffeu) { std::free(data); throw KernelError("too many live buffers"); }
      slot = static_cast<uint32_t>(g_slots.size());
      g_slots.push_back(Buffer{nullptr, 0, 0, false});
    }
    Buffer& b = g_slots[slot];
    b.data = data;
    b.bytes = static_cast<size_t>(bytes);
    b.live = true;
    if (bytes > 0) {
      int64_t live = (g_liveBytes += bytes);
      g_liveBuffers += 1;
      int64_t peak = g_peakBytes.load();
      while (live > peak && !g_peakBytes.compare_exchange_weak(peak, live)) {}
    }
    void* payload = encodeHandle(slot, b.gen);
    napi_value handle, owner;
    if (napi_create_external(env, payload, nullptr, nullptr, &handle) != napi_ok ||
        napi_create_object(env, &owner) != napi_ok ||
        napi_set_named_property(env, owner, "h", handle) != napi_ok ||
        napi_wrap(env, owner, payload, finalizeOwner, nullptr, nullptr) != napi_ok) {
      retire(b, slot);
      throw KernelError("cannot create a buffer handle");
    }
    return owner;
  });
}

// free(owner): releases the memory now, cancels the owner's finaliser and retires the handle
// (its slot is reused under a new generation). Freeing twice does nothing.
static napi_value Free(napi_env env, napi_callback_info info) {
  return guard(env, "free", [&]() -> napi_value {
    Args a(env, info, "free");
    napi_valuetype t;
    if (a.argc < 1 || napi_typeof(env, a.argv[0], &t) != napi_ok || t != napi_object) throw KernelError("not a buffer owner");
    void* payload = nullptr;
    if (napi_remove_wrap(env, a.argv[0], &payload) != napi_ok || payload == nullptr) return undefinedValue(env);  // freed before
    uint32_t slot = 0;
    if (Buffer* b = decodeLive(payload, &slot)) retire(*b, slot);
    return undefinedValue(env);
  });
}

// write(buffer, typedArray, byteOffset)
static napi_value Write(napi_env env, napi_callback_info info) {
  return guard(env, "write", [&]() -> napi_value {
    Args a(env, info, "write");
    Buffer* b = a.buffer(0);
    void* src; size_t n;
    typedArrayBytes(env, a.argv[1], &src, &n);
    int64_t off = a.argc > 2 ? a.integer(2) : 0;
    if (off < 0 || static_cast<size_t>(off) + n > b->bytes) throw KernelError("write of " + std::to_string(n) + " bytes at " + std::to_string(off) + " overflows a buffer of " + std::to_string(b->bytes));
    if (n) std::memcpy(static_cast<char*>(b->data) + off, src, n);
    return undefinedValue(env);
  });
}

// read(buffer, typedArray, byteOffset): copies native memory into the typed array.
static napi_value Read(napi_env env, napi_callback_info info) {
  return guard(env, "read", [&]() -> napi_value {
    Args a(env, info, "read");
    Buffer* b = a.buffer(0);
    void* dst; size_t n;
    typedArrayBytes(env, a.argv[1], &dst, &n);
    int64_t off = a.argc > 2 ? a.integer(2) : 0;
    if (off < 0 || static_cast<size_t>(off) + n > b->bytes) throw KernelError("read of " + std::to_string(n) + " bytes at " + std::to_string(off) + " overflows a buffer of " + std::to_string(b->bytes));
    if (n) std::memcpy(dst, static_cast<char*>(b->data) + off, n);
    return undefinedValue(env);
  });
}

// copy(src, dst, srcByteOffset, dstByteOffset, bytes)
static void copy_body(Args& a) {
  Buffer* s = a.buffer(0);
  Buffer* d = a.buffer(1);
  int64_t so = a.integer(2), dof = a.integer(3), n = a.integer(4);
  if (so < 0 || dof < 0 || n < 0 || static_cast<size_t>(so + n) > s->bytes || static_cast<size_t>(dof + n) > d->bytes)
    throw KernelError("copy out of range");
  if (n) std::memmove(static_cast<char*>(d->data) + dof, static_cast<char*>(s->data) + so, n);
}
SW_KERNEL(copy, "copy")

// fill(buffer, value, count) for float32 buffers
static void fill_body(Args& a) {
  float* p = a.f32(0);
  float v = static_cast<float>(a.number(1));
  int64_t n = a.integer(2);
  parallelFor(n, n, [&](int64_t i) { p[i] = v; });
}
SW_KERNEL(fill, "fill")

// fillInt(buffer, value, count) for int32 buffers
static void fillInt_body(Args& a) {
  int32_t* p = a.i32(0);
  int32_t v = static_cast<int32_t>(a.integer(1));
  int64_t n = a.integer(2);
  for (int64_t i = 0; i < n; i++) p[i] = v;
}
SW_KERNEL(fillInt, "fillInt")

// memory() -> [liveBytes, liveBuffers, peakBytes]
static napi_value Memory(napi_env env, napi_callback_info) {
  napi_value arr;
  napi_create_array_with_length(env, 3, &arr);
  napi_set_element(env, arr, 0, numberValue(env, static_cast<double>(g_liveBytes.load())));
  napi_set_element(env, arr, 1, numberValue(env, static_cast<double>(g_liveBuffers.load())));
  napi_set_element(env, arr, 2, numberValue(env, static_cast<double>(g_peakBytes.load())));
  return arr;
}

// castF32ToI32 / castI32ToF32(src, dst, n)
static void castF32ToI32_body(Args& a) {
  const float* s = a.f32(0); int32_t* d = a.i32(1); int64_t n = a.integer(2);
  for (int64_t i = 0; i < n; i++) d[i] = static_cast<int32_t>(s[i]);
}
SW_KERNEL(castF32ToI32, "castF32ToI32")
static void castI32ToF32_body(Args& a) {
  const int32_t* s = a.i32(0); float* d = a.f32(1); int64_t n = a.integer(2);
  for (int64_t i = 0; i < n; i++) d[i] = static_cast<float>(s[i]);
}
SW_KERNEL(castI32ToF32, "castI32ToF32")

void RegisterStorage(napi_env env, napi_value exports) {
  exportFunction(env, exports, "alloc", Alloc);
  exportFunction(env, exports, "free", Free);
  exportFunction(env, exports, "write", Write);
  exportFunction(env, exports, "read", Read);
  exportFunction(env, exports, "copy", copy);
  exportFunction(env, exports, "fill", fill);
  exportFunction(env, exports, "fillInt", fillInt);
  exportFunction(env, exports, "memory", Memory);
  exportFunction(env, exports, "castF32ToI32", castF32ToI32);
  exportFunction(env, exports, "castI32ToF32", castI32ToF32);
}
